# scripts/bench/batching.sh: sourced by scripts/bench.sh (functions only). Requests
# that share a trip, each side by side with the same gateway not sharing and with
# pgbench on the same servers, alternating, two rounds: point reads in one send
# (`read-batching`), single writes in one commit (`write-batching`). Every run with the
# gateway's CPU per request and the machine's load just before it.

# ---------------------------------------------------------------------------------------
# Point reads: batched and not (database.batch_point_reads), a no-op, pgbench -S on the
# same replicas with as many clients. KEYS=2000 CONNS=16 DURATION=10 PREP=1.
# ---------------------------------------------------------------------------------------
step_read_batching() {
    local keys=${USER_KEYS:-2000} secs=${USER_DURATION:-10} conns=${CONNS:-16} round on i sum
    local -a c
    say "read-batching: wrk -t2 -c$conns replica point reads batched and not, a no-op, pgbench -S; 2 rounds"
    if ((PREP)); then
        start_gateway read-batching SHARDGATE__SERVER__WORKERS=2
        prefill_records "$keys" pad
        sleep 2
    fi
    read -r -a c <<<"$(split3 "$conns")"
    for round in 1 2; do
        for on in true false; do
            start_gateway "reads-batched-$on" SHARDGATE__SERVER__WORKERS=2 SHARDGATE__DATABASE__BATCH_POINT_READS=$on
            KEYS=$keys wrk_cpu "rb-$round-$on" "round $round, read, batched $on" \
                -t2 -c"$conns" -d"${secs}s" -s "$REPO/scripts/wrk-read.lua" "$URL"
        done
        wrk_cpu "rb-$round-noop" "round $round, no-op" -t2 -c"$conns" -d"${secs}s" "$URL/api/health/live"
        line "before round $round, pgbench -S: $(busy_before)"
        sum=$(pgbench_selects rb-pgbench "rb-$round-pgbench" "$secs" "${c[@]}")
        line "round $round, pgbench -S on the replicas, $conns clients: $sum tps"
    done
    back_to_plain
}

# ---------------------------------------------------------------------------------------
# Single writes: grouped and alone (database.batch_writes), a no-op, pgbench running the
# gateway's upsert (scripts/bench/write.sql) on the same primaries with as many clients;
# for every run also what the whole machine spent per request (split_end), and for the
# grouped runs the mean group from /metrics. KEYS=10000 CONNS="1 16 64" DURATION=10.
# ---------------------------------------------------------------------------------------
# Writes sent in groups and groups sent so far ("SUM COUNT"), from the gateway's /metrics.
group_counts() {
    curl -fsS "$URL/metrics" | awk '/^shardgate_batch_size_sum\{kind="write"/ { s += $NF }
        /^shardgate_batch_size_count\{kind="write"/ { c += $NF } END { printf "%d %d\n", s, c }'
}

# Checkpoints begun so far on the primaries (timed and requested, pg_stat_bgwriter), so
# that a write run can say whether one began while it ran.
checkpoints_begun() {
    local port n total=0
    for port in "${PRIMARIES[@]}"; do
        n=$(sql "$port" postgres "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter") || n=0
        total=$((total + n))
    done
    echo "$total"
}

# Mean writes per group since the gateway started, from its /metrics.
group_size() {
    local sum count
    read -r sum count <<<"$(group_counts)"
    if ((count > 0)); then printf '%s writes a group' "$(calc "$sum / $count" 1)"; else printf 'no groups'; fi
}
step_write_batching() {
    local secs=${USER_DURATION:-10} conns=${CONNS:-1 16 64} per_shard=$(((KEYS + 2) / 3)) n round on i tps txns
    local -a c
    say "write-batching: wrk single writes grouped and alone, a no-op, pgbench upserts; clients: $conns; 2 rounds each"
    upserts_prefill "$per_shard"
    if ((PREP)); then   # the gateway's side written once too, so both sides' upserts are updates
        start_gateway writes-grouped-false SHARDGATE__SERVER__WORKERS=2 SHARDGATE__DATABASE__BATCH_WRITES=false
        KEYS=$KEYS wrk -t2 -c16 -d"$((secs * 2))s" -s "$REPO/scripts/wrk-write.lua" "$URL" >"$OUT/wb-prefill.log" 2>&1
    fi
    for n in $conns; do
        read -r -a c <<<"$(split3 "$n")"
        for round in 1 2; do
            for on in true false; do
                start_gateway "writes-grouped-$on" SHARDGATE__SERVER__WORKERS=2 SHARDGATE__DATABASE__BATCH_WRITES=$on
                KEYS=$KEYS wrk_cpu "wb-$n-$round-$on" "c=$n round $round, write, grouped $on" \
                    -t"$((n < 2 ? 1 : 2))" -c"$n" -d"${secs}s" -s "$REPO/scripts/wrk-write.lua" "$URL"
                if [[ $on == true ]]; then line "  $WRK_SPLIT; $(group_size)"; else line "  $WRK_SPLIT"; fi
            done
            wrk_cpu "wb-$n-$round-noop" "c=$n round $round, no-op" -t"$((n < 2 ? 1 : 2))" -c"$n" -d"${secs}s" "$URL/api/health/live"
            line "before c=$n round $round, pgbench upsert: $(busy_before)"
            split_begin
            pgbench_upserts "wb-pgbench-$n" "wb-$n-$round-pgbench" "$secs" "$per_shard" "${c[@]}"
            tps=0 txns=0
            for i in 0 1 2; do
                ((c[i] > 0)) || continue
                tps=$(calc "$tps + $(pgbench_tps "wb-$n-$round-pgbench-$i")" 0)
                txns=$((txns + $(awk '/number of transactions actually processed/ { split($NF, a, "/"); print a[1]; exit }' "$OUT/wb-$n-$round-pgbench-$i.log")))
            done
            line "c=$n round $round, pgbench upsert on the primaries: $tps tps"
            line "  $(split_end "$txns")"
        done
    done
    back_to_plain
}
