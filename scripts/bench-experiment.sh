#!/usr/bin/env bash
# htapchaos's own CPU during an experiment at 2K ops/s: open-loop OLTP against one
# MariaDB container, with the indicator sampler and the freshness heartbeat running.
# Prints user+sys CPU seconds over wall seconds (the share of one core) per round,
# then the median. Target: under 0.25 of one core.
#   bash scripts/bench-experiment.sh [rounds] [seconds] [rate]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-60}
rate=${3:-2000}
tmp=$(mktemp -d)
bin=$tmp/htapchaos
go build -o "$bin" ./cmd/htapchaos
name=bench-exp-$$
cleanup() { "$bin" cluster down "$name" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM
"$bin" cluster up --topology single --memory 2GiB --name "$name" >/dev/null 2>&1
cat >"$tmp/spec.yaml" <<YAML
name: cpu-at-rate
modes: [htap-contention, freshness]
data: {users: 1000, orders: 20000}
phases:
  - {name: baseline, duration: ${secs}s}
workloads:
  - {kind: oltp, rate: ${rate}, route: all, timeout: 2s}
heartbeat: {node: 1, every: 100ms}
YAML
for r in $(seq "$rounds"); do
  rm -rf "$tmp/run"
  start=$(date +%s.%N)
  cpu=$(bash -c '"$@" >/dev/null 2>&1; times' _ "$bin" run "$tmp/spec.yaml" --cluster "$name" --out "$tmp/run" | tail -1 | awk '{
    split($1,u,"m"); split($2,s,"m"); sub("s","",u[2]); sub("s","",s[2]); printf "%.3f\n", u[1]*60+u[2]+s[1]*60+s[2] }')
  wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.3f", e-s}')
  ops=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sum(o["count"] for o in s["ops"]))' "$tmp/run/summary.json")
  share=$(awk -v c="$cpu" -v w="$wall" 'BEGIN{printf "%.3f", c/w}')
  echo "round $r: $ops ops in ${wall}s wall, ${cpu}s CPU: $share of one core" | tee -a "$tmp/rows"
done
awk '{print $(NF-3)}' "$tmp/rows" | sort -n | awk '{a[NR]=$1} END{printf "median share of one core: %s (target < 0.25)\n", (NR%2? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
