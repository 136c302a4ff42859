#!/usr/bin/env bash
# Runs once, from /docker-entrypoint-initdb.d, when a primary's volume is first initialised:
# - the gateway's role `shardgate` (not a superuser; it may create databases, as the
#   tests do), owner of the database `shardgate`;
# - a replication role for the replicas' pg_basebackup and walreceiver, and its pg_hba
#   line ("all" in pg_hba.conf does not cover replication connections).
# Passwords come from the environment (.env), never from this file.
set -euo pipefail
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}" "${SHARDGATE_DB_PASSWORD:?set SHARDGATE_DB_PASSWORD}"

psql -v ON_ERROR_STOP=1 -v pw="$REPLICATION_PASSWORD" -v app="$SHARDGATE_DB_PASSWORD" \
    --username "$POSTGRES_USER" --dbname postgres <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'pw';
CREATE ROLE shardgate WITH LOGIN CREATEDB PASSWORD :'app';
ALTER DATABASE shardgate OWNER TO shardgate;
SQL

# The metadata server (service `meta`) also gets the shard map's database.
if [[ -n ${SHARDGATE_META_DB:-} ]]; then
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -c "CREATE DATABASE $SHARDGATE_META_DB OWNER shardgate"
fi

echo "host replication replicator all scram-sha-256" >>"$PGDATA/pg_hba.conf"
