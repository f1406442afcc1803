#!/usr/bin/env python3
"""NumPy baseline for merging federated LoRA adapters (the thing fedlora is compared with).

Usage: python3 bench/numpy_merge.py OUTDIR CLIENT_DIR... --method fedavg|flora-na
       [--weights w1,w2,...] [--samples n1,n2,...] [--max-iterations 100] [--tol 1e-7]

Reads PEFT folders (adapter_config.json + adapter_model.safetensors, any of F16/BF16/F32),
merges every LoRA module and writes a PEFT folder to OUTDIR in the clients' dtype.

  fedavg    Ah = sum_u w_u A_u, Bh = sum_u w_u B_u. When all clients share r / alpha / rsLoRA /
            patterns the unscaled B's are averaged and the config is kept; otherwise scales are
            folded into B (Bs_u = s_u B_u), ranks zero-padded to r_max and the output has scale 1.
  flora-na  per module, coefficients (p, q) minimising ||T - (sum q_u Bs_u)(sum p_u A_u)||_F by
            alternating least squares on the r x r Gram blocks (docs/aggregation.md), start p=q=w,
            at most --max-iterations, stop on relative decrease < --tol, best iterate kept, gauge
            c = sum p. Scale folded: output r = R, lora_alpha = R.

Vectorised NumPy (BLAS for the Gram blocks, fp64 for the small algebra); prints wall times.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import struct
import sys
import time
from pathlib import Path

import numpy as np

PREFIX = "base_model.model."


# ----------------------------------------------------------------------------- IO

def read_safetensors(path: Path):
    """name -> float32 ndarray, plus the dtype name of the file. Uses numpy only (mmap)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    base = 8 + n
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    out, dtypes = {}, set()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = mm[base + b: base + e]
        dt = info["dtype"]
        dtypes.add(dt)
        shape = info["shape"]
        if dt == "BF16":
            u16 = np.frombuffer(raw, dtype="<u2")
            arr = (u16.astype(np.uint32) << 16).view(np.float32)
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "F32":
            arr = np.array(np.frombuffer(raw, dtype="<f4"))
        elif dt == "F64":
            arr = np.frombuffer(raw, dtype="<f8").astype(np.float32)
        else:
            raise SystemExit(f"{path}: tensor {name}: dtype {dt} not supported")
        out[name] = arr.reshape(shape)
    return out, dtypes


def to_bf16_bits(x: np.ndarray) -> np.ndarray:
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounding = ((u >> 16) & 1) + np.uint32(0x7FFF)
    return ((u + rounding) >> 16).astype(np.uint16)


def write_safetensors(path: Path, tensors: dict, dtype: str):
    """Write tensors (float32 arrays) as dtype F32/F16/BF16, sorted by name, header padded to 8."""
    enc = []
    for name in sorted(tensors):
        x = tensors[name]
        if dtype == "BF16":
            data = to_bf16_bits(x)
        elif dtype == "F16":
            data = np.ascontiguousarray(x, dtype="<f2")
        else:
            data = np.ascontiguousarray(x, dtype="<f4")
        enc.append((name, list(x.shape), data))
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, shape, data in enc:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + data.nbytes]}
        off += data.nbytes
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for _, _, data in enc:
            f.write(data.tobytes())
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- config

def pattern_value(patterns, module, default):
    for key in patterns or {}:
        if re.match(rf"(.*\.)?({key})$", module):
            return patterns[key]
    return default


def module_scale(cfg, module):
    r = pattern_value(cfg.get("rank_pattern"), module, cfg["r"])
    alpha = pattern_value(cfg.get("alpha_pattern"), module, cfg["lora_alpha"])
    return r, (alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r)


def load_client(folder: Path):
    cfg = json.loads((folder / "adapter_config.json").read_text())
    if cfg.get("peft_type", "LORA") != "LORA":
        raise SystemExit(f"{folder}: peft_type {cfg.get('peft_type')} is not LORA")
    if cfg.get("use_dora"):
        raise SystemExit(f"{folder}: DoRA adapters cannot be merged as W + sBA")
    tensors, dtypes = read_safetensors(folder / "adapter_model.safetensors")
    mods = {}
    for k, v in tensors.items():
        if k.endswith(".lora_A.weight"):
            mods.setdefault(k[len(PREFIX):-len(".lora_A.weight")], {})["A"] = v
        elif k.endswith(".lora_B.weight"):
            mods.setdefault(k[len(PREFIX):-len(".lora_B.weight")], {})["B"] = v
    for m, d in mods.items():
        if "A" not in d or "B" not in d:
            raise SystemExit(f"{folder}: module {m} has only one of lora_A / lora_B")
    return cfg, mods, dtypes


