# scripts/ha.sh: sourced by setup.sh (functions only). By default (HA=0 opts out) every
# shard is run by a real HA manager, pg_auto_failover: one monitor (127.0.0.1:25420) and one formation per
# shard (shard0, shard1, ...; in pg_auto_failover 2.0 several groups in one formation
# exist only for Citus), whose first node is the primary on today's primary port and the
# others secondaries on today's replica ports, so the gateway's config stays the same.
# Each node is a keeper (`pg_autoctl run`) that runs its PostgreSQL; the keepers run
# detached (a session each), their logs in .local/cluster/ha/NAME.log.
#
# Replication is synchronous (pg_auto_failover's default: ANY 1 of the secondaries);
# the monitor checks every second and calls a node unhealthy after 2 s, and gives a lost
# primary 2 s to demote itself (its keeper does after 1 s without the monitor and a
# standby) before the promoted secondary takes writes. Every login keeps a password:
# the nodes are made from the same template as the non-HA servers (SCRAM everywhere),
# pg_auto_failover's own roles get a generated password each (autoctl_node, which may
# promote; pgautofailover_replicator, replication; pgautofailover_monitor, the
# monitor's health checks), and the keepers and the PostgreSQL they start read them
# from a private pgpass (PGPASSFILE); no password is ever on a command line. Gateways
# get the monitor as shardgate_monitor_reader, which may only read its state
# (pgautofailover.node, .formation); autoctl_node's URL is the admin CLI's alone
# (`./setup.sh env admin`). The monitor listens on 127.0.0.1 only. The metadata server
# is not under the HA manager.
#
# A cluster is HA when its monitor's data dir exists: down, clean, status and pg work on
# it without HA=1. `./setup.sh ha hold|release N` holds shard N's failover (ha_hold,
# scripts/ha_placement.sh).
#
# This file makes the formations and brings them up and down; beside it, each with one
# job: ha_node.sh (a node's data dir and `pg_autoctl create postgres`), ha_keeper.sh
# (the keepers), ha_monitor.sh (the monitor), ha_placement.sh (where each formation's
# primary is: hold, release, switch back) and ha_restore.sh (a formation re-formed after
# a restore).

HA_MONITOR_NAME=monitor
HA_MONITOR_PORT=25420
HA_MONITOR_DB=pg_auto_failover
HA_TIMINGS=(health_check_period=1000 health_check_timeout=1000 health_check_max_retries=1
    health_check_retry_delay=500 node_considered_unhealthy_timeout=2000
    startup_grace_period=2000 primary_demote_timeout=2000)
HA_PARTITION_S=1       # a keeper without the monitor and a standby demotes after this
#                        (keep it below primary_demote_timeout: issue #30, docs/BENCHMARKS.md)
HA_WRITE_WAIT_MS=10000 # the generated gateway config's failover.write_wait_ms
HA_PASSWORD=""             # autoctl_node (keepers to the monitor; the admin CLI's promotions)
HA_REPLICATION_PASSWORD="" # pgautofailover_replicator
HA_MONITOR_PASSWORD=""     # pgautofailover_monitor (the monitor's checks of the nodes)
HA_READER_ROLE=shardgate_monitor_reader

ha_home() { echo "$DATA_ROOT/ha"; }

# Whether the shards run under pg_auto_failover. A cluster whose monitor exists does;
# otherwise HA=1 or HA=0 when given, and without either as the cluster was made: a new
# cluster is made under pg_auto_failover (the default since issue #30), one made
# without it (its first primary exists, no monitor) stays so.
ha_on() {
    local root=${DATA_ROOT:-$CLUSTER_LINK}
    [[ -f $root/$HA_MONITOR_NAME/PG_VERSION ]] && return 0
    case ${HA:-} in
        1) return 0 ;;
        0) return 1 ;;
    esac
    [[ ! -f $root/$(primary_name 0)/PG_VERSION ]]
}

# The packages when missing: the monitor's extension for this PostgreSQL, and pg_autoctl.
ha_missing_packages() {
    local ver
    ver=$(basename "$(dirname "$PG_BIN")")
    [[ -e /usr/share/postgresql/$ver/extension/pgautofailover.control ]] ||
        echo "postgresql-$ver-auto-failover"
    command -v pg_autoctl >/dev/null 2>&1 || echo pg-auto-failover-cli
}

