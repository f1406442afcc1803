#!/usr/bin/env python3
"""The model-level relative error of a merged adapter against kohya clients, computed densely.

Usage: python3 bench/kohya_dense_error.py MERGED.safetensors CLIENT.safetensors... [--threads 2]

MERGED is a kohya file (lora_down / lora_up / alpha, as bench/kohya_svd_merge.py writes) or the
bare safetensors adapter fedlora writes from kohya clients (`base_model.model.NAME.lora_A/B`,
its PEFT config in the `fedlora.adapter_config` metadata; NAME is the kohya stem, or diffusers'
name for the text encoders). Per module T = sum_u (1/U) (alpha_u / r_u) up_u @ down_u and the
merged estimate s Bh Ah are formed in fp64 from the stored values; prints one JSON line:
sqrt(sum ||T_l - est_l||^2) / sqrt(sum ||T_l||^2), the worst module's relative error, and how
many modules were compared. An independent check of the errors each tool reports.
"""

from __future__ import annotations

import argparse
import json
import math
import sys


def kohya_stem(name: str) -> str:
    for prefix, kohya in (("text_encoder_2.", "lora_te2_"), ("text_encoder.", "lora_te1_"), ("unet.", "lora_unet_")):
        if name.startswith(prefix):
            return kohya + name[len(prefix):].replace(".", "_")
    return name


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("merged")
    p.add_argument("clients", nargs="+")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    import torch
    from safetensors import safe_open

    torch.set_num_threads(args.threads)
    files = [safe_open(c, framework="pt") for c in args.clients]
    keys0 = set(files[0].keys())
    merged = safe_open(args.merged, framework="pt")
    mkeys = set(merged.keys())
    est_of = {}  # kohya stem -> (down key, up key, scale)
    if any(k.endswith(".lora_down.weight") for k in mkeys):
        for k in mkeys:
            if k.endswith(".lora_down.weight"):
                stem = k[: -len(".lora_down.weight")]
                r = merged.get_slice(k).get_shape()[0]
                alpha = float(merged.get_tensor(stem + ".alpha")) if stem + ".alpha" in mkeys else r
                est_of[stem] = (k, stem + ".lora_up.weight", alpha / r)
    else:
        config = json.loads(merged.metadata()["fedlora.adapter_config"])
        for k in mkeys:
            if k.endswith(".lora_A.weight"):
                name = k[len("base_model.model."): -len(".lora_A.weight")]
                r = merged.get_slice(k).get_shape()[0]
                r_cfg = config.get("rank_pattern", {}).get(name, config["r"])
                alpha = config.get("alpha_pattern", {}).get(name, config["lora_alpha"])
                assert r == r_cfg, (name, r, r_cfg)
                scale = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
                est_of[kohya_stem(name)] = (k, k[: -len("lora_A.weight")] + "lora_B.weight", scale)
    stems = sorted(k[: -len(".lora_down.weight")] for k in keys0 if k.endswith(".lora_down.weight"))
    missing = [s for s in stems if s not in est_of]
    if missing:
        sys.exit(f"{args.merged}: {len(missing)} modules missing, e.g. {missing[:3]}")
    err2 = tn2 = 0.0
    worst = 0.0
    for stem in stems:
        ups, downs = [], []
        for f in files:
            down = f.get_tensor(stem + ".lora_down.weight").double().flatten(1)
            up = f.get_tensor(stem + ".lora_up.weight").double().flatten(1)
            r = down.shape[0]
            alpha = float(f.get_tensor(stem + ".alpha")) if stem + ".alpha" in keys0 else float(r)
            ups.append(up * ((alpha if alpha != 0 else r) / r / len(files)))
            downs.append(down)
        T = torch.cat(ups, 1) @ torch.cat(downs, 0)  # one fp64 GEMM of the stacked factors
        a, b, s = est_of[stem]
        est = (merged.get_tensor(b).double().flatten(1) @ merged.get_tensor(a).double().flatten(1)) * s
        e2 = float(((T - est) ** 2).sum())
        t2 = float((T**2).sum())
        worst = max(worst, math.sqrt(e2 / t2))
        err2 += e2
        tn2 += t2
    print(json.dumps({"merged": args.merged, "modules": len(stems), "relative_error": math.sqrt(err2 / tn2),
                      "worst_module_relative_error": worst, "norm_T": math.sqrt(tn2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
