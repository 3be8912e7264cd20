#!/usr/bin/env bash
# Interleaved load pairs through the two Envoys of `bbr_load_stack`, with the CPU time each
# process spent per request, for docs/performance.md (## BBR).
#
#   bbr/examples/bbr_load_pairs.sh BODY.json [ROUNDS] [DURATION]
#
# Runs ROUNDS (default 2) pairs of `hey` runs, "plain" (Envoy alone, the client sets the
# routing header) then "bbr" (Envoy + BBR), DURATION each (default 10s), 8 connections.
# Environment: PLAIN_PID and BBR_ENVOY_PID (the two Envoys), BBR_PID (switchyard-bbr),
# STACK_PID (bbr_load_stack, i.e. the backend); PLAIN_URL and BBR_URL default to the
# --write-bootstraps ports. Per run it prints req/s, p50/p99, the status codes, the load average,
# and per process the CPU time (utime + stime from /proc; hey's from `time`) divided by the
# requests served.
set -euo pipefail
body=$1
rounds=${2:-2}
duration=${3:-10s}
plain_url=${PLAIN_URL:-http://127.0.0.1:18001/v1/chat/completions}
bbr_url=${BBR_URL:-http://127.0.0.1:18002/v1/chat/completions}
pids=("$PLAIN_PID" "$BBR_ENVOY_PID" "$BBR_PID" "$STACK_PID")
names=(envoy-plain envoy-bbr bbr backend)
tick_us=$((1000000 / $(getconf CLK_TCK)))

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() {
  local name=$1 url=$2
  shift 2
  local before=() after=() out
  for pid in "${pids[@]}"; do before+=("$(cpu_ticks "$pid")"); done
  # `time` reports hey's own CPU (user + system seconds) on stderr.
  local report hey_cpu
  report=$(mktemp)
  hey_cpu=$({ TIMEFORMAT='%U %S'; time hey -z "$duration" -c 8 -m POST -T application/json \
    "$@" -D "$body" "$url" >"$report"; } 2>&1)
  out=$(cat "$report")
  rm -f "$report"
  for pid in "${pids[@]}"; do after+=("$(cpu_ticks "$pid")"); done
  local served rps p50 p99 codes cpu=""
  served=$(echo "$out" | awk '/^  \[[0-9]+\]/ {n += $2} END {print n + 0}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '/ 50% in/ {print $3 * 1000 " ms"}')
  p99=$(echo "$out" | awk '/ 99% in/ {print $3 * 1000 " ms"}')
  codes=$(echo "$out" | awk '/^  \[[0-9]+\]/ {printf "%s%s ", $1, $2} /Error distribution/ {printf "ERRORS "}')
  for i in "${!pids[@]}"; do
    local used=$(((after[i] - before[i]) * tick_us))
    cpu+=" ${names[i]}=$((used / (served > 0 ? served : 1)))"
  done
  cpu+=" hey=$(echo "$hey_cpu" | awk -v n="$served" '{printf "%d", ($1 + $2) * 1e6 / (n > 0 ? n : 1)}')"
  echo "$name: ${rps} req/s, p50 ${p50}, p99 ${p99}, codes ${codes}| CPU µs/request:${cpu} | load $(cut -d' ' -f1 /proc/loadavg)"
}

for _ in $(seq 1 "$rounds"); do
  run plain "$plain_url" -H x-gateway-inference-model:model-a
  run bbr "$bbr_url"
done
