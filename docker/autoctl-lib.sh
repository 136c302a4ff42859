# docker/autoctl-lib.sh: sourced by autoctl-monitor.sh and autoctl-node.sh, the entrypoints
# of the PostgreSQL image (docker/Dockerfile.postgres) for docker-compose.yml's shards and
# their monitor. Functions and settings only.
#
# Everything lives on the container's volume (VOLUME_DIR, /var/lib/postgresql/data), so a
# container made anew finds its node again: PGDATA in pgdata/, pg_autoctl's configuration
# and state (XDG_CONFIG_HOME, XDG_DATA_HOME) and the pgpass in autoctl/. Each default below is the compose value;
# scripts/check-docker-ha.sh overrides them to run the same scripts as local processes.
#   PG_SUPERUSER_PASSWORD  the `postgres` superuser's password (.env)
#   REPLICATION_PASSWORD   pgautofailover_replicator's password (.env): replication
#   AUTOCTL_NODE_PASSWORD  autoctl_node's (.env): the keepers' role on the monitor, which
#                          may promote (the admin CLI's switchover; never a gateway's)
#   AUTOCTL_MONITOR_PASSWORD  pgautofailover_monitor's (.env): the monitor's health
#                          checks of the nodes
#   AUTOCTL_HOSTNAME       the name the others reach this server by (the compose service)
#   AUTOCTL_PGPORT         its PostgreSQL port (5432)
#   AUTOCTL_LISTEN         listen_addresses ('*': every interface of the container)
: "${PG_SUPERUSER_PASSWORD:?set PG_SUPERUSER_PASSWORD}" "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}"
: "${AUTOCTL_NODE_PASSWORD:?set AUTOCTL_NODE_PASSWORD}" "${AUTOCTL_MONITOR_PASSWORD:?set AUTOCTL_MONITOR_PASSWORD}"
: "${AUTOCTL_HOSTNAME:?set AUTOCTL_HOSTNAME}"

VOLUME_DIR=${VOLUME_DIR:-/var/lib/postgresql/data}
# Below the volume's root, never an inherited PGDATA (the postgres image sets it to the root).
export PGDATA=$VOLUME_DIR/pgdata
AUTOCTL_HOME=${AUTOCTL_HOME:-$VOLUME_DIR/autoctl}
AUTOCTL_PGPORT=${AUTOCTL_PGPORT:-5432}
AUTOCTL_LISTEN=${AUTOCTL_LISTEN:-*}
# Runtime files (pid files, sockets) die with the container: not on the volume.
AUTOCTL_RUN_DIR=${AUTOCTL_RUN_DIR:-/tmp/pg_autoctl}
AUTOCTL_SOCKET_DIR=${AUTOCTL_SOCKET_DIR:-/var/run/postgresql}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
# The settings every server of docker-compose.yml shares (the image has docker/postgresql.conf).
SHARED_PG_CONF=${SHARED_PG_CONF:-/etc/shardgate/postgresql.conf}
PG_OS_USER=${PG_OS_USER:-postgres}

say() { echo "$(date -u +%H:%M:%S) ${0##*/} ($AUTOCTL_HOSTNAME): $*"; }
die() { say "error: $*" >&2; exit 1; }

# Started as root (the image's default): give the volume to postgres and start this
# script again as postgres, in this process: setpriv (util-linux) changes the user and
# execs, so the chain of execs ends in `pg_autoctl run` as the container's PID 1 and
# `docker stop`'s SIGTERM reaches it. Never runuser: it forks, stays PID 1, and kills its
# child 2 s after a SIGTERM, whatever grace the engine gives.
drop_root() {
    [ "$(id -u)" = 0 ] || return 0
    mkdir -p "$VOLUME_DIR" "$AUTOCTL_HOME" "$AUTOCTL_SOCKET_DIR"
    chown "$PG_OS_USER:" "$VOLUME_DIR" "$AUTOCTL_HOME" "$AUTOCTL_SOCKET_DIR"
    chmod 700 "$VOLUME_DIR" "$AUTOCTL_HOME"
    as_user "$PG_OS_USER" bash "$1"
}

# exec ARGS as USER ($1): its uid, gid, groups and HOME; no process in between.
as_user() {
    local home
    home=$(getent passwd "$1" | cut -d: -f6)
    exec env HOME="$home" USER="$1" LOGNAME="$1" \
        setpriv --reuid="$1" --regid="$1" --init-groups -- "${@:2}"
}

