# scripts/bench/cache.sh: sourced by scripts/bench.sh (functions only). The Redis
# cache (`cache`): cached against uncached point reads, cached reads against the HTTP
# ceiling, and redis-benchmark on the same Redis.

# ---------------------------------------------------------------------------------------
# 7. Cache: cached vs uncached point reads, and cached reads vs the HTTP ceiling
# ---------------------------------------------------------------------------------------
step_cache() {
    say "7. cache: read-cached without and with [cache] enabled; wrk reads vs wrk /api/health/live"
    settle cache
    goose cache-off --scenario read-cached --keys "$KEYS" -u "$USERS" -r "$USERS" -t "${DURATION}s"
    goose_check cache-off
    result cache_off_goose "$(goose_rate cache-off 'GET read-cached')"
    settle cache
    cpu_begin
    KEYS=$KEYS wrk_run cache-off-wrk -t2 -c"$USERS" -d"${DURATION}s" -s "$REPO/scripts/wrk-read.lua" "$URL"
    cpu_end cache_off_wrk
    wrk_check cache-off-wrk
    result cache_off_wrk "$(wrk_rps cache-off-wrk)"

    start_gateway cache SHARDGATE__CACHE__ENABLED=true
    cmd cache-gateway "SHARDGATE__CACHE__ENABLED=true target/dist/api-router --listen $HOST:$PORT"
    # Warm the cache (every key read at least once, most several times); not measured.
    KEYS=$KEYS wrk -t2 -c"$USERS" -d5s -s "$REPO/scripts/wrk-read.lua" "$URL" >"$OUT/cache-warm.log" 2>&1
    settle cache
    goose cache-on --scenario read-cached --keys "$KEYS" -u "$USERS" -r "$USERS" -t "${DURATION}s"
    goose_check cache-on
    result cache_on_goose "$(goose_rate cache-on 'GET read-cached')"
    result cache_on_goose_hits "$(grep -o 'x-cache hit [0-9]* ([0-9.]*%)' "$OUT/cache-on.log" | head -1)"
    settle cache
    cpu_begin
    KEYS=$KEYS wrk_run cache-on-wrk -t2 -c"$USERS" -d"${DURATION}s" -s "$REPO/scripts/wrk-read.lua" "$URL"
    cpu_end cache_on_wrk
    wrk_check cache-on-wrk
    result cache_on_wrk "$(wrk_rps cache-on-wrk)"
    settle cache
    cpu_begin
    wrk_run cache-ceiling-wrk -t2 -c"$USERS" -d"${DURATION}s" "$URL/api/health/live"
    cpu_end cache_ceiling_wrk
    wrk_check cache-ceiling-wrk
    result cache_ceiling_wrk "$(wrk_rps cache-ceiling-wrk)"
    # Context: the same two with 4x the connections.
    settle cache
    cpu_begin
    KEYS=$KEYS wrk_run cache-on-wrk-x4 -t2 -c$((USERS * 4)) -d"${DURATION}s" -s "$REPO/scripts/wrk-read.lua" "$URL"
    cpu_end cache_on_wrk_x4
    wrk_check cache-on-wrk-x4
    result cache_on_wrk_x4 "$(wrk_rps cache-on-wrk-x4)"
    settle cache
    wrk_run cache-ceiling-wrk-x4 -t2 -c$((USERS * 4)) -d"${DURATION}s" "$URL/api/health/live"
    wrk_check cache-ceiling-wrk-x4
    result cache_ceiling_wrk_x4 "$(wrk_rps cache-ceiling-wrk-x4)"
    result C_x4 "$(ratio "$(r cache_on_wrk_x4)" "$(r cache_ceiling_wrk_x4)")"
    result cache_speedup_wrk "$(ratio "$(r cache_on_wrk)" "$(r cache_off_wrk)")"
    result cache_speedup_goose "$(ratio "$(r cache_on_goose)" "$(r cache_off_goose)")"
    result C "$(ratio "$(r cache_on_wrk)" "$(r cache_ceiling_wrk)")"
    # The floor under a cached read: a bare Redis GET round trip of a record-sized value
    # from as many clients, no HTTP and no gateway (redis-benchmark, not pipelined).
    settle cache
    cmd redis-get "redis-benchmark -p $REDIS_PORT -c $USERS -n $REDIS_N -t set,get -d 400 --csv"
    cpu_begin
    redis_bench_user
    timed redis-get redis-benchmark "${REDIS_BENCH_AUTH[@]}" -p "$REDIS_PORT" -c "$USERS" -n "$REDIS_N" -t set,get -d 400 --csv \
        >"$OUT/redis-get.log" 2>&1
    redis_bench_user_gone
    cpu_end redis_get
    result redis_get "$(awk -F'"' '$2 == "GET" { printf "%.0f\n", $4 }' "$OUT/redis-get.log")"
    # The best batching the gateway can do: each worker thread (2 by default here) has one
    # connection and its share of the USERS connections' lookups in flight.
    local depth=$(((USERS + 1) / 2))
    settle cache
    cmd redis-get-pipelined "redis-benchmark -p $REDIS_PORT -c 2 -P $depth -n $REDIS_N -t set,get -d 400 --csv"
    cpu_begin
    redis_bench_user
    timed redis-get-pipelined redis-benchmark "${REDIS_BENCH_AUTH[@]}" -p "$REDIS_PORT" -c 2 -P "$depth" -n "$REDIS_N" -t set,get -d 400 --csv \
        >"$OUT/redis-get-pipelined.log" 2>&1
    redis_bench_user_gone
    cpu_end redis_get_pipelined
    result redis_get_pipelined "$(awk -F'"' '$2 == "GET" { printf "%.0f\n", $4 }' "$OUT/redis-get-pipelined.log")"
    result redis_depth "$depth"
    # If everything but HTTP and the Redis round trips cost nothing, cached reads/s would
    # be 1 / (1/ceiling + 1/redis): C could reach at most redis / (ceiling + redis), with
    # redis the faster of the two ways of asking.
    local best
    best=$(awk -v a="$(r redis_get)" -v b="$(r redis_get_pipelined)" 'BEGIN { print (b + 0 > a + 0) ? b : a }')
    result C_bound "$(ratio "$best" "$(calc "$(r cache_ceiling_wrk) + $best" 0)")"
    start_gateway plain
}
