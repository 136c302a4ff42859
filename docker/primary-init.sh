#!/usr/bin/env bash
# Runs once, from /docker-entrypoint-initdb.d, when a primary's volume is first initialised:
# a replication role for the replicas' pg_basebackup and walreceiver, and its pg_hba line.
# ("all" in pg_hba.conf does not cover replication connections, so trust alone is not enough.)
set -euo pipefail
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}"

psql -v ON_ERROR_STOP=1 -v pw="$REPLICATION_PASSWORD" --username "$POSTGRES_USER" --dbname postgres <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'pw';
SQL

echo "host replication replicator all scram-sha-256" >>"$PGDATA/pg_hba.conf"