# pg_auto_failover's roles' passwords (generated once, one each: an older cluster's
# shared one stays autoctl_node's) and the pgpass every keeper reads.
ha_prepare() {
    local home f
    home=$(ha_home)
    as_pg mkdir -p "$home/config" "$home/share" "$home/run" "$home/sock"
    as_pg chmod 700 "$home"
    for f in password replication-password monitor-password; do
        if ! as_pg_read test -s "$home/$f"; then
            random_secret | as_pg sh -c "umask 077; cat > '$home/$f'"
        fi
    done
    HA_PASSWORD=$(as_pg_read cat "$home/password")
    HA_REPLICATION_PASSWORD=$(as_pg_read cat "$home/replication-password")
    HA_MONITOR_PASSWORD=$(as_pg_read cat "$home/monitor-password")
    printf '*:*:*:%s:%s\n*:*:*:autoctl_node:%s\n*:*:*:pgautofailover_replicator:%s\n*:*:*:pgautofailover_monitor:%s\n' \
        "$DB_SUPERUSER" "$PG_SUPER_PASSWORD" "$HA_PASSWORD" "$HA_REPLICATION_PASSWORD" "$HA_MONITOR_PASSWORD" |
        as_pg sh -c "umask 077; cat > '$home/pgpass'"
}

# pg_autoctl as the PostgreSQL OS user, its files under .local/cluster/ha.
ha_autoctl() {
    local home
    home=$(ha_home)
    as_pg env "XDG_CONFIG_HOME=$home/config" "XDG_DATA_HOME=$home/share" \
        "XDG_RUNTIME_DIR=$home/run" "PGPASSFILE=$home/pgpass" "PGCONNECT_TIMEOUT=3" \
        "PGHOST=$home/sock" \
        "PATH=$PG_BIN:/usr/bin:/bin" pg_autoctl "$@"
}

# Shard I as a formation: its primary node, then REPLICAS secondaries.
ha_ensure_shard() {
    local i=$1 formation=shard$1 pname name r
    pname=$(primary_name "$i")
    # The formations ha_up found (one query for all); one not among them is asked for.
    if [[ $HA_FORMATIONS != *" $formation "* &&
        -z $(sql "$HA_MONITOR_PORT" "$HA_MONITOR_DB" "SELECT 1 FROM pgautofailover.formation WHERE formationid = '$formation'") ]]; then
        ha_autoctl create formation --pgdata "$(datadir "$HA_MONITOR_NAME")" \
            --formation "$formation" --kind pgsql --dbname "$DB_NAME" >>"$(ha_home)/$HA_MONITOR_NAME.log" 2>&1 ||
            die "pg_autoctl create formation $formation failed (see $(ha_home)/$HA_MONITOR_NAME.log)"
    fi
    # Restored by `shard-admin restore` (a new incarnation): scripts/ha_restore.sh.
    if ha_restored "$i"; then ha_reform "$i"; fi
    if ! ha_created "$pname"; then
        # A data dir already there is adopted, never replaced: a restored one, say.
        if [[ ! -f $(datadir "$pname")/PG_VERSION ]]; then
            ha_from_template "$pname"
            # Archived from the first start (ensure_archiving sets the command); the
            # secondaries are cloned with it.
            echo "archive_mode = on" | as_pg tee -a "$(datadir "$pname")/postgresql.auto.conf" >/dev/null
            { cat /proc/sys/kernel/random/uuid 2>/dev/null || date +%s%N; } |
                as_pg tee "$(datadir "$pname")/$INCARNATION_FILE" >/dev/null
        fi
        ha_create_node "$pname" "$formation"
    fi
    # Every node that exists first: after a failover, another than shardN-primary is
    # the one the others follow. Their PostgreSQL servers start before any keeper, the
    # writable node's first: a keeper whose first report says its server is not running
    # makes the monitor fail over to a secondary it still has as healthy (the last
    # report it kept from before `down`), so `down` then `up` would move the primary.
    local nodes=() writable=${HA_WRITABLE[$formation]:-}
    ha_created "$pname" && nodes+=("$pname")
    for ((r = 0; r < REPLICAS; r++)); do
        name=$(replica_name "$i" "$r")
        if ha_created "$name"; then
            if [[ $(port_of "$name") == "$writable" ]]; then nodes=("$name" "${nodes[@]}"); else nodes+=("$name"); fi
        fi
    done
    for name in "${nodes[@]}"; do ha_postgres_start "$name"; done
    for name in "${nodes[@]}"; do ha_keeper_start "$name"; done
    ha_wait_ready "$pname"
    ha_node_passwords "$formation"
    for ((r = 0; r < REPLICAS; r++)); do
        name=$(replica_name "$i" "$r")
        if ! ha_created "$name"; then
            as_pg rm -rf "$(datadir "$name")"   # pg_autoctl clones into an empty place
            ha_create_node "$name" "$formation"
            ha_keeper_start "$name"
        fi
    done
    ha_remember_incarnation "$i"
}

