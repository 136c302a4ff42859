# scripts/bench/changes.sh: sourced by scripts/bench.sh (functions only). What change
# streams cost and deliver (`changes`), in one run:
#   W     single writes/s ÷ pgbench upserts at each client count (CONNS="16 64"), streams
#         on (the change log's triggers on and a consumer following the table the writes
#         go to) and off (the triggers disabled, nothing to follow), taking turns ROUNDS
#         times; wrk as in `ratios`, DURATION (10) s a run
#   the stream: loadtest's verify mode following its table on a gateway of a fresh
#         database (a stream with no history to walk past), throttled to WRITE_RATE (500)
#         writes/s, then unthrottled: the writes acknowledged per second, the changes
#         delivered per second, the lag p50/p99 from a change's time to its arrival and
#         from the write's answer to its arrival
# (On the machine bench.sh measures on, the consumer and the load share the cores.)

# follow_users NAME: a consumer of the table `users` in the background (curl, Server-Sent
# Events) into NAME.sse, from its end: the changes already kept are skipped (`from=now`),
# as a new consumer would, walking on from where the last consumer stopped (FOLLOWED).
FOLLOWED=""
follow_users() {
    if [[ -z $FOLLOWED ]]; then
        FOLLOWED=$(curl -fsS "$URL/api/changes?table=users&from=now" | jq -r '.next // empty')
        [[ -n $FOLLOWED ]] || die "GET /api/changes?table=users&from=now gave no cursor"
    fi
    curl -sN -H 'accept: text/event-stream' "$URL/api/changes?table=users&after=$FOLLOWED" >"$OUT/$1.sse" &
    FOLLOWER=$!
    BG_PIDS+=("$FOLLOWER")
}
# unfollow NAME: the consumer stopped; the next one walks on from its last event.
unfollow() {
    local last
    kill "$FOLLOWER" 2>/dev/null || true
    last=$(sed -n 's/^id: //p' "$OUT/$1.sse" | tail -1)
    [[ -z $last ]] || FOLLOWED=$last
    line "  the consumer received $(grep -c '^event: change' "$OUT/$1.sse" || true) changes"
}

# changes_turn N SIDE ROUND: one W of N clients with streams SIDE (on|off).
changes_turn() {
    local n=$1 side=$2 round=$3 name="changes-$1-$2-$3" secs=${USER_DURATION:-10} sum=0 i
    local -a c
    read -r -a c <<<"$(split3 "$n")"
    if [[ $side == off ]]; then CHANGE_LOG_OFF=1; change_log DISABLE; fi
    start_gateway "$name" SHARDGATE__SERVER__WORKERS=2
    [[ $side == off ]] || follow_users "$name"
    KEYS=$KEYS ratio_run "$n" "$side$round" "single write, streams $side" -t2 -c"$n" -d"${secs}s" -s "$REPO/scripts/wrk-write.lua" "$URL"
    [[ $side == off ]] || unfollow "$name"
    if [[ $side == off ]]; then change_log ENABLE; CHANGE_LOG_OFF=0; fi
    settle "$name-pgbench"
    pgbench_upserts "changes-pgbench-upsert-$n" "$name-upsert" "$secs" "$(((KEYS + 2) / 3))" "${c[@]}"
    for i in 0 1 2; do ((c[i] > 0)) && sum=$(calc "$sum + $(pgbench_tps "$name-upsert-$i")" 0); done
    result "changes_${n}_W_${side}_$round" "$(ratio "$(r "ratio_${n}_${side}${round}_rps")" "$sum")"
    line "  W streams $side, round $round: $(r "changes_${n}_W_${side}_$round") ($(r "ratio_${n}_${side}${round}_rps") / $sum)"
}

# changes_verify NAME [GOOSE-ARGS...]: loadtest's verify mode, its stream's figures.
changes_verify() {
    local name=$1 secs=${USER_DURATION:-15} v
    shift
    settle "$name"
    goose "$name" --scenario verify -u "$USERS" -r "$USERS" -t "${secs}s" --follow-changes true "$@"
    v=$(sed -n 's/^verify: {/{/p' "$OUT/$name.log")
    [[ $(jq -r .holds <<<"$v") == true ]] || die "$name: the verify verdict does not hold (see $OUT/$name.log)"
    line "$(jq -r --argjson s "$secs" '"\(.acknowledged / $s | floor) writes/s acknowledged; the stream: \(.stream.per_second | floor) changes/s delivered, lag from the change time p50 \(.stream.lag_p50_ms) / p99 \(.stream.lag_p99_ms) ms, from the answer p50 \(.stream.ack_lag_p50_ms) / p99 \(.stream.ack_lag_p99_ms) ms"' <<<"$v")"
}

step_changes() {
    local conns=${CONNS:-16 64} rate=${WRITE_RATE:-500} n round
    [[ $CHANGE_LOG == on ]] || die "the changes step turns the change log off and on itself: leave CHANGE_LOG unset"
    say "changes: W with streams on and off at $conns clients, $ROUNDS rounds; the stream at $rate writes/s and unthrottled"
    upserts_prefill "$(((KEYS + 2) / 3))"
    for n in $conns; do
        for ((round = 1; round <= ROUNDS; round++)); do
            changes_turn "$n" on "$round"
            changes_turn "$n" off "$round"
        done
    done
    gateway_on_scratch sgbench_changes changes-verify SHARDGATE__SERVER__WORKERS=2
    # A write and its token read per verify iteration: twice the write rate in requests.
    line "verify at $rate writes/s, $USERS users:"
    changes_verify changes-verify-rate --throttle-requests "$((rate * 2))"
    line "verify unthrottled, $USERS users:"
    changes_verify changes-verify-max
    back_to_plain
}
