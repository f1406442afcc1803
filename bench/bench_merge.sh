#!/usr/bin/env bash
# Merge benchmark of the merge issue: 10 clients with LLaMA-7B-shaped adapters (32 layers x
# q,k,v,o,gate,up,down, r=16, BF16, ~80 MB each), all figures from one run.
#   bench/bench_merge.sh FEDLORA_BIN [OUTDIR]
set -euo pipefail
FEDLORA=$1
OUT=${2:-bench/out}
mkdir -p "$OUT"
[ -d "$OUT/clients/client_39" ] || python3 bench/make_bench_adapters.py "$OUT/clients" --clients 40 >/dev/null
TEN=$(ls -d "$OUT"/clients/client_0* | head -10)
FORTY=$(ls -d "$OUT"/clients/client_* | head -40)
FILES10=$(for c in $TEN; do echo "$c/adapter_model.safetensors"; done)

# "seconds peak_rss_kb" of a command (GNU time), best of RUNS (default 3) for the time.
measure() {
  local best="" rss=0
  for _ in $(seq "${RUNS:-3}"); do
    /usr/bin/time -f "%e %M" -o /tmp/fedlora-bench-time "$@" >/dev/null 2>&1
    read -r t m < /tmp/fedlora-bench-time
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  echo "$best $rss"
}

cat $FILES10 > /dev/null  # warm the page cache: every run below reads from memory
read -r CAT _ < <(measure cat $FILES10)
printf "%-34s %9s %9s %10s\n" "run (10 clients unless said)" "seconds" "x cat" "peak RSS"
row() { printf "%-34s %9s %9s %8s MB\n" "$1" "$2" "$(awk "BEGIN{printf \"%.2f\", $2/$CAT}")" "$(( $3 / 1024 ))"; }
row "cat inputs > /dev/null" "$CAT" 0
for method in fedavg flora-na svd; do
  read -r t m < <(measure "$FEDLORA" merge $TEN --method $method -o "$OUT/merged-$method" --quiet)
  row "fedlora $method" "$t" "$m"
  eval "T_${method//-/_}=$t"
done
read -r t m < <(measure "$FEDLORA" merge $FORTY --method fedavg -o "$OUT/merged-40" --quiet)
row "fedlora fedavg, 40 clients" "$t" "$m"
read -r t m < <(measure "$FEDLORA" merge $FORTY --method flora-na -o "$OUT/merged-40" --quiet)
row "fedlora flora-na, 40 clients" "$t" "$m"
for method in fedavg flora-na; do
  read -r t m < <(measure python3 bench/numpy_merge.py "$OUT/numpy-$method" $TEN --method $method)
  row "numpy $method" "$t" "$m"
  eval "N_${method//-/_}=$t"
done
echo
echo "flora-na / fedavg: $(awk "BEGIN{printf \"%.2f\", $T_flora_na/$T_fedavg}")   svd / fedavg: $(awk "BEGIN{printf \"%.2f\", $T_svd/$T_fedavg}")"
echo "numpy / fedlora: fedavg $(awk "BEGIN{printf \"%.1f\", $N_fedavg/$T_fedavg}")x, flora-na $(awk "BEGIN{printf \"%.1f\", $N_flora_na/$T_flora_na}")x"
