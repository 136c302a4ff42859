#!/usr/bin/env bash
# Export of 100,000 records (issue 32): the gateway's peak RSS while it streams them,
# at full speed and to a slow client, and its rows/s against `COPY ... TO STDOUT` on
# one shard.
#
#   cargo build --release -p api-router -p shard-admin
#   eval "$(./setup.sh env)"
#   scripts/export-rss.sh target/release/api-router
#
# Runs on its own databases (sgbench_export on every primary and the metadata server),
# dropped at the end; the gateway listens on a port the system picks. Needs the
# topology `./setup.sh up` starts.
set -euo pipefail
BIN=${1:?usage: $0 PATH-TO-api-router}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DB=sgbench_export
RECORDS=${RECORDS:-100000}
PRIMARIES=(25432 25433 25434)
METADATA=25430
ADMIN=${ADMIN:-$ROOT/target/release/shard-admin}
[ -x "$ADMIN" ] || ADMIN=$ROOT/target/debug/shard-admin
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

(cd "$ROOT" && SHARDGATE__SERVER__WORKERS=2 RUST_LOG=info \
    exec "$BIN" --listen "127.0.0.1:0" >"$WORK/gateway.log" 2>&1) &
GATEWAY=$!
PID=$GATEWAY
PORT=""
for _ in $(seq 100); do
    PORT=$(grep -o 'listening on: 127.0.0.1:[0-9]*' "$WORK/gateway.log" | head -1 | cut -d: -f3 || true)
    [ -n "$PORT" ] && curl -sf "http://127.0.0.1:$PORT/api/health/live" >/dev/null && break
    sleep 0.1
done
URL=http://127.0.0.1:$PORT
hwm() { awk '/VmHWM/ {print $2}' "/proc/$PID/status"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }

# Records of about 300 bytes of JSON, 2,000 per bulk write.
python3 - "$WORK" "$RECORDS" <<'PY'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
for b in range(0, n, 2000):
    recs = [{"shard_key": f"user_{i % 5000}", "id": f"r{i}",
             "data": {"i": i, "name": f"user {i}", "email": f"user{i}@example.com",
                      "note": "x" * 200}} for i in range(b, min(n, b + 2000))]
    with open(f"{work}/bulk{b:07d}.json", "w") as f:
        json.dump({"table": "users", "records": recs}, f)
PY
for f in "$WORK"/bulk*.json; do
    curl -sf -o /dev/null -H 'content-type: application/json' --data-binary @"$f" "$URL/api/bulk-write"
    rm "$f"
done
echo "after writing $RECORDS records: VmHWM $(hwm) kB, VmRSS $(rss) kB"

# Samples VmRSS every 50 ms while a command runs; prints the largest.
sampled() {
    local peak=0 r
    "$@" &
    local job=$!
    while kill -0 "$job" 2>/dev/null; do
        r=$(rss); [ "$r" -gt "$peak" ] && peak=$r
        sleep 0.05
    done
    wait "$job"
    echo "$peak"
}

for format in ndjson csv; do
    accept=application/x-ndjson
    [ "$format" = csv ] && accept=text/csv
    start=$(date +%s.%N)
    peak=$(sampled curl -sf -H "accept: $accept" -o "$WORK/export.$format" "$URL/api/export?table=users")
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    lines=$(wc -l <"$WORK/export.$format")
    bytes=$(stat -c %s "$WORK/export.$format")
    echo "export $format: $lines lines, $bytes bytes in ${secs} s ($(echo "$RECORDS / $secs" | bc) records/s); peak VmRSS ${peak} kB; VmHWM $(hwm) kB"
done

# A slow client (1 MB/s): the gateway reads a page only when the client took the last.
# Meanwhile a writer updates records that exist throughout and adds and deletes others
# (issue #32's test at full size): afterwards every record that existed throughout
# must be in the export exactly once, and no record twice.
writer() {
    local round=0
    while [ ! -e "$WORK/stop" ]; do
        python3 - "$round" "$RECORDS" >"$WORK/churn.json" <<'PY'
import json, sys
r, n = int(sys.argv[1]), int(sys.argv[2])
recs = [{"shard_key": f"user_{(r * 97 + j * 31) % n % 5000}", "id": f"r{(r * 97 + j * 31) % n}",
         "data": {"i": (r * 97 + j * 31) % n, "round": r, "note": "y" * 200}} for j in range(50)]
recs += [{"shard_key": f"churn_{j}", "id": f"c{r}_{j}", "data": {"round": r}} for j in range(20)]
print(json.dumps({"table": "users", "records": recs}))
PY
        curl -sf -o /dev/null -H 'content-type: application/json' --data-binary @"$WORK/churn.json" "$URL/api/bulk-write"
        if [ "$round" -gt 0 ]; then
            for j in 0 1 2 3 4 5 6 7 8 9; do
                curl -sf -o /dev/null -X DELETE -H "x-shard-key: churn_$j" \
                    "$URL/api/delete?table=users&id=c$((round - 1))_$j" || true
            done
        fi
        round=$((round + 1))
        echo "$round" >"$WORK/rounds"
        sleep 0.1
    done
}
writer &
WRITER=$!
start=$(date +%s.%N)
peak=$(sampled curl -sf --limit-rate 1M -o "$WORK/slow.ndjson" "$URL/api/export?table=users")
secs=$(echo "$(date +%s.%N) - $start" | bc)
touch "$WORK/stop"
wait "$WRITER"
echo "export ndjson to a 1 MB/s client under writes ($(cat "$WORK/rounds") write rounds of 50 updates, 20 new records and 10 deletes): $(wc -l <"$WORK/slow.ndjson") lines in ${secs} s; peak VmRSS ${peak} kB; VmHWM $(hwm) kB"
python3 - "$WORK/slow.ndjson" "$RECORDS" <<'PY'
import collections, json, sys
path, n = sys.argv[1], int(sys.argv[2])
seen = collections.Counter()
end = None
for line in open(path):
    rec = json.loads(line)
    if "end" in rec:
        end = rec
        continue
    seen[(rec["shard_key"], rec["id"])] += 1
twice = [k for k, c in seen.items() if c > 1]
stable = sum(1 for i in range(n) if seen[(f"user_{i % 5000}", f"r{i}")] == 1)
churn = sum(1 for k in seen if k[0].startswith("churn_"))
print(f"check: {stable} of {n} records that existed throughout appear once; {churn} records written or deleted meanwhile appear; {len(twice)} appear twice; end line {'present' if end else 'MISSING'}")
sys.exit(0 if stable == n and not twice and end else 1)
PY

# COPY ... TO STDOUT of one shard's part of the table, the same columns, as CSV.
rows=$(psql -tA -p "${PRIMARIES[0]}" -d "$DB" -c "SELECT count(*) FROM records WHERE table_name = 'users'")
start=$(date +%s.%N)
psql -q -p "${PRIMARIES[0]}" -d "$DB" -c "COPY (SELECT shard_key, id, version, updated_at, data FROM records WHERE table_name = 'users' ORDER BY shard_key, id) TO STDOUT WITH (FORMAT csv)" >"$WORK/copy.csv"
secs=$(echo "$(date +%s.%N) - $start" | bc)
echo "COPY TO STDOUT, shard 0: $rows rows in ${secs} s ($(echo "$rows / $secs" | bc) rows/s)"