# ----------------------------------------------------------------------------- FLoRA-NA

def flora_na(KB, KA, w, max_iter=100, tol=1e-7):
    """ALS on Gram blocks. KB[i,a,j,b] = (Bs_i^T Bs_j)[a,b], KA[i,a,j,b] = (A_i A_j^T)[a,b] (fp64).

    Returns p, q (gauge-fixed), best objective, ||T||^2, objective at FedAvg, iterations."""
    U = len(w)

    def solve(G, b):
        G = 0.5 * (G + G.T)
        try:
            if np.linalg.cond(G) < 1e12:
                return np.linalg.solve(G, b)
        except np.linalg.LinAlgError:
            pass
        return np.linalg.solve(G + 1e-10 * np.trace(G) / U * np.eye(U), b)

    TT = float(np.einsum("l,m,lamb,mbla->", w, w, KB, KA))

    def objective(p, q):
        M = np.einsum("j,k,jakb->ab", p, p, KA)
        H = np.einsum("j,k,jakb->ab", q, q, KB)
        N = np.einsum("j,lajb->lab", p, KA)
        X = np.einsum("j,lajb->lab", q, KB)
        return TT - 2.0 * float(np.einsum("l,lab,lab->", w, X, N)) + float(np.einsum("ab,ba->", H, M))

    p = w.copy(); q = w.copy()
    f0 = objective(p, q)
    best_f, best_p, best_q = f0, p.copy(), q.copy()
    f_prev = f0
    it = 0
    for it in range(1, max_iter + 1):
        # q-step
        M = np.einsum("j,k,jakb->ab", p, p, KA)
        N = np.einsum("j,lajb->lab", p, KA)
        G = np.einsum("iajb,ba->ij", KB, M)
        b = np.einsum("l,laib,lab->i", w, KB, N)
        q = solve(G, b)
        # p-step
        H = np.einsum("j,k,jakb->ab", q, q, KB)
        X = np.einsum("j,lajb->lab", q, KB)
        Gp = np.einsum("ab,jbia->ij", H, KA)
        bp = np.einsum("l,lab,laib->i", w, X, KA)
        p = solve(Gp, bp)
        f = objective(p, q)
        if f < best_f:
            best_f, best_p, best_q = f, p.copy(), q.copy()
        if f_prev <= 0 or (f_prev - f) / f_prev < tol:
            break
        f_prev = f
    p, q = best_p, best_q
    c = float(p.sum())
    if abs(c) < 1e-3:
        na = math.sqrt(max(float(np.einsum("j,k,jaka->", p, p, KA)), 0.0))
        nb = math.sqrt(max(float(np.einsum("j,k,jaka->", q, q, KB)), 0.0))
        c = math.sqrt(na / nb) if na > 0 and nb > 0 else 1.0
    return p / c, q * c, max(best_f, 0.0), TT, max(f0, 0.0), it


