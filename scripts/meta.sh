# scripts/meta.sh: sourced by setup.sh (functions only). The metadata server (port
# 25430): its database, and the shard map seeded there by the admin CLI (migrate every
# shard, then `shard-admin init`).

# The metadata server: a primary of no shard, made from the same template, with its own
# database for the map (owned by the application role).
ensure_meta() {
    local dir
    dir=$(datadir "$META_NAME")
    if [[ ! -f $dir/PG_VERSION ]]; then
        ensure_template
        say "creating $META_NAME (the metadata server)"
        local tmp=$DATA_ROOT/.$META_NAME.tmp
        as_pg rm -rf "$tmp" "$dir"
        as_pg cp -a "$DATA_ROOT/template" "$tmp"
        as_pg rm -f "$tmp/shardgate.ready"
        write_instance_conf "$META_NAME" "$tmp"
        as_pg mkdir -p "$tmp/log"
        as_pg mv "$tmp" "$dir"
    fi
    pg_start "$META_NAME"
    if [[ -z $(sql "$META_PORT" postgres "SELECT 1 FROM pg_database WHERE datname = '$META_DB'") ]]; then
        say "creating database $META_DB on $META_NAME"
        sql "$META_PORT" postgres "CREATE DATABASE $META_DB OWNER $APP_ROLE" >/dev/null
    fi
}

# Migrates every shard and seeds the shard map in the metadata server from the config
# (`shard-admin init`: once; later runs keep the stored map and re-tell the shards).
# Builds the debug admin CLI; with BUILD_PROFILE=release (`run`), the release gateway
# and admin CLI instead, and uses that. The build comes after the packages: the crates
# link libpq, which ensure_packages installs on a fresh machine. Every build selects the
# whole workspace and names the binaries it wants: cargo then enables the same features
# of every crate as `cargo build --workspace` (or a plain `cargo build`) does, and finds
# them fresh there; `-p api-router -p shard-admin` left out the features other members
# ask of shared crates (tokio's `fs`, clap's `wrap_help`, ...), so another build of the
# workspace compiled tokio and every crate above it again.
seed_map() {
    cd "$REPO"
    local target=${CARGO_TARGET_DIR:-$REPO/target} bin args
    if [[ ${BUILD_PROFILE:-debug} == release ]]; then
        # The gateway and the admin CLI.
        local build=(cargo build --release --workspace --bin api-router --bin shard-admin)
        say "${build[*]}"
        "${build[@]}"
        bin=$target/release/shard-admin
    elif [[ -n ${TEST_BUILD_PID:-} ]]; then
        # `test`: the tests' build, started before the servers, makes the CLI too.
        local waited=${EPOCHREALTIME:-$SECONDS}
        say "waiting for the test build"
        if ! wait "$TEST_BUILD_PID"; then
            TEST_BUILD_PID=
            tail -n 60 "$TEST_BUILD_LOG" >&2
            die "the test build failed (whole log: $TEST_BUILD_LOG)"
        fi
        TEST_BUILD_PID=
        grep -E '^ *Finished' "$TEST_BUILD_LOG" | tail -n 1 || true
        say "test build done (waited $(elapsed "$waited") for it)"
        bin=$target/debug/shard-admin
    else
        bin=$target/debug/shard-admin
        admin_cli_fresh "$bin" || cargo build -q --workspace --bin shard-admin
    fi
    mapfile -t args < <(config_args)
    export_app_env
    say "migrating every shard, seeding the shard map"
    # `migrate` connects to every primary the map names to find nothing to do, on a
    # running cluster: half a second of `up`. Asked here in one query each instead; any
    # doubt runs it. `init` always runs (it records promotions, re-tells the shards).
    migrations_current || "$bin" migrate ${args[@]+"${args[@]}"} >/dev/null
    "$bin" init ${args[@]+"${args[@]}"} | tail -n 1
}

# Whether the debug admin CLI is built and no file of the workspace it could be built
# from is newer than it: cargo would find it fresh by the same
# mtimes, but only once it has the build directory's lock, which any other build
# running holds (seconds of `up` on a running cluster). Missing or older: cargo decides.
admin_cli_fresh() {
    local bin=$1
    [[ -x $bin ]] || return 1
    [[ -z $(find "$REPO/Cargo.toml" "$REPO/Cargo.lock" "$REPO/config" "$REPO/migrations" \
        "$REPO/metadata-migrations" "$REPO"/*/Cargo.toml "$REPO"/*/build.rs "$REPO"/*/src \
        -newer "$bin" -print -quit 2>/dev/null) ]]
}

# Whether every shard primary the stored map names has recorded exactly the migrations
# of migrations/, as `shard-admin migrate` records them: then it would apply nothing.
# False when in doubt: a configuration of the user's, databases named otherwise in the
# environment, no map yet, a primary elsewhere or not answering, a migration missing or
# unknown.
migrations_current() {
    [[ ! -f $GEN_CONFIG ]] || is_generated_config || return 1
    [[ ${SHARDGATE__DATABASE__DBNAME:-$DB_NAME} == "$DB_NAME" &&
        ${SHARDGATE__METADATA__DBNAME:-$META_DB} == "$META_DB" &&
        ${SHARDGATE__METADATA__ADDRESS:-$HOST:$META_PORT} == "$HOST:$META_PORT" ]] || return 1
    local dir version want=() addr primaries have
    for dir in "$REPO"/migrations/*/; do
        [[ -f $dir/up.sql ]] || continue
        version=$(basename "$dir")
        version=${version%%_*}
        want+=("${version//-/}")
    done
    ((${#want[@]})) || return 1
    primaries=$(sql "$META_PORT" "$META_DB" "SELECT primary_addr FROM map_shards" 2>/dev/null) || return 1
    [[ -n $primaries ]] || return 1
    for addr in $primaries; do
        [[ $addr == "$HOST":* ]] || return 1
        have=$(sql "${addr##*:}" "$DB_NAME" "SELECT string_agg(version, ' ' ORDER BY version)
            FROM __diesel_schema_migrations" 2>/dev/null) || return 1
        [[ $have == "$(printf '%s\n' "${want[@]}" | sort | paste -sd ' ')" ]] || return 1
    done
}
