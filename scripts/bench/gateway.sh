# scripts/bench/gateway.sh: part of lib.sh (functions only). The gateway bench.sh
# starts on its own port, stopped on exit; records written through it; its memory, and
# what each server and PostgreSQL counted.

# ---------------------------------------------------------------------------------------
# The gateway
# ---------------------------------------------------------------------------------------
# start_gateway LABEL [VAR=value ...]: runs $GATEWAY_BIN (target/dist/api-router) on
# $PORT with $GW_CONFIG_ARGS; waits until it answers and every replica takes reads.
GW_CONFIG_ARGS=()
start_gateway() {
    local label=$1
    shift
    stop_gateway
    say "gateway ($label) on $URL"
    env "$@" RUST_LOG=warn "$GATEWAY_BIN" --listen "$HOST:$PORT" "${GW_CONFIG_ARGS[@]}" \
        >"$OUT/gateway-$label.log" 2>&1 &
    GW_PID=$!
    GW_LABEL=$label
    local i ok=0
    for ((i = 0; i < 300; i++)); do
        kill -0 "$GW_PID" 2>/dev/null || { tail -20 "$OUT/gateway-$label.log" >&2; die "the gateway exited"; }
        if curl -fsS -m 2 "$URL/api/health" 2>/dev/null |
            jq -e '.healthy and ([.shards[].replicas[].gateway.takes_reads] | all)' >/dev/null 2>&1; then
            ok=1
            break
        fi
        sleep 0.1
    done
    [[ $ok -eq 1 ]] || die "the gateway on $URL did not become healthy with every replica taking reads in 30 s"
}
stop_gateway() {
    [[ -n $GW_PID ]] || return 0
    kill -TERM "$GW_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 150; i++)); do
        kill -0 "$GW_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$GW_PID" 2>/dev/null || true
    wait "$GW_PID" 2>/dev/null || true
    GW_PID=""
}
# The gateway the default steps share (prepare), again after a step that changed it;
# no gateway when the steps run need none.
PLAIN_GATEWAY=0
back_to_plain() { if ((PLAIN_GATEWAY)); then start_gateway plain; else stop_gateway; fi; }

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$GW_PID/status" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$GW_PID/status" 2>/dev/null || echo 0; }

# prefill_records N [pad]: users/rec_0 .. rec_{N-1} (shard key user_n, data {"n": n},
# with pad: and 48 bytes of "pad"), written through the gateway in bulk writes of 100.
prefill_records() {
    local n=$1 pad=${2:-} b recs
    say "  prefill: $n records through the gateway"
    [[ -z $pad ]] || pad=',"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"'
    for ((b = 0; b < n; b += 100)); do
        recs=$(seq "$b" $((b + 99 < n - 1 ? b + 99 : n - 1)) | awk -v pad="$pad" '{
            printf "%s{\"shard_key\":\"user_%d\",\"id\":\"rec_%d\",\"data\":{\"n\":%d%s}}", (NR > 1 ? "," : ""), $1, $1, $1, pad }')
        curl -fsS -o /dev/null -X POST "$URL/api/bulk-write" -H 'content-type: application/json' \
            -d "{\"table\":\"users\",\"records\":[$recs]}"
    done
}

# Requests each server served, by role (from GET /api/shards).
served() { curl -fsS -m 5 "$URL/api/shards" | jq "[.. | objects | select(has(\"served\")) | select(.role == \"$1\") | .served] | add"; }
# Transactions PostgreSQL counted in the shardgate database of these servers.
xacts() {
    local port n=0
    for port in "$@"; do
        n=$((n + $(sql "$port" postgres "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'shardgate'")))
    done
    echo "$n"
}
