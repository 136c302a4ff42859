#!/usr/bin/env bash
# scripts/bench-read-batching.sh: point reads through a release gateway with batching on
# and off (database.batch_point_reads), a no-op, and pgbench -S on the same replicas,
# alternating, two rounds; each with the gateway's CPU per request from /proc and the
# machine's busy cores just before it.
#
#   ./setup.sh up && cargo build --release -p api-router && scripts/bench-read-batching.sh
#   KEYS=2000 DUR=10 C=16 PREP=1   (PREP=0 skips making sgbench_pgb and the records)
#
# Needs wrk, jq and pgbench; a gateway of its own on 127.0.0.1:18080.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(./setup.sh env 2>/dev/null)"
PGPASSWORD=$(grep '^SHARDGATE_PG_SUPERUSER_PASSWORD=' .local/credentials.env | cut -d= -f2-); export PGPASSWORD
KEYS=${KEYS:-2000}; DUR=${DUR:-10}; C=${C:-16}
PORT=18080; URL=http://127.0.0.1:$PORT
CLK=$(getconf CLK_TCK)
trap '[[ -n ${GW:-} ]] && kill $GW 2>/dev/null' EXIT
kill $(cat .local/bench-read-batching.pid 2>/dev/null) 2>/dev/null || true; sleep 0.5
idle() { local a b; a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); sleep 2; b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); echo "$a $b" | awk '{printf "%.2f", ($3-$1)/($4-$2)*2}'; }
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
start_gw() {
  [[ -n ${GW:-} ]] && { kill $GW; wait $GW 2>/dev/null || true; }
  env SHARDGATE__SERVER__WORKERS=2 SHARDGATE__DATABASE__BATCH_POINT_READS=$1 RUST_LOG=warn target/release/api-router --listen 127.0.0.1:$PORT >.local/bench-read-batching-gateway.log 2>&1 &
  GW=$!; echo $GW > .local/bench-read-batching.pid
  for i in $(seq 300); do curl -fsS -m 2 $URL/api/health 2>/dev/null | jq -e '.healthy and ([.shards[].replicas[].gateway.takes_reads]|all)' >/dev/null 2>&1 && return; sleep 0.1; done
  echo "gateway not healthy"; tail .local/bench-read-batching-gateway.log; exit 1
}
if [[ ${PREP:-1} == 1 ]]; then
  for p in 25432 25433 25434; do
    psql -X -q -h 127.0.0.1 -p $p -U postgres -d postgres -c "DROP DATABASE IF EXISTS sgbench_pgb" -c "CREATE DATABASE sgbench_pgb" >/dev/null
    pgbench -h 127.0.0.1 -p $p -U postgres -i -s 1 -q sgbench_pgb >/dev/null 2>&1
  done
  start_gw true
  for b in $(seq 0 100 $((KEYS-1))); do
    recs=$(seq $b $((b+99)) | awk '{printf "%s{\"shard_key\":\"user_%d\",\"id\":\"rec_%d\",\"data\":{\"n\":%d,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}", (NR>1?",":""), $1,$1,$1}')
    curl -fsS -o /dev/null -X POST $URL/api/bulk-write -H 'content-type: application/json' -d "{\"table\":\"users\",\"records\":[$recs]}"
  done
  sleep 2
fi
run_wrk() { # label batch path-script
  local label=$1 u0 u1 out; shift
  echo "idle before $label: $(idle) cores busy"
  u0=$(ticks $GW)
  out=$(KEYS=$KEYS wrk -t2 -c$C -d${DUR}s "$@" 2>&1)
  u1=$(ticks $GW)
  local rps n
  rps=$(awk '/^Requests\/sec:/{printf "%.0f",$2}' <<<"$out"); n=$(awk '/requests in/{print $1}' <<<"$out")
  local non2xx; non2xx=$(awk '/Non-2xx/{print $5}' <<<"$out"); 
  echo "$label: ${rps} req/s, gateway CPU $(awk -v a=$u0 -v b=$u1 -v n=$n -v c=$CLK 'BEGIN{printf "%.1f", (b-a)*1e6/c/n}') us/request, non-2xx ${non2xx:-0}"
}
run_pgb() {
  echo "idle before pgbench: $(idle) cores busy"
  local per=$((C/3)) extra=$((C%3)) i=0 tot=0 pids=()
  for p in 25532 25533 25534; do
    n=$per; ((i < extra)) && n=$((n+1)); i=$((i+1))
    pgbench -h 127.0.0.1 -p $p -U postgres -c $n -j 1 -S -n -M prepared -T $DUR sgbench_pgb >.local/bench-read-batching-pgbench-$p.log 2>&1 & pids+=($!)
  done
  wait "${pids[@]}"
  for p in 25532 25533 25534; do tot=$(awk -v t=$tot '/^tps = /{printf "%.0f", t+$3}' .local/bench-read-batching-pgbench-$p.log); done
  echo "pgbench -S on the replicas, $C clients: $tot tps"
}
for round in 1 2; do
  start_gw true;  run_wrk "read batched   " -s scripts/wrk-read.lua $URL
  start_gw false; run_wrk "read unbatched " -s scripts/wrk-read.lua $URL
  run_wrk "no-op          " $URL/api/health/live
  run_pgb
done
kill $GW
