#!/usr/bin/env bash
# Entrypoint of the pg_auto_failover monitor in docker-compose.yml (service
# `monitor`). On first start: a cluster made like the metadata server (docker/autoctl-lib.sh)
# with the timings scripts/ha.sh gives its monitor, `pg_autoctl create monitor` on it; then,
# until that has once succeeded (autoctl/ready), with the cluster up on its socket only,
# autoctl_node's password and one formation per shard (AUTOCTL_FORMATIONS). Every start
# ends in `exec pg_autoctl run`; a monitor whose configuration exists just runs.
#   AUTOCTL_FORMATIONS  the formations to create (shard0 shard1 shard2)
#   AUTOCTL_DBNAME      their database (shardgate)
#   MONITOR_READER_PASSWORD  shardgate_monitor_reader's (.env): the gateways' role here,
#                       which only reads the formations' state
set -euo pipefail
AUTOCTL_HOSTNAME=${AUTOCTL_HOSTNAME:-monitor}
# shellcheck source=docker/autoctl-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/autoctl-lib.sh"
: "${MONITOR_READER_PASSWORD:?set MONITOR_READER_PASSWORD}"
AUTOCTL_FORMATIONS=${AUTOCTL_FORMATIONS:-shard0 shard1 shard2}
AUTOCTL_DBNAME=${AUTOCTL_DBNAME:-shardgate}

# As scripts/ha.sh (HA_TIMINGS): a check every second, a node unhealthy after 2 s, a lost
# primary given 2 s to demote itself (its keeper does after 1 s, AUTOCTL_PARTITION_S)
# before the promoted secondary takes writes.
TIMINGS=(health_check_period=1000 health_check_timeout=1000 health_check_max_retries=1
    health_check_retry_delay=500 node_considered_unhealthy_timeout=2000
    startup_grace_period=2000 primary_demote_timeout=2000)

drop_root "${BASH_SOURCE[0]}"
prepare_env

# autoctl_node's password, the gateways' read-only role, then the formations
# (`pg_autoctl create formation` talks to this monitor's PostgreSQL, up on its socket
# meanwhile). Passwords reach psql from its environment (\getenv), never its command line.
# The extension lets PUBLIC execute its functions (perform_failover, perform_promotion,
# security-definer ones): PUBLIC loses that, autoctl_node keeps it, and
# shardgate_monitor_reader may only read pgautofailover.node and .formation.
configure_monitor() {
    local f
    local_psql -d pg_auto_failover <<'SQL'
\getenv pw AUTOCTL_NODE_PASSWORD
\getenv reader MONITOR_READER_PASSWORD
ALTER ROLE autoctl_node PASSWORD :'pw';
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'shardgate_monitor_reader') AS no_role \gset
\if :no_role
CREATE ROLE shardgate_monitor_reader LOGIN PASSWORD :'reader';
\else
ALTER ROLE shardgate_monitor_reader LOGIN PASSWORD :'reader';
\endif
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pgautofailover TO autoctl_node;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA pgautofailover FROM PUBLIC;
GRANT CONNECT ON DATABASE pg_auto_failover TO shardgate_monitor_reader;
GRANT USAGE ON SCHEMA pgautofailover TO shardgate_monitor_reader;
GRANT SELECT ON pgautofailover.node, pgautofailover.formation TO shardgate_monitor_reader;
SQL
    for f in $AUTOCTL_FORMATIONS; do
        if [ -z "$(local_psql -d pg_auto_failover -At -v f="$f" <<<"SELECT 1 FROM pgautofailover.formation WHERE formationid = :'f';")" ]; then
            say "formation $f"
            pg_autoctl create formation --pgdata "$PGDATA" --formation "$f" --kind pgsql \
                --dbname "$AUTOCTL_DBNAME" >/dev/null
        fi
    done
}

if ! autoctl_created; then
    init_cluster
    # The monitor's settings, read when the extension loads (postgresql.auto.conf wins).
    for t in "${TIMINGS[@]}"; do
        printf 'pgautofailover.%s = %s\n' "${t%%=*}" "${t#*=}" >>"$PGDATA/postgresql.auto.conf"
    done
    say "pg_autoctl create monitor on port $AUTOCTL_PGPORT"
    pg_autoctl create monitor --pgdata "$PGDATA" --pgport "$AUTOCTL_PGPORT" \
        --hostname "$AUTOCTL_HOSTNAME" --auth scram-sha-256 --no-ssl \
        --pgctl "$PG_BIN/pg_ctl"
    pg_autoctl config set --pgdata "$PGDATA" postgresql.listen_addresses "$AUTOCTL_LISTEN" >/dev/null
fi
if [ ! -f "$AUTOCTL_HOME/ready" ]; then
    with_local_server configure_monitor
    touch "$AUTOCTL_HOME/ready"
fi

run_keeper