# pg_auto_failover's roles on the formation's writable node get their password (the
# template's pg_hba asks every role for one).
ha_node_passwords() {
    local port="" i
    # The writable node ha_up found (one query for all), when it is still ready; else
    # asked of the monitor until there is one.
    port=${HA_WRITABLE[$1]:-}
    [[ -n $port ]] && pg_ready "$port" || port=""
    for ((i = 0; i < START_TIMEOUT * 5 && ${#port} == 0; i++)); do
        port=$(ha_writable_port "$1") && pg_ready "$port" && break
        port=""
        sleep 0.2
    done
    [[ -n $port ]] || die "formation $1 has no writable node after ${START_TIMEOUT}s"
    # (The pgpass that ha_prepare wrote already has these: a replication or check
    # connection made meanwhile signs in with the new one.)
    # Local commit: the keeper may be changing the node's synchronous standby names
    # and end sessions waiting on a standby. Setting a password twice is harmless, so
    # a session ended that way is tried again (the last try's error is shown).
    local sql attempt
    sql=$(printf "SET synchronous_commit = local;
    DO \$\$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgautofailover_replicator') THEN
            ALTER ROLE pgautofailover_replicator PASSWORD '%s'; END IF;
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgautofailover_monitor') THEN
            ALTER ROLE pgautofailover_monitor PASSWORD '%s'; END IF;
    END \$\$;" "$HA_REPLICATION_PASSWORD" "$HA_MONITOR_PASSWORD")
    for attempt in 1 2 3 4; do
        sql_stdin "$port" postgres <<<"$sql" >/dev/null 2>&1 && return 0
        sleep 1
        port=$(ha_writable_port "$1") || port=""
        [[ -n $port ]] || return 1
    done
    sql_stdin "$port" postgres <<<"$sql" >/dev/null
}

# The port of the node the monitor has as the formation's primary.
ha_writable_port() {
    local port
    port=$(sql "$HA_MONITOR_PORT" "$HA_MONITOR_DB" "SELECT nodeport FROM pgautofailover.node
        WHERE formationid = '$1' AND reportedstate IN ('single', 'primary', 'wait_primary')
        ORDER BY nodeid LIMIT 1")
    [[ -n $port ]] && echo "$port"
}

# Every formation's writable node in one query to the monitor, for a step that visits
# each formation in turn: HA_WRITABLE[shardN] is its port (none: no writable node, or
# the monitor did not answer, as for ha_writable_port).
ha_load_writable() {
    declare -gA HA_WRITABLE=()
    local formation port
    while IFS='|' read -r formation port; do
        [[ -n $formation ]] && HA_WRITABLE[$formation]=$port
    done < <(sql "$HA_MONITOR_PORT" "$HA_MONITOR_DB" "SELECT DISTINCT ON (formationid) formationid, nodeport
        FROM pgautofailover.node WHERE reportedstate IN ('single', 'primary', 'wait_primary')
        ORDER BY formationid, nodeid" 2>/dev/null)
    return 0
}

# Waits until every node of every formation is where the monitor wants it: one primary
# (single without secondaries) and the others secondaries.
ha_wait_settled() {
    local deadline=$((SECONDS + STREAM_TIMEOUT * 2)) want=$(((SHARDS + SPARE_SHARDS) * (REPLICAS + 1))) got
    while :; do
        got=$(sql "$HA_MONITOR_PORT" "$HA_MONITOR_DB" "SELECT count(*) FROM pgautofailover.node
            WHERE reportedstate = goalstate AND reportedstate IN ('single', 'primary', 'secondary')" 2>/dev/null || echo 0)
        ((got >= want)) && return 0
        if ((SECONDS >= deadline)); then
            ha_show_state >&2
            die "pg_auto_failover: $got of $want nodes settled after $((STREAM_TIMEOUT * 2))s (logs in $(ha_home))"
        fi
        sleep 0.5
    done
}

ha_up() {
    ha_prepare
    ha_ensure_monitor
    # What the monitor has now, in two queries rather than two a formation.
    HA_FORMATIONS=" $(sql "$HA_MONITOR_PORT" "$HA_MONITOR_DB" "SELECT string_agg(formationid, ' ')
        FROM pgautofailover.formation" 2>/dev/null || true) "
    ha_load_writable
    local i
    for ((i = 0; i < SHARDS + SPARE_SHARDS; i++)); do ha_ensure_shard "$i"; done
    ha_wait_settled
}

# Monitor first (so stopping a primary's keeper starts no failover), then secondaries,
# then primaries.
ha_down() {
    local n
    ha_keeper_stop "$HA_MONITOR_NAME" TERM
    while read -r n; do
        is_replica_name "$n" && ha_keeper_stop "$n" TERM
    done < <(existing_names)
    while read -r n; do
        [[ $n == "$META_NAME" ]] || is_replica_name "$n" || ha_keeper_stop "$n" TERM
    done < <(existing_names)
}

# `pg_autoctl show state` of every formation.
ha_show_state() {
    local f
    for f in $(sql "$HA_MONITOR_PORT" "$HA_MONITOR_DB" "SELECT formationid FROM pgautofailover.formation WHERE formationid <> 'default' ORDER BY 1" 2>/dev/null); do
        printf '\n%s (pg_autoctl show state --formation %s)\n' "$f" "$f"
        ha_autoctl show state --pgdata "$(datadir "$HA_MONITOR_NAME")" --formation "$f" 2>&1 || true
    done
}
