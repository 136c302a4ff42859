# scripts/bench/scenarios.sh: sourced by scripts/bench.sh (functions only). The
# loadtest scenarios no other step measures (`scenarios`): a key's list, the fan-out
# list, the mixed load and cached reads, each as its own goose run of USERS users for
# DURATION (10) s against the gateway bench.sh starts (the cache on for read-cached),
# each request kind with its rate, p50 and p99.

step_scenarios() {
    local secs=${USER_DURATION:-10} s
    say "scenarios: loadtest list, fan-out, mixed, read-cached; $USERS users, ${secs} s each"
    for s in list fan-out mixed read-cached; do
        if [[ $s == read-cached ]]; then
            start_gateway scenarios-cache SHARDGATE__CACHE__ENABLED=true
        fi
        settle "scenario-$s"
        goose "scenario-$s" --scenario "$s" --keys "$KEYS" -u "$USERS" -r "$USERS" -t "${secs}s"
        goose_check "scenario-$s"
        goose_summary "scenario-$s" | sed "s/^/$s: /" | tee -a "$OUT/$STEP.txt"
    done
    back_to_plain
}