# pg_autoctl's files under AUTOCTL_HOME, its runtime files in a fresh AUTOCTL_RUN_DIR
# (a pid file left by the container's last life could name a live process now), and every
# password in a pgpass only postgres can read, rewritten on each start so a new .env
# applies. pg_autoctl and the PostgreSQL it starts read it (PGPASSFILE): the keeper for
# the monitor, a secondary's walreceiver and pg_basebackup for the replicator, the
# monitor's health checks for pgautofailover_monitor.
prepare_env() {
    umask 077
    mkdir -p "$AUTOCTL_HOME/config" "$AUTOCTL_HOME/share" "$AUTOCTL_SOCKET_DIR"
    rm -rf "$AUTOCTL_RUN_DIR"
    mkdir -p "$AUTOCTL_RUN_DIR"
    export XDG_CONFIG_HOME=$AUTOCTL_HOME/config XDG_DATA_HOME=$AUTOCTL_HOME/share
    export XDG_RUNTIME_DIR=$AUTOCTL_RUN_DIR PGPASSFILE=$AUTOCTL_HOME/pgpass
    export PGHOST=$AUTOCTL_SOCKET_DIR PGPORT=$AUTOCTL_PGPORT PGCONNECT_TIMEOUT=3
    export PATH=$PG_BIN:$PATH
    printf '*:*:*:postgres:%s\n*:*:*:autoctl_node:%s\n*:*:*:pgautofailover_replicator:%s\n*:*:*:pgautofailover_monitor:%s\n' \
        "$PG_SUPERUSER_PASSWORD" "$AUTOCTL_NODE_PASSWORD" "$REPLICATION_PASSWORD" "$AUTOCTL_MONITOR_PASSWORD" \
        >"$PGPASSFILE"
}

# pg_autoctl made this server a monitor or node before: its configuration exists.
autoctl_created() {
    [ -f "$XDG_CONFIG_HOME/pg_autoctl$PGDATA/pg_autoctl.cfg" ]
}

# A new cluster as docker-compose.yml's metadata server has it (docker/meta-entrypoint.sh):
# the C collation, UTF8, SCRAM for every login, the superuser's password; the shared
# settings included before pg_auto_failover's own file (so its port and addresses win),
# and the memory it would size for a machine of its own cut back in postgresql.auto.conf
# (read last), as scripts/ha.sh does.
init_cluster() {
    say "initdb $PGDATA"
    rm -rf "$PGDATA"
    "$PG_BIN/initdb" -D "$PGDATA" --locale=C --encoding=UTF8 -U postgres \
        --auth-host=scram-sha-256 --auth-local=scram-sha-256 \
        --pwfile=<(printf '%s\n' "$PG_SUPERUSER_PASSWORD") >/dev/null
    # Other containers connect over the compose network, not loopback.
    printf 'host all all all scram-sha-256\nhost replication all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    if [ -f "$SHARED_PG_CONF" ]; then
        printf "include '%s'\n" "$SHARED_PG_CONF" >>"$PGDATA/postgresql.conf"
    fi
    printf "unix_socket_directories = '%s'\nshared_buffers = '64MB'\neffective_cache_size = '512MB'\nmaintenance_work_mem = '64MB'\nwork_mem = '4MB'\n" \
        "$AUTOCTL_SOCKET_DIR" >>"$PGDATA/postgresql.auto.conf"
}

# The cluster started for a moment, reachable on its socket only, to run SQL between
# `pg_autoctl create` (which leaves it stopped) and `pg_autoctl run`.
with_local_server() {
    "$PG_BIN/pg_ctl" -D "$PGDATA" -w -t 60 -l "$AUTOCTL_RUN_DIR/setup.log" \
        -o "-c listen_addresses='' -c log_statement=none -p $AUTOCTL_PGPORT" start >/dev/null ||
        { cat "$AUTOCTL_RUN_DIR/setup.log" >&2; die "PostgreSQL did not start"; }
    local rc=0
    "$@" || rc=$?
    "$PG_BIN/pg_ctl" -D "$PGDATA" -w -m fast stop >/dev/null
    return "$rc"
}

# psql as the superuser on the local socket; extra arguments go to psql.
local_psql() {
    "$PG_BIN/psql" -X -q -w -v ON_ERROR_STOP=1 -U postgres "$@"
}

# The keeper in place of this shell: it starts PostgreSQL and follows the monitor.
# `docker stop` (SIGTERM) reaches it directly and it stops PostgreSQL cleanly.
run_keeper() {
    say "pg_autoctl run"
    exec pg_autoctl run --pgdata "$PGDATA"
}
