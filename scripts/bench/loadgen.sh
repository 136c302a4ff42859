# scripts/bench/loadgen.sh: part of lib.sh (functions only). The load generators
# (goose, pgbench, wrk) run bounded in time, and the figures read from their outputs;
# flame graphs of a perf recording.

# ---------------------------------------------------------------------------------------
# Load generators and their figures
# ---------------------------------------------------------------------------------------
# goose NAME ARGS...: the loadtest binary against our gateway, JSON report in NAME.json.
goose() {
    local name=$1
    shift
    cmd "$name" "target/dist/loadtest -H $URL $*"
    timed "$name" "$BIN/loadtest" -H "$URL" --report-file "$OUT/$name.json" "$@" >"$OUT/$name.log" 2>&1 ||
        { tail -30 "$OUT/$name.log" >&2; die "loadtest $name failed (see $OUT/$name.log)"; }
    check_servers
}
# Requests per second of REQUEST ("GET read", "POST write", ...) over the time all users
# ran (goose's Maintaining phase; ramp-up excluded as goose resets its metrics then).
JQ_TS='def ts: capture("^(?<s>[^.Z]+)(\\.(?<f>[0-9]+))?Z$") | (.s + "Z" | fromdateiso8601) + ((.f // "0") | ("0." + .) | tonumber);'
goose_rate() {
    jq -r --arg n "$2" "$JQ_TS"'
        (.raw_metrics.history | map(select(.action == "Maintaining"))[0].timestamp | ts) as $a
      | (.raw_metrics.history | map(select(.action == "Decreasing"))[0].timestamp | ts) as $b
      | .raw_metrics.requests[$n] | (.success_count + .fail_count) / ($b - $a) | . * 10 | round / 10' "$OUT/$1.json"
}
goose_count() { jq -r --arg n "$2" '.raw_metrics.requests[$n] | .success_count + .fail_count' "$OUT/$1.json"; }
goose_fails() { jq -r '[.raw_metrics.requests[] | .fail_count] | add' "$OUT/$1.json"; }
# Percentile P (0..1) of REQUEST's time to first byte, in microseconds, from goose's
# histogram.
goose_pct_us() {
    jq -r --arg n "$2" --argjson p "$3" '
        .raw_metrics.requests[$n].raw_data.times_us
      | to_entries | map({t: (.key | tonumber), c: .value}) | sort_by(.t) as $h
      | ($h | map(.c) | add) as $total
      | reduce $h[] as $e ({cum: 0, v: null};
            if .v == null and (.cum + $e.c) >= ($total * $p) then .v = $e.t else . end
            | .cum += $e.c)
      | .v' "$OUT/$1.json"
}
# The gateway's own handler p50 (ms) for an endpoint, from the loadtest summary.
server_p50_ms() { awk -v e="endpoint $2" '$0 ~ e" " { print $(NF-3); exit }' "$OUT/$1.log"; }
# Every request kind of a goose run: its rate, p50 and p99 (as goose_rate, goose_pct_us).
goose_summary() {
    local name=$1 kind
    while IFS= read -r kind; do
        printf '%s: %s/s, p50 %s ms, p99 %s ms\n' "$kind" "$(goose_rate "$name" "$kind")" \
            "$(ms "$(goose_pct_us "$name" "$kind" 0.5)")" "$(ms "$(goose_pct_us "$name" "$kind" 0.99)")"
    done < <(jq -r '.raw_metrics.requests | keys[]' "$OUT/$name.json")
}
goose_check() {   # fail loudly when a run had failed requests
    local f
    f=$(goose_fails "$1")
    [[ $f == 0 ]] || { say "  WARNING: $1 had $f failed requests"; result "${1}_failed_requests" "$f"; }
}

