# scripts/ha_keeper.sh: sourced by setup.sh (functions only). pg_auto_failover's
# keepers (scripts/ha.sh): one `pg_autoctl run` per node, detached in a session of its
# own, started, stopped (TERM, or KILL: the node lost) and waited for; another
# checkout's keepers stopped so this one's may have the ports.

ha_keeper_pid() { as_pg_read cat "$(ha_home)/$1.pid" 2>/dev/null || true; }

ha_keeper_running() {
    local pid
    pid=$(ha_keeper_pid "$1")
    [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q "pg_autoctl run"
}

# `pg_autoctl run` for NAME, detached in a session of its own (so `pg stop` can kill the
# whole node, keeper and PostgreSQL, as one process group).
ha_keeper_start() {
    local name=$1 home log
    ha_keeper_running "$name" && return 0
    home=$(ha_home)
    log=$home/$name.log
    [[ ${QUIET:-0} -eq 1 ]] || say "starting the keeper of $name"
    as_pg setsid -f sh -c 'echo $$ > "$1"; shift; exec "$@"' sh "$home/$name.pid" \
        env "XDG_CONFIG_HOME=$home/config" "XDG_DATA_HOME=$home/share" \
        "XDG_RUNTIME_DIR=$home/run" "PGPASSFILE=$home/pgpass" "PATH=$PG_BIN:/usr/bin:/bin" \
        "PGHOST=$home/sock" pg_autoctl run --pgdata "$(datadir "$name")" </dev/null >>"$log" 2>&1
    local i
    for ((i = 0; i < 50; i++)); do
        ha_keeper_running "$name" && return 0
        sleep 0.1
    done
    log_tail "$log"
    die "the keeper of $name did not start"
}

# Starts NAME's PostgreSQL as its keeper would (same data dir, same environment: the
# standby's primary_conninfo finds its password through PGPASSFILE), before the keeper,
# which then finds it running and keeps it. See ha_ensure_shard for why.
ha_postgres_start() {
    local name=$1 home dir
    home=$(ha_home)
    dir=$(datadir "$name")
    pg_running "$name" && return 0
    [[ ${QUIET:-0} -eq 1 ]] || say "starting $name's PostgreSQL before its keeper"
    # The port and address on the command line, as the keeper gives them: a data dir
    # cloned from another node may carry that node's port in its files.
    if ! as_pg env "PGPASSFILE=$home/pgpass" "PGHOST=$home/sock" "$PG_BIN/pg_ctl" start -D "$dir" \
        -o "-p $(port_of "$name") -h $HOST" -l "$home/$name.start.log" -w -t "$START_TIMEOUT" -s >/dev/null 2>&1; then
        log_tail "$home/$name.start.log"
        die "$name's PostgreSQL did not start"
    fi
}

# Stops NAME's keeper and its PostgreSQL: TERM (a clean stop) or KILL (the node lost).
ha_keeper_stop() {
    local name=$1 sig=$2 pid i
    ha_keeper_running "$name" || return 0
    pid=$(ha_keeper_pid "$name")
    [[ ${QUIET:-0} -eq 1 ]] || say "stopping the keeper of $name ($sig)"
    kill "-$sig" -- "-$pid" 2>/dev/null || true
    # A PostgreSQL started before its keeper (ha_postgres_start) is not in the keeper's
    # process group: a lost node loses it too. (On TERM the keeper stops it itself.)
    if [[ $sig == KILL ]]; then
        local postmaster
        postmaster=$(as_pg_read head -n 1 "$(datadir "$name")/postmaster.pid" 2>/dev/null || true)
        [[ $postmaster =~ ^[0-9]+$ ]] && kill -KILL "$postmaster" 2>/dev/null || true
    fi
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        if ! ha_keeper_running "$name" && ! pg_running "$name"; then return 0; fi
        sleep 0.1
    done
    die "the keeper of $name (pid $pid) did not stop"
}

# Waits until NAME answers.
ha_wait_ready() {
    local name=$1 port i
    port=$(port_of "$name")
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        pg_ready "$port" && return 0
        sleep 0.1
    done
    log_tail "$(ha_home)/$name.log"
    die "$name does not accept connections on port $port"
}

# The ports are fixed, so one checkout's cluster runs at a time. Another checkout's
# keepers (its monitor's too) hold their ports and start their PostgreSQL again when it
# is stopped alone: each `pg_autoctl run` whose data dir is a node of a setup.sh cluster
# (named as this one's are) outside this checkout's is stopped (TERM: it stops its
# PostgreSQL first), as `evict_other` does for plain servers.
ha_evict_other_keepers() {
    local pid dir name mine i args
    mine=$(readlink -f "$DATA_ROOT")
    for pid in $(pgrep -x pg_autoctl 2>/dev/null || true); do
        # Its command line, read without starting a process (a running cluster has three
        # pg_autoctl processes a node to look at).
        mapfile -d '' -t args 2>/dev/null <"/proc/$pid/cmdline" || continue
        [[ ${args[0]:-} == pg_autoctl && ${args[1]:-} == run ]] || continue
        dir=""
        for ((i = 2; i + 1 < ${#args[@]}; i++)); do
            if [[ ${args[i]} == --pgdata ]]; then dir=${args[i + 1]}; break; fi
        done
        # This checkout's: by the path it was started with, or where that path leads.
        [[ -n $dir && $dir != "$DATA_ROOT"/* && $(readlink -f "$dir") != "$mine"/* ]] || continue
        name=$(basename "$dir")
        [[ $name == "$HA_MONITOR_NAME" || $name =~ ^shard[0-9]+-(primary|replica[0-9]+)$ ]] || continue
        say "stopping the keeper of $name of another checkout ($dir, pid $pid): this checkout needs its port"
        kill -TERM "$pid" 2>/dev/null || continue
        for ((i = 0; i < START_TIMEOUT * 10; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        ! alive "$pid" || die "the keeper of $dir (pid $pid) did not stop; stop it, then retry"
    done
}
