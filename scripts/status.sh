# scripts/status.sh: sourced by setup.sh (functions only). `./setup.sh status`: every
# server's port, role, state, replication and archiving; the HA monitor, Redis, and the
# gateways and HAProxy of a running `run`.

cmd_status() {
    need_pg_bin
    resolve_data_root
    # Judge "in the topology" against the last `up` unless SHARDS/REPLICAS are given.
    if [[ $TOPOLOGY_FROM_ENV -eq 0 && -f $TOPOLOGY_FILE ]]; then
        SHARDS=$(sed -n 's/^SHARDS=//p' "$TOPOLOGY_FILE")
        REPLICAS=$(sed -n 's/^REPLICAS=//p' "$TOPOLOGY_FILE")
        validate_topology
    fi
    # Servers that exist; if none does, the topology `up` would create.
    local names
    names=$(existing_names)
    [[ -n $names ]] || names=$(topology_names)

    printf '%-18s %-6s %-8s %-6s %s\n' SERVER PORT ROLE STATE REPLICATION
    local n port role state extra actual
    while read -r n; do
        port=$(port_of "$n")
        role=primary
        is_replica_name "$n" && role=replica
        extra=""
        if [[ ! -f $(datadir "$n")/PG_VERSION ]]; then
            state=absent
        elif pg_ready "$port"; then
            state=up
            actual=$(sql "$port" postgres "SELECT CASE WHEN pg_is_in_recovery() THEN 'replica' ELSE 'primary' END" 2>/dev/null || echo "?")
            [[ $actual == "$role" ]] || extra="ROLE IS $actual; "
            [[ $n == "$META_NAME" ]] && extra="the shard map (database $META_DB)"
            # Under HA, whichever node is primary archives.
            if [[ $actual == primary ]] && { [[ $role == primary ]] || ha_on; }; then
                extra="${extra%; }"
                extra+="${extra:+; }$(sql "$port" postgres \
                    "SELECT 'archiving ' || current_setting('archive_mode')
                            || coalesce(', last ' || last_archived_wal, '')
                            || CASE WHEN failed_count > 0 THEN ', ' || failed_count || ' failed' ELSE '' END
                       FROM pg_stat_archiver" 2>/dev/null || echo 'archiving ?')"
            fi
            # A primary read-only by setting takes no write: a switchover's drain left
            # behind, or pg_auto_failover's own while it promotes.
            if [[ $actual == primary && $n != "$META_NAME" ]] &&
                [[ $(sql "$port" postgres "SHOW default_transaction_read_only" 2>/dev/null) == on ]]; then
                extra="READ-ONLY (default_transaction_read_only = on; a drain left behind: shard-admin switchover --shard $(shard_of "$n") --lift-drain)${extra:+; }$extra"
            fi
            if ha_on && [[ $n != "$META_NAME" ]]; then
                extra="${extra%; }"
                extra+="${extra:+; }pg_auto_failover node (its state below)"
            elif [[ $role == replica && $actual == replica ]]; then
                local pport replay line
                pport=$(port_of "$(primary_name "$(shard_of "$n")")")
                replay=$(sql "$port" postgres "SELECT pg_last_wal_replay_lsn()" 2>/dev/null || true)
                if line=$(sql "$pport" postgres \
                    "SELECT coalesce((SELECT state FROM pg_stat_replication WHERE application_name = '$n' LIMIT 1), 'not connected')
                         || ', lag ' || coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), nullif('$replay', '')::pg_lsn)::bigint::text, '?')
                         || ' bytes'" 2>/dev/null); then
                    extra+=$line
                else
                    extra+="primary down, replayed up to ${replay:-?}"
                fi
            fi
        elif pg_running "$n"; then
            state=start   # process alive but not accepting connections (starting up)
        else
            state=down
        fi
        in_topology "$n" || extra+="${extra:+; }outside SHARDS=$SHARDS REPLICAS=$REPLICAS (data kept)"
        if ha_on && [[ $n != "$META_NAME" ]] && ! ha_keeper_running "$n"; then
            extra+="${extra:+; }keeper down"
        fi
        printf '%-18s %-6s %-8s %-6s %s\n' "$n" "$port" "$role" "$state" "$extra"
    done <<<"$names"
    if ha_on; then
        if pg_ready "$HA_MONITOR_PORT"; then state=up; else state=down; fi
        printf '%-18s %-6s %-8s %-6s %s\n' "$HA_MONITOR_NAME" "$HA_MONITOR_PORT" ha "$state" "pg_auto_failover monitor$(ha_keeper_running "$HA_MONITOR_NAME" || echo '; keeper down')"
    fi
    if redis_ping; then state=up; else state=down; fi
    printf '%-18s %-6s %-8s %-6s %s\n' redis "$REDIS_PORT" cache "$state" ""
    # What `./setup.sh run` started, while it runs: gateways on 8080 or 8081+, HAProxy.
    local i pid
    for ((i = 0; i <= MAX_GATEWAYS; i++)); do
        port=$((GATEWAY_PORT + i))
        pid=$(listener_pid "$port")
        [[ -n $pid ]] || continue
        case $(cat "/proc/$pid/comm" 2>/dev/null) in
            api-router) n=gateway-$i role=gateway; ((i > 0)) || n=gateway ;;
            haproxy) n=haproxy role=lb ;;
            *) continue ;;
        esac
        printf '%-18s %-6s %-8s %-6s %s\n' "$n" "$port" "$role" up "$(describe_pid "$pid")"
    done
    if [[ -n $DATA_ROOT && $DATA_ROOT != "$CLUSTER_LINK" ]]; then
        printf '(cluster data in %s)\n' "$DATA_ROOT"
    fi
    if ha_on && pg_ready "$HA_MONITOR_PORT"; then ha_show_state; fi
    address_status
    return 0
}
