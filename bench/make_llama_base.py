#!/usr/bin/env python3
"""Write a LLaMA-7B-shaped BF16 base checkpoint with random weights for the --base benchmarks.

Usage: python3 bench/make_llama_base.py OUTDIR [--layers 8] [--hidden 4096] [--intermediate 11008]
       [--heads 32] [--vocab 32000] [--check]

OUTDIR/model.safetensors (one file, HF LlamaForCausalLM names, BF16, sorted by name like the
safetensors writer, {"format": "pt"} metadata) + OUTDIR/config.json (LlamaConfig, dtype bfloat16,
untied lm_head) so that transformers loads it. 8 layers: 1.88 G parameters, 3.76 GB; 16 layers:
7.0 GB. Skipped when both files exist. Fast: the random values are built directly as BF16 bit
patterns from random bytes (sign, mantissa random; exponent in 2^-9 .. 2^-6, |w| ~ 0.002 .. 0.03),
norm weights are 1.0. Written to OUTDIR/model.safetensors.tmp and renamed. --check re-opens the
file with safetensors and transformers' config loader.
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

CHUNK = 1 << 25  # elements generated per step (64 MB of BF16)


def tensor_list(layers, h, m, vocab):
    t = [("model.embed_tokens.weight", (vocab, h)), ("model.norm.weight", (h,)), ("lm_head.weight", (vocab, h))]
    for i in range(layers):
        p = f"model.layers.{i}."
        t += [(p + "input_layernorm.weight", (h,)), (p + "post_attention_layernorm.weight", (h,))]
        t += [(p + f"self_attn.{n}_proj.weight", (h, h)) for n in "qkvo"]
        t += [(p + "mlp.gate_proj.weight", (m, h)), (p + "mlp.up_proj.weight", (m, h)),
              (p + "mlp.down_proj.weight", (h, m))]
    return sorted(t)


def random_bf16(rng, n):
    """n random BF16 bit patterns: random sign and mantissa, exponent 118..121 (2^-9 .. 2^-6)."""
    u = np.frombuffer(rng.bytes(2 * n), dtype=np.uint16)
    return (u & np.uint16(0x807F)) | ((np.uint16(118) + ((u >> np.uint16(7)) & np.uint16(3))) << np.uint16(7))


def write(out: Path, tensors):
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, shape in tensors:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    rng = np.random.default_rng(1234)
    one = np.full(CHUNK, 0x3F80, dtype=np.uint16)  # 1.0
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for name, shape in tensors:
            left = int(np.prod(shape))
            while left:
                k = min(left, CHUNK)
                f.write((one[:k] if name.endswith("norm.weight") else random_bf16(rng, k)).tobytes())
                left -= k
    os.replace(tmp, out)
    return 8 + len(hb) + off


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--intermediate", type=int, default=11008)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args(argv)
    st, cfg_path = a.outdir / "model.safetensors", a.outdir / "config.json"
    if st.exists() and cfg_path.exists():
        print(f"{a.outdir}: exists, skipped")
    else:
        from transformers import LlamaConfig
        a.outdir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        size = write(st, tensor_list(a.layers, a.hidden, a.intermediate, a.vocab))
        cfg = LlamaConfig(hidden_size=a.hidden, intermediate_size=a.intermediate, num_hidden_layers=a.layers,
                          num_attention_heads=a.heads, num_key_value_heads=a.heads, vocab_size=a.vocab,
                          max_position_embeddings=4096, rms_norm_eps=1e-5, tie_word_embeddings=False,
                          bos_token_id=1, eos_token_id=2, dtype="bfloat16")
        cfg.architectures = ["LlamaForCausalLM"]
        d = cfg.to_dict()
        d["dtype"] = d["torch_dtype"] = "bfloat16"  # transformers 5 reads dtype, 4.x torch_dtype
        cfg_path.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")
        print(f"{st}: {size / 1e9:.2f} GB, {a.layers} layers, in {time.perf_counter() - t0:.1f} s")
    if a.check:
        from safetensors import safe_open
        from transformers import AutoConfig
        cfg = AutoConfig.from_pretrained(str(a.outdir))
        expect = dict(tensor_list(cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size))
        with safe_open(str(st), framework="pt") as f:
            keys = list(f.keys())
            assert sorted(keys) == sorted(expect), "tensor names do not match config.json"
            for k in keys:
                assert tuple(f.get_slice(k).get_shape()) == expect[k] and f.get_slice(k).get_dtype() == "BF16", k
            w = f.get_slice("model.layers.0.self_attn.q_proj.weight")[:64].float()
            n = f.get_slice("model.norm.weight")[:].float()
        assert 0.001 < float(w.abs().min()) and float(w.abs().max()) < 0.032 and bool((n == 1).all())
        print(f"  check ok: {len(keys)} tensors match config.json ({cfg.model_type}, {cfg.dtype}), "
              f"|w| in [{float(w.abs().min()):.4f}, {float(w.abs().max()):.4f}], std {float(w.std()):.4f}")


if __name__ == "__main__":
    sys.exit(main())
