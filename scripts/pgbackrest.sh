# scripts/pgbackrest.sh: sourced by setup.sh (functions only). WAL archiving and
# backups with pgBackRest: its config and repository, a stanza per archived server,
# archive_command and archive_mode on each, and the grants `shard-admin backup` and
# `restore` need.
#
# The repository: .local/backups, or beside the data under /var/tmp when the PostgreSQL
# user cannot reach .local (then .local/backups is a symlink to it).
backup_root() {
    if [[ $DATA_ROOT == "$CLUSTER_LINK" ]]; then echo "$BACKUP_LINK"; else echo "$DATA_ROOT-backups"; fi
}
pgbr_dir() { echo "$DATA_ROOT/pgbackrest"; }
pgbr_conf() { echo "$DATA_ROOT/pgbackrest/pgbackrest.conf"; }
socket_dir() { echo "$DATA_ROOT/sockets"; }
stanza_of() {   # meta -> meta, shard2-primary (or under HA shard2-replica0) -> shard2
    if [[ $1 == "$META_NAME" ]]; then echo meta; else echo "shard$(shard_of "$1")"; fi
}
archived_names() {   # the metadata server and every primary, spares included
    local i
    echo "$META_NAME"
    for ((i = 0; i < SHARDS + SPARE_SHARDS; i++)); do primary_name "$i"; echo; done
}
# Under HA and not the metadata server: a pg_auto_failover node.
ha_node() { ha_on && [[ $1 != "$META_NAME" ]]; }
# The restore_command of replica NAME without the HA manager: WAL its primary no longer
# keeps (wal_keep_size) comes from the archive the primary pushes to (its shard's
# stanza), so a replica stopped for any time catches up. pg1-path as in
# archive_command_of: PostgreSQL runs it in the replica's data directory.
restore_command_of() {
    echo "pgbackrest --config=$(pgbr_conf) --stanza=$(stanza_of "$1") --pg1-path=\"\$PWD\" archive-get %f \"%p\""
}
# The servers the stanza of archived server NAME lists (pg1, pg2, ...): NAME alone, or
# under HA every node of its formation, the first node first (pgBackRest finds which is
# primary; every node pushes its WAL to the stanza).
stanza_servers() {
    local r
    echo "$1"
    ha_node "$1" || return 0
    for ((r = 0; r < REPLICAS; r++)); do replica_name "$(shard_of "$1")" "$r"; echo; done
}
# Where pgbackrest finds NAME's socket: the private one, or a node's own (pg_autoctl
# reaches its PostgreSQL there, so it stays).
socket_of() { if ha_node "$1"; then echo "$(ha_home)/sock"; else socket_dir; fi; }
# The archive_command of NAME, whose stanza is STANZA. A node's names its own data
# directory as pg1-path: PostgreSQL runs it there with a relative %p, which pgBackRest
# takes from pg1-path (refusing another working directory); "$PWD" keeps the text the
# same on every node, whichever node a clone or a rewind copied it from.
archive_command_of() {
    if ha_node "$1"; then
        echo "pgbackrest --config=$(pgbr_conf) --stanza=$2 --pg1-path=\"\$PWD\" archive-push %p"
    else
        echo "pgbackrest --config=$(pgbr_conf) --stanza=$2 archive-push %p"
    fi
}

