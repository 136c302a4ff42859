# scripts/drain.sh: sourced by setup.sh (functions only). A switchover's drain: the
# administrator's role that may drain a primary (and the application role that may
# not), and a drain a killed switchover left behind, lifted.

# A planned switchover drains a primary by making its new transactions read-only
# (ALTER SYSTEM and a reload): the administrator's role (ADMIN_ROLE, its own password in
# .local/credentials.env; `./setup.sh env admin` gives it to the admin CLI) may do
# exactly that, and see every session (pg_read_all_stats: the drain waits for the
# gateways' transactions), no more. The application role, which every gateway holds, may
# not: an older cluster's grants to it are revoked. Idempotent; on every primary
# (replicas get it by replication).
# A function's privileges live in each database (ALTER SYSTEM's in the whole server):
# pg_reload_conf() is granted in the application's database, where the switchover
# connects, and in template1, whose copies (every database made later) keep it.
grant_drain() {
    local i name port db script
    if ha_on; then ha_load_writable; fi
    for ((i = 0; i < SHARDS + SPARE_SHARDS; i++)); do
        name=$(primary_name "$i")
        port=$(port_of "$name")
        if ha_on; then
            port=${HA_WRITABLE[shard$i]:-}
            [[ -n $port ]] || continue
        fi
        [[ $(sql "$port" postgres "SELECT pg_is_in_recovery()") == f ]] || continue
        # The rest in one psql (its password on standard input only), which \connects to
        # each of the databases that exists.
        script=$(printf "SET client_min_messages = warning;
            DO \$\$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN
                CREATE ROLE %s LOGIN; END IF; END \$\$;
            ALTER ROLE %s LOGIN NOSUPERUSER PASSWORD '%s';
            GRANT pg_read_all_stats TO %s;
            GRANT ALTER SYSTEM ON PARAMETER default_transaction_read_only TO %s;
            REVOKE ALTER SYSTEM ON PARAMETER default_transaction_read_only FROM %s;\n" \
            "$ADMIN_ROLE" "$ADMIN_ROLE" "$ADMIN_ROLE" "$ADMIN_PASSWORD" "$ADMIN_ROLE" "$ADMIN_ROLE" "$APP_ROLE")
        for db in postgres template1 "$DB_NAME"; do
            script+="
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$db') AS has_db \\gset
\\if :has_db
\\connect $db
GRANT EXECUTE ON FUNCTION pg_reload_conf() TO $ADMIN_ROLE;
REVOKE EXECUTE ON FUNCTION pg_reload_conf() FROM $APP_ROLE;
\\endif"
        done
        sql_stdin "$port" postgres <<<"$script" >/dev/null
    done
}

# A drain a killed `shard-admin switchover` left (new transactions read-only by
# default_transaction_read_only in postgresql.auto.conf, which survives restarts):
# lifted on every shard server, unless a switchover of that shard runs now (it holds its
# advisory lock, (21320, shard), in the metadata server, and lifts its own drain).
# What `shard-admin switchover --shard N --lift-drain` does, without the CLI.
lift_drains() {
    local name port shard drained
    while read -r name; do
        [[ $name == shard* ]] && in_topology "$name" || continue
        port=$(port_of "$name")
        # A server that does not answer is skipped.
        drained=$(sql "$port" postgres "SELECT count(*) FROM pg_file_settings
              WHERE name = 'default_transaction_read_only' AND sourcefile LIKE '%/postgresql.auto.conf'" 2>/dev/null) || continue
        [[ $drained != 0 ]] || continue
        shard=$(shard_of "$name")
        if [[ -n $(sql "$META_PORT" postgres "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
                     AND classid = 21320 AND objid = $shard AND objsubid = 2") ]]; then
            say "$name: drained by a switchover of shard $shard under way; left to it"
            continue
        fi
        sql "$port" postgres "ALTER SYSTEM RESET default_transaction_read_only" >/dev/null
        sql "$port" postgres "SELECT pg_reload_conf()" >/dev/null
        say "$name: lifted the drain a switchover left (default_transaction_read_only)"
    done < <(existing_names)
}
