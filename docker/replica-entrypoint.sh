#!/usr/bin/env bash
# Entrypoint of a streaming replica in docker-compose.yml: on first start, clone the
# primary with pg_basebackup -R (which writes standby.signal and primary_conninfo), then
# hand over to the postgres image's own entrypoint, which just starts the server.
#   PRIMARY_HOST          compose service name of the primary (port 5432)
#   REPLICA_NAME          application_name shown in the primary's pg_stat_replication
#   REPLICATION_PASSWORD  password of the `replicator` role made by primary-init.sh
set -euo pipefail
: "${PRIMARY_HOST:?}" "${REPLICA_NAME:?}" "${REPLICATION_PASSWORD:?}"
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"

# The image starts us as root: fix the volume's ownership, then continue as postgres.
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    exec gosu postgres bash "${BASH_SOURCE[0]}" "$@"
fi

# libpq reads the replication password from ~/.pgpass, for pg_basebackup now and for
# the walreceiver on every (re)connect; rewritten on each start so a new password applies.
umask 077
printf '%s:5432:*:replicator:%s\n' "$PRIMARY_HOST" "$REPLICATION_PASSWORD" >"$HOME/.pgpass"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "replica $REPLICA_NAME: waiting for $PRIMARY_HOST"
    until pg_isready -q -h "$PRIMARY_HOST" -p 5432; do sleep 1; done
    echo "replica $REPLICA_NAME: pg_basebackup from $PRIMARY_HOST"
    find "$PGDATA" -mindepth 1 -delete   # leftovers of an interrupted clone
    pg_basebackup \
        -d "host=$PRIMARY_HOST port=5432 user=replicator application_name=$REPLICA_NAME" \
        -D "$PGDATA" -R -X stream --checkpoint=fast
fi

exec docker-entrypoint.sh "$@"
