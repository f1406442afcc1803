#!/usr/bin/env bash
# The main job on the bundled example adapters: merge three PEFT clients with FLoRA-NA, then
# look at the inputs and the result.
set -euo pipefail
FEDLORA=${1:-.build/release/fedlora}
OUT=$(mktemp -d /tmp/fedlora-demo-XXXXXX)
CLIENTS="fixtures/adapters/client_a fixtures/adapters/client_b fixtures/adapters/client_c"

echo "== fedlora merge (FLoRA-NA) of 3 clients, weighted by sample counts 100,200,300"
$FEDLORA merge $CLIENTS --method flora-na --samples 100,200,300 -o "$OUT/merged"
echo
echo "== the same clients with FedAvg, for comparison (model-level line only)"
$FEDLORA merge $CLIENTS --method fedavg --samples 100,200,300 -o "$OUT/fedavg" | tail -1
echo
echo "== fedlora inspect of the merged adapter (first layer)"
$FEDLORA inspect "$OUT/merged" --filter 'layers\.0\.' --top 3
echo
echo "== fedlora inspect of the clients, auditing the FedAvg merge against them"
$FEDLORA inspect $CLIENTS --samples 100,200,300 --against "$OUT/fedavg" --filter 'layers\.0\.' --plot "$OUT/errors.svg"
echo
echo "== fedlora verify --data of the merged adapter"
$FEDLORA verify --data "$OUT/merged"
echo
echo "outputs in $OUT"
