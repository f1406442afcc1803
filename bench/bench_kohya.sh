#!/usr/bin/env bash
# kohya LoRAs: fedlora's svd merge against sd-scripts' dense route (issue #23 item 5).
# Five SDXL-shaped kohya LoRAs (bench/make_sdxl_kohya.py: rank 32, LoCon convs, text encoders,
# FP16, 255 MB each) merged to rank 32 by
#   fedlora merge ... --method svd --rank 32 --dtype f32 -o OUT.safetensors --json
#   python3 bench/kohya_svd_merge.py (torch: dense up @ down per module, torch.linalg.svd)
# interleaved (the order alternates each repetition), REPS times each (default 3), inputs in
# the page cache. Prints the median and range of the wall times, their ratio (per pair and of
# the medians), the peak RSS of each (GNU time), both model relative errors, fedlora's floor,
# and a dense fp64 recomputation of the error of each written file (bench/kohya_dense_error.py).
#   bench/bench_kohya.sh FEDLORA_BIN [OUTDIR]   env: REPS=3 THREADS=2 CLIENTS=5 SAMPLE= CPUS=
# SAMPLE=1 times both routes on the clients cut to one module of each of the 35 distinct shapes
# (bench/kohya_shape_sample.py), where the dense route takes minutes rather than hours, then
# fedlora on the whole files and the dense route's whole-model cost extrapolated from its time
# per shape (kohya_svd_merge.py --sample). CPUS=1 pins every timed process to that CPU list
# (taskset), so a paired run on a shared machine competes only with what else is pinned there.
set -euo pipefail
FEDLORA=$1
OUT=${2:-bench/out}
REPS=${REPS:-3}
THREADS=${THREADS:-2}
N=${CLIENTS:-5}
DIR="$OUT/sdxl"
RES="$OUT/sdxl-merged"
PIN=()
[ -n "${CPUS:-}" ] && PIN=(taskset -c "$CPUS")
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null
mkdir -p "$RES"
python3 bench/make_sdxl_kohya.py "$DIR" --clients "$N" 2>&1 | grep -v '^wrote' || true
FILES=$(for i in $(seq 0 $((N - 1))); do echo "$DIR/client_$i.safetensors"; done)
FULL=$FILES
if [ -n "${SAMPLE:-}" ]; then
  python3 bench/kohya_shape_sample.py "$OUT/sdxl-sample" $FILES
  FILES=$(for f in $FILES; do echo "$OUT/sdxl-sample/$(basename "$f")"; done)
  RES="$OUT/sdxl-sample-merged"
  mkdir -p "$RES"
fi
cat $FILES >/dev/null  # warm the page cache
echo "== $N SDXL kohya LoRAs${SAMPLE:+ (one module per shape)} ($(du -cm $FILES | tail -1 | cut -f1) MB), svd to rank 32, $REPS repetitions, torch threads $THREADS"

