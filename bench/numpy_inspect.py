#!/usr/bin/env python3
"""Baseline for single-adapter `inspect`: the same norms and singular values computed densely.

Usage: python3 bench/numpy_inspect.py ADAPTER_DIR [REGEX]
Forms s*B@A per module in float32 and takes np.linalg.svd of it, as a straightforward script would.
"""
import json, re, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).parent))
from numpy_merge import read_safetensors  # the same reader the merge baseline uses

def main():
    folder, pattern = sys.argv[1], re.compile(sys.argv[2] if len(sys.argv) > 2 else ".")
    start = time.time()
    config = json.load(open(f"{folder}/adapter_config.json"))
    scale = config["lora_alpha"] / config["r"]
    rows = 0
    tensors, _ = read_safetensors(Path(folder) / "adapter_model.safetensors")
    if True:
        names = sorted(k for k in tensors if k.endswith("lora_A.weight") and pattern.search(k))
        for a_name in names:
            a, b = tensors[a_name], tensors[a_name.replace("lora_A", "lora_B")]
            update = scale * (b @ a)
            sigma = np.linalg.svd(update, compute_uv=False)
            _ = (np.linalg.norm(a), np.linalg.norm(b), np.linalg.norm(update), sigma[:4], (sigma > max(update.shape) * 2**-7 * sigma[0]).sum())
            rows += 1
    print(f"{rows} modules in {time.time() - start:.3f} s")

if __name__ == "__main__":
    main()
