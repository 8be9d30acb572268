#!/usr/bin/env bash
# The ceiling of 1 and of 2 voxgate nodes behind Kamailio (configs/cluster)
# on one machine, each node held to a fixed CPU budget as if it had a small
# machine of its own (README: "More than one machine").
#
#   cmd/voxgate/testdata/cluster-ceiling.sh [path/to/voxgate]
#
# Each node runs with GOMAXPROCS=1, pinned to CPU NODE_CPU (taskset), in a
# cgroup (v1 cpu controller, or v2 cpu.max) limited to QUOTA_PCT % of one
# CPU. Redis, Kamailio and sipp are pinned to CPU LOAD_CPU: they share
# nothing with the nodes but each other (and whatever else runs on the
# machine). For NODES=1 and then 2, it raises the call rate through RATES:
# at each rate sipp sends calls to the echo (9196) through Kamailio for
# SECONDS_PER_RUN, each playing sipp's G.711 pcap (about 8 s of audio, so
# about 8 x rate calls at once). Then it reads each call's end line from
# the nodes' logs: the interarrival jitter (RFC 3550) and the packets lost
# of what the node received, as the node measured them on reading each
# packet (a node short of CPU reads late: jitter grows, its socket
# overflows: loss); from each node's /metrics the media clock's late
# ticks; and from the cgroup how often the node was throttled. The pcap
# itself has about 6.4 ms of jitter. A rate "holds" when no call failed,
# the 95th percentile of the calls' jitter is under 20 ms and under 1 % of
# packets were lost; the ceiling is the last rate that holds before one
# that does not.
# Tunables: RATES ("5 10 15 20 25 30 40"), SECONDS_PER_RUN (15),
# QUOTA_PCT (40), NODE_CPU (1), LOAD_CPU (0).
# Needs: root (cgroups), redis-server, kamailio + kamailio-redis-modules,
# sip-tester, curl, taskset.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=$(readlink -f "${1:-bin/voxgate}")
rates=${RATES:-5 10 15 20 25 30 40}
secs=${SECONDS_PER_RUN:-15}
quota=${QUOTA_PCT:-40}
node_cpu=${NODE_CPU:-1}
load_cpu=${LOAD_CPU:-0}
token=ceiling-bench-token
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rmdir /sys/fs/cgroup/cpu/voxgate-ceiling-$$-* /sys/fs/cgroup/voxgate-ceiling-$$-* 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stat() { { grep -E "^ +$2 +\|" "$1" 2>/dev/null || true; } | tail -1 | awk -F'|' '{gsub(/ /,"",$3); v=$3} END {print v+0}'; }
metric() { curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1==m {v=$2} END {printf "%d\n", v}'; }

# cgroup NAME: a cgroup limited to quota % of one CPU; prints its directory
# and the file of its throttling statistics.
cgroup() {
  local g
  if [ -w /sys/fs/cgroup/cpu ] && [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
    g=/sys/fs/cgroup/cpu/$1
    mkdir "$g"
    echo 100000 >"$g/cpu.cfs_period_us"
    echo $((quota * 1000)) >"$g/cpu.cfs_quota_us"
  elif grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
    g=/sys/fs/cgroup/$1
    mkdir "$g"
    echo "$((quota * 1000)) 100000" >"$g/cpu.max"
  else
    echo "no writable cgroup cpu controller" >&2
    exit 1
  fi
  echo "$g"
}
throttled() { awk '$1=="nr_throttled" {print $2}' "$1/cpu.stat"; }
periods() { awk '$1=="nr_periods" {print $2}' "$1/cpu.stat"; }

run() { # nodes rate
  local n=$1 rate=$2 d="$work/n$1-r$2" redis_port kam_port
  mkdir -p "$d/pcap"
  ln -sf /usr/share/sip-tester/*.pcap "$d/pcap/"
  local run_pids=() webs=() groups=()
  redis_port=$(free_port)
  taskset -c "$load_cpu" redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$d" --save "" --appendonly no >"$d/redis.log" 2>&1 &
  run_pids+=($!); pids+=($!)
  : >"$d/dispatcher.list"
  for i in $(seq "$n"); do
    local port web rtp g
    port=$(free_port); web=$(free_port)
    rtp=$((20000 + i * 4000))
    cat >"$d/node$i.yaml" <<YAML
log: {level: info, format: json}
sip:
  listen: [{transport: udp, addr: "127.0.0.1:$port"}]
  rtp_ports: "$rtp-$((rtp + 3999))"
web: {listen: "127.0.0.1:$web", api_token: $token}
data_dir: $d/data$i
cluster: {redis: "redis://127.0.0.1:$redis_port/0", node_id: n$i, advertise: "sip:127.0.0.1:$port"}
YAML
    echo "1 sip:127.0.0.1:$port" >>"$d/dispatcher.list"
    g=$(cgroup "voxgate-ceiling-$$-n$n-r$rate-$i")
    # The shell joins the cgroup, then execs the node pinned to its CPU.
    sh -c "echo \$\$ > $g/cgroup.procs && exec env GOMAXPROCS=1 taskset -c $node_cpu '$bin' run -config '$d/node$i.yaml'" >"$d/node$i.log" 2>&1 &
    run_pids+=($!); pids+=($!); webs+=("$web"); groups+=("$g")
  done
  kam_port=$(free_port)
  taskset -c "$load_cpu" kamailio -DD -E -f "$root/configs/cluster/kamailio.cfg" -Y "$d" -P "$d/kamailio.pid" \
    -A "LISTEN=udp:127.0.0.1:$kam_port" -A "LISTEN_TCP=tcp:127.0.0.1:$kam_port" -A "DS_LIST=\"$d/dispatcher.list\"" \
    -A "REDIS=\"name=vg;addr=127.0.0.1;port=$redis_port;db=0\"" -A CHILDREN=4 >"$d/kamailio.log" 2>&1 &
  run_pids+=($!); pids+=($!)
  sleep 3 # the nodes start, Kamailio's first probes
  local lt0=0 tk0=0 th0=0 pe0=0 w g
  for w in "${webs[@]}"; do
    lt0=$((lt0 + $(metric "$w" voxgate_clock_ticks_late_total)))
    tk0=$((tk0 + $(metric "$w" voxgate_clock_ticks_total)))
  done
  for g in "${groups[@]}"; do th0=$((th0 + $(throttled "$g"))); pe0=$((pe0 + $(periods "$g"))); done
  (cd "$d" && taskset -c "$load_cpu" sipp "127.0.0.1:$kam_port" -sf "$here/cluster-uac.xml" -s 9196 -r "$rate" -m $((rate * secs)) -l $((rate * 12)) \
    -nostdin -timeout $((secs + 60))s -i 127.0.0.1 -p 0 -trace_screen -screen_file sipp.screen \
    -max_socket 4000 >sipp.out 2>&1) || true
  local lt=0 tk=0 th=0 pe=0 ok fail i
  ok=$(stat "$d/sipp.screen" "Successful call")
  fail=$(stat "$d/sipp.screen" "Failed call")
  for i in $(seq 50); do # the last calls' end lines (a call sipp failed may end later)
    [ "$(cat "$d"/node*.log | grep -c '"msg":"call ended"')" -ge "$ok" ] && break
    sleep 0.2
  done
  for w in "${webs[@]}"; do
    lt=$((lt + $(metric "$w" voxgate_clock_ticks_late_total)))
    tk=$((tk + $(metric "$w" voxgate_clock_ticks_total)))
  done
  for g in "${groups[@]}"; do th=$((th + $(throttled "$g"))); pe=$((pe + $(periods "$g"))); done
  # Each call's end: its jitter (ms), packets received and lost.
  cat "$d"/node*.log | { grep '"msg":"call ended"' || true; } | sed -E 's/.*"rx_packets":([0-9]+).*"lost":(-?[0-9]+).*"jitter_ms":([0-9.e+-]+).*/\3 \1 \2/' |
    sort -g >"$d/calls"
  local p95 rx lost calls
  calls=$(wc -l <"$d/calls")
  p95=$(awk -v n="$calls" 'NR == int(n * 0.95 + 0.999) {print $1}' "$d/calls")
  rx=$(awk '{s += $2} END {printf "%d", s}' "$d/calls")
  lost=$(awk '{if ($3 > 0) s += $3} END {printf "%d", s}' "$d/calls")
  awk -v n="$n" -v r="$rate" -v ok="$ok" -v f="$fail" -v p95="${p95:-0}" -v rx="$rx" -v lost="$lost" -v lt=$((lt - lt0)) -v tk=$((tk - tk0)) \
    -v th=$((th - th0)) -v pe=$((pe - pe0)) -v q="$quota" -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
      loss = (rx + lost > 0 ? 100 * lost / (rx + lost) : 0); late = (tk > 0 ? 100 * lt / tk : 0); thr = (pe > 0 ? 100 * th / pe : 0)
      holds = (f == 0 && ok > 0 && p95 < 20 && loss < 1) ? "holds" : "FAILS"
      printf "%d node(s) x %d%% CPU: %3d calls/s (~%4d at once)  %5d ok %4d failed  jitter p95 %6.1f ms  lost %5.2f%%  late ticks %5.2f%%  throttled %5.1f%% of periods  load %s  %s\n",
        n, q, r, r * 8, ok, f, p95, loss, late, thr, load, holds }'
  for p in "${run_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${run_pids[@]}" 2>/dev/null || true
  for g in "${groups[@]}"; do rmdir "$g" 2>/dev/null || true; done
}

echo "nodes: GOMAXPROCS=1, CPU $node_cpu, $quota % of it each; Redis, Kamailio, sipp: CPU $load_cpu"
for n in 1 2; do
  for r in $rates; do
    run "$n" "$r" >"$work/line"
    cat "$work/line"
    if grep -q FAILS "$work/line"; then break; fi # the ceiling is behind: next setup
  done
done
