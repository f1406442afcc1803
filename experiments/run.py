"""The paper's table in miniature: federated LoRA on WordNet glosses with all-MiniLM-L6-v2.

Every (rule, split, seed) run writes experiments/results/RULE-SPLIT-seedN.json; runs whose file
exists are skipped, so the runner resumes where it stopped. Aggregation goes through
fedlora.flower.FedloraStrategy (configure_train / aggregate_train on Messages built in this
process, no Ray); training is plain torch + peft on CPU, one client after another.

    FEDLORA_BINARY=.build/release/fedlora PYTHONPATH=python:examples/flower-lora \\
        .venv/bin/python experiments/run.py            # everything, in priority order
    ... experiments/run.py --rules fedavg --splits a0.3 --seeds 0 --rounds 2   # one small run
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "python"), str(HERE.parent / "examples" / "flower-lora")]

from flower_lora import data as D  # noqa: E402
from flower_lora import model as M  # noqa: E402

RULES = ["fedavg", "flora-na-layer", "flora-na-model", "svd", "fedex", "centralized", "local"]
POOLED = "pooled"  # centralized training never sees the split: one run per seed, shown in every split's row
SPLITS = {"a0.3": 0.3, "a0.1": 0.1, "iid": None}
ORDER = [("a0.3", 0), ("a0.1", 0), ("iid", 0), ("a0.3", 1), ("a0.3", 2), ("a0.1", 1), ("a0.1", 2), ("iid", 1), ("iid", 2)]


SETTINGS: Dict[str, Any] = {
    "clients": 10,
    "rounds": 15,
    "local_epochs": 1,
    "batch_size": 16,
    "lr": 2e-3,
    "per_class_train": 150,
    "per_class_test": 80,
    "data_seed": 0,
    "lora_r": M.LORA_R,
    "lora_alpha": M.LORA_ALPHA,
    "lora_layers": M.LORA_LAYERS,
    "target_modules": M.TARGET_MODULES,
    "max_len": M.MAX_LEN,
    "local_eval_every": 3,
}


class StubGrid:
    """What FedAvg.configure_train asks of a Grid: the node ids (sampling is Flower's)."""

    def __init__(self, nodes: int) -> None:
        self.nodes = list(range(1, nodes + 1))

    def get_node_ids(self) -> List[int]:
        return self.nodes


class Data:
    """Tokenized glosses and the cached states below the adapted layers (computed once)."""

    def __init__(self, settings: Dict[str, Any]) -> None:
        glosses = D.read_glosses()
        self.train, self.test = D.subsample(glosses, settings["per_class_train"], settings["per_class_test"], settings["data_seed"])
        prefix_model = M.build_model(len(D.LABELS), 0)
        ids, self.train_mask = M.tokenize(self.train.texts)
        test_ids, self.test_mask = M.tokenize(self.test.texts)
        start = time.perf_counter()
        self.train_x = prefix_model.prefix(ids, self.train_mask)
        self.test_x = prefix_model.prefix(test_ids, self.test_mask)
        self.prefix_seconds = time.perf_counter() - start
        self.train_y = torch.from_numpy(self.train.labels)
        self.test_y = torch.from_numpy(self.test.labels)


def evaluate(model: M.Classifier, data: Data) -> Tuple[float, float]:
    return M.evaluate(model, data.test_x, data.test_mask, data.test_y)


def train_client(model: M.Classifier, data: Data, index: np.ndarray, settings: Dict[str, Any], seed: int) -> M.TrainReport:
    idx = torch.from_numpy(index)
    return M.train(
        model, data.train_x[idx], data.train_mask[idx], data.train_y[idx],
        epochs=settings["local_epochs"], batch_size=settings["batch_size"], lr=settings["lr"], seed=seed,
    )  # fmt: skip


def federated(rule: str, data: Data, parts: List[np.ndarray], seed: int, settings: Dict[str, Any]) -> List[Dict[str, Any]]:
    from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
    from flwr.serverapp.strategy import FedAvg
    try:  # flwr >= 1.3x: what its ServerApp runtime sets before a strategy creates messages
        from flwr.supercore.task_identity import TaskIdentity

        TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 1
    except ImportError:
        pass

    from fedlora.flower import FedloraStrategy

    method, scope = {"fedavg": ("fedavg", None), "flora-na-layer": ("flora-na", "layer"), "flora-na-model": ("flora-na", "model"),
                     "svd": ("svd", None), "fedex": ("fedex", None)}[rule]  # fmt: skip
    clients = len(parts)
    strategy = FedloraStrategy(
        M.lora_config_dict(), method=method, scope=scope, fraction_evaluate=0.0,
        min_train_nodes=clients, min_available_nodes=clients,
    )  # fmt: skip
    flower = FedAvg()
    model = M.build_model(len(D.LABELS), seed)
    state = M.get_state(model, base=(rule == "fedex"))
    arrays = ArrayRecord({k: Array(v) for k, v in state.items()})
    grid = StubGrid(clients)
    rounds = []
    for server_round in range(1, settings["rounds"] + 1):
        messages = sorted(strategy.configure_train(server_round, arrays, ConfigRecord(), grid), key=lambda m: m.metadata.dst_node_id)  # type: ignore[arg-type]
        sent = {k: v.numpy() for k, v in arrays.items()}
        replies, reports = [], []
        for message in messages:
            node = message.metadata.dst_node_id
            M.set_state(model, sent)
            report = train_client(model, data, parts[node - 1], settings, seed * 100_003 + server_round * 101 + node)
            reports.append(report)
            reply = RecordDict({
                "arrays": ArrayRecord({k: Array(v) for k, v in M.get_state(model).items()}),
                "metrics": MetricRecord({"num-examples": report.examples, "train-loss": report.loss}),
            })  # fmt: skip
            replies.append(Message(reply, reply_to=message))
        start = time.perf_counter()
        flower.aggregate_train(server_round, replies)  # Flower's own FedAvg on the same replies, timed
        flower_seconds = time.perf_counter() - start
        arrays, metrics = strategy.aggregate_train(server_round, replies)
        assert arrays is not None and metrics is not None
        M.set_state(model, {k: v.numpy() for k, v in arrays.items()})
        accuracy, loss = evaluate(model, data)
        error = metrics.get("fedlora-error")
        rounds.append({
            "round": server_round,
            "accuracy": accuracy,
            "test_loss": loss,
            "train_loss": float(metrics["train-loss"]),
            # ||T - Bh Ah|| / ||T|| of what clients receive: fedex's base carries the residual (0).
            "divergence": 0.0 if rule == "fedex" else error,
            "adapter_error": error,
            "floor": metrics.get("fedlora-floor"),
            "fedavg_error": metrics.get("fedlora-fedavg-error"),
            "layer_errors": list(metrics.get("fedlora-layer-errors", [])),
            "merge_seconds": metrics["fedlora-merge-seconds"],
            "compare_seconds": metrics.get("fedlora-compare-seconds", 0.0),
            "aggregate_seconds": metrics["fedlora-aggregate-seconds"],
            "flower_fedavg_seconds": flower_seconds,
            "client_train_seconds": [r.seconds for r in reports],
            "bytes_up": int(metrics["fedlora-bytes-in"]),
            "bytes_down": int(metrics["fedlora-bytes-out"]) * len(replies),
            "excluded": int(metrics["fedlora-excluded"]),
        })  # fmt: skip
        log(f"{rule} round {server_round}: acc {accuracy:.4f} divergence {error} fedavg {metrics.get('fedlora-fedavg-error')}")
    return rounds


def centralized(data: Data, seed: int, settings: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Upper bound: one model on the pooled data, one epoch per round (the federation's samples)."""
    model = M.build_model(len(D.LABELS), seed)
    everything = np.arange(len(data.train_y))
    rounds = []
    for server_round in range(1, settings["rounds"] + 1):
        report = train_client(model, data, everything, settings, seed * 100_003 + server_round * 101)
        accuracy, loss = evaluate(model, data)
        rounds.append({"round": server_round, "accuracy": accuracy, "test_loss": loss, "train_loss": report.loss,
                       "client_train_seconds": [report.seconds]})  # fmt: skip
        log(f"centralized round {server_round}: acc {accuracy:.4f}")
    return rounds


def local(data: Data, parts: List[np.ndarray], seed: int, settings: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Lower bound: each client trains alone from the same start; accuracy is the clients' mean
    on the shared test set (every `local_eval_every` rounds and the last)."""
    model = M.build_model(len(D.LABELS), seed)
    states = [M.get_state(model) for _ in parts]
    rounds = []
    for server_round in range(1, settings["rounds"] + 1):
        seconds, accuracies, losses = [], [], []
        check = server_round % settings["local_eval_every"] == 0 or server_round == settings["rounds"]
        for node, index in enumerate(parts, start=1):
            M.set_state(model, states[node - 1])
            report = train_client(model, data, index, settings, seed * 100_003 + server_round * 101 + node)
            seconds.append(report.seconds)
            states[node - 1] = M.get_state(model)
            if check:
                accuracy, loss = evaluate(model, data)
                accuracies.append(accuracy)
                losses.append(loss)
        row: Dict[str, Any] = {"round": server_round, "client_train_seconds": seconds}
        if check:
            row.update(accuracy=float(np.mean(accuracies)), accuracy_min=min(accuracies), accuracy_max=max(accuracies),
                       client_accuracies=accuracies, test_loss=float(np.mean(losses)))  # fmt: skip
            log(f"local round {server_round}: mean acc {row['accuracy']:.4f}")
        rounds.append(row)
    return rounds


def run_one(rule: str, split: str, seed: int, data: Data, settings: Dict[str, Any]) -> Dict[str, Any]:
    torch.manual_seed(seed)
    np.random.seed(seed)
    if rule == "centralized":
        split, parts = POOLED, [np.arange(len(data.train_y))]
    else:
        parts = D.split(data.train.labels, settings["clients"], SPLITS[split], seed=1000 + seed)
    start = time.perf_counter()
    if rule == "centralized":
        rounds = centralized(data, seed, settings)
    elif rule == "local":
        rounds = local(data, parts, seed, settings)
    else:
        rounds = federated(rule, data, parts, seed, settings)
    return {
        "rule": rule,
        "split": split,
        "alpha": SPLITS.get(split),
        "seed": seed,
        "seeds": {"torch_manual_seed": seed, "numpy_seed": seed, "dirichlet_seed": 1000 + seed, "data_seed": settings["data_seed"]},
        "settings": settings,
        "client_sizes": [len(p) for p in parts],
        "client_label_histogram": D.label_histogram(data.train.labels, parts),
        "labels": D.LABELS,
        "train_size": int(len(data.train_y)),
        "test_size": int(len(data.test_y)),
        "rounds": rounds,
        "final_accuracy": next(r["accuracy"] for r in reversed(rounds) if "accuracy" in r),
        "seconds": time.perf_counter() - start,
        "prefix_seconds": data.prefix_seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
        "versions": versions(),
    }


def versions() -> Dict[str, str]:
    import flwr
    import peft
    import transformers

    import fedlora

    return {"python": platform.python_version(), "torch": torch.__version__, "peft": peft.__version__,
            "transformers": transformers.__version__, "flwr": flwr.__version__, "fedlora": fedlora.version()}  # fmt: skip


def log(text: str) -> None:
    print(time.strftime("%H:%M:%S"), text, flush=True)


def main(argv: Optional[Iterable[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", default=",".join(RULES))
    parser.add_argument("--splits", default=None, help="comma-separated of a0.3, a0.1, iid (default: all)")
    parser.add_argument("--seeds", default=None, help="comma-separated (default: 0,1,2)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args(list(argv) if argv is not None else None)
    torch.set_num_threads(args.threads)
    settings = dict(SETTINGS)
    if args.rounds is not None:
        settings["rounds"] = args.rounds
    rules = args.rules.split(",")
    splits = args.splits.split(",") if args.splits else list(SPLITS)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [0, 1, 2]
    order = [(sp, se) for sp, se in ORDER if sp in splits and se in seeds]
    order += [(sp, se) for sp in splits for se in seeds if (sp, se) not in order]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data: Optional[Data] = None
    for split, seed in order:
        for rule in rules:
            suffix = "" if settings["rounds"] == SETTINGS["rounds"] else f"-r{settings['rounds']}"
            path = out / f"{rule}-{POOLED if rule == 'centralized' else split}-seed{seed}{suffix}.json"
            if path.exists():
                continue
            data = data or Data(settings)
            log(f"== {path.name}")
            result = run_one(rule, split, seed, data, settings)
            temporary = path.with_suffix(".json.tmp")
            temporary.write_text(json.dumps(result, indent=1))
            temporary.rename(path)  # a run is there whole or not at all
            log(f"wrote {path.name}: final accuracy {result['final_accuracy']:.4f} in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
