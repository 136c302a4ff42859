# scripts/bench/memory.sh: sourced by scripts/bench.sh (functions only). The
# gateway's memory (`rss`): its RSS sampled every 5 s over a mixed run.

# ---------------------------------------------------------------------------------------
# 8a. Gateway memory over a one-minute mixed run
# ---------------------------------------------------------------------------------------
step_rss() {
    say "8. gateway RSS every 5 s during a ${RSS_SECS} s mixed run ($USERS users)"
    settle rss
    local samples=() t pid start
    result rss_idle_mib "$(calc "$(rss_kib) / 1024" 1)"
    cmd rss "target/release/loadtest -H $URL --scenario mixed --keys $KEYS -u $USERS -r $USERS -t ${RSS_SECS}s   # VmRSS of the gateway from /proc every 5 s"
    "$BIN/loadtest" -H "$URL" --scenario mixed --keys "$KEYS" -u "$USERS" -r "$USERS" -t "${RSS_SECS}s" \
        --report-file "$OUT/rss.json" >"$OUT/rss.log" 2>&1 &
    pid=$!
    BG_PIDS+=("$pid")
    start=$SECONDS
    # Goose starts the users within a second of its start; sample from there.
    sleep 1.5
    for ((t = 0; t <= RSS_SECS; t += 5)); do
        samples+=("$(rss_kib)")
        ((t + 5 <= RSS_SECS)) && sleep 5
    done
    wait "$pid" || die "the mixed run failed (see $OUT/rss.log)"
    goose_check rss
    local first=${samples[0]} last=${samples[-1]} max=0 s
    for s in "${samples[@]}"; do ((s > max)) && max=$s; done
    result rss_samples_mib "$(for s in "${samples[@]}"; do calc "$s / 1024" 1; printf ' '; done)"
    result rss_first_mib "$(calc "$first / 1024" 1)"
    result rss_last_mib "$(calc "$last / 1024" 1)"
    result rss_growth_pct "$(calc "($last - $first) * 100 / $first" 1)"
    # The second half of the run: after the pools and the analytics' first slots filled.
    result rss_growth_last_half_mib "$(calc "($last - ${samples[$((${#samples[@]} / 2))]}) / 1024" 1)"
    result rss_rate "$(goose_rate rss 'POST write') writes/s + $(goose_rate rss 'GET read') reads/s"
}
