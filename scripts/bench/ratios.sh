# scripts/bench/ratios.sh: sourced by scripts/bench.sh (functions only). The three
# throughput ratios at each client count, in one run (`ratios`):
#   W  single writes/s ÷ pgbench running the gateway's upsert on the same primaries
#   R  replica point reads/s ÷ `pgbench -S -M prepared` on the same replicas
#   C  cached point reads/s ÷ the HTTP no-op (`/api/health/live`) on the same gateway
# each with the gateway's CPU per request (user + system from /proc) and its multiple of
# the no-op's, and the machine's busy cores just before each run; first, the idle load
# of the topology with nothing running; with the cached reads, how many of them shared
# each trip to Redis (its commands per socket read). CONNS="16 64" DURATION=10 KEYS=10000.

# The table of one client count's figures, from the results recorded under "ratio_N_".
ratios_row() {
    local n=$1 noop
    noop=$(r "ratio_${n}_noop_us")
    printf '| %s | %s (%s / %s) | %s (%s / %s) | %s (%s / %s) | %s µs (%s×) | %s µs (%s×) | %s µs (%s×) | %s µs | %s |\n' \
        "$n" "$(r "ratio_${n}_W")" "$(r "ratio_${n}_write_rps")" "$(r "ratio_${n}_pgbench_upsert_tps")" \
        "$(r "ratio_${n}_R")" "$(r "ratio_${n}_read_rps")" "$(r "ratio_${n}_pgbench_select_tps")" \
        "$(r "ratio_${n}_C")" "$(r "ratio_${n}_cached_rps")" "$(r "ratio_${n}_noop_rps")" \
        "$(r "ratio_${n}_write_us")" "$(ratio "$(r "ratio_${n}_write_us")" "$noop" 1)" \
        "$(r "ratio_${n}_read_us")" "$(ratio "$(r "ratio_${n}_read_us")" "$noop" 1)" \
        "$(r "ratio_${n}_cached_us")" "$(ratio "$(r "ratio_${n}_cached_us")" "$noop" 1)" \
        "$noop" "$(r "ratio_${n}_busy_before")"
}

# Redis's own counters: commands processed, socket reads and writes (INFO stats).
redis_counts() {
    redis-cli -p "$REDIS_PORT" INFO stats | tr -d '\r' | awk -F: '
        $1 == "total_commands_processed" { c = $2 } $1 == "total_reads_processed" { r = $2 }
        $1 == "total_writes_processed" { w = $2 } END { print c + 0, r + 0, w + 0 }'
}

# ratio_run N KIND LABEL WRK-ARGS...: one wrk run, its rate and the gateway's CPU per
# request recorded as ratio_N_KIND_rps and ratio_N_KIND_us.
ratio_run() {
    local n=$1 kind=$2 label=$3
    shift 3
    settle "ratio-$n-$kind"
    wrk_cpu "ratio-$n-$kind" "c=$n $label" "$@"
    wrk_check "ratio-$n-$kind"
    result "ratio_${n}_${kind}_rps" "$(wrk_rps "ratio-$n-$kind")"
    result "ratio_${n}_${kind}_us" "$WRK_GW_US"
}

step_ratios() {
    local secs=${USER_DURATION:-10} conns=${CONNS:-16 64} per_shard=$(((KEYS + 2) / 3)) n i sum
    local -a c busy=()
    say "ratios: W, R and C at $conns clients; wrk -t2 beside pgbench and the no-op"
    settle ratios
    result ratio_idle_load "$(busy_before 10)"
    line "idle load, nothing running, 10 s: $(r ratio_idle_load)"
    upserts_prefill "$per_shard"
    start_gateway ratios SHARDGATE__SERVER__WORKERS=2
    if ((PREP)); then   # the gateway's records: reads find them, writes replace them
        prefill_records "$KEYS" pad
        KEYS=$KEYS wrk -t2 -c16 -d"${secs}s" -s "$REPO/scripts/wrk-write.lua" "$URL" >"$OUT/ratios-prefill.log" 2>&1
    fi
    for n in $conns; do
        read -r -a c <<<"$(split3 "$n")"
        start_gateway ratios SHARDGATE__SERVER__WORKERS=2
        result "ratio_${n}_busy_before" "$(busy_before | awk '{ print $1 }')"
        KEYS=$KEYS ratio_run "$n" write "single write" -t2 -c"$n" -d"${secs}s" -s "$REPO/scripts/wrk-write.lua" "$URL"
        line "  $(group_size)"
        settle "ratio-$n-pgbench-upsert"
        line "before c=$n pgbench upsert: $(busy_before)"
        pgbench_upserts "ratio-pgbench-upsert-$n" "ratio-$n-upsert" "$secs" "$per_shard" "${c[@]}"
        sum=0
        for i in 0 1 2; do ((c[i] > 0)) && sum=$(calc "$sum + $(pgbench_tps "ratio-$n-upsert-$i")" 0); done
        result "ratio_${n}_pgbench_upsert_tps" "$sum"
        KEYS=$KEYS ratio_run "$n" read "replica point read" -t2 -c"$n" -d"${secs}s" -s "$REPO/scripts/wrk-read.lua" "$URL"
        settle "ratio-$n-pgbench-select"
        line "before c=$n pgbench -S: $(busy_before)"
        result "ratio_${n}_pgbench_select_tps" "$(pgbench_selects "ratio-pgbench-select-$n" "ratio-$n-select" "$secs" "${c[@]}")"
        start_gateway ratios-cache SHARDGATE__SERVER__WORKERS=2 SHARDGATE__CACHE__ENABLED=true
        # Every key read at least once, most several times, before the measured run.
        KEYS=$KEYS wrk -t2 -c16 -d5s -s "$REPO/scripts/wrk-read.lua" "$URL" >"$OUT/ratio-$n-warm.log" 2>&1
        # How many lookups share a trip to Redis: commands per socket read on its side.
        local c0 r0 w0 c1 r1 w1
        read -r c0 r0 w0 <<<"$(redis_counts)"
        KEYS=$KEYS ratio_run "$n" cached "cached point read" -t2 -c"$n" -d"${secs}s" -s "$REPO/scripts/wrk-read.lua" "$URL"
        read -r c1 r1 w1 <<<"$(redis_counts)"
        result "ratio_${n}_redis_commands_per_read" "$(ratio "$((c1 - c0))" "$((r1 - r0))")"
        line "  Redis: $((c1 - c0)) commands in $((r1 - r0)) socket reads and $((w1 - w0)) writes: $(r "ratio_${n}_redis_commands_per_read") commands a trip"
        ratio_run "$n" noop "no-op" -t2 -c"$n" -d"${secs}s" "$URL/api/health/live"
        result "ratio_${n}_W" "$(ratio "$(r "ratio_${n}_write_rps")" "$(r "ratio_${n}_pgbench_upsert_tps")")"
        result "ratio_${n}_R" "$(ratio "$(r "ratio_${n}_read_rps")" "$(r "ratio_${n}_pgbench_select_tps")")"
        result "ratio_${n}_C" "$(ratio "$(r "ratio_${n}_cached_rps")" "$(r "ratio_${n}_noop_rps")")"
    done
    line ""
    line "idle load before the runs: $(r ratio_idle_load)"
    line ""
    line "| clients | W (writes/s / pgbench upserts) | R (reads/s / pgbench -S) | C (cached reads/s / no-op) | gateway CPU per write (× no-op) | per replica read | per cached read | per no-op | busy before |"
    line "|---|---|---|---|---|---|---|---|---|"
    for n in $conns; do line "$(ratios_row "$n")"; done
    back_to_plain
}
