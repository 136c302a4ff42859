# scripts/bench/cpu.sh: sourced by scripts/bench.sh (functions only). CPU per
# request (`cpu`), by request kind, and the floor under each: what pgbench and
# redis-benchmark spend on the same round trip (the pgbench baselines); and the same
# figure for two builds of the gateway taking turns (`builds`).

# ---------------------------------------------------------------------------------------
# CPU per request: the gateway's utime+stime (from /proc) around a bounded wrk run of one
# request kind, divided by the requests wrk completed. Steadier than throughput on a
# 2-core machine, where the gateway shares the cores with PostgreSQL and the load.
# ---------------------------------------------------------------------------------------
CPU_KINDS=(noop read list fanout write keyed bulk1)
CPU_SECS=${CPU_SECS:-8}
pid_ctxt() { awk '/ctxt_switches/ { s += $2 } END { print s + 0 }' /proc/"$1"/task/*/status 2>/dev/null || echo 0; }
pid_user_sys() { awk '{ print $14, $15 }' "/proc/$1/stat" 2>/dev/null || echo 0 0; }
cpu_run() {   # KIND: one wrk run against the running gateway
    local kind=$1 u0 s0 u1 s1 c0 c1 n
    settle "cpu-$kind"
    read -r u0 s0 <<<"$(pid_user_sys "$GW_PID")"
    c0=$(pid_ctxt "$GW_PID")
    cmd "cpu-$kind" "KIND=$kind KEYS=$KEYS wrk -t1 -c8 -d${CPU_SECS}s -s scripts/wrk-cpu.lua $URL"
    KIND=$kind KEYS=$KEYS timed "cpu-$kind" wrk -t1 -c8 -d"${CPU_SECS}s" -s "$REPO/scripts/wrk-cpu.lua" "$URL" \
        >"$OUT/cpu-$kind.log" 2>&1 || { cat "$OUT/cpu-$kind.log" >&2; die "wrk cpu-$kind failed"; }
    read -r u1 s1 <<<"$(pid_user_sys "$GW_PID")"
    c1=$(pid_ctxt "$GW_PID")
    n=$(awk '/requests in/ { print $1; exit }' "$OUT/cpu-$kind.log")
    result "cpu_${kind}_requests" "$n"
    result "cpu_${kind}_rps" "$(wrk_rps "cpu-$kind")"
    result "cpu_${kind}_errors" "$(wrk_errors "cpu-$kind")"
    result "cpu_${kind}_us" "$(calc "($u1 + $s1 - $u0 - $s0) * 1000000 / $CLK_TCK / $n" 1)"
    result "cpu_${kind}_user_us" "$(calc "($u1 - $u0) * 1000000 / $CLK_TCK / $n" 1)"
    result "cpu_${kind}_sys_us" "$(calc "($s1 - $s0) * 1000000 / $CLK_TCK / $n" 1)"
    result "cpu_${kind}_ctxt" "$(calc "($c1 - $c0) / $n" 2)"
}
# The floor under each ratio: what a bare C client spends on the same round trip, on
# the same servers, from the same number of connections. A gateway request is an HTTP
# exchange (the no-op) plus that round trip, so no-op + floor is the least it can cost.
#   FLOOR pgbench NAME PORTS SCRIPT DB KEYS: pgbench processes' CPU per transaction
cpu_floor_pgbench() {
    local name=$1 ports=$2 script=$3 db=$4 keys=$5 i p n=0 ticks=0 f
    local -a port_list c
    read -r -a port_list <<<"$ports"
    read -r -a c <<<"$(split3 8)"
    settle "cpu-$name"
    PGB_PIDS=()
    for i in 0 1 2; do
        p=${port_list[$i]}
        pgbench_bg "cpu-$name-$i" "$p" "${c[$i]}" -n -M prepared -T "$CPU_SECS" -D keys="$keys" -f "$REPO/$script" "$db"
        cmd "cpu-$name" "pgbench -h $HOST -p $p -U postgres -c ${c[$i]} -j 1 -n -M prepared -T $CPU_SECS -D keys=$keys -f $script $db"
    done
    pgbench_wait
    for i in 0 1 2; do
        f=$OUT/cpu-$name-$i
        n=$((n + $(awk '/number of transactions actually processed/ { split($NF, a, "/"); print a[1]; exit }' "$f.log")))
        ticks=$(calc "$ticks + $(awk '{ print $2 + $3 }' "$f.time")" 3)
    done
    result "cpu_${name}_us" "$(calc "$ticks * 1000000 / $n" 1)"
    result "cpu_${name}_rps" "$(calc "$n / $CPU_SECS" 0)"
}
cpu_floor_redis() {
    local n=$((CPU_SECS * 20000))
    settle cpu-floor_cached
    cmd cpu-floor_cached "redis-benchmark -p $REDIS_PORT -c 8 -n $n -t get -d 400 --threads 1 --csv"
    redis_bench_user
    /usr/bin/time -f '%e %U %S' -o "$OUT/cpu-floor_cached.time" \
        redis-benchmark "${REDIS_BENCH_AUTH[@]}" -p "$REDIS_PORT" -c 8 -n "$n" -t get -d 400 --threads 1 --csv \
        >"$OUT/cpu-floor_cached.log" 2>&1 || { redis_bench_user_gone; die "redis-benchmark failed (see $OUT/cpu-floor_cached.log)"; }
    redis_bench_user_gone
    result cpu_floor_cached_us "$(calc "$(awk '{ print $2 + $3 }' "$OUT/cpu-floor_cached.time") * 1000000 / $n" 1)"
    result cpu_floor_cached_rps "$(awk -F'"' '/GET/ { printf "%.0f", $4; exit }' "$OUT/cpu-floor_cached.log")"
}
step_cpu() {
    say "cpu: gateway CPU per request, wrk -t1 -c8 -d${CPU_SECS}s per kind, 2 HTTP workers"
    start_gateway cpu SHARDGATE__SERVER__WORKERS=2
    local k
    for k in "${CPU_KINDS[@]}"; do cpu_run "$k"; done
    start_gateway cpu-cache SHARDGATE__SERVER__WORKERS=2 SHARDGATE__CACHE__ENABLED=true
    # Fill the cache first: one pass over the key space.
    KIND=cached KEYS=$KEYS wrk -t1 -c8 -d3s -s "$REPO/scripts/wrk-cpu.lua" "$URL" >/dev/null 2>&1 || true
    cpu_run cached
    start_gateway plain
    say "cpu: the floors: a bare client's CPU for the same round trip (pgbench, redis-benchmark)"
    cpu_floor_pgbench floor_read "${REPLICAS[*]}" scripts/bench/read.sql shardgate "$KEYS"
    local per_shard=$(((KEYS + 2) / 3))
    upserts_prefill "$per_shard"
    cpu_floor_pgbench floor_write "${PRIMARIES[*]}" scripts/bench/write-token.sql sgbench_rec "$per_shard"
    cpu_floor_redis
    local noop
    noop=$(r cpu_noop_us)
    for k in "${CPU_KINDS[@]}" cached; do
        result "cpu_${k}_x_noop" "$(ratio "$(r "cpu_${k}_us")" "$noop" 1)"
    done
    for k in read write cached; do
        result "cpu_floor_${k}_x_noop" "$(ratio "$(calc "$noop + $(r "cpu_floor_${k}_us")" 1)" "$noop" 2)"
    done
}
cpu_table() {
    echo "| request | gateway CPU per request | × no-op | user / system | context switches per request | requests/s | non-2xx |"
    echo "|---|---|---|---|---|---|---|"
    local k label
    for k in noop read list fanout write keyed bulk1 cached; do
        case $k in
            noop) label="GET /api/health/live (no-op)" ;;
            read) label="replica point read" ;;
            list) label="list of 10 (one key)" ;;
            fanout) label="fan-out list of 10 (3 shards)" ;;
            write) label="single write (upsert + token)" ;;
            keyed) label="single write with an Idempotency-Key" ;;
            bulk1) label="bulk write of one record" ;;
            cached) label="cached point read" ;;
        esac
        echo "| $label | $(r "cpu_${k}_us") µs | $(r "cpu_${k}_x_noop") | $(r "cpu_${k}_user_us") / $(r "cpu_${k}_sys_us") µs | $(r "cpu_${k}_ctxt") | $(r "cpu_${k}_rps") | $(r "cpu_${k}_errors") |"
    done
    echo
    echo "The floor: a bare client's CPU for the same round trip, same servers, 8 connections; a request cannot cost less than the no-op plus it."
    echo
    echo "| round trip | bare client | its rate | no-op + floor, × no-op | target |"
    echo "|---|---|---|---|---|"
    echo "| point query on the replicas (pgbench -M prepared, scripts/bench/read.sql) | $(r cpu_floor_read_us) µs | $(r cpu_floor_read_rps)/s | $(r cpu_floor_read_x_noop) | replica read ≤ 2.0 |"
    echo "| upsert + token statement, pipelined, on the primaries (scripts/bench/write-token.sql) | $(r cpu_floor_write_us) µs | $(r cpu_floor_write_rps)/s | $(r cpu_floor_write_x_noop) | single write ≤ 3.0 |"
    echo "| Redis GET of 400 bytes (redis-benchmark --threads 1) | $(r cpu_floor_cached_us) µs | $(r cpu_floor_cached_rps)/s | $(r cpu_floor_cached_x_noop) | cached read ≤ 1.5 |"
}

# ---------------------------------------------------------------------------------------
# Two builds taking turns (A_BIN, B_BIN), ROUNDS rounds: the gateway's CPU per request of
# each kind in KINDS, wrk -t1 -c8 as above (CONNS="1 16 64": each count in turn, -t2 from
# 16; writes with the machine's CPU split and the mean group); cached reads on a gateway
# with the cache on. KEYS=2000 DURATION=8 KINDS="noop read write cached" PREP=1.
# ---------------------------------------------------------------------------------------
step_builds() {
    local keys=${USER_KEYS:-2000} secs=${USER_DURATION:-8} kinds=${KINDS:-noop read write cached} round side bin kind
    local conns=${CONNS:-8} n t g0 c0 g1 c1 k0 k1
    say "builds: A=$A_BIN B=$B_BIN taking turns, $ROUNDS rounds, wrk -c$conns -d${secs}s per kind: $kinds"
    if ((PREP)); then
        GATEWAY_BIN=$A_BIN start_gateway build-A SHARDGATE__SERVER__WORKERS=2 SHARDGATE__CACHE__ENABLED=false
        prefill_records "$keys"
    fi
    for ((round = 1; round <= ROUNDS; round++)); do
        for side in A B; do
            bin=$A_BIN
            [[ $side == A ]] || bin=$B_BIN
            GATEWAY_BIN=$bin start_gateway "build-$side" SHARDGATE__SERVER__WORKERS=2 SHARDGATE__CACHE__ENABLED=false
            for kind in $kinds; do
                [[ $kind != cached ]] || continue
                for n in $conns; do
                    t=1
                    ((n < 16)) || t=2
                    read -r g0 c0 <<<"$(group_counts)"
                    k0=$(checkpoints_begun)
                    KIND=$kind KEYS=$keys wrk_cpu "builds-$round-$side-$kind-$n" "round $round, $side ($bin), $kind, c=$n" \
                        -t$t -c"$n" -d"${secs}s" -s "$REPO/scripts/wrk-cpu.lua" "$URL"
                    read -r g1 c1 <<<"$(group_counts)"
                    k1=$(checkpoints_begun)
                    [[ $kind != write ]] || line "  $WRK_SPLIT; $(calc "($g1 - $g0) / ($c1 - $c0 + 0.000001)" 1) writes a group in this run; $((k1 - k0)) checkpoint(s) began on the primaries during it"
                done
            done
            [[ " $kinds " == *" cached "* ]] || continue
            GATEWAY_BIN=$bin start_gateway "build-$side-cache" SHARDGATE__SERVER__WORKERS=2 SHARDGATE__CACHE__ENABLED=true
            KIND=cached KEYS=$keys wrk -t1 -c8 -d3s -s "$REPO/scripts/wrk-cpu.lua" "$URL" >/dev/null 2>&1 || true   # fills the cache
            KIND=cached KEYS=$keys wrk_cpu "builds-$round-$side-cached" "round $round, $side ($bin), cached" \
                -t1 -c8 -d"${secs}s" -s "$REPO/scripts/wrk-cpu.lua" "$URL"
        done
    done
    back_to_plain
}

# What traces cost: the same gateway with export off, at the default ratio (one new
# trace in ten; wrk sends no traceparent, so the gateway's sampler decides) and with
# every request sampled, taking turns, exporting to a sink on $SINK_PORT that answers
# as a collector does. Beside each: the spans exported and dropped (/metrics).
step_traces() {
    local keys=${USER_KEYS:-2000} secs=${USER_DURATION:-8} kinds=${KINDS:-noop read write}
    local sink_port=${SINK_PORT:-26660} round side kind sink_pid spans
    local -a env
    say "traces: export off / default ratio / all sampled taking turns, $ROUNDS rounds, wrk -t1 -c8 -d${secs}s per kind: $kinds"
    python3 "$REPO/scripts/bench/otlp_sink.py" "$sink_port" "$OUT/otlp-sink.counts" &
    sink_pid=$!
    if ((PREP)); then
        start_gateway traces-prep SHARDGATE__SERVER__WORKERS=2 SHARDGATE__CACHE__ENABLED=false
        prefill_records "$keys"
    fi
    for ((round = 1; round <= ROUNDS; round++)); do
        for side in off ratio all; do
            env=(SHARDGATE__SERVER__WORKERS=2 SHARDGATE__CACHE__ENABLED=false)
            [[ $side == off ]] || env+=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port")
            [[ $side != all ]] || env+=(OTEL_TRACES_SAMPLER=always_on)
            start_gateway "traces-$side" "${env[@]}"
            for kind in $kinds; do
                KIND=$kind KEYS=$keys wrk_cpu "traces-$round-$side-$kind" "round $round, $side, $kind" \
                    -t1 -c8 -d"${secs}s" -s "$REPO/scripts/wrk-cpu.lua" "$URL"
            done
            spans=$(curl -fsS -m 5 "$URL/metrics" | awk '/^shardgate_trace_spans_exported_total/ { e = $NF }
                /^shardgate_trace_spans_dropped_total/ { d += $NF } END { printf "%d exported, %d dropped", e, d }')
            line "round $round, $side: spans $spans; the sink got $(cat "$OUT/otlp-sink.counts" 2>/dev/null || echo '0 0') (batches bytes) so far"
        done
    done
    kill "$sink_pid" 2>/dev/null || true
    back_to_plain
}
