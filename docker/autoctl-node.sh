#!/usr/bin/env bash
# Entrypoint of a pg_auto_failover node in docker-compose.yml: one of a
# shard's two servers, both in the formation shardN on the monitor. On first start it
# asks the monitor whether the formation has a node yet:
# - none: this node starts the formation. A cluster made like the metadata server
#   (docker/autoctl-lib.sh) is handed to `pg_autoctl create postgres`, which registers it
#   (state single); then, with it up on its socket only, the passwords of
#   pg_auto_failover's roles and the gateway's role `shardgate` (not a superuser),
#   owner of the database `shardgate`, as docker/meta-entrypoint.sh makes its own.
# - one already: `pg_autoctl create postgres` clones it (pg_basebackup as
#   pgautofailover_replicator) and the node becomes its secondary. Replication is
#   pg_auto_failover's default, synchronous: an acknowledged write is on both.
# The keeper is told, as scripts/ha.sh tells its keepers, to demote a primary that has
# lost the monitor and its standby for AUTOCTL_PARTITION_S seconds. Every start ends in
# `exec pg_autoctl run`; a node whose configuration exists just runs, in whatever role
# the monitor gives it.
#   AUTOCTL_FORMATION      shard0, shard1, ...
#   AUTOCTL_NAME           the node's name on the monitor (AUTOCTL_HOSTNAME)
#   AUTOCTL_MONITOR_HOST   the monitor (monitor), AUTOCTL_MONITOR_PORT (5432)
#   SHARDGATE_DB_PASSWORD  the `shardgate` role's password (.env)
#   SHARDGATE_ADMIN_PASSWORD  `shardgate_admin`'s (.env): the role `shard-admin
#                          switchover` drains a primary as (failover.admin_user); never
#                          a gateway's
set -euo pipefail
# shellcheck source=docker/autoctl-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/autoctl-lib.sh"
: "${AUTOCTL_FORMATION:?set AUTOCTL_FORMATION}" "${SHARDGATE_DB_PASSWORD:?set SHARDGATE_DB_PASSWORD}"
: "${SHARDGATE_ADMIN_PASSWORD:?set SHARDGATE_ADMIN_PASSWORD}"
AUTOCTL_NAME=${AUTOCTL_NAME:-$AUTOCTL_HOSTNAME}
AUTOCTL_MONITOR_HOST=${AUTOCTL_MONITOR_HOST:-monitor}
AUTOCTL_MONITOR_PORT=${AUTOCTL_MONITOR_PORT:-5432}
AUTOCTL_DBNAME=${AUTOCTL_DBNAME:-shardgate}
AUTOCTL_PARTITION_S=${AUTOCTL_PARTITION_S:-1}

drop_root "${BASH_SOURCE[0]}"
prepare_env
# autoctl_node's password comes from the pgpass, never from this URI (pg_autoctl keeps
# the URI in its configuration file). The keeper runs each monitor query to its end, so
# a link that dies under one (the monitor's container gone, its address silent) would
# hold it there until TCP gives up, about 15 minutes, its primary unfenced; libpq's
# keepalives and tcp_user_timeout end that wait in about 3 s.
MONITOR_URI="postgres://autoctl_node@$AUTOCTL_MONITOR_HOST:$AUTOCTL_MONITOR_PORT/pg_auto_failover?sslmode=disable&keepalives=1&keepalives_idle=1&keepalives_interval=1&keepalives_count=2&tcp_user_timeout=3000"

monitor_sql() {
    "$PG_BIN/psql" -X -q -w -At -v ON_ERROR_STOP=1 -d "$MONITOR_URI" -v f="$AUTOCTL_FORMATION" "$@"
}

# Until the monitor answers and knows the formation (autoctl-monitor.sh creates it).
wait_for_monitor() {
    local i=0
    until [ "$(monitor_sql <<<"SELECT 1 FROM pgautofailover.formation WHERE formationid = :'f';" 2>/dev/null)" = 1 ]; do
        (( i++ % 10 == 0 )) && say "waiting for the monitor $AUTOCTL_MONITOR_HOST:$AUTOCTL_MONITOR_PORT and formation $AUTOCTL_FORMATION"
        sleep 1
    done
}

# On the formation's first node, once: pg_auto_failover's roles get their password (every
# login needs one), the gateway gets its role and database, and the administrator's role
# (as setup.sh's grant_drain) may drain a primary: ALTER SYSTEM of
# default_transaction_read_only, pg_reload_conf() (per database: this one, the
# application's and template1), every session seen (pg_read_all_stats); no more. The
# statements are docker/autoctl-primary.sql, beside this script in the image.
configure_primary() {
    # (Passwords from psql's environment, \getenv: never on its command line.)
    local_psql -d postgres -v db="$AUTOCTL_DBNAME" <"$(dirname "${BASH_SOURCE[0]}")/autoctl-primary.sql"
}

if ! autoctl_created; then
    wait_for_monitor
    nodes=$(monitor_sql <<<"SELECT count(*) FROM pgautofailover.node WHERE formationid = :'f';")
    if [ "$nodes" = 0 ]; then
        say "the first node of $AUTOCTL_FORMATION: its cluster made here"
        init_cluster
    else
        say "formation $AUTOCTL_FORMATION has $nodes node(s): cloning"
        rm -rf "$PGDATA"   # pg_autoctl clones into an empty place
    fi
    say "pg_autoctl create postgres (formation $AUTOCTL_FORMATION, port $AUTOCTL_PGPORT)"
    pg_autoctl create postgres --pgdata "$PGDATA" --pgport "$AUTOCTL_PGPORT" \
        --listen "$AUTOCTL_LISTEN" --hostname "$AUTOCTL_HOSTNAME" --name "$AUTOCTL_NAME" \
        --formation "$AUTOCTL_FORMATION" --monitor "$MONITOR_URI" \
        --auth scram-sha-256 --no-ssl --dbname "$AUTOCTL_DBNAME" --username postgres \
        --pgctl "$PG_BIN/pg_ctl"
    pg_autoctl config set --pgdata "$PGDATA" timeout.network_partition_timeout "$AUTOCTL_PARTITION_S" >/dev/null
fi
if [ ! -f "$AUTOCTL_HOME/ready" ]; then
    # A secondary's roles are its primary's.
    if [ ! -f "$PGDATA/standby.signal" ]; then
        with_local_server configure_primary
    fi
    touch "$AUTOCTL_HOME/ready"
fi

run_keeper
