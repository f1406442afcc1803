#!/usr/bin/env python3
"""Write a LLaMA-7B-shaped sharded BF16 checkpoint whose data is sparse (holes, ~0 bytes on disk).

    python3 bench/make_sparse_llama7b.py OUTDIR [--check]

OUTDIR gets model-00001-of-00002.safetensors, model-00002-of-00002.safetensors and
model.safetensors.index.json: 291 tensors, 6.74 G parameters, ~13.5 GB logical size. Each shard
has a real header, byte for byte what safetensors 0.8 `save_file` writes for these tensors
(entries in layout order = sorted by dtype alignment then name, compact JSON, __metadata__
{"format": "pt"} first, padded with spaces to a multiple of 8), followed by a data region
made with truncate(): it reads as zeros and takes no disk blocks. The index is what
transformers writes (indent 2, sorted keys). Shards are split like transformers did for
Llama-2-7b-hf: state-dict order, a new shard when the next tensor would pass 10 GB.
--check: also prove the header generator against the real library on a scaled-down model.
Needs only the standard library (+ safetensors for the final load check).
"""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

HIDDEN, INTER, VOCAB, LAYERS = 4096, 11008, 32000, 32
MAX_SHARD = 10 * 10**9
BF16_BYTES = 2


def llama_tensors(hidden=HIDDEN, inter=INTER, vocab=VOCAB, layers=LAYERS):
    """(name, shape) in transformers' LlamaForCausalLM state-dict order."""
    out = [("model.embed_tokens.weight", [vocab, hidden])]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [
            (p + "self_attn.q_proj.weight", [hidden, hidden]),
            (p + "self_attn.k_proj.weight", [hidden, hidden]),
            (p + "self_attn.v_proj.weight", [hidden, hidden]),
            (p + "self_attn.o_proj.weight", [hidden, hidden]),
            (p + "mlp.gate_proj.weight", [inter, hidden]),
            (p + "mlp.up_proj.weight", [inter, hidden]),
            (p + "mlp.down_proj.weight", [hidden, inter]),
            (p + "input_layernorm.weight", [hidden]),
            (p + "post_attention_layernorm.weight", [hidden]),
        ]
    out += [("model.norm.weight", [hidden]), ("lm_head.weight", [vocab, hidden])]
    return out


def nbytes(shape) -> int:
    n = BF16_BYTES
    for d in shape:
        n *= d
    return n


def split(tensors, limit=MAX_SHARD):
    shards, cur, size = [], [], 0
    for name, shape in tensors:
        b = nbytes(shape)
        if cur and size + b > limit:
            shards.append(cur)
            cur, size = [], 0
        cur.append((name, shape))
        size += b
    shards.append(cur)
    return shards


def header(tensors, metadata=None) -> tuple[bytes, int]:
    """Header bytes (length prefix included) and data length, as safetensors 0.8 writes them:
    all BF16, so layout order = name order (byte-wise, as Rust sorts Strings)."""
    entries = sorted(tensors, key=lambda t: t[0].encode("utf-8"))
    hdr = {}
    if metadata is not None:
        hdr["__metadata__"] = metadata
    off = 0
    for name, shape in entries:
        hdr[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + nbytes(shape)]}
        off += nbytes(shape)
    h = json.dumps(hdr, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h, off


def write_checkpoint(out: Path, tensors, limit=MAX_SHARD) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shards = split(tensors, limit)
    n = len(shards)
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
        head, size = header(shard, {"format": "pt"})
        tmp = out / (fname + ".tmp")
        with open(tmp, "wb") as f:
            f.write(head)
            f.truncate(len(head) + size)      # sparse: no data written
        os.replace(tmp, out / fname)
        for name, shape in shard:
            weight_map[name] = fname
        total += size
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def self_check(tmpdir: Path) -> None:
    """The generator against safetensors' own writer on a scaled-down model (real data)."""
    import numpy as np
    import ml_dtypes
    from safetensors.numpy import save_file
    small = llama_tensors(hidden=8, inter=24, vocab=40, layers=12)
    tensors = {name: np.zeros(shape, ml_dtypes.bfloat16) for name, shape in small}
    ref = tmpdir / "ref.safetensors"
    save_file(tensors, str(ref), metadata={"format": "pt"})
    head, size = header(small, {"format": "pt"})
    raw = ref.read_bytes()
    assert raw[:len(head)] == head, "header differs from safetensors' own"
    assert len(raw) == len(head) + size
    print("header generator matches safetensors.save_file byte for byte")


def main(argv) -> int:
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 1:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    out = Path(args[0])
    if "--check" in argv:
        import tempfile
        with tempfile.TemporaryDirectory() as t:
            self_check(Path(t))
    tensors = llama_tensors()
    assert len(tensors) == 291
    write_checkpoint(out, tensors)
    from safetensors import safe_open
    count, logical, disk = 0, 0, 0
    index = json.loads((out / "model.safetensors.index.json").read_text())
    for shard in sorted(set(index["weight_map"].values())):
        p = out / shard
        with safe_open(str(p), framework="numpy") as f:
            for k in f.keys():
                assert f.get_slice(k).get_shape() == dict(tensors)[k]
                count += 1
        st = os.stat(p)
        logical += st.st_size
        disk += st.st_blocks * 512
    assert count == 291
    params = sum(nbytes(s) for _, s in tensors) // BF16_BYTES
    print(f"{out}: {count} tensors, {params / 1e9:.2f} G params, "
          f"{logical / 1e9:.2f} GB logical, {disk / 1e6:.2f} MB on disk")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
