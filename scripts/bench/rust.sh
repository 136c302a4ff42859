# scripts/bench/rust.sh: sourced by scripts/bench.sh (functions only). The measurements
# written in Rust, run with the topology's environment, each output kept whole in
# $OUT/STEP.log and its closing lines in the report: the topology benchmark
# (test-app/benches/topology: `moves`, `planned`, `import`, `txn`, `limits`, `snapshot`), criterion
# benches (`keys`, `timers`), the benchmarks on private servers (test-support/benches:
# `outage`, `replication`, `async-loss`, `netcut`), the backup benchmark (`backup`), and
# `shard-admin bench` (`one-db`). SHARDGATE_BENCH_ROUNDS and the
# other variables these read pass through.

# rust_run CMD...: CMD after a quiet machine, its output in $OUT/$STEP.log; its last
# lines in the step's table.
rust_run() {
    wait_quiet "$STEP"
    say "$STEP: $*"
    cmd "$STEP" "$*"
    "$@" >"$OUT/$STEP.log" 2>&1 || { tail -30 "$OUT/$STEP.log" >&2; die "$STEP: '$*' failed (see $OUT/$STEP.log)"; }
    { grep -vE '^\s*(Compiling|Finished|Running|Blocking|Downloaded|Downloading)\b' "$OUT/$STEP.log" || true; } |
        tail -"${RUST_TAIL:-25}" | tee -a "$OUT/$STEP.txt"
}

step_moves() { rust_run cargo bench -p test-app --bench topology -- resharding; }
# The switchovers drain a primary as the failover administrator, as the HA tests do.
step_planned() {
    (eval "$("$REPO/setup.sh" env admin)" && ROUNDS=$ROUNDS rust_run cargo bench -p test-app --bench topology -- planned) ||
        die "planned: the benchmark failed (see $OUT/planned.log)"
}
step_import() { rust_run cargo bench -p test-app --bench topology -- import; }
step_txn() { rust_run cargo bench -p test-app --bench topology -- txn; }
step_limits() { rust_run cargo bench -p test-app --bench topology -- limits; }
step_keys() { rust_run cargo bench -p api-router --bench access; }
step_timers() { rust_run cargo bench -p api-router --bench timers; }
step_snapshot() { rust_run cargo bench --profile dist -p test-app --bench topology -- snapshot; }
step_outage() { SHARDGATE_REQUIRE_HA=1 rust_run cargo bench --profile dev -p test-support --bench outage; }
step_replication() { rust_run cargo bench --profile dev -p test-support --bench replication; }
step_async_loss() { rust_run cargo bench --profile dev -p test-support --bench async_loss; }
step_netcut() { SHARDGATE_REQUIRE_HA=1 rust_run cargo bench --profile dev -p test-support --bench netcut; }
step_one_db() { rust_run "$BIN/shard-admin" bench --rows "${ROWS:-20000}" --clients "${CONNS:-8}"; }

# A full backup of the whole cluster, then pgBackRest alone on one server, both timed;
# then the restore point's fence under load (private servers, shard-admin/benches/backup).
step_backup() {
    local conf=$REPO/.local/cluster/pgbackrest/pgbackrest.conf
    cargo build -p shard-admin 2>&1 | tail -1 >&2
    STEP=backup-full rust_run /usr/bin/time -f 'shard-admin backup: %e s' "$TARGET/debug/shard-admin" backup --type full
    STEP=backup-pgbackrest rust_run /usr/bin/time -f 'pgbackrest alone: %e s' \
        runuser -u postgres -- pgbackrest --config="$conf" --stanza=shard0 --type=full backup
    STEP=backup-fence rust_run cargo bench --profile dev -p shard-admin --bench backup
    cat "$OUT"/backup-*.txt >>"$OUT/backup.txt"
}