# pgbench NAME PORT CLIENTS ARGS...: one pgbench process in the background.
pgbench_bg() {
    local name=$1 port=$2 clients=$3
    shift 3
    CLIENT_CPU_FILES+=("$OUT/$name.time")
    /usr/bin/time -f '%e %U %S' -o "$OUT/$name.time" \
        "$PG_BIN/pgbench" -h "$HOST" -p "$port" -U postgres -c "$clients" -j 1 "$@" >"$OUT/$name.log" 2>&1 &
    PGB_PIDS+=($!)
}
pgbench_wait() {
    local p rc=0
    for p in "${PGB_PIDS[@]}"; do wait "$p" || rc=$?; done
    PGB_PIDS=()
    ((rc == 0)) || die "a pgbench run failed (see $OUT/*.log)"
}
pgbench_tps() { awk '/^tps = / { print $3; exit }' "$OUT/$1.log"; }
pgbench_failed() { awk '/number of failed transactions/ { print $5; exit }' "$OUT/$1.log"; }
# The gateway's single write as pgbench runs it (write.sql, an upsert into sgbench_rec's
# copy of the records table), on the three primaries at once.
# upserts_prefill PER_SHARD: each primary's table emptied and given keys 0..PER_SHARD-1,
# so that the upserts are updates, as the gateway's are once its prefill has run.
upserts_prefill() {
    local i
    for i in 0 1 2; do
        psql_ "${PRIMARIES[$i]}" sgbench_rec -c "TRUNCATE records" -v keys="$1" -f "$REPO/scripts/bench/write-prefill.sql" >/dev/null
    done
}
# pgbench_upserts LABEL NAME SECS PER_SHARD C0 C1 C2: Ci clients on primary i (none when
# 0) for SECS seconds, waited for; logs NAME-i.log; the commands recorded once under LABEL.
pgbench_upserts() {
    local label=$1 name=$2 secs=$3 per_shard=$4 i record=1
    shift 4
    local -a c=("$@")
    grep -q "^$label"$'\t' "$OUT/commands" 2>/dev/null && record=0
    PGB_PIDS=()
    for i in 0 1 2; do
        ((c[i] > 0)) || continue
        pgbench_bg "$name-$i" "${PRIMARIES[$i]}" "${c[$i]}" -n -M prepared -T "$secs" \
            -D keys="$per_shard" -f "$REPO/scripts/bench/write.sql" sgbench_rec
        ((record)) && cmd "$label" "pgbench -h $HOST -p ${PRIMARIES[$i]} -U postgres -c ${c[$i]} -j 1 -n -M prepared -T $secs -D keys=$per_shard -f scripts/bench/write.sql sgbench_rec"
    done
    pgbench_wait
}
# pgbench_selects LABEL NAME SECS C0 C1 C2: `pgbench -S -M prepared` with Ci clients on
# replica i (none when 0) for SECS seconds, waited for; logs NAME-i.log; prints the summed tps.
pgbench_selects() {
    local label=$1 name=$2 secs=$3 i sum=0
    shift 3
    local -a c=("$@")
    PGB_PIDS=()
    for i in 0 1 2; do
        ((c[i] > 0)) || continue
        pgbench_bg "$name-$i" "${REPLICAS[$i]}" "${c[$i]}" -S -n -M prepared -T "$secs" sgbench_pgb
        cmd "$label" "pgbench -h $HOST -p ${REPLICAS[$i]} -U postgres -c ${c[$i]} -j 1 -S -n -M prepared -T $secs sgbench_pgb"
    done
    pgbench_wait
    for i in 0 1 2; do ((c[i] > 0)) && sum=$(calc "$sum + $(pgbench_tps "$name-$i")" 0); done
    echo "$sum"
}
# USERS clients over the 3 servers: 8 -> 3 3 2.
split3() { local n=$1; echo $(((n + 2) / 3)) $(((n + 1) / 3)) $((n / 3)); }

