#!/usr/bin/env bash
# Closed-loop point reads against one MariaDB container on loopback: htapchaos against
# sysbench oltp_point_select on the same server, in the same run, alternating, at 8 and
# 32 connections. Prints throughput and client CPU per operation for each round, then
# the medians and the ratios htapchaos/sysbench.
#   bash scripts/bench-load.sh [rounds] [seconds] [concurrencies, default "8 32"]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-10}
concs=${3:-8 32}
command -v sysbench >/dev/null || { apt-get install -y -qq sysbench >/dev/null; }
tmp=$(mktemp -d)
bin=$tmp/htapchaos
go build -o "$bin" ./cmd/htapchaos
name=bench-load-$$
cleanup() { "$bin" cluster down "$name" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

"$bin" cluster up --topology single --memory 2GiB --name "$name" --json >"$tmp/cluster.json" 2>/dev/null
port=$(sed -n 's/.*"port": \([0-9]*\).*/\1/p' "$tmp/cluster.json" | head -1)
dsn="root:htapchaos@tcp(127.0.0.1:$port)/htapchaos"
sb=(sysbench oltp_point_select --mysql-host=127.0.0.1 --mysql-port="$port" --mysql-user=root
    --mysql-password=htapchaos --mysql-db=htapchaos --tables=4 --table-size=100000 --db-ps-mode=auto)
"${sb[@]}" prepare >/dev/null
# Seed htapchaos's tables (100K orders) and warm both up.
"$bin" load --target "$dsn" --workload oltp --mix point-read=1 --concurrency 8 --duration 3s --orders 100000 --out "$tmp/warm" >/dev/null 2>&1
"${sb[@]}" --threads=8 --time=3 run >/dev/null

# cpu_of CMD...: runs CMD, prints "user+sys seconds" of it and its children.
cpu_of() { bash -c '"$@" >"'"$tmp"'/out" 2>&1; times' _ "$@" | tail -1 | awk '{
  split($1,u,"m"); split($2,s,"m"); sub("s","",u[2]); sub("s","",s[2]); printf "%.3f\n", u[1]*60+u[2]+s[1]*60+s[2] }'; }

printf "%-4s %-5s %-10s %12s %14s\n" conc round tool "ops/s" "cpu us/op"
for conc in $concs; do
  for r in $(seq "$rounds"); do
    cpu=$(cpu_of "${sb[@]}" --threads="$conc" --time="$secs" run)
    qps=$(sed -n 's/.*queries: *[0-9]* *(\([0-9.]*\) per sec.).*/\1/p' "$tmp/out")
    ops=$(awk -v q="$qps" -v s="$secs" 'BEGIN{printf "%d", q*s}')
    echo "$conc $r sysbench $qps $(awk -v c="$cpu" -v o="$ops" 'BEGIN{printf "%.1f", c/o*1e6}')" >>"$tmp/rows"
    printf "%-4s %-5s %-10s %12.0f %14.1f\n" "$conc" "$r" sysbench "$qps" "$(awk -v c="$cpu" -v o="$ops" 'BEGIN{printf "%.1f", c/o*1e6}')"

    cpu=$(cpu_of "$bin" load --target "$dsn" --workload oltp --mix point-read=1 --concurrency "$conc" --duration "${secs}s" --setup=false --orders 100000 --out "$tmp/run")
    read -r ops dur < <(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sum(o["count"] for o in s["ops"]), s["duration_s"])' "$tmp/run/summary.json")
    qps=$(awk -v o="$ops" -v d="$dur" 'BEGIN{printf "%.1f", o/d}')
    echo "$conc $r htapchaos $qps $(awk -v c="$cpu" -v o="$ops" 'BEGIN{printf "%.1f", c/o*1e6}')" >>"$tmp/rows"
    printf "%-4s %-5s %-10s %12.0f %14.1f\n" "$conc" "$r" htapchaos "$qps" "$(awk -v c="$cpu" -v o="$ops" 'BEGIN{printf "%.1f", c/o*1e6}')"
    rm -rf "$tmp/run"
  done
done
echo
for conc in $concs; do
  med() { awk -v c="$conc" -v t="$1" -v f="$2" '$1==c && $3==t {print $f}' "$tmp/rows" | sort -n | awk '{a[NR]=$1} END{print (NR%2? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
  st=$(med sysbench 4); ht=$(med htapchaos 4); sc=$(med sysbench 5); hc=$(med htapchaos 5)
  printf "concurrency %s: median ops/s htapchaos %.0f vs sysbench %.0f (ratio %.2f); cpu us/op %.1f vs %.1f (ratio %.2f)\n" \
    "$conc" "$ht" "$st" "$(awk -v a="$ht" -v b="$st" 'BEGIN{print a/b}')" "$hc" "$sc" "$(awk -v a="$hc" -v b="$sc" 'BEGIN{print a/b}')"
done
