#!/usr/bin/env bash
# Capacity of 1 and of 2 voxgate nodes behind Kamailio (configs/cluster),
# sharing a Redis, measured with sipp (README: "More than one machine").
#
#   cmd/voxgate/testdata/cluster-bench.sh [path/to/voxgate]
#
# For NODES=1 and then NODES=2 it starts redis-server, the nodes and
# Kamailio (the shipped kamailio.cfg) on loopback ports, then sends the
# same load through Kamailio: calls to the echo (9196) that play sipp's
# G.711 pcap (cluster-uac.xml: uac_pcap following Kamailio's Record-Route,
# about 8 s of audio each), at RATE calls per second
# for SECONDS, at most LIMIT at once. It prints calls ok and failed and the
# CPU each node used. On one machine the nodes share its cores: the number
# that matters is calls per CPU second, and whether 2 nodes fail fewer calls
# at a rate 1 node cannot carry; run the nodes on separate machines for the
# real thing (set the addresses in dispatcher.list).
# Tunables: RATE (50), SECONDS_PER_RUN (30), LIMIT (RATE*10).
# Needs: redis-server, kamailio + kamailio-redis-modules, sip-tester.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=$(readlink -f "${1:-bin/voxgate}")
rate=${RATE:-50}
secs=${SECONDS_PER_RUN:-30}
limit=${LIMIT:-$((rate * 10))}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stat() { grep -E "^ +$2 +\|" "$1" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3+0}'; }
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }

bench() { # nodes
  local n=$1 d="$work/n$1" redis_port kam_port
  mkdir -p "$d/pcap"
  ln -sf /usr/share/sip-tester/*.pcap "$d/pcap/"
  local run_pids=()
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$d" --save "" --appendonly no >"$d/redis.log" 2>&1 &
  run_pids+=($!); pids+=($!)
  : >"$d/dispatcher.list"
  local node_pids=()
  for i in $(seq "$n"); do
    local port rtp
    port=$(free_port)
    rtp=$((20000 + i * 4000))
    cat >"$d/node$i.yaml" <<YAML
log: {level: warn}
sip:
  listen: [{transport: udp, addr: "127.0.0.1:$port"}]
  rtp_ports: "$rtp-$((rtp + 3999))"
web: {listen: "127.0.0.1:0"}
data_dir: $d/data$i
cluster: {redis: "redis://127.0.0.1:$redis_port/0", node_id: n$i, advertise: "sip:127.0.0.1:$port"}
YAML
    echo "1 sip:127.0.0.1:$port" >>"$d/dispatcher.list"
    "$bin" run -config "$d/node$i.yaml" >"$d/node$i.log" 2>&1 &
    node_pids+=($!); run_pids+=($!); pids+=($!)
  done
  kam_port=$(free_port)
  kamailio -DD -E -f "$root/configs/cluster/kamailio.cfg" -Y "$d" -P "$d/kamailio.pid" \
    -A "LISTEN=udp:127.0.0.1:$kam_port" -A "DS_LIST=\"$d/dispatcher.list\"" \
    -A "REDIS=\"name=vg;addr=127.0.0.1;port=$redis_port;db=0\"" -A CHILDREN=8 >"$d/kamailio.log" 2>&1 &
  run_pids+=($!); pids+=($!)
  sleep 3 # the nodes start, Kamailio's first probes
  local c0=() c1=() t0 t1
  for p in "${node_pids[@]}"; do c0+=("$(cpu "$p")"); done
  t0=$(date +%s.%N)
  (cd "$d" && sipp "127.0.0.1:$kam_port" -sf "$here/cluster-uac.xml" -s 9196 -r "$rate" -m $((rate * secs)) -l "$limit" \
    -nostdin -timeout $((secs + 90))s -i 127.0.0.1 -p 0 -trace_screen -screen_file sipp.screen \
    -max_socket 4000 >sipp.out 2>&1) || true
  t1=$(date +%s.%N)
  for p in "${node_pids[@]}"; do c1+=("$(cpu "$p")"); done
  local ok fail used=0
  ok=$(stat "$d/sipp.screen" "Successful call")
  fail=$(stat "$d/sipp.screen" "Failed call")
  for i in "${!node_pids[@]}"; do used=$(awk -v a="$used" -v b="${c1[$i]}" -v c="${c0[$i]}" 'BEGIN{print a+b-c}'); done
  awk -v n="$n" -v r="$rate" -v ok="$ok" -v f="$fail" -v t0="$t0" -v t1="$t1" -v u="$used" \
    'BEGIN { printf "%d node(s): %4d calls/s offered  %6d ok  %5d failed  %6.1f s  nodes CPU %6.1f s (%.1f calls per CPU second)\n", n, r, ok, f, t1-t0, u, (u>0? ok/u : 0) }'
  for p in "${run_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${run_pids[@]}" 2>/dev/null || true
}

bench 1
bench 2
