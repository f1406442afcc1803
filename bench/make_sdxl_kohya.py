#!/usr/bin/env python3
"""Write N synthetic kohya-ss LoRA files with the key layout and shapes sd-scripts gives SDXL.

Usage: python3 bench/make_sdxl_kohya.py OUTDIR [--clients 5] [--rank 32] [--conv-rank 32]
       [--alpha 16] [--conv-alpha 16] [--unet-only] [--list]

Writes OUTDIR/client_N.safetensors (N = 0..clients-1), FP16 as sd-scripts saves by default
(`--save_precision fp16`), with the `ss_*` metadata keys sd-scripts writes. Existing files are
skipped. `--list` prints the module table and the parameter count, and writes nothing.

The layout is that of sd-scripts' `networks/lora.py` on its SDXL UNet
(`library/sdxl_original_unet.py`, SGM block names) and the two transformers CLIP text encoders,
with `--network_dim R --conv_dim R` (LoCon):

  UNet, `Transformer2DModel` (rank R, `alpha`):  every Linear of the 11 transformers
    (input_blocks 4, 5 (640 ch, depth 2), 7, 8 (1280 ch, depth 10), middle_block 1 (1280, 10),
    output_blocks 0, 1, 2 (1280, 10), 3, 4, 5 (640, 2)): proj_in, proj_out (Linear in SDXL),
    and per transformer block attn1 to_q/to_k/to_v/to_out_0 [C, C], attn2 to_q [C, C],
    to_k/to_v [C, 2048] (context dim 2048), to_out_0, ff_net_0_proj [8C, C] (GEGLU),
    ff_net_2 [C, 4C].
  UNet, `ResnetBlock2D` / `Downsample2D` / `Upsample2D` (conv_dim): in_layers_2 and
    out_layers_3 (3x3 convs, rank conv_dim, `conv_alpha`), emb_layers_1 (Linear 1280 -> C) and
    skip_connection (1x1 conv, where in != out) at rank R with `alpha` (sd-scripts gives
    Linear and 1x1 convs network_dim even inside the conv targets), input_blocks_3_0_op /
    input_blocks_6_0_op (3x3 stride-2 convs), output_blocks_2_2_conv / output_blocks_5_2_conv.
    conv_in / conv_out / time_embed / label_emb are not targets of networks/lora.py.
  Text encoders (`CLIPAttention`, `CLIPMLP`), unless --unet-only: lora_te1_ (CLIP ViT-L,
    12 layers, 768, MLP 3072) and lora_te2_ (OpenCLIP bigG, 32 layers, 1280, MLP 5120),
    text_model_encoder_layers_N_self_attn_{q,k,v,out}_proj, mlp_fc1, mlp_fc2.

Tensors per module: `STEM.lora_down.weight` [r, in] (conv: [r, in, kh, kw]),
`STEM.lora_up.weight` [out, r] (conv: [out, r, 1, 1]) and `STEM.alpha` (scalar, FP16 as
sd-scripts stores it after the dtype cast). At rank 32 the full layout is 1,052 modules
(739 UNet Linears: 722 in the transformers and 17 emb_layers_1; 38 3x3 convs; 11 1x1
skip_connection convs; 72 + 192 text-encoder Linears), 127.3 M parameters, 254.6 MB in FP16;
--unet-only (the common SDXL setting, `--network_train_unet_only`) is 788 modules, 98.4 M parameters, 196.8 MB.

Factors are random but federated-looking, as in bench/make_bench_adapters.py: each client is a
shared global adapter plus its own deviation (seeded per module and client), so the five
clients are correlated and the rank-R merge has a meaningful floor. Needs numpy only; the
safetensors file is written directly (and read back by safetensors when it is installed).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np

TIME_EMBED = 1280  # SDXL time embedding width (4 x 320): emb_layers_1 is Linear(1280, C)
CONTEXT = 2048  # cross-attention context (CLIP-L 768 + bigG 1280)


def unet_modules():
    """(stem, out, in, kernel, conv_target) for sd-scripts' SDXL UNet targets, in model order."""
    mods = []

    def resnet(prefix, cin, cout):
        mods.append((f"{prefix}_in_layers_2", cout, cin, 3, True))
        mods.append((f"{prefix}_emb_layers_1", cout, TIME_EMBED, 0, False))
        mods.append((f"{prefix}_out_layers_3", cout, cout, 3, True))
        if cin != cout:
            mods.append((f"{prefix}_skip_connection", cout, cin, 1, False))

    def transformer(prefix, c, depth):
        mods.append((f"{prefix}_proj_in", c, c, 0, False))
        for b in range(depth):
            t = f"{prefix}_transformer_blocks_{b}"
            for attn in ("attn1", "attn2"):
                ctx = c if attn == "attn1" else CONTEXT
                mods.append((f"{t}_{attn}_to_q", c, c, 0, False))
                mods.append((f"{t}_{attn}_to_k", c, ctx, 0, False))
                mods.append((f"{t}_{attn}_to_v", c, ctx, 0, False))
                mods.append((f"{t}_{attn}_to_out_0", c, c, 0, False))
            mods.append((f"{t}_ff_net_0_proj", 8 * c, c, 0, False))  # GEGLU: 2 x inner (4C)
            mods.append((f"{t}_ff_net_2", c, 4 * c, 0, False))
        mods.append((f"{prefix}_proj_out", c, c, 0, False))

    u = "lora_unet"
    # input_blocks: 0 is conv_in (not a target); channels pushed for the output skips.
    resnet(f"{u}_input_blocks_1_0", 320, 320)
    resnet(f"{u}_input_blocks_2_0", 320, 320)
    mods.append((f"{u}_input_blocks_3_0_op", 320, 320, 3, True))
    resnet(f"{u}_input_blocks_4_0", 320, 640)
    transformer(f"{u}_input_blocks_4_1", 640, 2)
    resnet(f"{u}_input_blocks_5_0", 640, 640)
    transformer(f"{u}_input_blocks_5_1", 640, 2)
    mods.append((f"{u}_input_blocks_6_0_op", 640, 640, 3, True))
    resnet(f"{u}_input_blocks_7_0", 640, 1280)
    transformer(f"{u}_input_blocks_7_1", 1280, 10)
    resnet(f"{u}_input_blocks_8_0", 1280, 1280)
    transformer(f"{u}_input_blocks_8_1", 1280, 10)
    resnet(f"{u}_middle_block_0", 1280, 1280)
    transformer(f"{u}_middle_block_1", 1280, 10)
    resnet(f"{u}_middle_block_2", 1280, 1280)
    skips = [320, 320, 320, 320, 640, 640, 640, 1280, 1280]  # input_blocks 0..8 outputs
    h = 1280
    for i, (cout, depth, up) in enumerate(
        [(1280, 10, False), (1280, 10, False), (1280, 10, True), (640, 2, False), (640, 2, False),
         (640, 2, True), (320, 0, False), (320, 0, False), (320, 0, False)]):
        cin = h + skips.pop()
        resnet(f"{u}_output_blocks_{i}_0", cin, cout)
        if depth:
            transformer(f"{u}_output_blocks_{i}_1", cout, depth)
        if up:
            mods.append((f"{u}_output_blocks_{i}_2_conv", cout, cout, 3, True))
        h = cout
    return mods


