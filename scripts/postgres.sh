# scripts/postgres.sh: sourced by setup.sh (functions only). One PostgreSQL server of
# the topology (plain, not under the HA manager): whether it runs, start and stop it,
# take its port from another checkout's; `./setup.sh pg stop|start|restart|psql NAME`.

pg_running() {   # the postmaster of this data dir is alive
    local dir
    dir=$(datadir "$1")
    [[ -f $dir/postmaster.pid ]] || return 1
    as_pg "$PG_BIN/pg_ctl" status -D "$dir" >/dev/null 2>&1
}

# Port PORT answers although NAME is not running from this checkout. The ports are fixed,
# so only one checkout's cluster can run at a time: if the server there is NAME of another
# checkout (same cluster_name; its data dir may even be gone), shut it down (fast) so this
# one can start. Anything else on the port is an error. Returns 1 if it is our own NAME
# after all (running, though pg_ctl status did not say so).
evict_other() {
    local name=$1 port=$2 pm ddir i
    # Found from the listening socket and /proc, with no login: another checkout's
    # servers have other passwords.
    pm=$(listener_pid "$port")
    [[ $pm =~ ^[0-9]+$ ]] || die "port $port is in use by something setup.sh cannot identify; cannot start $name"
    ddir=$(tr '\0' '\n' <"/proc/$pm/cmdline" 2>/dev/null | sed -n '/^-D$/{n;p;q}')
    [[ -n $ddir ]] || die "port $port is in use by something that is not a PostgreSQL setup.sh started; cannot start $name"
    [[ $ddir != "$(datadir "$name")" ]] || return 1
    { [[ $(basename "$ddir") == "$name" ]] && is_shardgate_process "$pm"; } ||
        die "port $port is in use by another PostgreSQL server ($ddir); cannot start $name"
    say "stopping $name of another checkout ($ddir, pid $pm): this checkout needs port $port"
    kill -INT "$pm" 2>/dev/null || die "cannot stop pid $pm (another user's server?); stop it, then retry"
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        alive "$pm" || pg_ready "$port" || return 0
        sleep 0.1
    done
    die "$ddir (pid $pm) did not shut down; cannot start $name on port $port"
}

pg_start() {   # start NAME and wait until it accepts connections
    local name=$1 port dir log
    port=$(port_of "$name")
    dir=$(datadir "$name")
    log=$(logfile "$name")
    [[ -f $dir/PG_VERSION ]] || die "$name has no data dir ($dir); run ./setup.sh up"
    if ! pg_running "$name" && ! { pg_ready "$port" && ! evict_other "$name" "$port"; }; then
        [[ ${QUIET:-0} -eq 1 ]] || say "starting $name on $port"
        as_pg mkdir -p "$dir/log"
        if ! as_pg "$PG_BIN/pg_ctl" start -D "$dir" -l "$log" -w -t "$START_TIMEOUT" -s >/dev/null 2>&1; then
            log_tail "$log"
            die "$name did not start on port $port"
        fi
    fi
    local i
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        pg_ready "$port" && return 0
        sleep 0.1
    done
    log_tail "$log"
    die "$name is running but does not accept connections on port $port"
}

pg_stop() {   # stop NAME with the given mode (fast | immediate); no-op when stopped
    local name=$1 mode=$2 dir
    dir=$(datadir "$name")
    [[ -f $dir/PG_VERSION ]] || die "$name has no data dir ($dir)"
    pg_running "$name" || return 0
    [[ ${QUIET:-0} -eq 1 ]] || say "stopping $name ($mode)"
    if ! as_pg "$PG_BIN/pg_ctl" stop -D "$dir" -m "$mode" -w -t "$START_TIMEOUT" -s >/dev/null 2>&1; then
        pg_running "$name" || return 0
        log_tail "$(logfile "$name")"
        die "could not stop $name"
    fi
}

cmd_pg() {
    local action=${1:-} name=${2:-}
    [[ -n $action && -n $name ]] || die "usage: ./setup.sh pg stop|start|restart|psql NAME (NAME like meta, shard0-primary, shard1-replica0)"
    port_of "$name" >/dev/null || die "unknown server '$name' (expected meta, shardN-primary or shardN-replicaR)"
    need_pg_bin
    resolve_data_root
    [[ -f $(datadir "$name")/PG_VERSION ]] || die "$name does not exist (no $(datadir "$name")); run ./setup.sh up"
    shift 2
    local QUIET=1   # these are called by tests: silent unless something fails
    if ha_on && [[ $name != "$META_NAME" && $action != psql ]]; then
        # Under HA a node is its keeper: stopping one loses the node (kill -9 of the
        # keeper and its PostgreSQL); its monitor decides what follows.
        case $action in
            stop) lock; ha_keeper_stop "$name" KILL; unlock ;;
            start) lock; ha_prepare; ha_keeper_start "$name"; ha_wait_ready "$name"; unlock ;;
            restart) lock; ha_keeper_stop "$name" KILL; ha_prepare; ha_keeper_start "$name"; ha_wait_ready "$name"; unlock ;;
            *) die "unknown pg action '$action' (stop, start, restart, psql)" ;;
        esac
        return 0
    fi
    case $action in
        stop) lock; pg_stop "$name" immediate; unlock ;;
        start) lock; pg_start "$name"; unlock ;;
        restart) lock; pg_stop "$name" immediate; pg_start "$name"; unlock ;;
        psql)
            local db=$DB_NAME
            [[ $name == "$META_NAME" ]] && db=$META_DB
            [[ $name == "$HA_MONITOR_NAME" ]] && db=$HA_MONITOR_DB
            exec "$PG_BIN/psql" -X -h "$HOST" -p "$(port_of "$name")" -U "$DB_SUPERUSER" -d "$db" "$@" ;;
        *) die "unknown pg action '$action' (stop, start, restart, psql)" ;;
    esac
}
