"""ServerApp: FedloraStrategy (Flower's FedAvg, LoRA factors aggregated by fedlora) and a
centralized evaluation of the global model on the held-out glosses after every round."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from flwr.app import Array, ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp

from fedlora.flower import FedloraStrategy

from . import data as D
from . import model as M

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = context.run_config
    torch.set_num_threads(int(config["torch-threads"]))
    method = str(config["method"])
    model = M.build_model(len(D.LABELS), int(config["model-seed"]))
    initial = ArrayRecord({k: Array(v) for k, v in M.get_state(model, base=method == "fedex").items()})  # fedex: the server owns the base

    _, test = D.subsample(D.read_glosses(), int(config["per-class-train"]), int(config["per-class-test"]))
    ids, mask = M.tokenize(test.texts)
    labels = torch.from_numpy(test.labels)

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        M.set_state(model, {k: v.numpy() for k, v in arrays.items()})
        accuracy, loss = M.evaluate(model, ids, mask, labels)
        return MetricRecord({"accuracy": accuracy, "loss": loss})

    nodes = len(list(grid.get_node_ids())) or 2
    strategy = FedloraStrategy(
        M.lora_config_dict(),
        method=method,
        scope=str(config["scope"]) if method == "flora-na" else None,
        on_invalid=str(config["on-invalid"]),
        fraction_evaluate=0.0,  # evaluation is centralized (evaluate_fn)
        min_train_nodes=min(nodes, 2),
        min_available_nodes=min(nodes, 2),
    )
    result = strategy.start(grid=grid, initial_arrays=initial, num_rounds=int(config["num-server-rounds"]), evaluate_fn=evaluate)

    rounds = {
        "train": {r: dict(m) for r, m in result.train_metrics_clientapp.items()},
        "evaluate": {r: dict(m) for r, m in result.evaluate_metrics_serverapp.items()},
    }
    Path(str(config["results"])).write_text(json.dumps({"method": method, "config": dict(config), "rounds": rounds}, indent=1))