def te_modules(prefix, layers, hidden, mlp):
    mods = []
    for n in range(layers):
        t = f"{prefix}_text_model_encoder_layers_{n}"
        for p in ("q_proj", "k_proj", "v_proj", "out_proj"):
            mods.append((f"{t}_self_attn_{p}", hidden, hidden, 0, False))
        mods.append((f"{t}_mlp_fc1", mlp, hidden, 0, False))
        mods.append((f"{t}_mlp_fc2", hidden, mlp, 0, False))
    return mods


def layout(unet_only: bool):
    mods = unet_modules()
    if not unet_only:
        mods += te_modules("lora_te1", 12, 768, 3072) + te_modules("lora_te2", 32, 1280, 5120)
    return mods


def factor_shapes(out, inp, kernel, rank):
    if kernel == 0:
        return (rank, inp), (out, rank)
    return (rank, inp, kernel, kernel), (out, rank, 1, 1)


def seed_of(stem: str) -> int:
    return zlib.crc32(stem.encode())


def write_safetensors(path: Path, tensors: list[tuple[str, np.ndarray]], metadata: dict[str, str]):
    tensors = sorted(tensors, key=lambda t: t[0])
    header = {"__metadata__": metadata}
    off = 0
    for name, arr in tensors:
        header[name] = {"dtype": "F16", "shape": list(arr.shape), "data_offsets": [off, off + arr.nbytes]}
        off += arr.nbytes
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for _, arr in tensors:
            f.write(np.ascontiguousarray(arr).tobytes())
    os.replace(tmp, path)


