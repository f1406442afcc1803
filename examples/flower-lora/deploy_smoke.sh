#!/usr/bin/env bash
# The same app on Flower's Deployment Engine, all on localhost: one SuperLink and N SuperNodes
# (insecure: no TLS, no node authentication; for a smoke test only), one `flwr run` of ROUNDS
# rounds, bounded by TIMEOUT seconds. Everything it started is stopped on exit (by process id);
# logs and Flower's state stay in a temporary folder, printed at the end. Not run by CI.
#
#   FEDLORA_BINARY=/path/to/fedlora N=2 ROUNDS=2 ./deploy_smoke.sh
set -euo pipefail
cd "$(dirname "$0")"
N=${N:-2}
ROUNDS=${ROUNDS:-2}
TIMEOUT=${TIMEOUT:-900}
METHOD=${METHOD:-flora-na}
PORT=${PORT:-8000}   # flwr >= 1.3x: the SuperLink serves its Fleet, Control and Runtime APIs on one HTTP port
work=$(mktemp -d /tmp/flower-lora-deploy.XXXXXX)
export FLWR_HOME=$work/flwr-home   # Flower's CLI config and apps, not ~/.flwr
mkdir -p "$FLWR_HOME"
pids=()
cleanup() {
  # Each was started in its own session: its group holds the flower-superexec / app processes it spawned.
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "logs: $work"
}
trap cleanup EXIT

setsid flower-superlink --insecure --port "$PORT" --database "$work/state.db" >"$work/superlink.log" 2>&1 &
pids+=($!)
for ((t = 0; t < 120; t++)); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 1; done
for ((i = 0; i < N; i++)); do
  setsid flower-supernode --insecure --superlink "127.0.0.1:$PORT" --port $((PORT + 100 + i)) \
    --node-config "partition-id=$i num-partitions=$N" >"$work/supernode-$i.log" 2>&1 &
  pids+=($!)
done

cat >"$FLWR_HOME/config.toml" <<TOML
[superlink]
default = "local-deployment"

[superlink.local-deployment]
address = "127.0.0.1:$PORT"
insecure = true
TOML

sleep 10
timeout "$TIMEOUT" flwr run . local-deployment --stream \
  --run-config "num-server-rounds=$ROUNDS method=\"$METHOD\" results=\"$work/results.json\"" | tee "$work/run.log"
grep -q "ServerApp-side Evaluate Metrics" "$work/run.log" && echo "deployment smoke test: OK ($N SuperNodes, $ROUNDS rounds, $METHOD)"
