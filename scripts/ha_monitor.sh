# scripts/ha_monitor.sh: sourced by setup.sh (functions only). pg_auto_failover's
# monitor (127.0.0.1:25420, scripts/ha.sh): made once, its timings, its role for the
# gateways that may only read its state, and the URLs each user gets.

ha_monitor_uri() {
    echo "postgres://autoctl_node@$HOST:$HA_MONITOR_PORT/$HA_MONITOR_DB?sslmode=disable"
}

# The monitor's URL as shardgate_monitor_reader, which may only read its state: the
# gateways' failover.ha_monitor.
ha_monitor_reader_url() {
    echo "postgres://$HA_READER_ROLE:$MONITOR_READER_PASSWORD@$HOST:$HA_MONITOR_PORT/$HA_MONITOR_DB?sslmode=disable"
}

# The monitor's URL with autoctl_node's password, which may promote: the admin CLI's
# `shard-admin switchover` alone (failover.ha_monitor_admin, `./setup.sh env admin`).
ha_monitor_url_with_password() {
    local pw
    pw=$(as_pg_read cat "$(ha_home)/password" 2>/dev/null) || return 0
    echo "postgres://autoctl_node:$pw@$HOST:$HA_MONITOR_PORT/$HA_MONITOR_DB?sslmode=disable"
}

ha_ensure_monitor() {
    local dir
    dir=$(datadir "$HA_MONITOR_NAME")
    ha_evict_other_keepers
    if ! ha_created "$HA_MONITOR_NAME"; then
        say "creating the pg_auto_failover monitor on $HA_MONITOR_PORT"
        ha_from_template "$HA_MONITOR_NAME"
        ha_autoctl create monitor --pgdata "$dir" --pgport "$HA_MONITOR_PORT" \
            --hostname "$HOST" --listen "$HOST" --skip-pg-hba --no-ssl \
            --pgctl "$PG_BIN/pg_ctl" >>"$(ha_home)/$HA_MONITOR_NAME.log" 2>&1 || {
            log_tail "$(ha_home)/$HA_MONITOR_NAME.log"
            die "pg_autoctl create monitor failed"
        }
    fi
    ha_keeper_start "$HA_MONITOR_NAME"
    ha_wait_ready "$HA_MONITOR_NAME"
    ha_monitor_on_loopback
    printf "ALTER ROLE autoctl_node PASSWORD '%s';\n" "$HA_PASSWORD" |
        sql_stdin "$HA_MONITOR_PORT" "$HA_MONITOR_DB" >/dev/null
    ha_monitor_reader
    # One psql: each ALTER SYSTEM a statement of its own (none may share a transaction).
    local t script=""
    for t in "${HA_TIMINGS[@]}"; do
        script+="ALTER SYSTEM SET pgautofailover.${t%%=*} = ${t#*=};"$'\n'
    done
    sql_stdin "$HA_MONITOR_PORT" "$HA_MONITOR_DB" <<<"${script}SELECT pg_reload_conf();" >/dev/null
}

# A monitor made before it was created with --listen listens on every interface
# (pg_auto_failover's listen_addresses = '*'): told 127.0.0.1, in its keeper's
# configuration and in postgresql.auto.conf (read last, so it wins), then restarted.
ha_monitor_on_loopback() {
    local dir
    [[ $(sql "$HA_MONITOR_PORT" postgres "SHOW listen_addresses") != "$HOST" ]] || return 0
    dir=$(datadir "$HA_MONITOR_NAME")
    say "the pg_auto_failover monitor listens on $HOST only; restarting it"
    sql "$HA_MONITOR_PORT" postgres "ALTER SYSTEM SET listen_addresses = '$HOST'" >/dev/null
    # Set with its keeper stopped: a running one writes its own back (and starts
    # PostgreSQL with -h from it, which beats postgresql.auto.conf).
    QUIET=1 ha_keeper_stop "$HA_MONITOR_NAME" TERM
    ha_autoctl config set --pgdata "$dir" postgresql.listen_addresses "$HOST" >/dev/null ||
        die "pg_autoctl config set postgresql.listen_addresses failed for the monitor"
    QUIET=1 ha_keeper_start "$HA_MONITOR_NAME"
    ha_wait_ready "$HA_MONITOR_NAME"
    [[ $(sql "$HA_MONITOR_PORT" postgres "SHOW listen_addresses") == "$HOST" ]] ||
        die "the monitor still listens on $(sql "$HA_MONITOR_PORT" postgres "SHOW listen_addresses") after its restart"
}

# The gateways' role on the monitor: it signs in and reads the formations' state
# (SELECT on pgautofailover.node and .formation), nothing more. The extension lets
# PUBLIC execute most of its functions (perform_failover, perform_promotion, and
# security-definer ones such as disable_secondary), which a role with USAGE on its
# schema could call: PUBLIC loses that, autoctl_node (the keepers, the admin CLI) keeps it.
ha_monitor_reader() {
    printf "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN
            CREATE ROLE %s LOGIN; END IF; END \$\$;
        ALTER ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '%s';\n" \
        "$HA_READER_ROLE" "$HA_READER_ROLE" "$HA_READER_ROLE" "$MONITOR_READER_PASSWORD" |
        sql_stdin "$HA_MONITOR_PORT" "$HA_MONITOR_DB" >/dev/null
    sql "$HA_MONITOR_PORT" "$HA_MONITOR_DB" "
        GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pgautofailover TO autoctl_node;
        REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA pgautofailover FROM PUBLIC;
        GRANT CONNECT ON DATABASE $HA_MONITOR_DB TO $HA_READER_ROLE;
        GRANT USAGE ON SCHEMA pgautofailover TO $HA_READER_ROLE;
        GRANT SELECT ON pgautofailover.node, pgautofailover.formation TO $HA_READER_ROLE" >/dev/null
}
