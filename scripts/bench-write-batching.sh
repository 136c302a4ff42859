#!/usr/bin/env bash
# scripts/bench-write-batching.sh: single writes through a release gateway with group
# commit on and off (database.batch_writes), a no-op, and pgbench running the same upsert
# (scripts/bench/write.sql) on the same primaries with as many clients, alternating, two
# rounds at each client count; each with the gateway's CPU per request from /proc and
# the machine's busy cores just before it, and the mean group size from /metrics. For
# every run, what the whole machine spent per request while it ran (from /proc/stat),
# split into the gateway, PostgreSQL (every postgres process, with the backends that
# ended, through their postmaster's children's time) and the rest (the load generator,
# the HA keepers, everything else): on a saturated machine throughput follows it.
#
#   ./setup.sh up && cargo build --release -p api-router && scripts/bench-write-batching.sh
#   KEYS=10000 DUR=10 CONNS="1 16 64" PREP=1   (PREP=0 keeps sgbench_rec and the records)
#
# Needs wrk, jq and pgbench; a gateway of its own on 127.0.0.1:18080.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(./setup.sh env 2>/dev/null)"
PGPASSWORD=$(grep '^SHARDGATE_PG_SUPERUSER_PASSWORD=' .local/credentials.env | cut -d= -f2-); export PGPASSWORD
KEYS=${KEYS:-10000}; DUR=${DUR:-10}; CONNS=${CONNS:-1 16 64}
PORT=18080; URL=http://127.0.0.1:$PORT
PRIMARIES=(25432 25433 25434)
CLK=$(getconf CLK_TCK)
trap '[[ -n ${GW:-} ]] && kill $GW 2>/dev/null' EXIT
kill "$(cat .local/bench-write-batching.pid 2>/dev/null)" 2>/dev/null || true; sleep 0.5
idle() { local a b; a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); sleep 2; b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); echo "$a $b" | awk '{printf "%.2f", ($3-$1)/($4-$2)*2}'; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# Busy and total ticks of the whole machine.
machine() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
# Ticks of every postgres process, with their children's (a postmaster's reaped backends).
pg_ticks() {
  # cat fails on a process that ended since the glob: what it read still counts.
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk '$2 == "(postgres)" { t += $14 + $15 + $16 + $17 } END { print t + 0 }'
}
# "label: busy cores during; µs per request: machine, gateway, postgres, rest", from the
# readings before ($1: machine busy total, $2: gateway, $3: postgres) and the requests.
spent() {
  local m0=$1 g0=$2 p0=$3 n=$4 m1 g1 p1
  m1=$(machine); g1=${GW:+$(ticks "$GW")}; p1=$(pg_ticks)
  awk -v m0="$m0" -v m1="$m1" -v g0="${g0:-0}" -v g1="${g1:-0}" -v p0="$p0" -v p1="$p1" -v n="$n" -v c="$CLK" '
    BEGIN { split(m0, a, " "); split(m1, b, " ")
      busy = b[1] - a[1]; cores = busy / (b[2] - a[2]) * 2; g = g1 - g0; p = p1 - p0
      printf "  machine %.2f cores busy during; CPU per request: machine %.1f us = gateway %.1f + postgres %.1f + rest %.1f\n",
        cores, busy*1e6/c/n, g*1e6/c/n, p*1e6/c/n, (busy-g-p)*1e6/c/n }'
}
start_gw() {
  [[ -n ${GW:-} ]] && { kill "$GW"; wait "$GW" 2>/dev/null || true; }
  env SHARDGATE__SERVER__WORKERS=2 SHARDGATE__DATABASE__BATCH_WRITES="$1" RUST_LOG=warn target/release/api-router --listen 127.0.0.1:$PORT >.local/bench-write-batching-gateway.log 2>&1 &
  GW=$!; echo $GW > .local/bench-write-batching.pid
  for _ in $(seq 300); do curl -fsS -m 2 $URL/api/health 2>/dev/null | jq -e '.healthy' >/dev/null 2>&1 && return; sleep 0.1; done
  echo "gateway not healthy"; tail .local/bench-write-batching-gateway.log; exit 1
}
# Mean writes per group, from the gateway's /metrics (kind write).
group_size() { curl -fsS $URL/metrics | awk '/^shardgate_batch_size_sum\{kind="write"/{s+=$NF} /^shardgate_batch_size_count\{kind="write"/{c+=$NF} END{if(c>0) printf "%.1f writes a group", s/c; else printf "no groups"}'; }
per_shard=$(((KEYS + 2) / 3))
if [[ ${PREP:-1} == 1 ]]; then
  for p in "${PRIMARIES[@]}"; do
    psql -X -q -h 127.0.0.1 -p "$p" -U postgres -d postgres -c "DROP DATABASE IF EXISTS sgbench_rec" -c "CREATE DATABASE sgbench_rec" >/dev/null
    pg_dump -h 127.0.0.1 -p "$p" -U postgres -s -O -x shardgate | psql -X -q -h 127.0.0.1 -p "$p" -U postgres sgbench_rec >/dev/null
    psql -X -q -h 127.0.0.1 -p "$p" -U postgres sgbench_rec -v keys="$per_shard" -f scripts/bench/write-prefill.sql >/dev/null
  done
  # The gateway's side written once too, so both sides' upserts are updates.
  start_gw false
  KEYS=$KEYS wrk -t2 -c16 -d"$((DUR * 2))"s -s scripts/wrk-write.lua $URL >/dev/null
