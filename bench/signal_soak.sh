#!/usr/bin/env bash
# Sends SIGINT or SIGTERM at random times into merges and converts that take several seconds,
# then counts the temporaries left beside the outputs (the figure: it must be 0) and checks
# each exit status (130 / 143, or 0 when the run finished first).
# Inputs: bench/make_bench_adapters.py CLIENT_DIR --clients 10 (32 layers: a ~3 s merge here) and
# a safetensors checkpoint of ~1.6 GB (a ~1.8 s q8_0 convert); the delays stay within those times.
# Usage: bench/signal_soak.sh FEDLORA CLIENT_DIR BASE_CHECKPOINT [SIGNALS=20]
set -euo pipefail
fedlora=$1 clients=$2 base=$3 signals=${4:-20}
out=$(mktemp -d /tmp/fedlora-soak-XXXXXX)
trap 'rm -rf "$out"' EXIT
interrupted=0 finished=0 bad=0
for i in $(seq 1 "$signals"); do
  if (( i % 2 )); then
    cmd=("$fedlora" merge "$clients"/client_* --method flora-na -o "$out/merged" --quiet)
    longest=3.0
  else
    cmd=("$fedlora" convert "$base" "$out/model.gguf" --dtype q8_0 --quiet)
    longest=1.7
  fi
  sig=$(( RANDOM % 2 ? 2 : 15 ))
  delay=$(python3 -c "import random; print(round(random.uniform(0.05, $longest), 2))")
  "${cmd[@]}" & pid=$!
  sleep "$delay"; kill -s "$sig" "$pid" 2>/dev/null || true
  status=0; wait "$pid" || status=$?
  expected=$(( 128 + sig ))
  if (( status == expected )); then interrupted=$((interrupted + 1)); elif (( status == 0 )); then finished=$((finished + 1)); else bad=$((bad + 1)); echo "run $i: exit $status after $delay s (signal $sig)"; fi
done
left=$(find "$out" -name '.*fedlora-*' | wc -l)
echo "signals $signals: interrupted $interrupted, finished first $finished, unexpected exit $bad, temporaries left $left"
(( left == 0 && bad == 0 ))