# ----------------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("clients", type=Path, nargs="+")
    ap.add_argument("--method", choices=["fedavg", "flora-na"], required=True)
    ap.add_argument("--weights", type=str, default=None)
    ap.add_argument("--samples", type=str, default=None)
    ap.add_argument("--max-iterations", type=int, default=100)
    ap.add_argument("--tol", type=float, default=1e-7)
    a = ap.parse_args(argv)

    t_start = time.perf_counter()
    U = len(a.clients)
    if a.weights and a.samples:
        raise SystemExit("give --weights or --samples, not both")
    spec = a.weights or a.samples
    w = np.array([float(x) for x in spec.split(",")], dtype=np.float64) if spec else np.ones(U)
    if len(w) != U or np.any(w < 0) or w.sum() <= 0:
        raise SystemExit("need one non-negative weight per client")
    w = w / w.sum()

    clients = [load_client(c) for c in a.clients]
    t_loaded = time.perf_counter()
    cfgs = [c[0] for c in clients]
    modules = sorted(set.intersection(*[set(c[1]) for c in clients]))
    missing = set.union(*[set(c[1]) for c in clients]) - set(modules)
    if missing:
        print(f"warning: {len(missing)} modules not present in every client are skipped", file=sys.stderr)
    dtypes = set.union(*[c[2] for c in clients])
    out_dtype = dtypes.pop() if len(dtypes) == 1 else "F32"

    def key(c):
        return (c["r"], c["lora_alpha"], bool(c.get("use_rslora")), json.dumps(c.get("rank_pattern") or {}, sort_keys=True),
                json.dumps(c.get("alpha_pattern") or {}, sort_keys=True))
    same_cfg = len({key(c) for c in cfgs}) == 1

    out = {}
    ranks = {}
    tot_T = tot_e = tot_avg = 0.0
    iters = []
    for mod in modules:
        rs_s = [module_scale(cfgs[u], mod) for u in range(U)]
        rs = [clients[u][1][mod]["A"].shape[0] for u in range(U)]
        R = max(rs)
        if a.method == "fedavg" and same_cfg:
            # standard FedIT: average unscaled factors, keep the config
            A = np.stack([clients[u][1][mod]["A"] for u in range(U)])         # [U, r, k]
            B = np.stack([clients[u][1][mod]["B"] for u in range(U)])         # [U, d, r]
            wf = w.astype(np.float32)
            out[PREFIX + mod + ".lora_A.weight"] = np.tensordot(wf, A, axes=1)
            out[PREFIX + mod + ".lora_B.weight"] = np.tensordot(wf, B, axes=1)
            ranks[mod] = (R, cfgs[0], True)
            continue
        k = clients[0][1][mod]["A"].shape[1]
        d = clients[0][1][mod]["B"].shape[0]
        A = np.zeros((U, R, k), dtype=np.float32)
        Bs = np.zeros((U, d, R), dtype=np.float32)
        for u in range(U):
            Au, Bu = clients[u][1][mod]["A"], clients[u][1][mod]["B"]
            A[u, : Au.shape[0]] = Au
            Bs[u, :, : Bu.shape[1]] = Bu * np.float32(rs_s[u][1])
        if a.method == "fedavg":
            p = q = w
        else:
            Ast = A.reshape(U * R, k).astype(np.float64)                        # [U R, k]
            Bst = Bs.transpose(1, 0, 2).reshape(d, U * R).astype(np.float64)   # [d, U R]
            KA = (Ast @ Ast.T).reshape(U, R, U, R)
            KB = (Bst.T @ Bst).reshape(U, R, U, R)
            p, q, f, TT, f0, it = flora_na(KB, KA, w, a.max_iterations, a.tol)
            iters.append(it)
            tot_T += TT; tot_e += f; tot_avg += f0
        out[PREFIX + mod + ".lora_A.weight"] = np.tensordot(p.astype(np.float32), A, axes=1)
        out[PREFIX + mod + ".lora_B.weight"] = np.tensordot(q.astype(np.float32), Bs, axes=1)
        ranks[mod] = (R, None, False)
    t_merged = time.perf_counter()

    # --- config
    a.outdir.mkdir(parents=True, exist_ok=True)
    cfg = dict(cfgs[0])
    folded = [m for m, (_, _, keep) in ranks.items() if not keep]
    if folded:
        Rs = {m: ranks[m][0] for m in folded}
        Rg = max(Rs.values())
        cfg.update(r=Rg, lora_alpha=Rg, use_rslora=False)
        cfg["rank_pattern"] = {m: r for m, r in Rs.items() if r != Rg}
        cfg["alpha_pattern"] = {m: r for m, r in Rs.items() if r != Rg}
    cfg["target_modules"] = sorted({m.rsplit(".", 1)[-1] for m in modules})
    write_safetensors(a.outdir / "adapter_model.safetensors", out, out_dtype)
    (a.outdir / "adapter_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    t_end = time.perf_counter()

    print(f"method {a.method}: {U} clients, {len(modules)} modules, output {out_dtype}, weights "
          f"{[round(float(x), 6) for x in w]}")
    if a.method == "flora-na" and tot_T > 0:
        print(f"model-level relative error: fedavg {math.sqrt(tot_avg / tot_T):.6e}, "
              f"flora-na {math.sqrt(tot_e / tot_T):.6e} (Gram expansion, fp64); "
              f"ALS iterations mean {np.mean(iters):.1f}, max {max(iters)}")
    print(f"wall time: load {t_loaded - t_start:.3f} s, merge {t_merged - t_loaded:.3f} s, "
          f"write {t_end - t_merged:.3f} s, total {t_end - t_start:.3f} s")


if __name__ == "__main__":
    sys.exit(main())
