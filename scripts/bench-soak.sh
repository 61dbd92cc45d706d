#!/usr/bin/env bash
# Resident memory and CPU of htapchaos over a long open-loop run against one MariaDB
# container: samples RSS every 10 s, then compares the first and the last minute.
#   bash scripts/bench-soak.sh [duration (10m)] [rate (2000)]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10m}
rate=${2:-2000}
tmp=$(mktemp -d)
bin=$tmp/htapchaos
go build -o "$bin" ./cmd/htapchaos
name=bench-soak-$$
cleanup() {
  if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; fi
  "$bin" cluster down "$name" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
"$bin" cluster up --topology single --memory 2GiB --name "$name" >/dev/null 2>&1
"$bin" load --cluster "$name" --workload oltp --rate 1 --duration 1s --out "$tmp/seed" >/dev/null 2>&1
"$bin" load --cluster "$name" --workload oltp --rate "$rate" --duration "$dur" --setup=false --out "$tmp/run" >"$tmp/out" 2>&1 &
pid=$!
hz=$(getconf CLK_TCK)
echo "t_s rss_mib"
t=0
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null || true)
  ticks=$(awk '{print $14+$15}' /proc/$pid/stat 2>/dev/null || true)
  [ -n "$rss" ] && { echo "$t $((rss / 1024))" | tee -a "$tmp/rss"; echo "$t $ticks" >>"$tmp/cpu"; }
  sleep 10; t=$((t + 10))
done
wait "$pid" || true
tail -4 "$tmp/out" | head -2
awk -v hz="$hz" 'NR==1 {t0=$1; c0=$2} {t1=$1; c1=$2} END { printf "cpu: %.1f%% of one core over %ds\n", (c1-c0)/hz/(t1-t0)*100, t1-t0 }' "$tmp/cpu"
n=$(wc -l <"$tmp/rss")
first=$(awk 'NR>=2 && NR<=7 {print $2}' "$tmp/rss" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
last=$(tail -6 "$tmp/rss" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "rss median: first minute ${first} MiB, last minute ${last} MiB, ratio $(awk -v a="$last" -v b="$first" 'BEGIN{printf "%.3f", a/b}') over $n samples"
