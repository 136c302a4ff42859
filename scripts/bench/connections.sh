# scripts/bench/connections.sh: sourced by scripts/bench.sh (functions only). Many
# client connections (`connections`): replica point reads through one gateway at 16 and
# at 1,000 connections, one right after the other, then no-ops (the HTTP floor) the same
# way, two rounds; each run with its rate, p50 and p99, wrk's socket errors, the
# gateway's CPU per request and the machine's load just before it.
# KEYS=2000 CONNS="16 1000" DURATION=10 PREP=1.

step_connections() {
    local keys=${USER_KEYS:-2000} secs=${USER_DURATION:-10} conns=${CONNS:-16 1000} most round n
    most=$(tr ' ' '\n' <<<"$conns" | sort -n | tail -1)
    # Room for every connection on both sides; the gateway inherits it.
    ulimit -n "$((most * 2 + 1024))"
    say "connections: wrk -t2 at $conns connections, replica point reads then no-ops; 2 rounds"
    start_gateway connections SHARDGATE__SERVER__WORKERS=2
    if ((PREP)); then
        prefill_records "$keys" pad
        sleep 2
    fi
    # A 10 s wrk timeout: a request stalled past wrk's default 2 s counts in the latency
    # (and p99) rather than vanishing into "timeout".
    for round in 1 2; do
        for n in $conns; do
            KEYS=$keys wrk_cpu "conn-$round-read-$n" "round $round, read, c=$n" \
                -t2 -c"$n" -d"${secs}s" --timeout 10s -s "$REPO/scripts/wrk-read.lua" "$URL"
        done
        for n in $conns; do
            wrk_cpu "conn-$round-noop-$n" "round $round, no-op, c=$n" -t2 -c"$n" -d"${secs}s" --timeout 10s "$URL/api/health/live"
        done
    done
    line "the gateway's open descriptors after the runs: $(find /proc/"$GW_PID"/fd -mindepth 1 -maxdepth 1 | wc -l)"
    back_to_plain
}
