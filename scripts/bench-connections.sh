#!/usr/bin/env bash
# scripts/bench-connections.sh: replica point reads through one release gateway at 16
# and at 1,000 client connections, one right after the other, then no-ops
# (/api/health/live, the HTTP floor) the same way, two rounds; each run with its rate,
# p50 and p99, wrk's socket errors, the gateway's CPU per request from /proc and the
# machine's busy cores (and idle share) just before it.
#
#   ./setup.sh up && cargo build --release -p api-router && scripts/bench-connections.sh
#   KEYS=2000 DUR=10 CONNS="16 1000" PREP=1   (PREP=0 keeps the records already written)
#   GATEWAY_BIN=path/to/api-router            (another build)
#
# Needs wrk and jq; a gateway of its own on 127.0.0.1:18080. Raises its open files to
# CONNS' largest plus room (the gateway inherits it).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(./setup.sh env 2>/dev/null)"
KEYS=${KEYS:-2000}; DUR=${DUR:-10}; CONNS=${CONNS:-16 1000}
GATEWAY_BIN=${GATEWAY_BIN:-target/release/api-router}
PORT=18080; URL=http://127.0.0.1:$PORT
CLK=$(getconf CLK_TCK)
most=$(tr ' ' '\n' <<<"$CONNS" | sort -n | tail -1)
ulimit -n "$((most * 2 + 1024))"
trap '[[ -n ${GW:-} ]] && kill $GW 2>/dev/null' EXIT
kill "$(cat .local/bench-connections.pid 2>/dev/null)" 2>/dev/null || true; sleep 0.5
busy() { local a b; a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); sleep 2; b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); echo "$a $b" | awk -v n="$(nproc)" '{b=($3-$1)/($4-$2); printf "%.2f cores busy, idle share %.2f", b*n, 1-b}'; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
start_gw() {
  env SHARDGATE__SERVER__WORKERS=2 RUST_LOG=warn "$GATEWAY_BIN" --listen 127.0.0.1:$PORT >.local/bench-connections-gateway.log 2>&1 &
  GW=$!; echo $GW > .local/bench-connections.pid
  for _ in $(seq 300); do curl -fsS -m 2 $URL/api/health 2>/dev/null | jq -e '.healthy and ([.shards[].replicas[].gateway.takes_reads]|all)' >/dev/null 2>&1 && return; sleep 0.1; done
  echo "gateway not healthy"; tail .local/bench-connections-gateway.log; exit 1
}
start_gw
if [[ ${PREP:-1} == 1 ]]; then
  for b in $(seq 0 100 $((KEYS - 1))); do
    recs=$(seq "$b" $((b + 99)) | awk '{printf "%s{\"shard_key\":\"user_%d\",\"id\":\"rec_%d\",\"data\":{\"n\":%d,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}", (NR>1?",":""), $1,$1,$1}')
    curl -fsS -o /dev/null -X POST $URL/api/bulk-write -H 'content-type: application/json' -d "{\"table\":\"users\",\"records\":[$recs]}"
  done
  sleep 2
fi
# A 10 s wrk timeout: a request stalled past wrk's default 2 s counts in the latency
# (and p99) rather than vanishing into "timeout".
run_wrk() { # label, then wrk's target
  local label=$1 u0 u1 out rps n; shift
  echo "before $label c=$C: $(busy)"
  u0=$(ticks "$GW")
  out=$(KEYS=$KEYS wrk -t2 -c"$C" -d"${DUR}"s --timeout 10s --latency "$@" 2>&1)
  u1=$(ticks "$GW")
  rps=$(awk '/^Requests\/sec:/{printf "%.0f",$2}' <<<"$out"); n=$(awk '/requests in/{print $1}' <<<"$out")
  echo "$label c=$C: ${rps} req/s, p50 $(awk '$1=="50%"{print $2}' <<<"$out"), p99 $(awk '$1=="99%"{print $2}' <<<"$out"), gateway CPU $(awk -v a="$u0" -v b="$u1" -v n="$n" -v c="$CLK" 'BEGIN{printf "%.1f", (b-a)*1e6/c/n}') us/request, non-2xx $(awk '/Non-2xx/{print $5}' <<<"$out" | grep . || echo 0), $(grep -o 'Socket errors:.*' <<<"$out" || echo 'no socket errors')"
}
for round in 1 2; do
  echo "round $round"
  for C in $CONNS; do run_wrk read -s scripts/wrk-read.lua $URL; done
  for C in $CONNS; do run_wrk no-op $URL/api/health/live; done
done
echo "gateway's open connections after the runs: $(ls /proc/"$GW"/fd | wc -l) descriptors"
kill "$GW"
