#!/usr/bin/env bash
# SIP load with sipp against voxgate on its embedded default config
# (what `make run` starts): REGISTER with digest auth at 1,000/s for 30 s,
# then INVITE/BYE calls to the echo extension at 200/s for 30 s.
#
#   cmd/voxgate/testdata/load.sh [path/to/voxgate]
#
# Set VOXGATE_ADDR=host:port to load an already running voxgate instead.
# Tunables: REG_RATE (1000), CALL_RATE (200), SECONDS (30).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-bin/voxgate}
addr=${VOXGATE_ADDR:-}
reg_rate=${REG_RATE:-1000}
call_rate=${CALL_RATE:-200}
secs=${SECONDS_PER_RUN:-30}
work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "$addr" ]; then
  addr=127.0.0.1:5060
  "$bin" >"$work/voxgate.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do grep -q "voxgate started" "$work/voxgate.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "voxgate started" "$work/voxgate.log" || { cat "$work/voxgate.log"; echo "voxgate did not start" >&2; exit 1; }
fi

# sipp's final statistics: the cumulative column of a counter line.
stat() { grep -E "^ +$2 +\|" "$1" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3+0}'; }

# CPU seconds (user+system) voxgate has used so far; 0 when not started here.
cpu() {
  if [ -n "$pid" ] && [ -r "/proc/$pid/stat" ]; then
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$pid/stat"
  else
    echo 0
  fi
}

run() { # name rate total scenario-args...
  local name=$1 rate=$2 total=$3; shift 3
  local t0 t1 c0 c1
  c0=$(cpu)
  t0=$(date +%s.%N)
  (cd "$work" && sipp "$@" "$addr" -r "$rate" -m "$total" -l $((rate * 4)) -nostdin -timeout $((secs + 60))s \
      -i 127.0.0.1 -p 0 -trace_screen -screen_file "$name.screen" -max_socket 4000 >"$name.out" 2>&1) || true
  t1=$(date +%s.%N)
  c1=$(cpu)
  local ok fail
  ok=$(stat "$work/$name.screen" "Successful call")
  fail=$(stat "$work/$name.screen" "Failed call")
  awk -v n="$name" -v r="$rate" -v ok="$ok" -v f="$fail" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" \
    'BEGIN { printf "%-9s target %5d/s  %6d ok  %4d failed  %6.1f s  achieved %7.1f/s  voxgate CPU %5.1f%% of one core\n", n, r, ok, f, t1-t0, ok/(t1-t0), 100*(c1-c0)/(t1-t0) }' 
  [ "$fail" -eq 0 ] && [ "$ok" -eq "$total" ]
}

status=0
run register "$reg_rate" $((reg_rate * secs)) -sf "$here/sipp/register.xml" -s alice -au alice -ap alice-secret || status=1
run invite "$call_rate" $((call_rate * secs)) -sn uac -s 9196 || status=1
exit $status