fi
run_wrk() { # label, then wrk's arguments
  local label=$1 u0 u1 out rps n non2xx; shift
  local m0 p0
  echo "idle before $label: $(idle) cores busy"
  u0=$(ticks "$GW"); m0=$(machine); p0=$(pg_ticks)
  out=$(KEYS=$KEYS wrk -t"$((C < 2 ? 1 : 2))" -c"$C" -d"${DUR}"s --latency "$@" 2>&1)
  u1=$(ticks "$GW")
  rps=$(awk '/^Requests\/sec:/{printf "%.0f",$2}' <<<"$out"); n=$(awk '/requests in/{print $1}' <<<"$out")
  non2xx=$(awk '/Non-2xx/{print $5}' <<<"$out")
  echo "$label c=$C: ${rps} req/s, p50 $(awk '$1=="50%"{print $2}' <<<"$out"), gateway CPU $(awk -v a="$u0" -v b="$u1" -v n="$n" -v c="$CLK" 'BEGIN{printf "%.1f", (b-a)*1e6/c/n}') us/request, non-2xx ${non2xx:-0}"
  spent "$m0" "$u0" "$p0" "$n"
}
run_pgb() {
  echo "idle before pgbench: $(idle) cores busy"
  local per=$((C / 3)) extra=$((C % 3)) i=0 tot=0 pids=() p n m0 p0 done=0
  m0=$(machine); p0=$(pg_ticks)
  for p in "${PRIMARIES[@]}"; do
    n=$per; ((i < extra)) && n=$((n + 1)); i=$((i + 1))
    ((n > 0)) || continue
    pgbench -h 127.0.0.1 -p "$p" -U postgres -c "$n" -j 1 -n -M prepared -T "$DUR" -D keys="$per_shard" -f scripts/bench/write.sql sgbench_rec >".local/bench-write-batching-pgbench-$p.log" 2>&1 & pids+=($!)
  done
  wait "${pids[@]}"
  for p in "${PRIMARIES[@]:0:$((C < 3 ? C : 3))}"; do
    tot=$(awk -v t="$tot" '/^tps = /{printf "%.0f", t+$3}' ".local/bench-write-batching-pgbench-$p.log")
    done=$(awk -v t="$done" '/number of transactions actually processed/{split($NF, a, "/"); print t + a[1]}' ".local/bench-write-batching-pgbench-$p.log")
  done
  echo "pgbench upsert on the primaries c=$C: $tot tps"
  GW='' spent "$m0" "" "$p0" "$done"
}
for C in $CONNS; do
  for _round in 1 2; do
    start_gw true;  run_wrk "write grouped  " -s scripts/wrk-write.lua $URL; echo "  $(group_size)"
    start_gw false; run_wrk "write alone    " -s scripts/wrk-write.lua $URL
    run_wrk "no-op          " $URL/api/health/live
    run_pgb
  done
done
kill "$GW"
