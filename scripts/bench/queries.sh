# scripts/bench/queries.sh: sourced by scripts/bench.sh (functions only). Queries over a
# large table (`queries`): RECORDS (300,000) records on the three shards, a filtered,
# sorted page (`POST /api/query`) measured without an index, then with one built online
# through `POST /api/indexes` (its build time too), each at 1 and 8 connections with the
# CPU per request split between the gateway and PostgreSQL; then the gateway's memory
# while it merges pages of 10,000 records (one walk of every record, then 4 at once),
# every walk checked to see each record exactly once. On databases of its own
# (sgbench_query), with a gateway started for them.

# query_walk LIMIT OUT: every page of all records by score, LIMIT a page, into OUT as
# "pages records distinct".
query_walk() {
    python3 - "$URL" "$1" >"$2" <<'PY'
import json, sys, urllib.request
url, limit = sys.argv[1], int(sys.argv[2])
body = {"table": "events", "sort": [{"field": "score", "order": "desc"}],
        "fields": ["score"], "limit": limit}
pages, ids = 0, []
while True:
    req = urllib.request.Request(url + "/api/query", json.dumps(body).encode(),
                                 {"content-type": "application/json"})
    page = json.load(urllib.request.urlopen(req, timeout=120))
    pages += 1
    ids += [r["id"] for r in page["records"]]
    if not page.get("next"):
        break
    body["cursor"] = page["next"]
print(pages, len(ids), len(set(ids)))
PY
}

# query_runs LABEL: the filtered, sorted page at 1 and at 8 connections.
query_runs() {
    local label=$1 c
    for c in 1 8; do
        wait_quiet "queries-$label-c$c"
        BODY_FILE=$OUT/queries/page.json PATH_=/api/query wrk_cpu "queries-$label-c$c" \
            "$label, $c connection(s)" -t1 -c"$c" -d"${QUERY_SECS}s" -s "$REPO/scripts/wrk-post.lua" "$URL"
        line "  $WRK_SPLIT"
    done
}

