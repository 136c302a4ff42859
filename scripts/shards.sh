# scripts/shards.sh: sourced by setup.sh (functions only). The shards without the HA
# manager (HA=0): each primary copied from the template, each replica cloned from it
# with pg_basebackup and streaming, and every shard server allowing two-phase commit.

ensure_primary() {   # shard index
    local name port dir
    name=$(primary_name "$1")
    port=$(port_of "$name")
    dir=$(datadir "$name")
    if [[ ! -f $dir/PG_VERSION ]]; then
        ensure_template
        say "creating $name"
        local tmp=$DATA_ROOT/.$name.tmp
        as_pg rm -rf "$tmp" "$dir"
        as_pg cp -a "$DATA_ROOT/template" "$tmp"
        as_pg rm -f "$tmp/shardgate.ready"
        { cat /proc/sys/kernel/random/uuid 2>/dev/null || date +%s%N; } |
            as_pg tee "$tmp/$INCARNATION_FILE" >/dev/null
        write_instance_conf "$name" "$tmp"
        as_pg mkdir -p "$tmp/log"
        as_pg mv "$tmp" "$dir"
    fi
    pg_start "$name"
    # The database is in the template; this covers a data dir someone emptied by hand.
    if [[ -z $(sql "$port" postgres "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") ]]; then
        say "creating database $DB_NAME on $name"
        sql "$port" postgres "CREATE DATABASE $DB_NAME OWNER $APP_ROLE" >/dev/null
    fi
}

ensure_replica() {   # shard index, replica index
    local pname name port pport dir
    pname=$(primary_name "$1")
    name=$(replica_name "$1" "$2")
    port=$(port_of "$name")
    pport=$(port_of "$pname")
    dir=$(datadir "$name")

    # A replica that was promoted, or cloned from an earlier incarnation of its primary,
    # can never stream again: clone it afresh.
    if [[ -f $dir/PG_VERSION ]]; then
        local why=""
        if [[ ! -f $dir/standby.signal ]]; then
            why="was promoted"
        elif [[ $(incarnation "$dir") != "$(incarnation "$(datadir "$pname")")" ]]; then
            why="was cloned from an older $pname"
        fi
        if [[ -n $why ]]; then
            say "$name $why; cloning it again"
            pg_stop "$name" immediate
            as_pg rm -rf "$dir"
        fi
    fi

    if [[ ! -f $dir/PG_VERSION ]]; then
        say "creating $name (pg_basebackup from $pname)"
        local tmp=$DATA_ROOT/.$name.tmp
        as_pg rm -rf "$tmp"
        # The password travels in the environment (never argv); -R writes it into the
        # replica's primary_conninfo (postgresql.auto.conf, private to the postgres user).
        if ! (export PGPASSWORD="$PG_SUPER_PASSWORD"; unset PGPASSFILE; as_pg "$PG_BIN/pg_basebackup" \
            -d "host=$HOST port=$pport user=$DB_SUPERUSER application_name=$name" \
            -D "$tmp" -R -X stream --checkpoint=fast --no-sync -w) >"$LOCAL/basebackup.log" 2>&1; then
            cat "$LOCAL/basebackup.log" >&2
            log_tail "$(logfile "$pname")"
            die "pg_basebackup of $name from $pname failed"
        fi
        as_pg find "$tmp/log" -mindepth 1 -delete 2>/dev/null || as_pg mkdir -p "$tmp/log"
        write_instance_conf "$name" "$tmp"
        # WAL the primary no longer keeps comes from its archive (restore_command_of).
        printf "restore_command = '%s'\n" "$(restore_command_of "$name")" | as_pg tee -a "$tmp/instance.conf" >/dev/null
        as_pg mv "$tmp" "$dir"
    fi
    pg_start "$name"
}

# Wait until every replica of the topology shows `streaming` on its primary.
wait_streaming() {
    ((REPLICAS > 0)) || return 0
    local deadline=$((SECONDS + STREAM_TIMEOUT)) i r names pending
    while :; do
        pending=()
        for ((i = 0; i < SHARDS + SPARE_SHARDS; i++)); do
            names=()
            for ((r = 0; r < REPLICAS; r++)); do names+=("'$(replica_name "$i" "$r")'"); done
            local got
            got=$(sql "$(port_of "$(primary_name "$i")")" postgres \
                "SELECT application_name FROM pg_stat_replication
                  WHERE state = 'streaming' AND application_name IN ($(IFS=,; echo "${names[*]}"))" 2>/dev/null || true)
            for ((r = 0; r < REPLICAS; r++)); do
                grep -qx -- "$(replica_name "$i" "$r")" <<<"$got" || pending+=("$(replica_name "$i" "$r")")
            done
        done
        ((${#pending[@]} == 0)) && return 0
        if ((SECONDS >= deadline)); then
            local n
            for n in "${pending[@]}"; do log_tail "$(logfile "$n")" 15; done
            die "not streaming after ${STREAM_TIMEOUT}s: ${pending[*]} (if a replica fell too far behind, delete its data dir and run ./setup.sh up to clone it again)"
        fi
        sleep 0.2
    done
}

# Servers made before two-phase commit have max_prepared_transactions = 0 (new ones get
# it from the template): raise it and restart them, replicas first (a standby must
# allow at least as many prepared transactions as its primary).
ensure_prepared_transactions() {
    local n name port stale=()
    while read -r name; do
        [[ $name != "$META_NAME" ]] && in_topology "$name" && pg_running "$name" || continue
        port=$(port_of "$name")
        n=$(sql "$port" postgres "SHOW max_prepared_transactions")
        ((n >= PREPARED_TRANSACTIONS)) || stale+=("$name")
    done < <(existing_names | sort -r)   # shardN-replica* before shardN-primary
    ((${#stale[@]})) || return 0
    for name in "${stale[@]}"; do
        say "$name: max_prepared_transactions = $PREPARED_TRANSACTIONS (two-phase commit), restarting it"
        sql "$(port_of "$name")" postgres \
            "ALTER SYSTEM SET max_prepared_transactions = $PREPARED_TRANSACTIONS" >/dev/null
        QUIET=1 pg_stop "$name" fast
        QUIET=1 pg_start "$name"
    done
    wait_streaming
}
