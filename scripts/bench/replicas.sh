# scripts/bench/replicas.sh: sourced by scripts/bench.sh (functions only). One
# against two replicas per shard (`replicas`, run last: it switches to SHARDS=3
# REPLICAS=2 and restores the default topology after).

# ---------------------------------------------------------------------------------------
# 6b. One vs two replicas per shard (last: changes the topology, then restores it)
# ---------------------------------------------------------------------------------------
replica1_dir() { echo "$REPO/.local/cluster/shard$1-replica1"; }

restore_topology() {
    stop_gateway
    env -u SHARDS -u REPLICAS "$REPO/setup.sh" up >>"$OUT/setup.log" 2>&1 || say "  WARNING: ./setup.sh up failed (see $OUT/setup.log)"
    local i dir
    for i in "${CREATED_REPLICA1[@]}"; do
        dir=$(replica1_dir "$i")
        # Made by this run and stopped by `up` above: remove it again.
        if [[ -d $dir ]] && ! "$PG_BIN/pg_isready" -q -h "$HOST" -p "${REPLICAS1[$i]}" -t 2; then
            rm -rf --one-file-system "$(readlink -f "$dir")"
        fi
    done
    CREATED_REPLICA1=()
    TOPOLOGY_CHANGED=0
    "$REPO/setup.sh" status >"$OUT/status-after.txt" 2>&1 || true
}

step_replicas() {
    say "6. replicas: loadtest read ($USERS users) with 1, then 2 replicas per shard"
    settle replicas
    cpu_begin
    goose replicas-1 --scenario read --keys "$KEYS" -u "$USERS" -r "$USERS" -t "${DURATION}s"
    cpu_end replicas1
    goose_check replicas-1
    result replicas1_gw "$(goose_rate replicas-1 'GET read')"

    stop_gateway
    local i
    for i in 0 1 2; do [[ -e $(replica1_dir "$i") ]] || CREATED_REPLICA1+=("$i"); done
    TOPOLOGY_CHANGED=1
    say "SHARDS=3 REPLICAS=2 ./setup.sh up (clones a second replica per shard)"
    cmd replicas-up "SHARDS=3 REPLICAS=2 ./setup.sh up; target/dist/api-router --listen $HOST:$PORT --config .local/shardgate.toml"
    local t0=$SECONDS
    SHARDS=3 REPLICAS=2 "$REPO/setup.sh" up >>"$OUT/setup.log" 2>&1 || { tail -20 "$OUT/setup.log" >&2; die "SHARDS=3 REPLICAS=2 ./setup.sh up failed"; }
    result replicas_setup_secs "$((SECONDS - t0))"
    GW_CONFIG_ARGS=(--config "$REPO/.local/shardgate.toml")
    EXTRA_PORTS=("${REPLICAS1[@]}")
    start_gateway replicas2
    settle replicas
    local s0
    s0=$(curl -fsS "$URL/api/shards" | jq -c '[.. | objects | select(has("served")) | select(.role == "replica") | .served]')
    cpu_begin
    goose replicas-2 --scenario read --keys "$KEYS" -u "$USERS" -r "$USERS" -t "${DURATION}s"
    cpu_end replicas2
    goose_check replicas-2
    result replicas2_gw "$(goose_rate replicas-2 'GET read')"
    result replicas2_served "$(curl -fsS "$URL/api/shards" | jq -r --argjson s0 "$s0" '
        [.. | objects | select(has("served")) | select(.role == "replica")] as $now
      | [range(0; $now | length) | "\($now[.].server | sub(".*:"; "")) \($now[.].served - $s0[.])"] | join(", ")')"
    result replicas_ratio "$(ratio "$(r replicas2_gw)" "$(r replicas1_gw)")"
    GW_CONFIG_ARGS=()
    EXTRA_PORTS=()
    say "restoring the default topology (./setup.sh up)"
    restore_topology
    local up
    up=$(grep -cE '^shard[0-2]-(primary|replica0) .* up ' "$OUT/status-after.txt" || true)
    result topology_after "$up of 6 default servers up$(grep -q 'replica1' "$OUT/status-after.txt" && echo ', replica1 data kept (it existed before this run)')"
    [[ $up == 6 ]] || say "  WARNING: ./setup.sh status does not show 3+3 servers up (see $OUT/status-after.txt)"
}
