"""ClientApp: loads the global LoRA factors and head (and with fedex the base weights of the
adapted modules), trains on its Dirichlet partition of the glosses, sends back factors and head."""

from __future__ import annotations

import functools
from typing import Tuple

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from . import data as D
from . import model as M

app = ClientApp()


@functools.lru_cache(maxsize=4)
def partition(
    index: int, count: int, alpha: float, seed: int, per_class_train: int, per_class_test: int
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """This node's glosses (the pool the server's test set is not in): the states below the
    adapted layers (cached), mask and labels."""
    train, _ = D.subsample(D.read_glosses(), per_class_train, per_class_test)
    parts = D.split(train.labels, count, alpha if alpha > 0 else None, seed)
    mine = parts[index]
    ids, mask = M.tokenize([train.texts[i] for i in mine])
    hidden = _model().prefix(ids, mask)
    return hidden, mask, torch.from_numpy(train.labels[mine])


@functools.lru_cache(maxsize=1)
def _model() -> M.Classifier:
    return M.build_model(len(D.LABELS), 0)  # the global state overwrites its LoRA factors and head


@app.train()
def train(msg: Message, context: Context) -> Message:
    config = context.run_config
    torch.set_num_threads(int(config["torch-threads"]))
    index = int(context.node_config["partition-id"])
    count = int(context.node_config["num-partitions"])
    hidden, mask, labels = partition(
        index, count, float(config["dirichlet-alpha"]), int(config["split-seed"]),
        int(config["per-class-train"]), int(config["per-class-test"]),
    )  # fmt: skip
    model = _model()
    M.set_state(model, {k: v.numpy() for k, v in msg.content["arrays"].items()})
    server_round = int(msg.content["config"]["server-round"])
    report = M.train(
        model, hidden, mask, labels, epochs=int(config["local-epochs"]), batch_size=int(config["batch-size"]),
        lr=float(config["lr"]), seed=int(config["model-seed"]) * 100_003 + server_round * 101 + index,
    )  # fmt: skip
    reply = RecordDict({
        "arrays": ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in M.get_state(model).items()}),
        "metrics": MetricRecord({"num-examples": report.examples, "train-loss": report.loss, "train-seconds": report.seconds}),
    })  # fmt: skip
    return Message(reply, reply_to=msg)
