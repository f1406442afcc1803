#!/usr/bin/env python3
"""Cut kohya LoRA files down to one module of each distinct shape, for paired timing runs.

Usage: python3 bench/kohya_shape_sample.py OUTDIR CLIENT.safetensors...

Keeps, in every client, the modules bench/kohya_svd_merge.py --sample picks: of the sorted
stems, the first of each distinct (out, in, kernel) shape (35 of the 1,052 modules of the
SDXL set), with their lora_down, lora_up and alpha tensors and the file's metadata, plus
`fedlora_bench.shape_counts` (JSON: stem -> how many modules of the full file share its
shape), so a timing on the sample can be scaled to the whole model. Existing outputs are kept.
"""

from __future__ import annotations

import json
import os
import sys

from safetensors import safe_open
from safetensors.numpy import save_file


def main() -> int:
    out_dir, clients = sys.argv[1], sys.argv[2:]
    if not clients:
        sys.exit(__doc__)
    os.makedirs(out_dir, exist_ok=True)
    counts: dict[tuple[int, ...], int] = {}
    first: dict[tuple[int, ...], str] = {}
    with safe_open(clients[0], framework="np") as f:
        stems = sorted(k[: -len(".lora_down.weight")] for k in f.keys() if k.endswith(".lora_down.weight"))
        for stem in stems:
            key = (tuple(f.get_slice(stem + ".lora_up.weight").get_shape())[:1]
                   + tuple(f.get_slice(stem + ".lora_down.weight").get_shape())[1:])
            counts[key] = counts.get(key, 0) + 1
            first.setdefault(key, stem)
    shape_counts = {first[key]: n for key, n in counts.items()}
    for client in clients:
        target = os.path.join(out_dir, os.path.basename(client))
        if os.path.exists(target):
            continue
        with safe_open(client, framework="np") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys() if k.rsplit(".", 2)[0] in shape_counts
                       or k.rsplit(".", 1)[0] in shape_counts}
        meta["fedlora_bench.shape_counts"] = json.dumps(shape_counts, sort_keys=True)
        save_file(tensors, target, metadata=meta)
    print(f"{len(shape_counts)} modules of {sum(counts.values())} kept in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
