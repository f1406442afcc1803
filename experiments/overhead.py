"""The strategy's overhead per round against Flower's own FedAvg on the same replies, and the
server's peak memory: 10 replies shaped as the MiniLM example's (q, k, v of layers 3-5, r 8,
plus the head) and 10 shaped as LLaMA-7B adapters (q, k, v, o of 32 layers, 4096 x 4096, r 16),
random float32 factors. Each (shape, rule) runs in its own process, so its peak RSS is its own;
the fedlora binary is a child process (its peak is reported apart).

    FEDLORA_BINARY=.build/release/fedlora PYTHONPATH=python .venv/bin/python experiments/overhead.py
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

SHAPES = {
    "minilm": {"modules": [f"base_model.model.encoder.layer.{i}.attention.self.{p}" for i in (3, 4, 5) for p in ("query", "key", "value")],
               "d": 384, "k": 384, "r": 8, "alpha": 16, "head": (10, 384)},
    "llama7b": {"modules": [f"base_model.model.model.layers.{i}.self_attn.{p}_proj" for i in range(32) for p in "qkvo"],
                "d": 4096, "k": 4096, "r": 16, "alpha": 32, "head": None},
}  # fmt: skip
RULES = ["flower-fedavg", "fedavg", "flora-na", "svd"]
CLIENTS, REPEATS = 10, 3


def replies(shape: Dict, clients: int) -> List:
    from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict
    try:  # flwr >= 1.3x: what its ServerApp runtime sets before a strategy creates messages
        from flwr.supercore.task_identity import TaskIdentity

        TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 1
    except ImportError:
        pass

    rng = np.random.default_rng(0)
    out = []
    for node in range(1, clients + 1):
        arrays = {}
        for module in shape["modules"]:
            arrays[f"{module}.lora_A.weight"] = Array(rng.standard_normal((shape["r"], shape["k"]), dtype=np.float32) * 0.02)
            arrays[f"{module}.lora_B.weight"] = Array(rng.standard_normal((shape["d"], shape["r"]), dtype=np.float32) * 0.02)
        if shape["head"]:
            arrays["classifier.weight"] = Array(rng.standard_normal(shape["head"], dtype=np.float32))
        instruction = Message(RecordDict({}), dst_node_id=node, message_type="train")
        content = RecordDict({"arrays": ArrayRecord(arrays), "metrics": MetricRecord({"num-examples": 100 + 10 * node})})
        out.append(Message(content, reply_to=instruction))
    return out


def one(name: str, rule: str) -> Dict:
    from flwr.serverapp.strategy import FedAvg

    from fedlora.flower import FedloraStrategy

    shape = SHAPES[name]
    messages = replies(shape, CLIENTS)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if rule == "flower-fedavg":
        strategy = FedAvg()
    else:
        config = {"peft_type": "LORA", "r": shape["r"], "lora_alpha": shape["alpha"], "target_modules": ["x"]}
        strategy = FedloraStrategy(config, method=rule, compare_fedavg=False)
    seconds = []
    for repeat in range(REPEATS):
        start = time.perf_counter()
        arrays, metrics = strategy.aggregate_train(1, messages)
        seconds.append(time.perf_counter() - start)
    result = {"shape": name, "rule": rule, "clients": CLIENTS, "seconds": seconds, "median_seconds": float(np.median(seconds)),
              "reply_bytes": sum(m.content["arrays"].count_bytes() for m in messages),
              "rss_mib_after_replies": before / 1024, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "binary_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}  # fmt: skip
    if rule != "flower-fedavg":
        result["merge_seconds"] = metrics["fedlora-merge-seconds"]
        result["error"] = metrics.get("fedlora-error")
    return result


def main() -> None:
    if len(sys.argv) == 3:
        print(json.dumps(one(sys.argv[1], sys.argv[2])))
        return
    results = []
    for name in SHAPES:
        for rule in RULES:
            done = subprocess.run([sys.executable, __file__, name, rule], capture_output=True, text=True, check=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            r = results[-1]
            print(f"{name:8s} {rule:14s} {r['median_seconds']:7.3f} s  peak RSS {r['peak_rss_mib']:7.0f} MiB (binary {r['binary_peak_rss_mib']:.0f})", flush=True)
    out = Path(__file__).resolve().parent / "results" / "overhead.json"
    out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
