# scripts/bench/writes.sh: sourced by scripts/bench.sh (functions only). The write
# steps: single writes against pgbench upserts on the same primaries (`write`), and
# bulk writes against COPY of as many rows into the same shards (`bulk`).

# ---------------------------------------------------------------------------------------
# 1. Single writes: gateway vs pgbench upserts on the same primaries
# ---------------------------------------------------------------------------------------
step_write() {
    say "1. single writes: loadtest write ($USERS users) vs pgbench (same statement, $USERS clients over 3 primaries), $ROUNDS rounds each, alternating"
    settle write
    local x0 s0 x1 s1 idle round gw pg gws=() pgs=() wrks=()
    x0=$(xacts "${PRIMARIES[@]}"); sleep 2; x1=$(xacts "${PRIMARIES[@]}"); idle=$(calc "($x1 - $x0) / 2")
    local per_shard=$(((KEYS + 2) / 3)) i c
    upserts_prefill "$per_shard"
    read -r -a c <<<"$(split3 "$USERS")"
    # Commits wait on fsync, whose speed drifts by 2x within minutes on a shared VM:
    # gateway and pgbench take turns, and W divides the sums.
    for ((round = 1; round <= ROUNDS; round++)); do
        settle write
        x0=$(xacts "${PRIMARIES[@]}"); s0=$(served primary); local t0=$EPOCHREALTIME
        cpu_begin
        goose "write-$round" --scenario write --keys "$KEYS" -u "$USERS" -r "$USERS" -t "${DURATION}s"
        cpu_end "write_gw_$round"
        x1=$(xacts "${PRIMARIES[@]}"); s1=$(served primary)
        goose_check "write-$round"
        gw=$(goose_rate "write-$round" 'POST write')
        gws+=("$gw")
        # The same writes from wrk, whose own CPU per request is a fraction of goose's.
        settle write
        cpu_begin
        KEYS=$KEYS wrk_run "write-wrk-$round" -t1 -c"$USERS" -d"${DURATION}s" --latency -s "$REPO/scripts/wrk-write.lua" "$URL"
        cpu_end "write_wrk_$round"
        wrk_check "write-wrk-$round"
        wrks+=("$(wrk_rps "write-wrk-$round")")
        if ((round == 1)); then
            result write_gw_p50_ms "$(calc "$(goose_pct_us write-1 'POST write' 0.5) / 1000")"
            # PostgreSQL transactions per gateway write (minus the monitor's idle rate).
            result write_gw_pg_xacts_per_request "$(calc "(($x1 - $x0) - $idle * ($EPOCHREALTIME - $t0)) / ($s1 - $s0)" 1)"
        fi

        settle write
        cpu_begin
        pgbench_upserts write-pgbench "write-pgbench-$round" "$DURATION" "$per_shard" "${c[@]}"
        cpu_end "write_pg_$round"
        local f
        pg=0
        for i in 0 1 2; do
            ((c[i] > 0)) || continue
            f=$(pgbench_failed "write-pgbench-$round-$i"); [[ ${f:-0} == 0 ]] || result "write_pgbench_${round}_${i}_failed" "$f"
            pg=$(calc "$pg + $(pgbench_tps "write-pgbench-$round-$i")" 1)
        done
        pgs+=("$pg")
        result "W_round_$round" "$(ratio "$gw" "$pg") ($gw / $pg)"
        result "W_wrk_round_$round" "$(ratio "${wrks[-1]}" "$pg") (${wrks[-1]} / $pg)"
    done
    result write_gw "$(calc "($(IFS=+; echo "${gws[*]}")) / $ROUNDS" 1)"
    result write_pg "$(calc "($(IFS=+; echo "${pgs[*]}")) / $ROUNDS" 1)"
    result write_gw_cpu "$(r write_gw_1_cpu)"
    result write_pg_cpu "$(r write_pg_1_cpu)"
    result W_rounds "$(for ((round = 1; round <= ROUNDS; round++)); do printf '%s; ' "$(r "W_round_$round")"; done | sed 's/; $//')"
    result write_payload_bytes "gateway $(sql "${PRIMARIES[0]}" shardgate "SELECT avg(octet_length(data::text))::int FROM records WHERE table_name = 'users' AND id IN (SELECT 'rec_' || n FROM generate_series(0, $((KEYS - 1))) n)"), pgbench $(sql "${PRIMARIES[0]}" sgbench_rec "SELECT avg(octet_length(data::text))::int FROM records")"
    result W "$(ratio "$(r write_gw)" "$(r write_pg)")"
    result write_wrk "$(calc "($(IFS=+; echo "${wrks[*]}")) / $ROUNDS" 1)"
    result write_wrk_cpu "$(r write_wrk_1_cpu)"
    result W_wrk_rounds "$(for ((round = 1; round <= ROUNDS; round++)); do printf '%s; ' "$(r "W_wrk_round_$round")"; done | sed 's/; $//')"
    result W_wrk "$(ratio "$(r write_wrk)" "$(r write_pg)")"
}