def make_client(path: Path, index: int, mods, args):
    tensors = []
    for stem, out, inp, kernel, conv in mods:
        rank = args.conv_rank if conv else args.rank
        alpha = args.conv_alpha if conv else args.alpha
        ds, us = factor_shapes(out, inp, kernel, rank)
        fan_in = inp * max(kernel, 1) ** 2
        # shared global adapter of this module (same for every client) ...
        g = np.random.default_rng([7, seed_of(stem)])
        down0 = g.standard_normal(ds, dtype=np.float32) * np.float32(1.0 / np.sqrt(fan_in))
        up0 = g.standard_normal(us, dtype=np.float32) * np.float32(0.01)
        # ... plus this client's deviation
        c = np.random.default_rng([11, index, seed_of(stem)])
        down = down0 + c.standard_normal(ds, dtype=np.float32) * np.float32(0.5 / np.sqrt(fan_in))
        up = up0 + c.standard_normal(us, dtype=np.float32) * np.float32(0.005)
        tensors.append((stem + ".lora_down.weight", down.astype(np.float16)))
        tensors.append((stem + ".lora_up.weight", up.astype(np.float16)))
        tensors.append((stem + ".alpha", np.array(alpha, dtype=np.float16)))
    # A handful of the ss_* keys sd-scripts' train_network.py writes.
    metadata = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(args.rank),
        "ss_network_alpha": str(float(args.alpha)),
        "ss_network_args": json.dumps({"conv_dim": str(args.conv_rank), "conv_alpha": str(float(args.conv_alpha))}),
        "ss_base_model_version": "sdxl_base_v1-0",
        "ss_sd_model_name": "sd_xl_base_1.0.safetensors",
        "ss_v2": "False",
        "ss_mixed_precision": "fp16",
        "ss_training_comment": f"fedlora benchmark client {index} (synthetic)",
        "ss_output_name": f"client_{index}",
        "ss_seed": "42",
        "ss_resolution": "(1024, 1024)",
    }
    write_safetensors(path, tensors, metadata)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir", type=Path, nargs="?")
    p.add_argument("--clients", type=int, default=5)
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--conv-rank", type=int, default=32)
    p.add_argument("--alpha", type=float, default=16.0)
    p.add_argument("--conv-alpha", type=float, default=16.0)
    p.add_argument("--unet-only", action="store_true")
    p.add_argument("--list", action="store_true", help="print the layout and its size, write nothing")
    args = p.parse_args()
    mods = layout(args.unet_only)
    params = 0
    groups: dict[str, list[int]] = {}
    for stem, out, inp, kernel, conv in mods:
        rank = args.conv_rank if conv else args.rank
        n = rank * (inp * max(kernel, 1) ** 2 + out)
        params += n
        group = ("unet conv 3x3" if kernel == 3 else "unet 1x1 conv" if kernel == 1 else
                 "unet linear" if stem.startswith("lora_unet") else stem[:8])
        g = groups.setdefault(group, [0, 0])
        g[0] += 1
        g[1] += n
    summary = ", ".join(f"{k}: {v[0]} modules {v[1] / 1e6:.2f} M" for k, v in groups.items())
    print(f"{len(mods)} modules, {params / 1e6:.2f} M parameters, {2 * params / 1e6:.1f} MB FP16 ({summary})",
          file=sys.stderr)
    if args.list:
        for stem, out, inp, kernel, conv in mods:
            ds, us = factor_shapes(out, inp, kernel, args.conv_rank if conv else args.rank)
            print(stem, list(ds), list(us))
        return 0
    if args.outdir is None:
        p.error("OUTDIR is required unless --list")
    args.outdir.mkdir(parents=True, exist_ok=True)
    for i in range(args.clients):
        path = args.outdir / f"client_{i}.safetensors"
        if path.exists():
            continue
        t0 = time.time()
        make_client(path, i, mods, args)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {time.time() - t0:.1f} s)", file=sys.stderr)
    try:  # the reference reader must accept what was written
        from safetensors import safe_open
        with safe_open(str(args.outdir / "client_0.safetensors"), "np") as f:
            assert len(list(f.keys())) == 3 * len(mods)
            assert f.metadata()["ss_network_module"] == "networks.lora"
    except ImportError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
