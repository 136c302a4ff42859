# scripts/bench/memory.sh: sourced by scripts/bench.sh (functions only). The
# gateway's memory: its RSS sampled every 5 s over a mixed run (`rss`); its peak while
# it serves parallel lists of large records (`lists`).

# ---------------------------------------------------------------------------------------
# 8a. Gateway memory over a one-minute mixed run
# ---------------------------------------------------------------------------------------
step_rss() {
    say "8. gateway RSS every 5 s during a ${RSS_SECS} s mixed run ($USERS users)"
    settle rss
    local samples=() t pid start
    result rss_idle_mib "$(calc "$(rss_kib) / 1024" 1)"
    cmd rss "target/dist/loadtest -H $URL --scenario mixed --keys $KEYS -u $USERS -r $USERS -t ${RSS_SECS}s   # VmRSS of the gateway from /proc every 5 s"
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

# ---------------------------------------------------------------------------------------
# Lists of large records: 150 records of 900 KB under one key, then 4 parallel fan-out
# lists of limit=1000, then 4 parallel keyed ones; the gateway's peak RSS (VmHWM) after
# each. On databases of its own (sgbench_readrss), with a gateway started for them.
# ---------------------------------------------------------------------------------------
step_lists() {
    local db=sgbench_readrss work=$OUT/lists i kind
    local -a header
    say "lists: 150 records of 900 KB, then 4 parallel fan-out and 4 keyed lists; the gateway's VmHWM"
    gateway_on_scratch "$db" lists SHARDGATE__SERVER__WORKERS=2
    mkdir -p "$work"
    python3 -c "import sys; sys.stdout.write('x' * 900000)" >"$work/filler"
    for i in $(seq -w 0 149); do
        printf '{"table":"products","id":"p%s","data":{"s":"%s"}}' "$i" "$(cat "$work/filler")" >"$work/r$i.json"
    done
    cmd lists "150 x curl -X POST $URL/api/write -H 'x-shard-key: big' (900 KB each, 4 at once); 4 x curl '$URL/api/read?table=products&limit=1000' at once, without then with the key"
    find "$work" -name 'r*.json' -print0 | xargs -0 -P4 -I{} curl -sf -o /dev/null -H 'x-shard-key: big' \
        -H 'content-type: application/json' --data-binary @{} "$URL/api/write"
    rm -f "$work"/r*.json "$work/filler"
    curl -sf -o /dev/null "$URL/api/read?table=products&limit=1"
    line "after the writes: VmHWM $(hwm_kib) kB"
    for kind in fan-out keyed; do
        header=()
        [[ $kind == fan-out ]] || header=(-H 'x-shard-key: big')
        for i in 1 2 3 4; do
            curl -sf ${header[@]+"${header[@]}"} -o "$work/$kind$i" -w "%{size_download}\n" "$URL/api/read?table=products&limit=1000" &
        done | sort | uniq -c | sed "s/^/$kind answers (count, bytes): /" | tee -a "$OUT/$STEP.txt"
        line "after 4 parallel $kind lists: VmHWM $(hwm_kib) kB"
    done
    rm -rf "$work"
    back_to_plain
}
