#!/usr/bin/env bash
# scripts/bench-cluster-analytics.sh: what the cluster view and the load per slot cost a
# release gateway. Point reads and single writes with the per-slot counting on and off
# (analytics.load_per_slot), alternating, three rounds; each with the gateway's CPU per
# request from /proc and the machine's busy cores just before it. Then the publisher:
# the idle gateway's CPU over 20 s publishing every second, against publishing once a
# minute.
#
#   ./setup.sh up && cargo build --release -p api-router && scripts/bench-cluster-analytics.sh
#   KEYS=2000 DUR=8 C=8 PREP=1   (PREP=0 skips writing the records)
#
# Needs wrk and jq; a gateway of its own on 127.0.0.1:18080.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(./setup.sh env 2>/dev/null)"
KEYS=${KEYS:-2000}; DUR=${DUR:-8}; C=${C:-8}
PORT=18080; URL=http://127.0.0.1:$PORT
CLK=$(getconf CLK_TCK)
trap '[[ -n ${GW:-} ]] && kill $GW 2>/dev/null' EXIT
idle() { local a b; a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); sleep 2; b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); echo "$a $b" | awk '{printf "%.2f", ($3-$1)/($4-$2)*2}'; }
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
start_gw() { # VAR=value ...
  [[ -n ${GW:-} ]] && { kill $GW; wait $GW 2>/dev/null || true; }
  env SHARDGATE__SERVER__WORKERS=2 "$@" RUST_LOG=warn target/release/api-router --listen 127.0.0.1:$PORT >.local/bench-cluster-analytics-gateway.log 2>&1 &
  GW=$!
  for _ in $(seq 300); do curl -fsS -m 2 $URL/api/health 2>/dev/null | jq -e '.healthy and ([.shards[].replicas[].gateway.takes_reads]|all)' >/dev/null 2>&1 && return; sleep 0.1; done
  echo "gateway not healthy"; tail .local/bench-cluster-analytics-gateway.log; exit 1
}
if [[ ${PREP:-1} == 1 ]]; then
  start_gw
  for b in $(seq 0 100 $((KEYS-1))); do
    recs=$(seq $b $((b+99)) | awk '{printf "%s{\"shard_key\":\"user_%d\",\"id\":\"rec_%d\",\"data\":{\"n\":%d}}", (NR>1?",":""), $1,$1,$1}')
    curl -fsS -o /dev/null -X POST $URL/api/bulk-write -H 'content-type: application/json' -d "{\"table\":\"users\",\"records\":[$recs]}"
  done
fi
run_wrk() { # label kind
  local label=$1 kind=$2 u0 u1 out rps n non2xx
  echo "idle before $label: $(idle) cores busy"
  u0=$(ticks $GW)
  out=$(KIND=$kind KEYS=$KEYS wrk -t1 -c$C -d${DUR}s -s scripts/wrk-cpu.lua $URL 2>&1)
  u1=$(ticks $GW)
  rps=$(awk '/^Requests\/sec:/{printf "%.0f",$2}' <<<"$out"); n=$(awk '/requests in/{print $1}' <<<"$out")
  non2xx=$(awk '/Non-2xx/{print $5}' <<<"$out")
  echo "$label: ${rps} req/s, gateway CPU $(awk -v a=$u0 -v b=$u1 -v n=$n -v c=$CLK 'BEGIN{printf "%.1f", (b-a)*1e6/c/n}') us/request, non-2xx ${non2xx:-0}"
}
for round in 1 2 3; do
  for on in true false; do
    start_gw SHARDGATE__ANALYTICS__LOAD_PER_SLOT=$on
    run_wrk "round $round read,  load_per_slot=$on " read
    run_wrk "round $round write, load_per_slot=$on " write
  done
done
publisher() { # label publish_ms
  start_gw SHARDGATE__ANALYTICS__PUBLISH_MS=$2 SHARDGATE__ANALYTICS__STALE_MS=$(( $2 * 2 ))
  sleep 3
  local u0 u1; u0=$(ticks $GW); sleep 20; u1=$(ticks $GW)
  echo "$1: idle gateway CPU $(awk -v a=$u0 -v b=$u1 -v c=$CLK 'BEGIN{printf "%.0f", (b-a)*1e6/c/20}') us/s"
}
for round in 1 2; do
  publisher "publishing every second  " 1000
  publisher "publishing once a minute " 60000
done
