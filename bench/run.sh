#!/usr/bin/env bash
# All benchmarks, each printing its figures against a baseline measured in the same run.
set -euo pipefail
FEDLORA=${1:-.build/release/fedlora}
swift build -c release --product fedlora-bench --static-swift-stdlib >/dev/null
.build/release/fedlora-bench conversions 256
echo
bash bench/bench_header.sh bench/out/llama7b "$FEDLORA"
echo
bash bench/bench_merge.sh "$FEDLORA" bench/out
echo
bash bench/bench_base.sh "$FEDLORA" bench/out
echo
bash bench/bench_vocab.sh "$FEDLORA" bench/out