# pgBackRest's config (a stanza per archived server, listing under HA every node of its
# formation), its directories and the repository; then archive_mode/archive_command and
# a private Unix socket (pgbackrest connects through it, as the PostgreSQL superuser,
# signed in by peer) on each archived server, every node under HA (its own socket):
# set with ALTER SYSTEM, a restart only when archive_mode or the socket changes (a
# reload for the command alone; under HA the keepers restart, the monitor's first, so
# no failover starts); then stanza-create, which is idempotent. The application role
# may name restore points and switch WAL (`shard-admin backup`).
ensure_archiving() {
    local repo dir conf sockets name node k stanza content restart=()
    repo=$(backup_root)
    dir=$(pgbr_dir)
    conf=$(pgbr_conf)
    sockets=$(socket_dir)
    if [[ ! -d $repo ]]; then
        if [[ $repo != "$BACKUP_LINK" ]]; then
            mkdir -m 700 "$repo" 2>/dev/null || check_private_dir "$repo"
            ln -sfn "$repo" "$BACKUP_LINK"
        else
            mkdir -m 700 "$repo"
        fi
    fi
    [[ $IS_ROOT -ne 1 ]] || chown "$PG_OS_USER": "$repo"
    as_pg mkdir -p "$dir/lock" "$dir/log" "$sockets"
    as_pg chmod 700 "$sockets"
    content="# written by setup.sh: pgBackRest for the local topology (shard-admin backup)
[global]
repo1-path=$repo
repo1-retention-full=2
compress-type=lz4
compress-level=1
lock-path=$dir/lock
log-path=$dir/log
log-level-file=info
start-fast=y
archive-timeout=60
"
    while read -r name; do
        content+="
[$(stanza_of "$name")]
"
        k=0
        while read -r node; do
            k=$((k + 1))
            content+="pg$k-path=$(datadir "$node")
pg$k-port=$(port_of "$node")
pg$k-socket-path=$(socket_of "$node")
pg$k-user=$DB_SUPERUSER
"
        done < <(stanza_servers "$name")
    done < <(archived_names)
    if [[ ! -f $conf || $(<"$conf")$'\n' != "$content" ]]; then
        printf '%s' "$content" | as_pg tee "$conf" >/dev/null
    fi

    if ha_on; then ha_load_writable; fi
    while read -r name; do
        stanza=$(stanza_of "$name")
        while read -r node; do archive_signin "$node"; done < <(stanza_servers "$name")
        # A node archives from its first start: its stanza is made before its command.
        if ha_node "$name"; then stanza_create "$name"; fi
        while read -r node; do archive_server "$node" "$stanza"; done < <(stanza_servers "$name")
        archive_grants "$name"
    done < <(archived_names)
    local ha_restart=0
    for name in ${restart[@]+"${restart[@]}"}; do
        say "$name: WAL archived by pgBackRest (stanza $(stanza_of "$name")), restarting it"
        if ha_node "$name"; then ha_restart=1; continue; fi
        QUIET=1 pg_stop "$name" fast
        QUIET=1 pg_start "$name"
    done
    if ((ha_restart)); then
        ha_down
        ha_up
    elif ((${#restart[@]})) && ! ha_on; then
        wait_streaming
    fi
    while read -r name; do
        # A node's stanza was made above; again only when something restarted since.
        if ha_node "$name" && ((${#restart[@]} == 0)); then continue; fi
        stanza_create "$name"
    done < <(archived_names)
}

# pgbackrest's stanza-create for archived server NAME (idempotent), unless the stanza
# is already there and fits NAME (stanza_current): a second or more per stanza, twice
# for each formation, was most of an `up` on a running cluster.
stanza_create() {
    local stanza
    stanza=$(stanza_of "$1")
    stanza_current "$1" "$stanza" && return 0
    if ! as_pg pgbackrest --config="$(pgbr_conf)" --stanza="$stanza" --log-level-console=warn \
        stanza-create >"$LOCAL/pgbackrest.log" 2>&1; then
        log_tail "$LOCAL/pgbackrest.log"
        die "pgbackrest stanza-create of $stanza ($1) failed"
    fi
}

# pgbackrest (run as $PG_OS_USER) signs in to NAME over its socket as the superuser, by
# peer through an ident map: first in pg_hba.
archive_signin() {
    local name=$1 port hba ident hba_line ident_line
    port=$(port_of "$name")
    hba=$(datadir "$name")/pg_hba.conf
    ident=$(datadir "$name")/pg_ident.conf
    hba_line="local all $DB_SUPERUSER peer map=pgbackrest"
    ident_line="pgbackrest $PG_OS_USER $DB_SUPERUSER"
    if [[ $(as_pg_read head -n 1 "$hba") != "$hba_line" ]] ||
        ! as_pg_read grep -qxF "$ident_line" "$ident"; then
        as_pg_read grep -qxF "$ident_line" "$ident" || printf '%s\n' "$ident_line" | as_pg tee -a "$ident" >/dev/null
        [[ $(as_pg_read head -n 1 "$hba") == "$hba_line" ]] || as_pg sed -i "1i $hba_line" "$hba"
        sql "$port" postgres "SELECT pg_reload_conf()" >/dev/null
    fi
}

# NAME's archive_command (pushing to STANZA) and archive_mode with the private socket
# (a node keeps its own); NAME added to the caller's `restart` when it must restart for
# them.
archive_server() {
    local name=$1 stanza=$2 port want_cmd settings mode cmd socks want_socks
    port=$(port_of "$name")
    want_cmd=$(archive_command_of "$name" "$stanza")
    want_socks=$(socket_of "$name")
    # The three settings in one query, split at the unit separator (\x1f).
    settings=$(sql "$port" postgres "SELECT current_setting('archive_mode')
        || E'\\x1f' || current_setting('archive_command') || E'\\x1f' || current_setting('unix_socket_directories')")
    IFS=$'\x1f' read -r mode cmd socks <<<"$settings"
    socks=${socks//\"/}   # a list setting: SHOW quotes its elements
    [[ $cmd == "$want_cmd" ]] ||
        sql "$port" postgres "ALTER SYSTEM SET archive_command = '$want_cmd'" >/dev/null
    if [[ $mode != on || $socks != "$want_socks" ]]; then
        sql "$port" postgres "ALTER SYSTEM SET archive_mode = on" >/dev/null
        ha_node "$name" ||
            sql "$port" postgres "ALTER SYSTEM SET unix_socket_directories = '$want_socks'" >/dev/null
        restart+=("$name")
    elif [[ $cmd != "$want_cmd" ]]; then
        sql "$port" postgres "SELECT pg_reload_conf()" >/dev/null
    fi
}

# What `shard-admin backup` and `restore` need of the application role on archived
# server NAME (under HA its formation's writable node; replicas get it by replication).
archive_grants() {
    local name=$1 port db
    port=$(port_of "$name")
    if ha_node "$name"; then
        port=${HA_WRITABLE[$(stanza_of "$name")]:-}   # ensure_archiving loaded them
        [[ -n $port ]] || return 0
    fi
    # `shard-admin restore` reads each replica's data_directory (to stop it):
    # a role membership, granted on the primary, replicated to its replicas.
    sql "$port" postgres "GRANT pg_read_all_settings TO $APP_ROLE" >/dev/null 2>&1 || true
    # Function privileges are per database: the one the CLI signs in to, and
    # template1 for databases made later (one psql, \connect to each).
    local grants="GRANT EXECUTE ON FUNCTION pg_create_restore_point(text) TO $APP_ROLE;
GRANT EXECUTE ON FUNCTION pg_switch_wal() TO $APP_ROLE;"
    db=$(if [[ $name == "$META_NAME" ]]; then echo "$META_DB"; else echo "$DB_NAME"; fi)
    sql_stdin "$port" "$db" <<<"$grants
\\connect template1
$grants" >/dev/null
}

# Whether STANZA is in the repository and fits archived server NAME, as stanza-create
# finds before it has nothing to do: archive.info and backup.info each there with an
# identical copy, and naming the system identifier and major version NAME runs with.
# Anything else (a file missing, another cluster's identifier, NAME not answering) is
# left to stanza-create, which makes, repairs or refuses the stanza.
stanza_current() {
    local name=$1 stanza=$2 repo want f line id ver
    repo=$(backup_root)
    want=$(sql "$(port_of "$name")" postgres "SELECT system_identifier || ' '
        || current_setting('server_version_num')::int / 10000 FROM pg_control_system()" 2>/dev/null) || return 1
    for f in "$repo/archive/$stanza/archive.info" "$repo/backup/$stanza/backup.info"; do
        [[ -r $f && -r $f.copy && $(<"$f") == "$(<"$f.copy")" ]] || return 1
        id="" ver=""
        while IFS= read -r line; do
            case $line in
                db-system-id=*) id=${line#*=} ;;
                db-version=*) ver=${line#*=}; ver=${ver//\"/} ;;
            esac
        done <"$f"
        [[ "$id $ver" == "$want" ]] || return 1
    done
}
