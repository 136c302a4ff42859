# scripts/template.sh: sourced by setup.sh (functions only). The initdb template every
# server is copied from (settings, the application role and database, the credentials'
# mark), each server's instance.conf (port, name), each primary's incarnation, and the
# removal of a cluster made without this checkout's credentials.

# A cluster made by an older setup.sh (no passwords) or with other credentials cannot be
# logged into with ours: stop it and delete it, so `up` makes it again. Its data is lost,
# and we say so.
recreate_if_foreign() {
    local d marker foreign=()
    for d in "$DATA_ROOT"/template "$DATA_ROOT/$META_NAME" "$DATA_ROOT"/shard*-primary; do
        [[ -f $d/PG_VERSION ]] || continue
        marker=$(cat "$d/shardgate.credentials" 2>/dev/null || true)
        [[ $marker == "$CREDENTIALS_ID" ]] || foreign+=("$(basename "$d")")
    done
    ((${#foreign[@]} == 0)) && return 0
    say "the cluster (${foreign[*]}) was made without this checkout's credentials (by an older setup.sh, without passwords); deleting and re-creating it: its data is lost"
    local n
    while read -r n; do QUIET=1 pg_stop "$n" immediate; done < <(existing_names)
    case $DATA_ROOT in
        "$CLUSTER_LINK" | /var/tmp/shardgate-*) ;;
        *) die "refusing to delete unexpected data dir $DATA_ROOT" ;;
    esac
    as_pg find "$DATA_ROOT" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
}

# The initdb output every primary is copied from: made once, kept for later growth.
ensure_template() {
    local tpl=$DATA_ROOT/template
    [[ -f $tpl/PG_VERSION && -f $tpl/shardgate.ready ]] && return 0
    say "initdb (template for every primary)"
    local tmp=$DATA_ROOT/.template.tmp pwfile=$DATA_ROOT/.pwfile
    as_pg rm -rf "$tmp" "$tpl"
    # Passwords on every connection (SCRAM), none on a command line: the superuser's
    # comes from a private file that exists only while initdb runs.
    printf '%s\n' "$PG_SUPER_PASSWORD" | as_pg sh -c "umask 077; cat > '$pwfile'"
    if ! as_pg "$PG_BIN/initdb" -D "$tmp" -U "$DB_SUPERUSER" --auth=scram-sha-256 \
        --pwfile="$pwfile" -E UTF8 --locale=C --no-sync >"$LOCAL/initdb.log" 2>&1; then
        as_pg rm -f "$pwfile"
        log_tail "$LOCAL/initdb.log"
        die "initdb failed"
    fi
    as_pg rm -f "$pwfile"
    # Settings shared by every server (scripts/template-postgresql.conf; replicas get them
    # through pg_basebackup); the per-server port and name go in instance.conf, included last.
    as_pg tee -a "$tmp/postgresql.conf" >/dev/null <"$REPO/scripts/template-postgresql.conf"
    # The application role (not a superuser: it may create databases, for the tests' own,
    # and owns the application database) and that database, once, in single-user mode,
    # so every copy has them. The password reaches postgres on stdin only.
    # (-j: a statement ends at a semicolon and an empty line. The log is private: a
    # failing statement is logged with the password in it.)
    rm -f "$LOCAL/initdb.log"
    if ! printf "CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s';\n\nCREATE DATABASE %s OWNER %s;\n\n" \
        "$APP_ROLE" "$APP_PASSWORD" "$DB_NAME" "$APP_ROLE" |
        as_pg "$PG_BIN/postgres" --single -D "$tmp" -j postgres 2>&1 |
        (umask 077; cat >"$LOCAL/initdb.log") || grep -q ERROR "$LOCAL/initdb.log"; then
        log_tail "$LOCAL/initdb.log"
        die "could not create role $APP_ROLE and database $DB_NAME in the template"
    fi
    printf '%s\n' "$CREDENTIALS_ID" | as_pg tee "$tmp/shardgate.credentials" >/dev/null
    as_pg touch "$tmp/shardgate.ready"
    as_pg mv "$tmp" "$tpl"
}

write_instance_conf() {   # NAME DIR
    local name=$1 dir=$2 port
    port=$(port_of "$name")
    printf "# written by setup.sh\nport = %d\ncluster_name = '%s'\n" "$port" "$name" |
        as_pg tee "$dir/instance.conf" >/dev/null
}

# Every primary gets a random id file when created; pg_basebackup copies it into its
# replicas. (The system identifier cannot tell: all primaries are copies of one initdb.)
INCARNATION_FILE=shardgate.incarnation
incarnation() { cat "$1/$INCARNATION_FILE" 2>/dev/null || true; }
