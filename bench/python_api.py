#!/usr/bin/env python3
"""The Python API's cost over the bare CLI, measured in one run (run with the Python of a venv
that has the fedlora wheel, numpy and safetensors installed):

    VENV/bin/python bench/python_api.py CLIENT... [--runs 5] [--method flora-na]

Alternates, RUNS times: the wheel's binary run directly (`fedlora merge CLIENTS -o OUT --json`,
output discarded, as a shell script would) and `fedlora.merge(CLIENTS, OUT)` (the same command,
its document parsed into a MergeResult); then `merge_state_dicts` on the same clients held in
memory (their writing to /dev/shm and the reading back included). Prints best and median of each.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import fedlora


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("clients", nargs="+")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--method", default="flora-na")
    arguments = parser.parse_args()
    binary = fedlora.find_binary()
    scratch = Path(tempfile.mkdtemp(prefix="fedlora-bench-"))
    times: dict = {"cli": [], "api": [], "state_dicts": []}
    try:
        for _ in range(arguments.runs):
            start = time.perf_counter()
            subprocess.run(
                [binary, "merge", *arguments.clients, "--method", arguments.method, "-o", str(scratch / "c"), "--json"],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            times["cli"].append(time.perf_counter() - start)
            start = time.perf_counter()
            fedlora.merge(arguments.clients, scratch / "api", method=arguments.method)
            times["api"].append(time.perf_counter() - start)
        from safetensors.numpy import load_file

        try:
            states = [load_file(str(Path(c) / "adapter_model.safetensors")) for c in arguments.clients]
        except Exception as error:  # BF16 clients: numpy has no bfloat16 (torch would hold them)
            states = []
            print(f"merge_state_dicts not measured: {error}")
        config = (Path(arguments.clients[0]) / "adapter_config.json").read_text()
        import json

        for _ in range(max(1, arguments.runs // 2) if states else 0):
            start = time.perf_counter()
            fedlora.merge_state_dicts(states, config=json.loads(config), method=arguments.method)
            times["state_dicts"].append(time.perf_counter() - start)
    except Exception:
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    cli = min(times["cli"])
    print(f"{len(arguments.clients)} clients, --method {arguments.method}, {arguments.runs} runs")
    for name, label in (("cli", "bare CLI (--json)"), ("api", "fedlora.merge"), ("state_dicts", "merge_state_dicts")):
        if not times[name]:
            continue
        best, median = min(times[name]), statistics.median(times[name])
        print(f"{label:22} best {best:7.3f} s  median {median:7.3f} s  best/CLI {best / cli:5.3f}")


if __name__ == "__main__":
    main()
