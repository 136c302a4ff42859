# scripts/ha_node.sh: sourced by setup.sh (functions only). One pg_auto_failover node
# (scripts/ha.sh): its data dir made from the template, as small as the other servers,
# and `pg_autoctl create postgres` run on it, or a secondary cloned by pg_autoctl.

# pg_autoctl made NAME a monitor or node (its configuration exists).
ha_created() {
    as_pg_read test -f "$(ha_home)/config/pg_autoctl$(datadir "$1")/pg_autoctl.cfg"
}

# A new data dir for NAME from the template (its roles, passwords and settings), with
# the memory pg_auto_failover would size for a machine of its own cut to ours.
ha_from_template() {
    local name=$1 dir tmp
    dir=$(datadir "$name")
    ensure_template
    tmp=$DATA_ROOT/.$name.tmp
    as_pg rm -rf "$tmp" "$dir"
    as_pg cp -a "$DATA_ROOT/template" "$tmp"
    as_pg rm -f "$tmp/shardgate.ready"
    ha_instance_conf "$name" "$tmp"
    ha_small_settings "$tmp"
    as_pg mkdir -p "$tmp/log"
    as_pg mv "$tmp" "$dir"
}

# The port and name as for every server, and a socket in a private folder: pg_autoctl
# talks to its own PostgreSQL over one (PGHOST).
ha_instance_conf() {
    write_instance_conf "$1" "$2"
    printf "unix_socket_directories = '%s'\n" "$(ha_home)/sock" | as_pg tee -a "$2/instance.conf" >/dev/null
}

# postgresql.auto.conf is read after pg_auto_failover's own file: these win.
ha_small_settings() {
    printf "shared_buffers = '64MB'\nwal_keep_size = '64MB'\nmax_wal_size = '256MB'\nmin_wal_size = '64MB'\neffective_cache_size = '512MB'\nmaintenance_work_mem = '64MB'\nwork_mem = '4MB'\n" |
        as_pg tee -a "$1/postgresql.auto.conf" >/dev/null
}

# `pg_autoctl create postgres` for NAME in FORMATION: the primary's data dir comes from
# the template (pg_auto_failover adopts it), a secondary's is cloned by pg_autoctl.
ha_create_node() {
    local name=$1 formation=$2 dir port
    dir=$(datadir "$name")
    port=$(port_of "$name")
    say "creating $name (pg_auto_failover node of formation $formation)"
    ha_autoctl create postgres --pgdata "$dir" --pgport "$port" --pghost "$HOST" \
        --listen "$HOST" --hostname "$HOST" --name "$name" --formation "$formation" \
        --monitor "$(ha_monitor_uri)" --skip-pg-hba --no-ssl \
        --dbname "$DB_NAME" --username "$DB_SUPERUSER" --pgctl "$PG_BIN/pg_ctl" \
        >>"$(ha_home)/$name.log" 2>&1 || {
        log_tail "$(ha_home)/$name.log"
        die "pg_autoctl create postgres failed for $name"
    }
    # A secondary's clone carries the primary's instance.conf (port, cluster_name).
    ha_instance_conf "$name" "$dir"
    ha_autoctl config set --pgdata "$dir" timeout.network_partition_timeout "$HA_PARTITION_S" >/dev/null 2>&1 ||
        die "pg_autoctl config set failed for $name"
}
