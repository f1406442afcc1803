#!/usr/bin/env bash
# Merge benchmark of the engine issue: LLaMA-7B-shaped BF16 PEFT clients (r = 16; q, k, v, o,
# gate, up, down), three sets of about the same bytes: 10 clients x 32 layers, 40 x 8, 100 x 4.
# Each fedlora run against baselines measured in the same run: cat of the inputs, the torch
# script a practitioner writes (bench/torch_fedavg.py) and NumPy (bench/numpy_merge.py).
#   bench/bench_merge.sh FEDLORA_BIN [OUTDIR] [SETS]      SETS default "10x32 40x8 100x4"
# Best of RUNS (default 3) for the time, the largest peak RSS (GNU time).
set -euo pipefail
FEDLORA=$1
OUT=${2:-bench/out}
SETS=${3:-10x32 40x8 100x4}
mkdir -p "$OUT"
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null

# "seconds peak_rss_kb" of a command, best of RUNS for the time.
measure() {
  local best="" rss=0
  for _ in $(seq "${RUNS:-3}"); do
    /usr/bin/time -f "%e %M" -o /tmp/fedlora-bench-time "$@" >/dev/null 2>&1
    read -r t m < <(tail -1 /tmp/fedlora-bench-time)
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  echo "$best $rss"
}
ratio() { awk "BEGIN{printf \"%.2f\", $1/$2}"; }

for set in $SETS; do
  clients=${set%x*}
  layers=${set#*x}
  dir="$OUT/clients${set}"
  [ "$set" = 10x32 ] && dir="$OUT/clients"  # the 40-client set of 32 layers; its first 10
  [ -d "$dir/client_$(printf %02d $((clients - 1)))" ] ||
    python3 bench/make_bench_adapters.py "$dir" --clients "$clients" --layers "$layers" >/dev/null
  CLIENTS=$(ls -d "$dir"/client_* | head -"$clients")
  FILES=$(for c in $CLIENTS; do echo "$c/adapter_model.safetensors"; done)
  cat $FILES >/dev/null  # warm the page cache: every run below reads from memory
  echo "== $clients clients x $layers layers ($(du -cm $FILES | tail -1 | cut -f1) MB)"
  printf "%-40s %8s %10s %9s\n" "run" "seconds" "peak RSS" "ratio"
  row() { printf "%-40s %8s %7s MB %9s\n" "$1" "$2" "$(($3 / 1024))" "$4"; }
  read -r CAT _ < <(measure cat $FILES)
  row "cat of the inputs" "$CAT" 0 ""
  read -r TORCH m < <(measure python3 bench/torch_fedavg.py "$OUT/torch.safetensors" $CLIENTS)
  row "torch script (fedavg, no errors)" "$TORCH" "$m" ""
  read -r t m < <(measure python3 bench/numpy_merge.py "$OUT/numpy-fedavg" $CLIENTS --method fedavg)
  row "numpy fedavg (no errors)" "$t" "$m" "torch/this $(ratio "$TORCH" "$t")"
  read -r FA m < <(measure "$FEDLORA" merge $CLIENTS --method fedavg -o "$OUT/merged" --quiet)
  row "fedlora fedavg (exact errors)" "$FA" "$m" "torch/this $(ratio "$TORCH" "$FA")"
  read -r t m < <(measure "$FEDLORA" merge $CLIENTS --method fedavg --no-errors -o "$OUT/merged" --quiet)
  row "fedlora fedavg --no-errors" "$t" "$m" "$(ratio "$t" "$CAT")x cat, torch/this $(ratio "$TORCH" "$t")"
  read -r t m < <(measure "$FEDLORA" merge $CLIENTS --method flora-na -o "$OUT/merged" --quiet)
  row "fedlora flora-na" "$t" "$m" "$(ratio "$t" "$FA")x fedavg"
  read -r t m < <(measure "$FEDLORA" merge $CLIENTS --method svd -o "$OUT/merged" --quiet)
  row "fedlora svd" "$t" "$m" "$(ratio "$t" "$FA")x fedavg"
  read -r t m < <(measure "$FEDLORA" inspect $CLIENTS --json)
  row "fedlora inspect of the clients" "$t" "$m" "$(ratio "$t" "$FA")x fedavg"
  echo
done
