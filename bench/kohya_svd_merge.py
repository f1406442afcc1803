#!/usr/bin/env python3
"""The rank-R SVD merge of kohya LoRA files the way sd-scripts' networks/svd_merge_lora.py does
it: per module the dense update, then torch.linalg.svd. The baseline of bench/bench_kohya.sh.

Usage: python3 bench/kohya_svd_merge.py OUT.safetensors CLIENT.safetensors... [--rank 32]
       [--conv-rank R] [--threads 2] [--save-dtype f32|f16] [--clamp-quantile Q] [--json FILE]

Per module, as svd_merge_lora.py: both factors loaded in fp32, `up @ down` (conv: down
flattened to [r, in*kh*kw], up to [out, r]; svd_merge_lora.py gets the same matrix through
conv2d) times alpha/rank times the client's weight, summed over the clients into a dense
[d, k] in fp32, then torch.linalg.svd, rank R kept (min(R, d, k)), split as U S^(1/2) /
S^(1/2) V^T (svd_merge_lora.py: U S / V^T; the product is the same), reshaped to kohya's conv
shapes and written as a kohya file (lora_down, lora_up, alpha = R, so scale 1).

Two deliberate differences from svd_merge_lora.py, both in the baseline's favour, and one left out:
- modules are the outer loop, so one dense [d, k] lives at a time (svd_merge_lora.py sums every
  client into a dict holding every module's dense matrix before the first SVD: ~2.6 G fp32
  elements, ~10 GB, for the 5-client SDXL benchmark);
- full_matrices=False (svd_merge_lora.py calls torch.linalg.svd(mat), full matrices: a
  [k, k] V, 2.1 GB for a 23,040-column conv, of which it keeps R rows);
- its quantile clamp (torch.quantile(cat(U, Vh), 0.99), values clipped to +-that) is not applied
  by default: it moves the result off the Eckart-Young floor. --clamp-quantile 0.99 applies it.

Client weights are uniform 1/U, as fedlora's default (svd_merge_lora.py's default ratios are
1.0 each: the relative errors are the same). After the merge (timed separately) the relative
error of each module is computed densely from the factors as written, ||T - up@down||_F /
||T||_F, and combined as fedlora does: sqrt(sum ||T_l - est_l||^2) / sqrt(sum ||T_l||^2);
the floor from the singular values, sqrt(sum_{i>R} S_i^2). --json writes the figures (times of
each phase, peak RSS, errors).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("output")
    p.add_argument("clients", nargs="+")
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--conv-rank", type=int, default=None, help="rank of 3x3 convs (default --rank)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--save-dtype", choices=["f32", "f16"], default="f32")
    p.add_argument("--clamp-quantile", type=float, default=None)
    p.add_argument("--json", default=None, help="write the figures to this file")
    p.add_argument("--no-errors", action="store_true", help="skip the dense error pass")
    p.add_argument("--sample", action="store_true",
                   help="only the first module of each distinct (d, k, kernel): its CPU and wall seconds "
                        "and its floor, and the whole model's cost extrapolated by the count of each shape "
                        "(nothing written)")
    args = p.parse_args()
    conv_rank = args.conv_rank or args.rank

    t_start = time.perf_counter()
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    torch.set_num_threads(args.threads)
    save_dtype = torch.float32 if args.save_dtype == "f32" else torch.float16
    t_import = time.perf_counter()

    files = [safe_open(c, framework="pt") for c in args.clients]
    keys0 = set(files[0].keys())
    for f, c in zip(files, args.clients):
        if set(f.keys()) != keys0:
            sys.exit(f"{c}: not the same modules as {args.clients[0]}")
    stems = sorted(k[: -len(".lora_down.weight")] for k in keys0 if k.endswith(".lora_down.weight"))
    weight = 1.0 / len(files)
    counts: dict[tuple, int] = {}
    first: dict[tuple, str] = {}
    for stem in stems:
        key = (tuple(files[0].get_slice(stem + ".lora_up.weight").get_shape())[:1]
               + tuple(files[0].get_slice(stem + ".lora_down.weight").get_shape())[1:])
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, stem)
    sample = []  # (stem, shape key, count, cpu s, wall s, floor, norm)
    if args.sample:
        stems = [first[k] for k in counts]

    t_dense = t_svd = 0.0
    out: dict[str, torch.Tensor] = {}
    floors2 = 0.0
    norms2 = 0.0
    clamped = 0
    for stem in stems:
        t0 = time.perf_counter()
        c0 = time.process_time()
        T = None
        for f in files:
            down = f.get_tensor(stem + ".lora_down.weight").float()
            up = f.get_tensor(stem + ".lora_up.weight").float()
            r = down.shape[0]
            alpha = float(f.get_tensor(stem + ".alpha")) if stem + ".alpha" in keys0 else float(r)
            scale = (alpha if alpha != 0 else r) / r
            prod = up.flatten(1) @ down.flatten(1)
            prod.mul_(weight * scale)
            T = prod if T is None else T.add_(prod)
        t1 = time.perf_counter()
        d, k = T.shape
        conv3 = down.dim() == 4 and tuple(down.shape[2:]) != (1, 1)
        R = min(conv_rank if conv3 else args.rank, d, k)
        U, S, Vh = torch.linalg.svd(T, full_matrices=False)
        root = S[:R].sqrt()
        new_up = U[:, :R] * root
        new_down = root[:, None] * Vh[:R]
        if args.clamp_quantile is not None:
            dist = torch.cat([new_up.flatten(), new_down.flatten()])
            hi = torch.quantile(dist, args.clamp_quantile)
            clamped += int((dist.abs() > hi).sum())
            new_up = new_up.clamp(-hi, hi)
            new_down = new_down.clamp(-hi, hi)
        floors2 += float((S[R:].double() ** 2).sum())
        norms2 += float((S.double() ** 2).sum())
        if down.dim() == 4:
            new_up = new_up.reshape(d, R, 1, 1)
            new_down = new_down.reshape(R, *down.shape[1:])
        out[stem + ".lora_up.weight"] = new_up.to(save_dtype).contiguous()
        out[stem + ".lora_down.weight"] = new_down.to(save_dtype).contiguous()
        out[stem + ".alpha"] = torch.tensor(float(R), dtype=save_dtype)
        t_dense += t1 - t0
        t_svd += time.perf_counter() - t1
        if args.sample:
            key = next(k for k, v in first.items() if v == stem)
            sample.append({"module": stem, "shape": list(key), "count": counts[key],
                           "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0,
                           "floor": float((S[R:].double() ** 2).sum().sqrt() / (S.double() ** 2).sum().sqrt())})
        del T, U, S, Vh
    if args.sample:
        est = {"modules_sampled": len(sample), "modules": sum(counts.values()),
               "extrapolated_cpu_s": sum(x["count"] * x["cpu_s"] for x in sample),
               "extrapolated_wall_s": sum(x["count"] * x["wall_s"] for x in sample),
               "threads": torch.get_num_threads(), "torch": torch.__version__, "sample": sample}
        text = json.dumps(est, indent=1)
        if args.json:
            with open(args.json, "w") as fh:
                fh.write(text + "\n")
        print(text)
        return 0
    t2 = time.perf_counter()
    meta = {"ss_network_module": "networks.lora", "ss_network_dim": str(args.rank),
            "ss_network_alpha": str(float(args.rank)), "ss_merged_from": ",".join(args.clients)}
    save_file(out, args.output, metadata=meta)
    t_save = time.perf_counter() - t2
    t_merge = time.perf_counter() - t_import
    rss_merge = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux

    # Dense error pass (not part of the merge time): T again in fp64, and the factors as written.
    t3 = time.perf_counter()
    err2 = 0.0
    tnorm2 = 0.0
    if not args.no_errors:
        for stem in stems:
            ups, downs = [], []
            for f in files:
                down = f.get_tensor(stem + ".lora_down.weight").double().flatten(1)
                up = f.get_tensor(stem + ".lora_up.weight").double().flatten(1)
                r = down.shape[0]
                alpha = float(f.get_tensor(stem + ".alpha")) if stem + ".alpha" in keys0 else float(r)
                ups.append(up * (weight * (alpha if alpha != 0 else r) / r))
                downs.append(down)
            T = torch.cat(ups, 1) @ torch.cat(downs, 0)  # fp64, one GEMM of the stacked factors
            est = out[stem + ".lora_up.weight"].double().flatten(1) @ out[stem + ".lora_down.weight"].double().flatten(1)
            err2 += float(((T - est) ** 2).sum())
            tnorm2 += float((T ** 2).sum())
    t_err = time.perf_counter() - t3
    result = {
        "tool": "torch (sd-scripts svd_merge_lora route)",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "modules": len(stems),
        "rank": args.rank,
        "save_dtype": args.save_dtype,
        "clamp_quantile": args.clamp_quantile,
        "clamped_values": clamped,
        "seconds": {"import": t_import - t_start, "dense_products": t_dense, "svd": t_svd, "save": t_save,
                    "merge": t_merge, "error_pass": t_err},
        "peak_rss_mb_merge": rss_merge / 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        # fp32 dense T, fp64 sums of the singular values
        "floor": math.sqrt(floors2 / norms2),
        "relative_error": math.sqrt(err2 / tnorm2) if tnorm2 else None,
        "norm_T_dense_fp64": math.sqrt(tnorm2) if tnorm2 else None,
        "norm_T_fp32_svd": math.sqrt(norms2),
    }
    text = json.dumps(result, indent=1)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
