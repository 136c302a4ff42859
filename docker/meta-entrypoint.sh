#!/usr/bin/env bash
# Entrypoint of docker-compose.yml's metadata server (service `meta`): a plain PostgreSQL
# holding the shard map (database shardgate_meta), made as docker/autoctl-lib.sh makes a
# node's cluster (the C collation, UTF8, SCRAM for every login, the shared settings of
# docker/postgresql.conf), on first start only; then PostgreSQL in place of this shell.
#   PG_SUPERUSER_PASSWORD  the `postgres` superuser's password (.env)
#   SHARDGATE_DB_PASSWORD  the gateway's role `shardgate` (not a superuser), which owns
#                          the database shardgate_meta (SHARDGATE_META_DB)
set -euo pipefail
: "${PG_SUPERUSER_PASSWORD:?set PG_SUPERUSER_PASSWORD}" "${SHARDGATE_DB_PASSWORD:?set SHARDGATE_DB_PASSWORD}"
VOLUME_DIR=${VOLUME_DIR:-/var/lib/postgresql/data}
export PGDATA=$VOLUME_DIR/pgdata
META_DB=${SHARDGATE_META_DB:-shardgate_meta}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
SOCKET_DIR=/var/run/postgresql

say() { echo "$(date -u +%H:%M:%S) meta-entrypoint.sh: $*"; }

# Started as root (the image's default): the volume and the socket's directory to
# postgres, then this script again as postgres in this same process (setpriv execs; no
# runuser, which would stay PID 1 and kill PostgreSQL 2 s after `docker stop`), so that
# PostgreSQL ends as PID 1 and gets the stop signal itself (SIGINT: a fast shutdown).
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$VOLUME_DIR" "$SOCKET_DIR"
    chown postgres: "$VOLUME_DIR" "$SOCKET_DIR"
    chmod 700 "$VOLUME_DIR"
    exec env HOME=/var/lib/postgresql USER=postgres LOGNAME=postgres \
        setpriv --reuid=postgres --regid=postgres --init-groups -- bash "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    say "initdb $PGDATA"
    rm -rf "$PGDATA"
    umask 077
    "$PG_BIN/initdb" -D "$PGDATA" --locale=C --encoding=UTF8 -U postgres \
        --auth-host=scram-sha-256 --auth-local=scram-sha-256 \
        --pwfile=<(printf '%s\n' "$PG_SUPERUSER_PASSWORD") >/dev/null
    # Other containers connect over the compose network, not loopback.
    printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    printf "include '/etc/shardgate/postgresql.conf'\n" >>"$PGDATA/postgresql.conf"
    # The role and its database, with the server up on its socket only (passwords from
    # psql's environment, never on a command line).
    "$PG_BIN/pg_ctl" -D "$PGDATA" -w -t 60 -o "-c listen_addresses=''" start >/dev/null
    PGPASSWORD=$PG_SUPERUSER_PASSWORD "$PG_BIN/psql" -X -q -w -v ON_ERROR_STOP=1 -U postgres -d postgres \
        -v db="$META_DB" <<'SQL'
\getenv app SHARDGATE_DB_PASSWORD
CREATE ROLE shardgate WITH LOGIN CREATEDB PASSWORD :'app';
CREATE DATABASE :"db" OWNER shardgate;
SQL
    "$PG_BIN/pg_ctl" -D "$PGDATA" -w -m fast stop >/dev/null
    say "ready: role shardgate, database $META_DB"
fi
exec "$PG_BIN/postgres" -D "$PGDATA"
