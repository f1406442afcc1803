"""The strategy's overhead per round against Flower's own FedAvg on the same replies, and the
server's peak memory: 10 replies shaped as the MiniLM example's (q, k, v of layers 3-5, r 8,
plus the head) and 10 shaped as LLaMA-7B adapters (q, k, v, o of 32 layers, 4096 x 4096, r 16),
random float32 factors. Each (shape, rule) runs in its own process, so its peak RSS is its own.
The fedlora binary is a child process: its own peak (VmHWM, polled from /proc while it runs, as
getrusage's children figure counts the Python parent's pages at fork) is measured apart on the
same clients written as PEFT folders.

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
              "rss_mib_after_replies": before / 1024, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip
    if rule != "flower-fedavg":
        result["merge_seconds"] = metrics["fedlora-merge-seconds"]
        result["error"] = metrics.get("fedlora-error")
    return result


def binary_peak(name: str, method: str) -> Dict:
    """VmHWM of `fedlora merge` on the clients written as PEFT folders (in /dev/shm)."""
    import shutil
    import tempfile

    from safetensors.numpy import save_file

    from fedlora import find_binary

    shape = SHAPES[name]
    root = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        clients = []
        for message in replies(shape, CLIENTS):
            folder = root / f"c{len(clients)}"
            folder.mkdir()
            state = {k: v.numpy() for k, v in message.content["arrays"].items() if ".lora_" in k}
            save_file(state, str(folder / "adapter_model.safetensors"))
            (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": shape["r"], "lora_alpha": shape["alpha"]}))
            clients.append(str(folder))
        command = [find_binary(), "merge", *clients, "-o", str(root / "out"), "--method", method, "--quiet"]
        if method == "svd":
            command += ["--rank", str(shape["r"])]
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        peak = 0
        while process.poll() is None:
            try:
                for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - start
        return {"shape": name, "rule": f"binary {method}", "binary_peak_rss_mib": peak / 1024, "binary_seconds": seconds,
                "client_bytes": sum(f.stat().st_size for f in root.rglob("*.safetensors"))}  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


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
            print(f"{name:8s} {rule:14s} {r['median_seconds']:7.3f} s  peak RSS {r['peak_rss_mib']:7.0f} MiB", flush=True)
        for method in ("fedavg", "flora-na", "svd"):
            results.append(binary_peak(name, method))
            r = results[-1]
            print(f"{name:8s} {r['rule']:14s} {r['binary_seconds']:7.3f} s  binary VmHWM {r['binary_peak_rss_mib']:7.0f} MiB", flush=True)
    out = Path(__file__).resolve().parent / "results" / "overhead.json"
    out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
