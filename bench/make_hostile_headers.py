#!/usr/bin/env python3
"""Writes the large-but-legal inputs of bench/bench_hostile.sh into OUTDIR:

  tensors.safetensors   1.5 M zero-size tensors in one header (~90 MB of header)
  metadata.safetensors  6 M metadata entries (~95 MB of header)
  shards/               10^5 real shards of one small tensor each, with their index

Written with plain bytes (safetensors' own writer takes minutes for these counts); the files are
what safetensors.safe_open reads.
"""
import json, os, struct, sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def write(path, header, data=b""):
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


if not os.path.exists(f"{out}/tensors.safetensors"):
    write(f"{out}/tensors.safetensors",
          {f"t.{i:07d}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(1_500_000)})
if not os.path.exists(f"{out}/metadata.safetensors"):
    write(f"{out}/metadata.safetensors",
          {"__metadata__": {f"k{i:07d}": "v" for i in range(6_000_000)},
           "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0\0\x80\x3f")
shards = f"{out}/shards"
if not os.path.exists(f"{shards}/model.safetensors.index.json"):
    os.makedirs(shards, exist_ok=True)
    count = 100_000
    weight_map = {}
    for i in range(count):
        name = f"model-{i + 1:06d}-of-{count:06d}.safetensors"
        write(f"{shards}/{name}", {f"w.{i}": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
              struct.pack("<f", float(i)))
        weight_map[f"w.{i}"] = name
    with open(f"{shards}/model.safetensors.index.json", "w") as f:
        json.dump({"metadata": {"total_size": 4 * count}, "weight_map": weight_map}, f)
