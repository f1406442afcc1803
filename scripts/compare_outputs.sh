#!/usr/bin/env bash
# Runs the same merges, conversions and inspections with two fedlora binaries and compares what
# they write, byte for byte: every output file, every --json document (stdout) and the exit
# status of each run. Used to check that a refactoring changes no output.
#
#   scripts/compare_outputs.sh OLD_BINARY NEW_BINARY [WORK_FOLDER]
#
# Covers every method (fedavg, flora-na, svd, stack; exact and fedex with a base) x every output
# (PEFT folder, .safetensors, .gguf; with --base: sharded folder, .safetensors, .gguf; fedex's
# adapter), --no-errors, --dry-run --json, --scope model, --rank, mixed ranks, BF16 and GGUF
# clients, a GGUF base and a sharded base, convert both ways, inspect (one adapter, clients, an
# audit --against) and a refused merge. Inputs are the fixtures, plus a GGUF and a sharded base
# made from fixtures/adapters/base by OLD_BINARY once. Exit status 0 when everything is equal.
set -u
old=$(realpath "$1")
new=$(realpath "$2")
work=${3:-$(mktemp -d /tmp/fedlora-compare.XXXXXX)}
root=$(cd "$(dirname "$0")/.." && pwd)
fx=$root/fixtures/adapters
a=$fx/client_a b=$fx/client_b c=$fx/client_c cfg=$fx/base/config.json
rm -rf "$work" && mkdir -p "$work/inputs" "$work/old" "$work/new"

# Inputs derived from the base by the old binary: a GGUF base and a sharded base.
"$old" convert "$fx/base/model.safetensors" "$work/inputs/base.gguf" --quiet >/dev/null 2>&1 || echo "note: no GGUF base"
"$old" convert "$fx/base/model.safetensors" "$work/inputs/sharded" --shard-size 20KB --quiet >/dev/null 2>&1 \
  || echo "note: no sharded base"
gbase=$work/inputs/base.gguf
sbase=$work/inputs/sharded

runs=()
add() { runs+=("$*"); }
for m in fedavg flora-na svd stack; do
  add merge $a $b $c --method $m -o out/$m-peft
  add merge $a $b $c --method $m -o out/$m.safetensors
  add merge $a $b $c --method $m -o out/$m.gguf
  add merge $a $b $c --method $m --base $fx/base -o out/$m-base
  add merge $a $b $c --method $m --base $fx/base -o out/$m-base.safetensors
  add merge $a $b $c --method $m --base $fx/base -o out/$m-base.gguf
  add merge $a $b $c --method $m -o out/$m-dry --dry-run
  add merge $a $b $fx/client_r4 --method $m -o out/$m-r4.safetensors --weights 1,2,3
  add merge $fx/gguf/client_a.gguf $fx/gguf/client_b.gguf --method $m -o out/$m-g.gguf --base-config $cfg
  add merge $fx/gguf/client_a.gguf $fx/gguf/client_r4.gguf --method $m -o out/$m-g-peft --base-config $cfg
  add merge $a $fx/client_bf16 --method $m -o out/$m-bf16 --dtype bf16
done
for m in exact fedex; do
  add merge $a $b $c --method $m --base $fx/base -o out/$m-base
  add merge $a $b $c --method $m --base $fx/base -o out/$m-base.safetensors
  add merge $a $b $c --method $m --base $fx/base -o out/$m-base.gguf
  add merge $a $b $c --method $m --base $gbase -o out/$m-gbase.gguf
  add merge $a $b $c --method $m --base $sbase -o out/$m-sbase --shard-size 30KB
  add merge $a $b $c --method $m --base $fx/base -o out/$m-dry --dry-run
  add merge $a $b $c --method $m --base $fx/base -o out/$m-noerr.safetensors --no-errors
done
add merge $a $b $c --method fedex --base $fx/base -o out/fedex-ad.safetensors --adapter-output out/fedex-ad-adapter
add merge $a $b $c --method fedavg -o out/fedavg-noerr --no-errors
add merge $a $b $c --method stack -o out/stack-noerr.gguf --no-errors
add merge $a $b $c --method fedavg --base $fx/base -o out/fedavg-noerr-base --no-errors
add merge $a $b $c --method flora-na --scope model -o out/flora-model
add merge $a $b $c --method flora-na --max-iterations 3 -o out/flora-3.safetensors
add merge $a $b $c --method svd --rank 4 -o out/svd-4
add merge $a $b $c --method svd --rank 100 -o out/svd-100.safetensors
add merge $a $b $c --method svd --rank 100 -o out/svd-100-dry --dry-run
add merge $a $b $c --method fedavg --base $gbase -o out/fedavg-gbase.gguf
add merge $a $b $c --method flora-na --base $sbase -o out/flora-sbase
add merge $fx/client_bias $fx/client_bias_b --method fedavg -o out/bias
add merge $fx/client_bias $fx/client_bias_b --method svd -o out/bias-svd.safetensors
add merge $fx/client_gpt2_bias_a $fx/client_gpt2_bias_b --method flora-na --base $fx/gpt2_base -o out/gpt2-base
add merge $fx/client_embed $a --method fedavg -o out/embed --allow-missing
add merge $a $b $fx/client_pattern --method svd --rank 6 -o out/pattern-svd.gguf
add merge $a $b --method fedavg --dtype f32 -o out/w.safetensors --weights 2,1 --keep-weights
add merge $a $fx/client_dora --method fedavg -o out/dora
add convert $a out/conv-a.gguf
add convert $fx/gguf/client_b.gguf out/conv-b --base-config $cfg
add convert $fx/gguf/client_c.gguf out/conv-c.safetensors --base-config $cfg
add convert $fx/base/model.safetensors out/conv-base.gguf
add convert $fx/base/model.safetensors out/conv-base-dry.gguf --dry-run
add inspect $a
add inspect $a $b $c
add inspect $a $b $c --against out/flora-na-peft
add inspect $a $b $c --against out/fedavg-peft --expect fedavg

for side in old new; do
  bin=$old
  [ $side = new ] && bin=$new
  cd "$work/$side" && mkdir -p out logs
  i=0
  for run in "${runs[@]}"; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    "$bin" $run --json >logs/$i.json 2>/dev/null
    echo "$? $run" >logs/$i.status
  done
done

cd "$work"
failed=0
for i in $(seq 1 ${#runs[@]}); do
  for ext in status json; do
    if ! cmp -s old/logs/$i.$ext new/logs/$i.$ext; then
      echo "DIFFERS: ${runs[$((i - 1))]} ($ext)"
      diff old/logs/$i.$ext new/logs/$i.$ext | head -10
      failed=1
    fi
  done
done
if ! diff -r -q old/out new/out; then failed=1; fi
files=$(find old/out -type f | wc -l)
echo "${#runs[@]} runs, $files output files compared in $work: $([ $failed = 0 ] && echo identical || echo DIFFERENT)"
exit $failed
