# scripts/test-runner.sh: sourced by setup.sh (functions only). `./setup.sh test`: the
# tests built in the background while `up` makes the servers, leftover test databases
# dropped, the failure tests first and alone, then two lanes at once: the suites that
# run servers of their own (OWN_SERVER_SUITES) in the background, the book's check and
# every other suite in the foreground (with the scripts' heredoc check,
# scripts/heredoc_check.sh); then `compose test` (scripts/compose_test.sh) and
# the Helm chart's offline check (scripts/helm_check.sh) and the supply chain's
# (scripts/supply_chain.sh); one closing line with the counts of the suites.

# The suites that start and kill PostgreSQL servers of their own (private pairs,
# pg_auto_failover formations, pgBackRest repositories, under /tmp, on ports 26600-26999
# that nothing else uses) and touch the shared topology only by making and dropping
# scratch databases on the metadata server: they mostly wait on failover timers, so they
# run beside the others rather than after them. One after the other, in this order:
# both take ports in 26900-26999 (failover's cut_on_autoctl, backup_cli's restores).
OWN_SERVER_SUITES=(failover backup_cli)

cmd_test() {
    # The failover test on pg_auto_failover (control-plane/tests/failover) runs its own
    # monitor and keepers: the packages must be there, and the test must not skip.
    NEED_HA_PACKAGES=1
    # The add-shard tests join a spare shard to the map.
    [[ -n $SPARE_FROM_ENV ]] || SPARE_SHARDS=1
    export SHARDGATE_REQUIRE_HA=1
    # The backup tests (shard-admin/tests/backup_cli) need pgbackrest: no skipping.
    export SHARDGATE_REQUIRE_BACKUP=1
    # The metrics' lint (api-router/tests/api/moves.rs) needs promtool: no skipping.
    export SHARDGATE_REQUIRE_PROMTOOL=1
    # Every test target: `failures` first, alone, then the rest (test_lanes).
    local rest=() name
    for name in $(test_targets); do rest+=(--test "$name"); done
    # Every test binary (the admin CLI among them, built with the tests' features) is
    # built in the background while `up` makes the servers: the build is CPU, making
    # servers mostly disk and waiting. `up` then runs that CLI instead of building its
    # own (a second build of the workspace's crates with other features), and both
    # test runs below only run.
    validate_topology
    ! address_on ||
        die "the suite runs on shards that list their servers; this cluster reaches them through addresses (ADDRESS=1): ./setup.sh clean first (deletes its data)"
    mkdir -p "$LOCAL"
    disk_watch_start
    # No incremental state for a build that is made once: about 1.7 GB less under target/.
    export CARGO_INCREMENTAL=0
    ensure_packages
    need_cargo
    TEST_BUILD_LOG=$LOCAL/test-build.log
    (cd "$REPO" && cargo test --workspace --lib --bins --test failures "${rest[@]}" --no-run) \
        >"$TEST_BUILD_LOG" 2>&1 &
    TEST_BUILD_PID=$!
    say "building the tests in the background (cargo test --no-run; log $TEST_BUILD_LOG)"
    cmd_up
    test_placement
    # Every test makes its own sgtest_<uuid> database and leaves it behind; drop them here.
    # One psql per primary, one DROP per database (DROP DATABASE cannot share a
    # transaction), and without FORCE: a database still in use belongs to a run going on now.
    local i port name drops total left
    for ((i = -1; i < SHARDS + SPARE_SHARDS; i++)); do
        if ((i < 0)); then name=$META_NAME; else name=$(primary_name "$i"); fi
        port=$(port_of "$name")
        drops=$(sql "$port" postgres "SELECT format('DROP DATABASE IF EXISTS %I;', datname)
                                        FROM pg_database WHERE datname LIKE 'sgtest\_%'")
        [[ -n $drops ]] || continue
        total=$(wc -l <<<"$drops")
        "$PG_BIN/psql" -X -q -w -h "$HOST" -p "$port" -U "$DB_SUPERUSER" -d postgres \
            <<<"$drops" >/dev/null 2>&1 || true
        left=$(sql "$port" postgres "SELECT count(*) FROM pg_database WHERE datname LIKE 'sgtest\_%'")
        if ((left > 0)); then
            say "dropped $((total - left)) leftover test database(s) on $name; $left in use, kept"
        else
            say "dropped $total leftover test database(s) on $name"
        fi
    done
    cd "$REPO"
    export_app_env
    export_admin_env   # the tests run the admin CLI's switchover too
    export SHARDGATE_REPO="$REPO" SHARDGATE_SETUP="$SELF"
    # The browser test's Chromium, unless the caller named another one.
    if [[ -z ${SHARDGATE_CHROMIUM:-} ]] && command -v chromium >/dev/null 2>&1; then
        SHARDGATE_CHROMIUM=$(command -v chromium)
        export SHARDGATE_CHROMIUM
    fi
    unset RUST_LOG
    # The failure tests stop and start real servers; they run first, on the topology
    # `up` just settled, before the other suites have filled the WAL with hundreds of
    # test databases. Then everything else. Every suite runs; any failure fails the run.
    local failed=0 out
    out=$(mktemp)
    # Every run selects the whole workspace, as the build did, so cargo unifies features
    # the same way and finds every binary fresh (a per-package run rebuilt
    # shard-manager and everything above it with other features: about 3 minutes of a
    # cold CI run).
    say "cargo test --workspace --test failures (real outages, one at a time)"
    cargo test --workspace --test failures --no-fail-fast 2>&1 | tee -a "$out" || failed=1
    test_placement   # a failover during the failure tests must not move the next ones' primaries
    test_lanes "$out" || failed=1
    # Then docker-compose.yml's stack, on this run's debug build (the tests' build made
    # api-router and shard-admin under target/debug): a fresh stack in containers on
    # ports 26080-26095, the tour, a primary container killed, every acknowledged write
    # read back, then down. After the suites: its build and servers would slow them.
    say "./setup.sh compose test (docker-compose.yml's stack, on the tests' debug build)"
    (COMPOSE_BINARIES=${CARGO_TARGET_DIR:-$REPO/target}/debug cmd_compose test) 2>&1 | tee -a "$out" || failed=1
    # Then the Helm chart, offline: rendered by Helm's engine, every object validated
    # (built-in kinds strictly, CloudNativePG's against its CRDs made strict), and each
    # rendered configuration checked by this run's admin CLI.
    say "scripts/helm_check.sh (the Helm chart, rendered and validated offline)"
    (SHARDGATE_ADMIN=${CARGO_TARGET_DIR:-$REPO/target}/debug/shard-admin bash "$REPO/scripts/helm_check.sh") 2>&1 | tee -a "$out" || failed=1
    # Then the supply chain (deny.toml): licences, bans, sources; advisories when the
    # database is here. Last: installing cargo-deny the first time is a build of its own.
    supply_chain_check 2>&1 | tee -a "$out" || failed=1
    # One closing line for the whole run: every suite's counts added up.
    local passed failures
    passed=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^passed/) n += $i } END { print n + 0 }' "$out")
    failures=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^failed/) n += $i } END { print n + 0 }' "$out")
    # Each failed test's panic again, last: a log read from its end (as CI's is) shows
    # why each failed, however far above its own output lies.
    failure_digest "$out"
    rm -f "$out"
    if ((failed)) && ((failures == 0)); then failures=1; fi   # a build error counts too
    disk_watch_report
    echo "${passed} passed, ${failures} failed"
    ((failed == 0))
}