# GNU time -v: wall seconds and peak RSS (KB) of one run.
timed() {  # timed NAME cmd...  -> $RES/NAME.time
  local name=$1; shift
  /usr/bin/time -v -o "$RES/$name.time" "${PIN[@]}" "$@" >"$RES/$name.stdout" 2>"$RES/$name.stderr" || {
    echo "$name failed:"; tail -5 "$RES/$name.stderr"; exit 1; }
}
wall() { awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$1"; }
rss() { awk -F': ' '/Maximum resident set size/{print $2}' "$1"; }
cpu() { awk -F': ' '/(User|System) time \(seconds\)/{s+=$2} END{printf "%.1f", s}' "$1"; }  # user + sys

fl=() tw=() tm=() pr=() fc=() tc=()
for rep in $(seq "$REPS"); do
  run_fedlora() {
    timed "fedlora-$rep" "$FEDLORA" merge $FILES --method svd --rank 32 --dtype f32 \
      -o "$RES/fedlora.safetensors" --json
  }
  run_torch() {
    local extra=(--no-errors)
    [ "$rep" = 1 ] && extra=()  # the dense error pass once (not timed: its own phase)
    timed "torch-$rep" python3 bench/kohya_svd_merge.py "$RES/torch.safetensors" $FILES --rank 32 \
      --threads "$THREADS" --json "$RES/torch-$rep.json" "${extra[@]}"
  }
  if [ $((rep % 2)) = 1 ]; then run_fedlora; run_torch; else run_torch; run_fedlora; fi
  f=$(wall "$RES/fedlora-$rep.time")
  t=$(wall "$RES/torch-$rep.time")
  m=$(python3 -c "import json; print(round(json.load(open('$RES/torch-$rep.json'))['seconds']['merge'], 2))")
  fl+=("$f"); tw+=("$t"); tm+=("$m")
  fc+=("$(cpu "$RES/fedlora-$rep.time")"); tc+=("$(cpu "$RES/torch-$rep.time")")
  pr+=("$(awk "BEGIN{printf \"%.1f\", $m / $f}")")
  printf "rep %d: fedlora %6.2f s (cpu %6.1f s) %5d MB | torch %7.2f s (merge phase %7.2f s, cpu %7.1f s) %5d MB | ratio %s\n" \
    "$rep" "$f" "${fc[-1]}" "$(($(rss "$RES/fedlora-$rep.time") / 1024))" "$t" "$m" "${tc[-1]}" \
    "$(($(rss "$RES/torch-$rep.time") / 1024))" "${pr[-1]}"
done

stats() { printf "%s\n" "$@" | sort -g | awk '{v[NR]=$1} END{printf "median %.2f (%.2f-%.2f)", v[int((NR+1)/2)], v[1], v[NR]}'; }
median() { printf "%s\n" "$@" | sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
maxrss() { for f in "$@"; do rss "$f"; done | sort -n | tail -1; }
echo
echo "fedlora svd (wall, with its exact error report):  $(stats "${fl[@]}") s, peak RSS $(($(maxrss "$RES"/fedlora-*.time) / 1024)) MB"
echo "torch dense route, whole process (wall):          $(stats "${tw[@]}") s, peak RSS $(($(maxrss "$RES"/torch-*.time) / 1024)) MB"
echo "torch dense route, merge phase (load..save):      $(stats "${tm[@]}") s"
echo "cpu seconds (user + sys): fedlora $(stats "${fc[@]}"), torch $(stats "${tc[@]}") (the torch run with the error pass included)"
echo "ratio torch merge phase / fedlora wall: per pair ${pr[*]}; of the medians $(awk "BEGIN{printf \"%.1f\", $(median "${tm[@]}") / $(median "${fl[@]}")}")x"
python3 - "$RES" <<'EOF'
import json, sys
res = sys.argv[1]
f = json.load(open(f"{res}/fedlora-1.stdout"))
t = json.load(open(f"{res}/torch-1.json"))
fe, ff, te, tf = f["model"]["relative_error"], f["model"]["floor"], t["relative_error"], t["floor"]
print(f"model relative error: fedlora {fe:.10e} (floor {ff:.10e}); torch {te:.10e} (fp32 SVD floor {tf:.10e})")
print(f"difference fedlora - torch: {fe - te:+.3e} ({(fe - te) / te:+.2e} relative); fedlora floor - torch floor {(ff - tf) / tf:+.2e} relative")
print(f"torch phases (rep 1): " + ", ".join(f"{k} {v:.2f} s" for k, v in t["seconds"].items()))
EOF
for name in fedlora torch; do
  printf "dense fp64 check of %-8s written file: " "$name"
  python3 bench/kohya_dense_error.py "$RES/$name.safetensors" $FILES --threads "$THREADS"
done

[ -n "${SAMPLE:-}" ] || exit 0
echo
echo "== whole model: fedlora on the full files, the dense route extrapolated from its time per shape"
ff=() fcpu=()
for rep in $(seq "$REPS"); do
  timed "fedlora-full-$rep" "$FEDLORA" merge $FULL --method svd --rank 32 --dtype f32 \
    -o "$RES/fedlora-full.safetensors" --json
  ff+=("$(wall "$RES/fedlora-full-$rep.time")"); fcpu+=("$(cpu "$RES/fedlora-full-$rep.time")")
done
timed torch-extrapolated python3 bench/kohya_svd_merge.py /dev/null $FULL --rank 32 --threads "$THREADS" \
  --sample --json "$RES/torch-extrapolated.json"
echo "fedlora svd, whole model: wall $(stats "${ff[@]}") s, cpu $(stats "${fcpu[@]}") s, peak RSS $(($(maxrss "$RES"/fedlora-full-*.time) / 1024)) MB"
python3 - "$RES/torch-extrapolated.json" "$(median "${ff[@]}")" "$(median "${fcpu[@]}")" <<'EOF'
import json, sys
e = json.load(open(sys.argv[1]))
fw, fc = float(sys.argv[2]), float(sys.argv[3])
print(f"torch dense route, whole model extrapolated from {e['modules_sampled']} shapes ({e['modules']} modules): "
      f"wall {e['extrapolated_wall_s']:.0f} s, cpu {e['extrapolated_cpu_s']:.0f} s")
print(f"ratio dense / fedlora, whole model: wall {e['extrapolated_wall_s'] / fw:.0f}x, cpu {e['extrapolated_cpu_s'] / fc:.0f}x")
EOF
