#!/usr/bin/env bash
# Peak RSS of a gateway serving parallel lists of large records (issue 28, finding 3):
# 150 records of 900 KB under one key, then 4 parallel fan-out lists of limit=1000,
# then 4 parallel keyed ones; the gateway's VmHWM (/proc/PID/status) before and after.
#
#   eval "$(./setup.sh env)"
#   scripts/read-rss.sh target/release/api-router
#
# Runs on its own databases (sgbench_readrss on every primary and the metadata
# server), dropped at the end; needs the topology `./setup.sh up` starts.
set -euo pipefail
BIN=${1:?usage: $0 PATH-TO-api-router}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DB=sgbench_readrss
PORT=${PORT:-18099}
PRIMARIES=(25432 25433 25434)
METADATA=25430
ADMIN=${ADMIN:-$ROOT/target/debug/shard-admin}
export PGUSER=$SHARDGATE__DATABASE__USER PGPASSWORD=$SHARDGATE__DATABASE__PASSWORD PGHOST=127.0.0.1
export SHARDGATE__DATABASE__DBNAME=$DB SHARDGATE__METADATA__DBNAME=$DB
WORK=$(mktemp -d)
GATEWAY=""

drop() {
    [ -n "$GATEWAY" ] && kill "$GATEWAY" 2>/dev/null && wait "$GATEWAY" 2>/dev/null || true
    for p in "${PRIMARIES[@]}" $METADATA; do
        psql -q -p "$p" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
    done
}
trap 'drop; rm -rf "$WORK"' EXIT

drop
for p in "${PRIMARIES[@]}" $METADATA; do
    psql -q -p "$p" -d postgres -c "CREATE DATABASE $DB" >/dev/null
done
(cd "$ROOT" && "$ADMIN" migrate >/dev/null && "$ADMIN" init >/dev/null)
sleep 2 # the replicas replay the new database

(cd "$ROOT" && SHARDGATE__SERVER__WORKERS=2 RUST_LOG=warn \
    exec "$BIN" --listen "127.0.0.1:$PORT" >"$WORK/gateway.log" 2>&1) &
GATEWAY=$!
PID=$GATEWAY
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/api/health/live" >/dev/null && break
    sleep 0.1
done
hwm() { awk '/VmHWM/ {print $2}' "/proc/$PID/status"; }

python3 -c "import sys; sys.stdout.write('x' * 900000)" >"$WORK/filler"
for i in $(seq -w 0 149); do
    printf '{"table":"products","id":"p%s","data":{"s":"%s"}}' "$i" "$(cat "$WORK/filler")" >"$WORK/r$i.json"
done
ls "$WORK"/r*.json | xargs -P4 -I{} curl -sf -o /dev/null -H 'x-shard-key: big' \
    -H 'content-type: application/json' --data-binary @{} "http://127.0.0.1:$PORT/api/write"
rm "$WORK"/r*.json
curl -sf -o /dev/null "http://127.0.0.1:$PORT/api/read?table=products&limit=1"
echo "after writes: VmHWM $(hwm) kB"

for kind in fan-out keyed; do
    header=()
    [ "$kind" = keyed ] && header=(-H 'x-shard-key: big')
    for n in 1 2 3 4; do
        curl -sf "${header[@]}" -o "$WORK/$kind$n" -w "%{size_download}\n" \
            "http://127.0.0.1:$PORT/api/read?table=products&limit=1000" &
    done | sort | uniq -c | sed "s/^/$kind answers (count, bytes): /"
    echo "after 4 parallel $kind lists: VmHWM $(hwm) kB"
done
