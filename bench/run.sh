#!/usr/bin/env bash
# All benchmarks, each printing its figures against a baseline measured in the same run.
set -euo pipefail
FEDLORA=${1:-.build/release/fedlora}
swift build -c release --product fedlora-bench --static-swift-stdlib >/dev/null
.build/release/fedlora-bench conversions 256
echo
.build/release/fedlora-bench layer-algebra 10
echo
echo "start-up: median of 40 runs"
python3 bench/startup.py 40 -- "$FEDLORA" --version --- python3 -c pass
echo
bash bench/bench_header.sh bench/out/llama7b "$FEDLORA"
echo
bash bench/bench_merge.sh "$FEDLORA" bench/out
echo
bash bench/bench_hostile.sh bench/out/hostile "$FEDLORA"
echo
bash bench/bench_base.sh "$FEDLORA" bench/out
echo
bash bench/bench_vocab.sh "$FEDLORA" bench/out
