#!/usr/bin/env bash
# scripts/bench-cpu-builds.sh: the gateway's CPU per request (utime + stime from /proc
# over a wrk run, divided by the requests completed) of two builds of the gateway, taking
# turns, ROUNDS rounds: a no-op, a replica point read, a single write, and a cached
# point read (a gateway with the cache on); the machine's busy cores (and idle share)
# just before each run.
#
#   ./setup.sh up && scripts/bench-cpu-builds.sh A_BIN B_BIN
#   KEYS=2000 DUR=8 ROUNDS=2 KINDS="noop read write cached" PREP=1   (PREP=0: records kept)
#
# Needs wrk and jq; a gateway of its own on 127.0.0.1:18080 (wrk -t1 -c8, 2 HTTP workers,
# as `scripts/bench.sh cpu`).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(./setup.sh env 2>/dev/null)"
A=${1:?the first gateway binary}; B=${2:?the second gateway binary}
KEYS=${KEYS:-2000}; DUR=${DUR:-8}; ROUNDS=${ROUNDS:-2}; KINDS=${KINDS:-noop read write cached}
PORT=18080; URL=http://127.0.0.1:$PORT
CLK=$(getconf CLK_TCK)
trap '[[ -n ${GW:-} ]] && kill $GW 2>/dev/null' EXIT
kill "$(cat .local/bench-cpu-builds.pid 2>/dev/null)" 2>/dev/null || true; sleep 0.5
busy() { local a b; a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); sleep 2; b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); echo "$a $b" | awk -v n="$(nproc)" '{b=($3-$1)/($4-$2); printf "%.2f cores busy, idle share %.2f", b*n, 1-b}'; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
start_gw() { # binary cache(true|false)
  [[ -n ${GW:-} ]] && { kill "$GW"; wait "$GW" 2>/dev/null || true; }
  env SHARDGATE__SERVER__WORKERS=2 SHARDGATE__CACHE__ENABLED="$2" RUST_LOG=warn "$1" --listen 127.0.0.1:$PORT >.local/bench-cpu-builds-gateway.log 2>&1 &
  GW=$!; echo $GW > .local/bench-cpu-builds.pid
  for _ in $(seq 300); do curl -fsS -m 2 $URL/api/health 2>/dev/null | jq -e '.healthy and ([.shards[].replicas[].gateway.takes_reads]|all)' >/dev/null 2>&1 && return; sleep 0.1; done
  echo "gateway not healthy"; tail .local/bench-cpu-builds-gateway.log; exit 1
}
if [[ ${PREP:-1} == 1 ]]; then
  start_gw "$A" false
  for b in $(seq 0 100 $((KEYS - 1))); do
    recs=$(seq "$b" $((b + 99)) | awk '{printf "%s{\"shard_key\":\"user_%d\",\"id\":\"rec_%d\",\"data\":{\"n\":%d}}", (NR>1?",":""), $1,$1,$1}')
    curl -fsS -o /dev/null -X POST $URL/api/bulk-write -H 'content-type: application/json' -d "{\"table\":\"users\",\"records\":[$recs]}"
  done
fi
run() { # label kind
  local u0 u1 out n
  echo "  before: $(busy)"
  u0=$(ticks "$GW")
  out=$(KIND=$2 KEYS=$KEYS wrk -t1 -c8 -d"${DUR}"s -s scripts/wrk-cpu.lua $URL 2>&1)
  u1=$(ticks "$GW")
  n=$(awk '/requests in/{print $1}' <<<"$out")
  echo "$1 $2: $(awk '/^Requests\/sec:/{printf "%.0f",$2}' <<<"$out") req/s, gateway CPU $(awk -v a="$u0" -v b="$u1" -v n="$n" -v c="$CLK" 'BEGIN{printf "%.1f", (b-a)*1e6/c/n}') us/request, non-2xx $(awk '/Non-2xx/{print $5}' <<<"$out" | grep . || echo 0)"
}
for round in $(seq "$ROUNDS"); do
  for label in A B; do
    bin=$A; [[ $label == B ]] && bin=$B
    echo "round $round, $label ($bin)"
    plain=0
    for kind in $KINDS; do
      [[ $kind == cached ]] && continue
      ((plain)) || { start_gw "$bin" false; plain=1; }
      run "$label" "$kind"
    done
    if [[ " $KINDS " == *" cached "* ]]; then
      start_gw "$bin" true
      KIND=cached KEYS=$KEYS wrk -t1 -c8 -d3s -s scripts/wrk-cpu.lua $URL >/dev/null 2>&1 # fills the cache
      run "$label" cached
    fi
  done
done
kill "$GW"
