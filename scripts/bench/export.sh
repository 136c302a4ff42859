# scripts/bench/export.sh: sourced by scripts/bench.sh (functions only). Export of a
# large table (`export`): RECORDS (100,000) records of about 300 bytes of JSON, the
# gateway's peak RSS while it streams them as NDJSON and CSV at full speed and to a 1 MB/s
# client under concurrent writes (every record that existed throughout must appear
# exactly once), and its rows/s against `COPY ... TO STDOUT` on one shard. On databases
# of its own (sgbench_export), with a gateway started for them.

# sampled CMD...: runs CMD, sampling the gateway's VmRSS every 50 ms; prints the largest.
sampled() {
    local peak=0 r job
    "$@" &
    job=$!
    while kill -0 "$job" 2>/dev/null; do
        r=$(rss_kib)
        ((r > peak)) && peak=$r
        sleep 0.05
    done
    wait "$job"
    echo "$peak"
}

# A writer until $1/stop exists: each round 50 updates of records that exist throughout,
# 20 new records and 10 deletes of the round before's.
export_writer() {
    local work=$1 records=$2 round=0 j
    while [[ ! -e $work/stop ]]; do
        python3 - "$round" "$records" >"$work/churn.json" <<'PY'
import json, sys
r, n = int(sys.argv[1]), int(sys.argv[2])
recs = [{"shard_key": f"user_{(r * 97 + j * 31) % n % 5000}", "id": f"r{(r * 97 + j * 31) % n}",
         "data": {"i": (r * 97 + j * 31) % n, "round": r, "note": "y" * 200}} for j in range(50)]
recs += [{"shard_key": f"churn_{j}", "id": f"c{r}_{j}", "data": {"round": r}} for j in range(20)]
print(json.dumps({"table": "users", "records": recs}))
PY
        curl -sf -o /dev/null -H 'content-type: application/json' --data-binary @"$work/churn.json" "$URL/api/bulk-write"
        if ((round > 0)); then
            for j in 0 1 2 3 4 5 6 7 8 9; do
                curl -sf -o /dev/null -X DELETE -H "x-shard-key: churn_$j" "$URL/api/delete?table=users&id=c$((round - 1))_$j" || true
            done
        fi
        round=$((round + 1))
        echo "$round" >"$work/rounds"
        sleep 0.1
    done
}

step_export() {
    local db=sgbench_export work=$OUT/export records=${RECORDS:-100000} f format accept t0 secs peak writer rows
    say "export: $records records as NDJSON and CSV, then to a 1 MB/s client under writes; COPY TO STDOUT"
    gateway_on_scratch "$db" export SHARDGATE__SERVER__WORKERS=2
    mkdir -p "$work"
    # Records of about 300 bytes of JSON, 2,000 per bulk write.
    python3 - "$work" "$records" <<'PY'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
for b in range(0, n, 2000):
    recs = [{"shard_key": f"user_{i % 5000}", "id": f"r{i}",
             "data": {"i": i, "name": f"user {i}", "email": f"user{i}@example.com",
                      "note": "x" * 200}} for i in range(b, min(n, b + 2000))]
    with open(f"{work}/bulk{b:07d}.json", "w") as f:
        json.dump({"table": "users", "records": recs}, f)
PY
    for f in "$work"/bulk*.json; do
        curl -sf -o /dev/null -H 'content-type: application/json' --data-binary @"$f" "$URL/api/bulk-write"
        rm "$f"
    done
    line "after writing $records records: VmHWM $(hwm_kib) kB, VmRSS $(rss_kib) kB"

    cmd export "curl -H 'accept: application/x-ndjson|text/csv' '$URL/api/export?table=users'; the same with --limit-rate 1M under writes"
    for format in ndjson csv; do
        accept=application/x-ndjson
        [[ $format == ndjson ]] || accept=text/csv
        t0=$EPOCHREALTIME
        peak=$(sampled curl -sf -H "accept: $accept" -o "$work/export.$format" "$URL/api/export?table=users")
        secs=$(calc "$EPOCHREALTIME - $t0" 3)
        line "export $format: $(wc -l <"$work/export.$format") lines, $(stat -c %s "$work/export.$format") bytes in $secs s ($(calc "$records / $secs" 0) records/s); peak VmRSS $peak kB; VmHWM $(hwm_kib) kB"
    done

    # A slow client (1 MB/s): the gateway reads a page only when the client took the last.
    export_writer "$work" "$records" &
    writer=$!
    BG_PIDS+=("$writer")
    t0=$EPOCHREALTIME
    peak=$(sampled curl -sf --limit-rate 1M -o "$work/slow.ndjson" "$URL/api/export?table=users")
    secs=$(calc "$EPOCHREALTIME - $t0" 3)
    touch "$work/stop"
    wait "$writer"
    line "export ndjson to a 1 MB/s client under writes ($(cat "$work/rounds") write rounds of 50 updates, 20 new records and 10 deletes): $(wc -l <"$work/slow.ndjson") lines in $secs s; peak VmRSS $peak kB; VmHWM $(hwm_kib) kB"
    python3 - "$work/slow.ndjson" "$records" <<'PY' | tee -a "$OUT/$STEP.txt" || die "export: a record that existed throughout is missing or doubled"
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
    rows=$(sql "${PRIMARIES[0]}" "$db" "SELECT count(*) FROM records WHERE table_name = 'users'")
    cmd export-copy "psql -p ${PRIMARIES[0]} -d $db -c \"COPY (SELECT shard_key, id, version, updated_at, data FROM records WHERE table_name = 'users' ORDER BY shard_key, id) TO STDOUT WITH (FORMAT csv)\""
    t0=$EPOCHREALTIME
    sql "${PRIMARIES[0]}" "$db" "COPY (SELECT shard_key, id, version, updated_at, data FROM records WHERE table_name = 'users' ORDER BY shard_key, id) TO STDOUT WITH (FORMAT csv)" >"$work/copy.csv"
    secs=$(calc "$EPOCHREALTIME - $t0" 3)
    line "COPY TO STDOUT, shard 0: $rows rows in $secs s ($(calc "$rows / $secs" 0) rows/s)"
    rm -rf "$work"
    back_to_plain
}
