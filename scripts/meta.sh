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
# link libpq, which ensure_packages installs on a fresh machine.
seed_map() {
    cd "$REPO"
    local target=${CARGO_TARGET_DIR:-$REPO/target} bin args
    if [[ ${BUILD_PROFILE:-debug} == release ]]; then
        say "cargo build --release -p api-router -p shard-admin"
        cargo build --release -p api-router -p shard-admin
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
        # Both names of the CLI: shard-admin, and shard-manager (its former name, for one
        # release) kept as fresh as it for the scripts that still run it.
        cargo build -q -p shard-admin --bins
        bin=$target/debug/shard-admin
    fi
    mapfile -t args < <(config_args)
    export_app_env
    say "migrating every shard, seeding the shard map"
    "$bin" migrate ${args[@]+"${args[@]}"} >/dev/null
    "$bin" init ${args[@]+"${args[@]}"} | tail -n 1
}