# For each failed test in the log `$1` (its `---- NAME stdout ----` block): its name and
# its panic, the `panicked at` line and the message after it (at most 12 lines of at
# most 300 characters; a backtrace or a note ends it). Nothing when none failed.
failure_digest() {
    awk '
        /^---- .* ----$/ { name = $0; taking = 0; next }
        /^failures:$/ || /^test result:/ { name = ""; taking = 0; next }
        name != "" && /panicked at/ {
            if (!shown++) print "==> why each failed test failed:"
            print name; print substr($0, 1, 300); taking = 12; next
        }
        taking > 0 && (/^stack backtrace:/ || /^note: / || /^$/ || /^---- / || /^failures:/) { taking = 0 }
        taking > 0 { print substr($0, 1, 300); taking-- }
    ' "$1"
}

# Every test target but `failures`, one name a line, from the tests/ directories.
test_targets() {
    local file name
    for file in "$REPO"/*/tests/*.rs "$REPO"/*/tests/*/main.rs; do
        name=$(basename "$file" .rs)
        [[ $name == main ]] && name=$(basename "$(dirname "$file")")
        [[ $name == failures ]] || printf '%s\n' "$name"
    done
}

# Every suite after the failure tests, their output added to the file $1, in two lanes
# at once: the suites on servers of their own (OWN_SERVER_SUITES, one after the other) in
# the background, into a log of their own; the book's check, then every other suite and
# the unit tests, in the foreground. Each suite runs to its end whatever another did;
# fails when any failed. The background lane is a process group of its own, so leaving
# early (an error, Ctrl-C) stops all of it.
test_lanes() {
    local out=$1 own=() shared=() name failed=0 own_pid own_log=$LOCAL/test-own-servers.log
    for name in $(test_targets); do
        if [[ " ${OWN_SERVER_SUITES[*]} " == *" $name "* ]]; then own+=("$name"); else shared+=(--test "$name"); fi
    done
    say "in the background: cargo test --workspace --test ${own[*]} (servers of their own; log $own_log)"
    # A little behind the foreground for the CPU (nice 5, its servers too): the shared
    # suites' health checks answer within 1000 ms or take a server out, while these
    # suites mostly wait on their HA manager's timers.
    # shellcheck disable=SC2016 # the lane's own script: $name and $@ are its own
    nice -n 5 setsid -w bash -c 'status=0
        for name in "$@"; do
            echo "==> cargo test --workspace --test $name (servers of its own, in the background)"
            cargo test --workspace --test "$name" --no-fail-fast 2>&1 || status=1
        done
        exit "$status"' own-server-suites "${own[@]}" >"$own_log" 2>&1 &
    own_pid=$!
    trap 'kill -TERM -- -'"$own_pid"' 2>/dev/null || true' EXIT
    # The documents: the book builds without a warning, no link or anchor is dead, and the
    # marked examples answer as shown (run here, while every primary is where the
    # configuration names it).
    say "scripts/docs.sh check (the book, its links, its examples)"
    "$REPO/scripts/docs.sh" check 2>&1 | tee -a "$out" || failed=1
    # The scripts keep long text (usage, configuration, SQL, programs) in files of their own.
    say "scripts/heredoc_check.sh (no heredoc over 20 lines in the scripts)"
    "$REPO/scripts/heredoc_check.sh" 2>&1 | tee -a "$out" || failed=1
    say "cargo test --workspace --lib --bins ${shared[*]}"
    cargo test --workspace --lib --bins "${shared[@]}" --no-fail-fast 2>&1 | tee -a "$out" || failed=1
    if kill -0 "$own_pid" 2>/dev/null; then
        say "waiting for the suites on servers of their own (log $own_log)"
    fi
    wait "$own_pid" || failed=1
    trap - EXIT
    say "the suites on servers of their own (${own[*]}), from $own_log:"
    tee -a "$out" <"$own_log"
    ((failed == 0))
}

# `test` under the HA manager: each shard's primary on its first node, where the tests'
# configuration names it; a switch back is recorded in the map as `up` records any
# promotion (migrate, then init, with the test build's admin CLI).
test_placement() {
    ha_on || return 0
    HA_SWITCHED_BACK=0
    ha_first_nodes_primary
    ((HA_SWITCHED_BACK)) || return 0
    local bin=${CARGO_TARGET_DIR:-$REPO/target}/debug/shard-admin args
    mapfile -t args < <(config_args)
    (cd "$REPO" && export_app_env && "$bin" migrate ${args[@]+"${args[@]}"} >/dev/null &&
        "$bin" init ${args[@]+"${args[@]}"} | tail -n 1)
}
