# scripts/bench/analytics.sh: sourced by scripts/bench.sh (functions only). The
# analytics recording path (`analytics`), measured by its criterion benchmark; what the
# load per slot and the cluster view cost a gateway (`cluster-analytics`).

# ---------------------------------------------------------------------------------------
# 8b. Analytics record path (criterion)
# ---------------------------------------------------------------------------------------
step_analytics() {
    say "8. cargo bench -p analytics --bench record"
    wait_quiet analytics
    cmd analytics "cargo bench -p analytics --bench record"
    cargo bench -p analytics --bench record >"$OUT/analytics.log" 2>&1 || { tail -20 "$OUT/analytics.log" >&2; die "cargo bench failed"; }
    # "record/1_thread   time:   [41.2 ns 41.5 ns 41.9 ns]"; a long name sits on the
    # line before its "time:" line. The middle figure is criterion's estimate.
    awk '
        /time:/ { name = ($1 == "time:") ? prev : $1; line = $0
                  sub(/.*\[/, "", line); sub(/\].*/, "", line); split(line, f, " ")
                  printf "%s=%s %s\n", name, f[3], f[4] }
        { prev = $1 }' "$OUT/analytics.log" >"$OUT/analytics.txt"
    local line
    while IFS= read -r line; do result "analytics_${line%%=*}" "${line#*=}"; done <"$OUT/analytics.txt"
}

# ---------------------------------------------------------------------------------------
# The load per slot on and off (analytics.load_per_slot), point reads and single writes
# alternating, three rounds; then the publisher: the idle gateway's CPU over 20 s
# publishing every second against once a minute, two rounds.
# KEYS=2000 DURATION=8 CONNS=8 PREP=1.
# ---------------------------------------------------------------------------------------
step_cluster_analytics() {
    local keys=${USER_KEYS:-2000} secs=${USER_DURATION:-8} conns=${CONNS:-8} round on kind ms t0
    say "cluster-analytics: wrk -t1 -c$conns reads and writes with the load per slot on and off (3 rounds), then the publisher"
    if ((PREP)); then
        start_gateway cluster-analytics SHARDGATE__SERVER__WORKERS=2
        prefill_records "$keys"
    fi
    for round in 1 2 3; do
        for on in true false; do
            start_gateway "load-per-slot-$on" SHARDGATE__SERVER__WORKERS=2 SHARDGATE__ANALYTICS__LOAD_PER_SLOT=$on
            for kind in read write; do
                KIND=$kind KEYS=$keys wrk_cpu "ca-$round-$on-$kind" "round $round, $kind, load_per_slot=$on" \
                    -t1 -c"$conns" -d"${secs}s" -s "$REPO/scripts/wrk-cpu.lua" "$URL"
            done
        done
    done
    for round in 1 2; do
        for ms in 1000 60000; do
            start_gateway "publish-$ms" SHARDGATE__SERVER__WORKERS=2 SHARDGATE__ANALYTICS__PUBLISH_MS=$ms \
                SHARDGATE__ANALYTICS__STALE_MS=$((ms * 2))
            sleep 3
            t0=$(pid_ticks "$GW_PID")
            sleep 20
            line "round $round, publishing every $ms ms: idle gateway CPU $(calc "($(pid_ticks "$GW_PID") - $t0) * 1000000 / $CLK_TCK / 20" 0) µs/s"
        done
    done
    back_to_plain
}