# wrk NAME ARGS...: requests/s, p50 and non-2xx count into NAME_*.
wrk_run() {
    local name=$1
    shift
    cmd "$name" "wrk $*"
    timed "$name" wrk "$@" >"$OUT/$name.log" 2>&1 || { cat "$OUT/$name.log" >&2; die "wrk $name failed"; }
}
wrk_rps() { awk '/^Requests\/sec:/ { printf "%.0f\n", $2; exit }' "$OUT/$1.log"; }
wrk_errors() { awk '/Non-2xx or 3xx responses:/ { n = $5 } /Socket errors/ { s = $0 } END { print (n ? n : 0) }' "$OUT/$1.log"; }
wrk_p50_us() {   # from --latency: "50%  312.00us"
    awk '$1 == "50%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
         m = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1000000 : 0; print v * m; exit }' "$OUT/$1.log"
}
wrk_requests() { awk '/requests in/ { print $1; exit }' "$OUT/$1.log"; }
wrk_pct() { awk -v p="$2" '$1 == p { print $2; exit }' "$OUT/$1.log"; }   # NAME 99%: "12.34ms"
# wrk_cpu NAME LABEL WRK-ARGS...: one wrk run against the gateway on $GW_PID, as a line
# of the step's table: requests/s, p50 and p99, the gateway's CPU per request (user +
# system from /proc around the run), non-2xx answers and socket errors; on the line
# before, the machine's load just before it. Leaves WRK_N (requests completed),
# WRK_GW_US (the gateway's CPU per request, µs) and WRK_SPLIT (the machine's CPU per
# request, split: split_end).
wrk_cpu() {
    local name=$1 label=$2 g0 g1 sock
    shift 2
    line "before $label: $(busy_before)"
    g0=$(pid_ticks "$GW_PID")
    split_begin "$GW_PID"
    wrk_run "$name" --latency "$@"
    g1=$(pid_ticks "$GW_PID")
    WRK_N=$(wrk_requests "$name")
    WRK_SPLIT=$(split_end "$WRK_N")
    WRK_GW_US=$(calc "($g1 - $g0) * 1000000 / $CLK_TCK / $WRK_N" 1)
    sock=$(grep -o 'Socket errors:.*' "$OUT/$name.log" || echo 'no socket errors')
    line "$label: $(wrk_rps "$name") req/s, p50 $(wrk_pct "$name" 50%), p99 $(wrk_pct "$name" 99%), gateway CPU $WRK_GW_US µs/request, non-2xx $(wrk_errors "$name"), $sock"
}
wrk_check() {
    local e
    e=$(wrk_errors "$1")
    [[ $e == 0 ]] || { say "  WARNING: $1 had $e non-2xx answers"; result "${1}_non_2xx" "$e"; }
}

# Every request the gateway on $URL has answered, from its Prometheus counters.
requests_served() {
    curl -fsS -m 5 "$URL/metrics" |
        awk '/^shardgate_http_requests_total[{ ]/ { s += $NF } END { printf "%d", s }'
}

# The same recording as a flame graph ($OUT/flame-KIND.svg, open it in a browser; the
# folded stacks beside it, generic arguments dropped from the names by
# scripts/short-frames.py), drawn with inferno, which is installed into .local/tools
# (cargo install, a minute or two) the first time. Without it the profile still stands.
flame_graph() {
    local kind=$1 tools="$REPO/.local/tools/bin"
    if [[ ! -x $tools/inferno-flamegraph ]]; then
        say "cargo install inferno (flame graphs) into .local/tools"
        cargo install --quiet --locked --root "$REPO/.local/tools" inferno >"$OUT/inferno-install.log" 2>&1 ||
            { say "  no flame graph: inferno did not install (see $OUT/inferno-install.log)"; return 0; }
    fi
    perf script -i "$OUT/perf-$kind.data" 2>/dev/null | "$tools/inferno-collapse-perf" |
        python3 "$REPO/scripts/short-frames.py" >"$OUT/profile-$kind.folded"
    "$tools/inferno-flamegraph" --minwidth 1 --title "api-router, $kind requests (wrk -t1 -c8, 2 workers)" \
        <"$OUT/profile-$kind.folded" >"$OUT/flame-$kind.svg"
    gzip -f "$OUT/profile-$kind.folded"
    say "  flame graph: $OUT/flame-$kind.svg (folded stacks: profile-$kind.folded.gz)"
}
