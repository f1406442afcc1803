#!/usr/bin/env bash
# Header-only inspection of a LLaMA-7B-shaped sharded checkpoint: fedlora vs Python safetensors.
#
#   bench/bench_header.sh OUTDIR FEDLORA_BIN [RUNS]
#
# Makes the sparse checkpoint in OUTDIR if absent (bench/make_sparse_llama7b.py; 13.5 GB
# logical, ~0 on disk - bench/out/ is git-ignored), then times in the same run, RUNS times
# each (default 5), alternating the two tools:
#   fedlora:  FEDLORA_BIN inspect OUTDIR --tensors --json > /dev/null
#   python:   safe_open(shard, framework="numpy") for each shard, list keys and
#             get_slice(k).get_shape()
# and prints median wall ms, median peak RSS (MB) and the python/fedlora ratios.
# Peak RSS comes from GNU /usr/bin/time (installed with apt-get if missing); if that is not
# possible (or BENCH_NO_GNU_TIME=1), from os.wait4 rusage of each child. Wall time is
# measured around each run.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 OUTDIR FEDLORA_BIN [RUNS]" >&2
  exit 2
fi
OUT=$1
BIN=$2
RUNS=${3:-5}
HERE=$(cd "$(dirname "$0")" && pwd)

if [ ! -x "$BIN" ]; then
  echo "not an executable: $BIN" >&2
  exit 2
fi
if [ ! -f "$OUT/model.safetensors.index.json" ]; then
  python3 "$HERE/make_sparse_llama7b.py" "$OUT"
fi

TIME=/usr/bin/time
if [ ! -x "$TIME" ]; then
  (apt-get install -y time >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y time >/dev/null 2>&1; }) || true
fi
[ -x "$TIME" ] && [ -z "${BENCH_NO_GNU_TIME:-}" ] || TIME=""

PY_INSPECT='
import json, sys
from safetensors import safe_open
folder = sys.argv[1]
index = json.load(open(folder + "/model.safetensors.index.json"))
n = 0
for shard in sorted(set(index["weight_map"].values())):
    with safe_open(folder + "/" + shard, framework="numpy") as f:
        for k in f.keys():
            f.get_slice(k).get_shape()
            n += 1
print(n)
'

# Sanity first: both must succeed (and a failing fedlora must not be timed).
if ! "$BIN" inspect "$OUT" --tensors --json >/dev/null; then
  echo "fedlora inspect failed on $OUT" >&2
  exit 1
fi
python3 -c "$PY_INSPECT" "$OUT" >/dev/null

exec python3 - "$RUNS" "$TIME" "$BIN" "$OUT" "$PY_INSPECT" <<'EOF'
import os, statistics, subprocess, sys, tempfile, time

runs, gnu_time, fedlora, out, py_inspect = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
tools = {
    "fedlora": [fedlora, "inspect", out, "--tensors", "--json"],
    "python safetensors": [sys.executable, "-c", py_inspect, out],
}

def once(cmd):
    """-> (wall ms, peak RSS MB) of one run, stdout to /dev/null."""
    with open(os.devnull, "wb") as null:
        if gnu_time:
            with tempfile.NamedTemporaryFile("r") as rep:
                t0 = time.perf_counter()
                p = subprocess.run([gnu_time, "-f", "%M", "-o", rep.name, *cmd], stdout=null)
                ms = (time.perf_counter() - t0) * 1000
                kb = int(open(rep.name).read().strip().splitlines()[-1])
        else:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=null)
            _, status, ru = os.wait4(proc.pid, 0)
            ms = (time.perf_counter() - t0) * 1000
            proc.returncode = os.waitstatus_to_exitcode(status)
            p, kb = proc, ru.ru_maxrss          # kilobytes on Linux
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed with exit {p.returncode}")
    return ms, kb / 1024

res = {k: [] for k in tools}
for _ in range(runs):
    for name, cmd in tools.items():
        res[name].append(once(cmd))

med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v)) for k, v in res.items()}
size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
print(f"header-only inspect of {out} ({size / 1e9:.1f} GB logical), median of {runs} runs, "
      f"RSS via {'GNU time' if gnu_time else 'wait4 rusage (counts the forking Python: upper bound)'}")
print(f"{'tool':<20} {'median ms':>10} {'peak RSS MB':>12}")
for name, (ms, mb) in med.items():
    print(f"{name:<20} {ms:>10.1f} {mb:>12.1f}")
(fm, fr), (pm, pr) = med["fedlora"], med["python safetensors"]
print(f"{'python/fedlora':<20} {pm / fm:>9.2f}x {pr / fr:>11.2f}x")
EOF
