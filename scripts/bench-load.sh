#!/usr/bin/env bash
# Closed-loop point reads against one MariaDB container on loopback: htapchaos against
# sysbench oltp_point_select on the same server, in the same run, at 8 and 32
# connections. htapchaos runs twice per round: its own point read (the oltp workload's,
# five typed columns of orders) and sysbench's own statement (SELECT c FROM sbtest1 WHERE
# id=?, as a query of the user's own), which gives the server the same work per
# operation as sysbench, so that the ratio measures the clients. Each round runs the three
# back to back, in rotating order. For each run it prints throughput and CPU per
# operation: the client's own, the server's (the container's cgroup) and the engine's
# userland port proxy's (docker-proxy, which carries every packet on a published port).
# Then, per concurrency: the medians, and the ratios to sysbench, both of the medians
# and the median of the per-round ratios (the runs of a round share the machine's state
# of the moment, so a shared machine's drift cancels in their ratio).
#   bash scripts/bench-load.sh [rounds] [seconds] [concurrencies, default "8 32"]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-6}
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
cid=$(sed -n 's/.*"container_id": "\([0-9a-f]*\)".*/\1/p' "$tmp/cluster.json" | head -1)
dsn="root:htapchaos@tcp(127.0.0.1:$port)/htapchaos"
sb=(sysbench oltp_point_select --mysql-host=127.0.0.1 --mysql-port="$port" --mysql-user=root
    --mysql-password=htapchaos --mysql-db=htapchaos --tables=4 --table-size=100000 --db-ps-mode=auto)
"${sb[@]}" prepare >/dev/null
# Seed htapchaos's tables (100K orders) and warm both up.
"$bin" load --target "$dsn" --allow-writes --workload oltp --mix point-read=1 --concurrency 8 --duration 3s --orders 100000 --out "$tmp/warm" >/dev/null 2>&1
"${sb[@]}" --threads=8 --time=3 run >/dev/null

# The server's CPU: the container's cgroup, v1 (cgroupfs or systemd driver) or v2.
server_ns() {
  local f
  for f in /sys/fs/cgroup/cpuacct/docker/"$cid"/cpuacct.usage \
           /sys/fs/cgroup/cpu,cpuacct/docker/"$cid"/cpuacct.usage \
           /sys/fs/cgroup/cpuacct/system.slice/docker-"$cid".scope/cpuacct.usage; do
    [ -r "$f" ] && { cat "$f"; return; }
  done
  for f in /sys/fs/cgroup/docker/"$cid"/cpu.stat /sys/fs/cgroup/system.slice/docker-"$cid".scope/cpu.stat; do
    [ -r "$f" ] && { awk '$1=="usage_usec"{print $2*1000}' "$f"; return; }
  done
  echo 0
}
hz=$(getconf CLK_TCK)
# The port proxies' CPU in ns (0 when the engine runs without its userland proxy).
proxy_ns() {
  local t=0 pid
  for pid in $(pgrep -x docker-proxy || true); do
    t=$((t + $(awk '{print $14+$15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo $((t * 1000000000 / hz))
}
# cpu_of CMD...: runs CMD, prints "user+sys seconds" of it and its children.
cpu_of() { bash -c '"$@" >"'"$tmp"'/out" 2>&1; times' _ "$@" | tail -1 | awk '{
  split($1,u,"m"); split($2,s,"m"); sub("s","",u[2]); sub("s","",s[2]); printf "%.3f\n", u[1]*60+u[2]+s[1]*60+s[2] }'; }

# measure TOOL CONC ROUND: one run (TOOL: sysbench, htapchaos or htapchaos-sb); appends "conc round tool ops/s client server proxy" (µs per op).
measure() {
  local tool=$1 conc=$2 r=$3 s0 p0 cpu ops dur qps
  s0=$(server_ns); p0=$(proxy_ns)
  if [ "$tool" = sysbench ]; then
    cpu=$(cpu_of "${sb[@]}" --threads="$conc" --time="$secs" run)
    qps=$(sed -n 's/.*queries: *[0-9]* *(\([0-9.]*\) per sec.).*/\1/p' "$tmp/out")
    ops=$(awk -v q="$qps" -v s="$secs" 'BEGIN{printf "%d", q*s}')
  else
    local w=(--workload oltp --mix point-read=1)
    # The same statement as sysbench's; --procs as for oltp (analytics would get one more).
    [ "$tool" = htapchaos-sb ] && w=(--workload analytics --mix sql=1 --query "SELECT c FROM sbtest1 WHERE id=?" --procs $(( (conc + 31) / 32 )))
    cpu=$(cpu_of "$bin" load --target "$dsn" "${w[@]}" --concurrency "$conc" --duration "${secs}s" --setup=false --orders 100000 --out "$tmp/run")
    read -r ops dur < <(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sum(o["count"] for o in s["ops"]), s["duration_s"])' "$tmp/run/summary.json")
    qps=$(awk -v o="$ops" -v d="$dur" 'BEGIN{printf "%.1f", o/d}')
    rm -rf "$tmp/run"
  fi
  awk -v c="$conc" -v r="$r" -v t="$tool" -v q="$qps" -v o="$ops" -v cpu="$cpu" \
      -v s="$(( $(server_ns) - s0 ))" -v p="$(( $(proxy_ns) - p0 ))" \
      'BEGIN{printf "%s %s %s %.0f %.1f %.1f %.1f\n", c, r, t, q, cpu/o*1e6, s/o/1e3, p/o/1e3}' | tee -a "$tmp/rows" |
    awk '{printf "%-4s %-5s %-12s %9s %10s %10s %10s\n", $1, $2, $3, $4, $5, $6, $7}'
}

printf "%-4s %-5s %-12s %9s %10s %10s %10s\n" conc round tool "ops/s" "client us" "server us" "proxy us"
for conc in $concs; do
  for r in $(seq "$rounds"); do
    tools=(sysbench htapchaos htapchaos-sb)
    for i in 0 1 2; do measure "${tools[$(( (i + r) % 3 ))]}" "$conc" "$r"; done
  done
done
echo
python3 - "$tmp/rows" <<'PY'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
tools = ("sysbench", "htapchaos", "htapchaos-sb")
for conc in dict.fromkeys(r[0] for r in rows):
    by = {t: {r[1]: [float(x) for x in r[3:]] for r in rows if r[0] == conc and r[2] == t} for t in tools}
    rounds = sorted(set.intersection(*(set(by[t]) for t in tools)), key=int)
    def med(t, i): return st.median(by[t][r][i] for r in rounds)
    def paired(t, i): return st.median(by[t][r][i] / by["sysbench"][r][i] for r in rounds)
    print(f"concurrency {conc}, {len(rounds)} rounds (medians; ratios to sysbench: of the medians / median of the per-round ratios):")
    print(f"  {'':<13} {'ops/s':>8} {'ratio':>11} {'client us':>10} {'ratio':>11} {'server us':>10} {'proxy us':>9}")
    for t in tools:
        r = "" if t == "sysbench" else f"{med(t,0)/med('sysbench',0):.2f} / {paired(t,0):.2f}"
        c = "" if t == "sysbench" else f"{med(t,1)/med('sysbench',1):.2f} / {paired(t,1):.2f}"
        print(f"  {t:<13} {med(t,0):8.0f} {r:>11} {med(t,1):10.1f} {c:>11} {med(t,2):10.1f} {med(t,3):9.1f}")
PY