step_queries() {
    local db=sgbench_query work=$OUT/queries records=${RECORDS:-300000} f t0 secs peak walk
    QUERY_SECS=${USER_DURATION:-10}
    say "queries: $records records; a filtered, sorted page without and with an index; merge memory at 10,000 a page"
    gateway_on_scratch "$db" queries SHARDGATE__SERVER__WORKERS=2
    mkdir -p "$work"
    # About 200 bytes of JSON a record: an age, a city of 8, a score, a name, a note.
    python3 - "$work" "$records" <<'PY'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
cities = ["London", "Paris", "Berlin", "Madrid", "Rome", "Vienna", "Oslo", "Lisbon"]
for b in range(0, n, 2000):
    recs = [{"shard_key": f"p{i}", "id": f"p{i}",
             "data": {"age": (i * 7) % 90, "city": cities[(i * 13) % 8],
                      "score": (i * 7919) % 1000003, "name": f"person {i}",
                      "note": "n" * 100}} for i in range(b, min(n, b + 2000))]
    with open(f"{work}/bulk{b:07d}.json", "w") as f:
        json.dump({"table": "events", "records": recs}, f)
PY
    t0=$EPOCHREALTIME
    for f in "$work"/bulk*.json; do
        curl -sf -o /dev/null -H 'content-type: application/json' --data-binary @"$f" "$URL/api/bulk-write" ||
            die "a bulk write of $f failed"
        rm "$f"
    done
    line "wrote $records records in $(calc "$EPOCHREALTIME - $t0" 1) s; VmHWM $(hwm_kib) kB"
    for port in "${PRIMARIES[@]}"; do sql "$port" "$db" "VACUUM ANALYZE records" >/dev/null; done
    sleep 2 # the replicas replay the vacuum
    line "records per shard: $(for port in "${PRIMARIES[@]}"; do sql "$port" "$db" "SELECT count(*) FROM records WHERE table_name = 'events'" | tr -d ' \n'; printf ' '; done)"

    # In London and over 40 (about 7%), by score, the best 50, two fields.
    cat >"$work/page.json" <<'JSON'
{"table": "events",
 "filter": [{"field": "city", "op": "eq", "value": "London"}, {"field": "age", "op": "gte", "value": 40}],
 "sort": [{"field": "score", "order": "desc"}], "fields": ["name", "score"], "limit": 50}
JSON
    cmd queries "BODY_FILE=page.json PATH_=/api/query wrk -t1 -c1|8 -d${QUERY_SECS}s --latency -s scripts/wrk-post.lua $URL   # page.json: $(tr -d '\n' <"$work/page.json")"
    line "the page: $(tr -d '\n' <"$work/page.json" | tr -s ' ')"
    line "plan without an index: $(plan_nodes "$work/page.json")"
    query_runs "without an index"

    cmd queries "curl -X POST $URL/api/indexes -d '{\"table\":\"events\",\"fields\":[\"city\",\"score\"]}'; GET /api/indexes/NAME until valid"
    t0=$EPOCHREALTIME
    local name
    name=$(curl -sf -H 'content-type: application/json' -d '{"table":"events","fields":["city","score"]}' "$URL/api/indexes" | jq -r .name)
    until curl -sf "$URL/api/indexes/$name" | jq -e '.state == "valid"' >/dev/null; do
        (($(calc "$EPOCHREALTIME - $t0" 0) < 600)) || die "index $name not valid after 600 s"
        sleep 0.2
    done
    line "index $name on (city, score) built on the three primaries (CREATE INDEX CONCURRENTLY) in $(calc "$EPOCHREALTIME - $t0" 1) s"
    sleep 2 # the replicas replay it
    line "plan with the index: $(plan_nodes "$work/page.json")"
    query_runs "with the index on (city, score)"

    # Memory: every record, 10,000 a page (the shards' pages merged); then 4 walks at once.
    cmd queries "python3 walk: POST /api/query {\"table\":\"events\",\"sort\":[{\"field\":\"score\",\"order\":\"desc\"}],\"fields\":[\"score\"],\"limit\":10000} and every next page; once, then 4 at once"
    line "before the walks: VmRSS $(rss_kib) kB, VmHWM $(hwm_kib) kB"
    t0=$EPOCHREALTIME
    peak=$(sampled query_walk 10000 "$work/walk-1")
    secs=$(calc "$EPOCHREALTIME - $t0" 2)
    read -r pages seen distinct <"$work/walk-1"
    [[ $seen == "$records" && $distinct == "$records" ]] || die "a walk saw $seen records ($distinct distinct) of $records"
    line "one walk at 10,000 a page: $pages pages, $seen records, each once, in $secs s; peak VmRSS $peak kB; VmHWM $(hwm_kib) kB"
    t0=$EPOCHREALTIME
    peak=$(sampled four_walks "$work")
    secs=$(calc "$EPOCHREALTIME - $t0" 2)
    for walk in 1 2 3 4; do
        read -r pages seen distinct <"$work/walk4-$walk"
        [[ $seen == "$records" && $distinct == "$records" ]] || die "walk $walk saw $seen records ($distinct distinct) of $records"
    done
    line "4 walks at once at 10,000 a page: each $pages pages, every record once, in $secs s; peak VmRSS $peak kB; VmHWM $(hwm_kib) kB"
    rm -rf "$work"
    back_to_plain
}

four_walks() {
    local w
    for w in 1 2 3 4; do query_walk 10000 "$1/walk4-$w" & done
    wait
}

# plan_nodes BODY_FILE: each shard's plan of the page, its scan nodes ("shard: Node Type
# [index]"), from "explain": true.
plan_nodes() {
    jq '. + {explain: true}' "$1" | curl -sf -H 'content-type: application/json' --data-binary @- "$URL/api/query" |
        jq -r '[.plans[] | "shard \(.shard): " + ([.. | objects | select(has("Node Type")) | .["Node Type"] + (if .["Index Name"] then " " + .["Index Name"] else "" end)] | join(" > "))] | join("; ")'
}
