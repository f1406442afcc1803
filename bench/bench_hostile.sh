#!/usr/bin/env bash
# Large-but-legal headers and shard counts: wall time and peak RSS of fedlora on each
# (bench/make_hostile_headers.py writes them into OUTDIR, ~0.4 GB, if absent).
#
#   bench/bench_hostile.sh OUTDIR FEDLORA_BIN
set -euo pipefail
OUT=$1
BIN=$2
HERE=$(cd "$(dirname "$0")" && pwd)
python3 "$HERE/make_hostile_headers.py" "$OUT"
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null

# run LABEL INPUT COMMAND...: prints wall time and peak RSS of COMMAND, and INPUT's size.
run() {
  local label=$1 input=$2
  shift 2
  /usr/bin/time -f "%e %M %x" -o /tmp/fedlora-hostile-time "$@" >/dev/null 2>/tmp/fedlora-hostile-err || true
  read -r wall rss status < <(tail -1 /tmp/fedlora-hostile-time)
  printf '%-50s %6.2f s %6d MB  exit %s  (input %s MB)\n' "$label" "$wall" "$((rss / 1024))" "$status" \
    "$(du -m --apparent-size "$input" | tail -1 | cut -f1)"
}

run "verify, 1.5 M zero-size tensors" "$OUT/tensors.safetensors" "$BIN" verify "$OUT/tensors.safetensors"
run "inspect, 1.5 M zero-size tensors" "$OUT/tensors.safetensors" "$BIN" inspect "$OUT/tensors.safetensors"
run "verify, 6 M metadata entries" "$OUT/metadata.safetensors" "$BIN" verify "$OUT/metadata.safetensors"
run "inspect, 6 M metadata entries" "$OUT/metadata.safetensors" "$BIN" inspect "$OUT/metadata.safetensors"
run "inspect --json, 10^5 shards (headers only)" "$OUT/shards" "$BIN" inspect --json "$OUT/shards"
run "verify --data, 10^5 shards (every value read)" "$OUT/shards" "$BIN" verify --data "$OUT/shards"
run "convert to one file, 10^5 shards" "$OUT/shards" "$BIN" convert "$OUT/shards" "$OUT/joined.safetensors"
rm -f "$OUT/joined.safetensors"
