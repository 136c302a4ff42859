# scripts/cluster.sh: sourced by setup.sh (functions only). The whole topology, in
# order: `./setup.sh up` (packages, metadata server, shards, archiving, grants, Redis,
# the gateway config, the map), `down` and `clean`.

cmd_up() {
    local t0=${EPOCHREALTIME:-$SECONDS}
    validate_topology
    mkdir -p "$LOCAL"
    ensure_packages
    need_pg_bin
    need_cargo
    lock
    resolve_data_root 1
    recreate_if_foreign

    local i r n
    address_choose
    ensure_meta
    if ha_on; then
        [[ -f $(datadir "$HA_MONITOR_NAME")/PG_VERSION || ! -f $(datadir "$(primary_name 0)")/PG_VERSION ]] ||
            die "this cluster was made without the HA manager (HA=0); ./setup.sh clean first (deletes its data) to make it under pg_auto_failover"
        [[ ${HA:-} != 0 ]] ||
            die "this cluster runs under pg_auto_failover; HA=0 needs a new one: ./setup.sh clean first (deletes its data)"
        ha_up
    else
        for ((i = 0; i < SHARDS + SPARE_SHARDS; i++)); do ensure_primary "$i"; done
        for ((i = 0; i < SHARDS + SPARE_SHARDS; i++)); do
            for ((r = 0; r < REPLICAS; r++)); do ensure_replica "$i" "$r"; done
        done
    fi
    # Servers left over from a bigger topology: stop them, keep their data.
    while read -r n; do
        in_topology "$n" && continue
        if pg_running "$n"; then
            say "stopping $n (not in SHARDS=$SHARDS REPLICAS=$REPLICAS; data kept)"
            QUIET=1 pg_stop "$n" fast
        fi
    done < <(existing_names)
    if ! ha_on; then
        wait_streaming
        ensure_prepared_transactions
    fi
    ensure_archiving
    grant_drain
    lift_drains
    redis_start
    address_up
    write_gateway_config
    printf 'SHARDS=%d\nREPLICAS=%d\n' "$SHARDS" "$REPLICAS" >"$TOPOLOGY_FILE"
    unlock
    seed_map
    say "up: metadata on $META_PORT, $SHARDS shards x $REPLICAS replicas$(ha_on && echo ", each a pg_auto_failover formation (monitor on $HA_MONITOR_PORT)"), redis on $REDIS_PORT ($(elapsed "$t0"))"
    spare_hint
}

# The spare shards' servers, and the command that adds one to the cluster.
spare_hint() {
    local i r args
    for ((i = SHARDS; i < SHARDS + SPARE_SHARDS; i++)); do
        args="--primary $HOST:$((PRIMARY_BASE_PORT + i))"
        for ((r = 0; r < REPLICAS; r++)); do
            args+=" --replica $HOST:$((REPLICA_BASE_PORT + i + REPLICA_STRIDE * r))"
        done
        say "spare shard (empty, not in the map): shard-admin add-shard $args"
    done
}

cmd_down() {
    need_pg_bin
    lock
    resolve_data_root
    local n
    address_stop
    ha_on && ha_down
    # Replicas first, so they do not spend the primaries' shutdown reconnecting.
    while read -r n; do
        is_replica_name "$n" && pg_stop "$n" fast
    done < <(existing_names)
    while read -r n; do
        is_replica_name "$n" || pg_stop "$n" fast
    done < <(existing_names)
    redis_stop
    unlock
}

cmd_clean() {
    cmd_down
    lock
    resolve_data_root
    if [[ -d $DATA_ROOT ]]; then
        case $DATA_ROOT in
            "$CLUSTER_LINK" | /var/tmp/shardgate-*) ;;
            *) die "refusing to delete unexpected data dir $DATA_ROOT" ;;
        esac
        say "removing $DATA_ROOT"
        rm -rf "$DATA_ROOT"
    fi
    rm -f "$CLUSTER_LINK" 2>/dev/null || true
    # The pgBackRest repository: beside the data under /var/tmp, or .local/backups.
    if [[ -L $BACKUP_LINK ]]; then
        local repo
        repo=$(readlink "$BACKUP_LINK")
        case $repo in
            /var/tmp/shardgate-*-backups) say "removing $repo"; rm -rf "$repo" ;;
            *) die "refusing to delete unexpected backup repository $repo" ;;
        esac
        rm -f "$BACKUP_LINK"
    elif [[ -d $BACKUP_LINK ]]; then
        say "removing $BACKUP_LINK"
        rm -rf "$BACKUP_LINK"
    fi
    rm -rf "$LOCAL/redis" "$LOCAL/redis.log" "$LOCAL/redis.pid" "$TOPOLOGY_FILE"
    if [[ -f $GEN_CONFIG ]] && is_generated_config; then
        rm -f "$GEN_CONFIG"
    fi
    unlock
}