# ---------------------------------------------------------------------------------------
# 3. Bulk writes: gateway bulk-write vs COPY of as many rows into the same shards
# ---------------------------------------------------------------------------------------
step_bulk() {
    say "3. bulk writes: loadtest bulk-write (batch $BATCH, $BULK_USERS users) vs COPY"
    settle bulk
    cpu_begin
    goose bulk --scenario bulk-write --keys "$KEYS" --batch "$BATCH" -u "$BULK_USERS" -r "$BULK_USERS" -t "${DURATION}s"
    cpu_end bulk_gw
    goose_check bulk
    local reqs rows
    reqs=$(goose_rate bulk 'POST bulk-write')
    result bulk_gw_requests "$reqs"
    result bulk_gw "$(calc "$reqs * $BATCH" 0)"
    result bulk_gw_p50_ms "$(calc "$(goose_pct_us bulk 'POST bulk-write' 0.5) / 1000" 1)"
    # As many rows as the gateway wrote in the run, a third per shard, with the payloads
    # it just wrote (the orders on each shard, repeated under new ids), into an empty
    # copy of the records table on the same primaries, all three at once.
    rows=$(calc "$(goose_count bulk 'POST bulk-write') * $BATCH" 0)
    local per=$(((rows + 2) / 3)) i port
    for i in 0 1 2; do
        port=${PRIMARIES[$i]}
        sql "$port" shardgate "COPY (SELECT table_name, shard_key, id, slot, data FROM records WHERE table_name = 'orders') TO STDOUT" >"$OUT/copy-src-$i.tsv"
        awk -F'\t' -v OFS='\t' -v want="$per" '
            { row[NR] = $0 }
            END { k = 0; while (k < want) for (i = 1; i <= NR && k < want; i++) {
                      split(row[i], f, "\t"); print f[1], f[2], "c" int(k / NR) "_" f[3], f[4], f[5]; k++ } }' \
            "$OUT/copy-src-$i.tsv" >"$OUT/copy-$i.tsv"
        sql "$port" sgbench_rec "TRUNCATE records" >/dev/null
    done
    result bulk_payload_bytes "$(sql "${PRIMARIES[0]}" shardgate "SELECT avg(octet_length(data::text))::int FROM records WHERE table_name = 'orders'")"
    settle bulk
    cpu_begin
    local t0 t1 pids=()
    t0=$EPOCHREALTIME
    for i in 0 1 2; do
        CLIENT_CPU_FILES+=("$OUT/copy-$i.time")
        /usr/bin/time -f '%e %U %S' -o "$OUT/copy-$i.time" \
            "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "${PRIMARIES[$i]}" -U postgres -d sgbench_rec \
            -c "COPY records (table_name, shard_key, id, slot, data) FROM STDIN" <"$OUT/copy-$i.tsv" >"$OUT/copy-$i.log" 2>&1 &
        pids+=($!)
        cmd bulk-copy "psql -h $HOST -p ${PRIMARIES[$i]} -U postgres -d sgbench_rec -c 'COPY records (table_name, shard_key, id, slot, data) FROM STDIN' < copy-$i.tsv   # $per rows, the three at once"
    done
    local p
    for p in "${pids[@]}"; do wait "$p" || die "COPY failed (see $OUT/copy-*.log)"; done
    t1=$EPOCHREALTIME
    cpu_end bulk_copy
    rm -f "$OUT"/copy-*.tsv   # ~100 MB of generated rows
    result bulk_copy_rows "$((per * 3))"
    result bulk_copy_secs "$(calc "$t1 - $t0")"
    result bulk_copy "$(calc "$per * 3 / ($t1 - $t0)" 0)"
    result B "$(ratio "$(r bulk_gw)" "$(r bulk_copy)")"
}
