#!/usr/bin/env bash
# Benchmark of merge --base / convert on a LLaMA-shaped BF16 base, all figures from one run:
#   bench/bench_base.sh FEDLORA_BIN [OUTDIR=bench/out]
# base8 = 8 layers of LLaMA-7B shapes (3.76 GB, bench/make_llama_base.py), base16 = 16 layers
# (7.0 GB, peak RSS only: it must not grow with the base), one r=16 BF16 client adapter for
# 8 layers (bench/make_bench_adapters.py). Goals: merge within 1.5x of cp of the base file, peak
# RSS < 1 GB and unchanged on base16, >= 5x faster than PEFT (merge_and_unload + save_pretrained),
# convert to GGUF F16 within 1.5x of cp. Each timed run starts from a warm page cache for the base
# and with no dirty pages pending (sync, untimed); outputs are deleted after each run, so the disk
# peak is ~15 GB (bases 10.8 GB + one output). RUNS (default 3) = runs per timing, best time kept;
# base16 and PEFT run once. Outputs go to OUTDIR (same disk as the bases), or to BENCH_TMP if set
# (e.g. BENCH_TMP=/dev/shm to take the disk's write speed out of all the figures).
set -euo pipefail
FEDLORA=$1
OUT=${2:-bench/out}
RUNS=${RUNS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
python3 "$HERE/make_llama_base.py" "$OUT/base8" --layers 8 >/dev/null
python3 "$HERE/make_llama_base.py" "$OUT/base16" --layers 16 >/dev/null
python3 "$HERE/make_bench_adapters.py" "$OUT/base-adapter" --clients 1 --layers 8 >/dev/null
ADAPTER=$OUT/base-adapter/client_00
B8=$OUT/base8/model.safetensors
B16=$OUT/base16/model.safetensors
TMPOUT=${BENCH_TMP:-$OUT}/bench-base-out   # every output goes here and is removed after each run
TIMEF=$(mktemp)
trap 'rm -rf "$TMPOUT" "$TMPOUT".* "$TIMEF" "$TIMEF.log"' EXIT

# measure N WARM CMD...: "best_seconds max_peak_rss_kb" over N runs of CMD (GNU time);
# before each run: outputs removed, WARM read into the page cache, sync (none of it timed).
measure() {
  local n=$1 warm=$2 best="" rss=0 t m
  shift 2
  for _ in $(seq "$n"); do
    rm -rf "$TMPOUT" "$TMPOUT".*
    cat "$warm" > /dev/null
    sync
    if ! /usr/bin/time -f "%e %M" -o "$TIMEF" "$@" > "$TIMEF.log" 2>&1; then
      echo "failed: $*" >&2; tail -5 "$TIMEF.log" >&2; rm -f "$TIMEF.log"; exit 1
    fi
    read -r t m < <(tail -1 "$TIMEF")
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  rm -rf "$TMPOUT" "$TMPOUT".*
  echo "$best $rss"
}
ratio() { awk "BEGIN{if ($2 > 0) printf \"%.2f\", $1/$2; else print \"n/a\"}"; }

read -r CP CP_M < <(measure "$RUNS" "$B8" cp "$B8" "$TMPOUT.safetensors")
read -r MG MG_M < <(measure "$RUNS" "$B8" "$FEDLORA" merge "$ADAPTER" --method exact --base "$OUT/base8" -o "$TMPOUT.safetensors" --quiet)
read -r M16 M16_M < <(measure 1 "$B16" "$FEDLORA" merge "$ADAPTER" --method exact --base "$OUT/base16" -o "$TMPOUT.safetensors" --quiet)
read -r PF PF_M < <(measure 1 "$B8" python3 "$HERE/peft_merge_baseline.py" "$OUT/base8" "$ADAPTER" "$TMPOUT")
PF_STEPS=$(grep -E "^load base" "$TIMEF.log" || true)
read -r CV CV_M < <(measure "$RUNS" "$B8" "$FEDLORA" convert "$B8" "$TMPOUT.gguf" --dtype f16 --quiet)

echo "base8 $(du -m "$B8" | cut -f1) MB, base16 $(du -m "$B16" | cut -f1) MB, adapter r=16 (8 layers), $(nproc) CPUs, best of $RUNS (base16, PEFT: 1 run)"
printf "%-44s %8s %6s %14s\n" "run" "seconds" "x cp" "peak RSS MB"
row() { printf "%-44s %8s %6s %14s\n" "$1" "$2" "${4:-$(ratio "$2" "$CP")}" "$(( $3 / 1024 ))"; }
row "cp base8" "$CP" "$CP_M"
row "fedlora merge --method exact --base base8" "$MG" "$MG_M"
row "fedlora merge --method exact --base base16" "$M16" "$M16_M" "-"
row "PEFT merge_and_unload + save_pretrained" "$PF" "$PF_M"
row "fedlora convert base8 -> GGUF F16" "$CV" "$CV_M"
echo "PEFT steps (process time above includes ~10 s of imports): $PF_STEPS"
echo
goal() { if awk "BEGIN{exit !($1)}"; then echo "met"; else echo "MISSED"; fi; }
echo "merge / cp:            $(ratio "$MG" "$CP")x   (goal <= 1.5: $(goal "$MG <= 1.5 * $CP"))"
echo "merge peak RSS:        $(( MG_M / 1024 )) MB  (goal < 1024: $(goal "$MG_M < 1048576"))"
echo "RSS base16 / base8:    $(ratio "$M16_M" "$MG_M")x   (goal unchanged, <= 1.1: $(goal "$M16_M <= 1.1 * $MG_M"))"
echo "PEFT / fedlora merge:  $(ratio "$PF" "$MG")x   (goal >= 5: $(goal "$PF >= 5 * $MG"))"
echo "convert / cp:          $(ratio "$CV" "$CP")x   (goal <= 1.5: $(goal "$CV <= 1.5 * $CP"))"
