#!/usr/bin/env bash
# Measures the foundation's targets on this machine: node image build, a 3-node Galera
# cluster up and Synced, and cluster down. Prints each run and the median.
#   bash scripts/bench-foundation.sh [runs] [--with-image-build]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
bin=$(mktemp -d)/htapchaos
go build -o "$bin" ./cmd/htapchaos

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
log=$(dirname "$bin")/log
# secs CMD...: runs CMD and prints its wall time in seconds; stops the script if it fails.
secs() {
  local s e
  s=$(date +%s.%N)
  if ! "$@" >"$log" 2>&1; then echo "failed: $*" >&2; cat "$log" >&2; return 1; fi
  e=$(date +%s.%N)
  awk -v s="$s" -v e="$e" 'BEGIN { printf "%.1f\n", e - s }'
}

if [ "${2:-}" = --with-image-build ]; then
  t=$(secs "$bin" image build --tag htapchaos/node:bench) || exit 1
  echo "image build: ${t}s"
  docker rmi htapchaos/node:bench >/dev/null
fi

ups=(); downs=()
for i in $(seq "$runs"); do
  up=$(secs "$bin" cluster up --topology galera --nodes 3 --name bench-$i) || { "$bin" cluster down "bench-$i" >/dev/null; exit 1; }
  down=$(secs "$bin" cluster down "bench-$i") || exit 1
  echo "run $i: galera 3 nodes up and Synced ${up}s, down ${down}s"
  ups+=("$up"); downs+=("$down")
done
echo "median over $runs runs: up $(printf '%s\n' "${ups[@]}" | median)s, down $(printf '%s\n' "${downs[@]}" | median)s"
