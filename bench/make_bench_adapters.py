#!/usr/bin/env python3
"""Write N synthetic PEFT LoRA clients with LLaMA-7B shapes for benchmarking.

Usage: python3 bench/make_bench_adapters.py OUTDIR --clients N [--rank 16] [--layers 32]
       [--alpha 2*rank] [--hidden 4096] [--intermediate 11008]

Each client is OUTDIR/client_XX/ with adapter_config.json + adapter_model.safetensors (BF16,
q,k,v,o,gate,up,down per layer; r=16 gives ~80 MB per client). Factors are random but
federated-looking: every client is a shared "global" adapter plus its own deviation, so the
clients are correlated (as after one FL round) and deterministic (seed per module and client).
Existing client folders are skipped. Needs only numpy (BF16 is written as uint16 bit patterns,
rounded to nearest even, in a safetensors file written directly and checked by safetensors).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
from pathlib import Path

import numpy as np

MODULES = [  # (path inside layer, out, in) with out/in as functions of hidden h and intermediate m
    ("self_attn.q_proj", "h", "h"),
    ("self_attn.k_proj", "h", "h"),
    ("self_attn.v_proj", "h", "h"),
    ("self_attn.o_proj", "h", "h"),
    ("mlp.gate_proj", "m", "h"),
    ("mlp.up_proj", "m", "h"),
    ("mlp.down_proj", "h", "m"),
]


def to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), round to nearest even (no NaN inputs here)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounding = ((u >> 16) & 1) + np.uint32(0x7FFF)
    return ((u + rounding) >> 16).astype(np.uint16)


def write_safetensors_bf16(path: Path, tensors: list[tuple[str, np.ndarray]]):
    """tensors: (name, uint16 bf16 bits) in the order to write; header sorted like safetensors does."""
    tensors = sorted(tensors, key=lambda t: t[0])
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, arr in tensors:
        n = arr.nbytes
        header[name] = {"dtype": "BF16", "shape": list(arr.shape), "data_offsets": [off, off + n]}
        off += n
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for _, arr in tensors:
            f.write(np.ascontiguousarray(arr).tobytes())
    os.replace(tmp, path)


def make_client(folder: Path, index: int, rank: int, alpha: float, layers: int, hidden: int, inter: int):
    dims = {"h": hidden, "m": inter}
    tensors = []
    for layer in range(layers):
        for mi, (path, o, i) in enumerate(MODULES):
            d, k = dims[o], dims[i]
            # shared global adapter for this module (same for all clients) ...
            g = np.random.default_rng([7, layer, mi])
            A0 = g.standard_normal((rank, k), dtype=np.float32) * np.float32(1.0 / np.sqrt(k))
            B0 = g.standard_normal((d, rank), dtype=np.float32) * np.float32(0.02)
            # ... plus this client's local deviation
            c = np.random.default_rng([11, index, layer, mi])
            A = A0 + c.standard_normal((rank, k), dtype=np.float32) * np.float32(0.3 / np.sqrt(k))
            B = B0 + c.standard_normal((d, rank), dtype=np.float32) * np.float32(0.006)
            name = f"base_model.model.model.layers.{layer}.{path}"
            tensors.append((name + ".lora_A.weight", to_bf16_bits(A)))
            tensors.append((name + ".lora_B.weight", to_bf16_bits(B)))
    folder.mkdir(parents=True, exist_ok=True)
    write_safetensors_bf16(folder / "adapter_model.safetensors", tensors)
    cfg = {
        "alpha_pattern": {},
        "base_model_name_or_path": "meta-llama/Llama-2-7b-hf",
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "lora_alpha": alpha,
        "lora_dropout": 0.05,
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": rank,
        "rank_pattern": {},
        "target_modules": sorted(p.split(".")[1] for p, _, _ in MODULES),
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": False,
    }
    (folder / "adapter_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--clients", type=int, required=True)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=None, help="default 2*rank")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--intermediate", type=int, default=11008)
    ap.add_argument("--check", action="store_true", help="re-open each new file with safetensors")
    a = ap.parse_args(argv)
    alpha = a.alpha if a.alpha is not None else 2 * a.rank
    if float(alpha).is_integer():
        alpha = int(alpha)
    a.outdir.mkdir(parents=True, exist_ok=True)
    for i in range(a.clients):
        folder = a.outdir / f"client_{i:02d}"
        if (folder / "adapter_model.safetensors").exists() and (folder / "adapter_config.json").exists():
            print(f"{folder}: exists, skipped")
            continue
        t0 = time.perf_counter()
        make_client(folder, i, a.rank, alpha, a.layers, a.hidden, a.intermediate)
        size = (folder / "adapter_model.safetensors").stat().st_size
        print(f"{folder}: {size / 1e6:.1f} MB in {time.perf_counter() - t0:.2f} s")
        if a.check:
            from safetensors import safe_open
            with safe_open(str(folder / "adapter_model.safetensors"), framework="pt") as f:
                keys = list(f.keys())
                t = f.get_tensor(keys[0])
                assert str(t.dtype) == "torch.bfloat16", t.dtype
            print(f"  safetensors.safe_open: {len(keys)} tensors ok")


if __name__ == "__main__":
    sys.exit(main())
