#!/usr/bin/env bash
# scripts/bench.sh: the figures of docs/BENCHMARKS.md, measured end to end.
#
#   ./scripts/bench.sh              every step, in order (about 10 minutes once built)
#   ./scripts/bench.sh write read   only those steps (the prepare step always runs)
#   ./scripts/bench.sh cpu          the gateway's CPU time per request, by request kind
#   ./scripts/bench.sh profile      not in the default set: perf profile of a read run
#                                   (PROFILE_SCENARIO=write for another scenario;
#                                   PROFILE_KIND=read|cached|write|noop: the gateway alone
#                                   during a cpu-step request kind, split by layer and
#                                   drawn as a flame graph)
#
# Steps: write read bulk latency ceiling cache rss ryw analytics replicas (replicas last:
# it switches to SHARDS=3 REPLICAS=2 and back).
#
# What it does: ./setup.sh up (the default topology), builds the release binaries,
# migrates, starts its own gateway on 127.0.0.1:$PORT (stopped on exit, also on error
# or Ctrl-C), then measures the gateway and, in the same run, the baseline each ratio
# divides by: pgbench straight against the same PostgreSQL servers, COPY into the same
# shards, wrk on the same server. Every load is bounded in time. Scratch databases
# sgbench_pgb and sgbench_rec are created on the primaries (the replicas follow) and
# dropped at the end (KEEP_SCRATCH=1 keeps them). Raw outputs land in
# .local/bench/<UTC time>/; the last thing printed is a Markdown report (also
# report.md in that folder).
#
# Settings (environment):
#   DURATION=15   seconds of each measured load (after goose's 1 s ramp-up)
#   USERS=8       concurrent goose users = pgbench clients = wrk connections
#   KEYS=10000    loadtest key space (users/rec_0 .. rec_{KEYS-1})
#   BATCH=1000    records per bulk-write request;  BULK_USERS=4  goose users for it
#   RSS_SECS=60   length of the mixed run whose gateway RSS is sampled every 5 s
#   PORT=18080    the gateway this script starts
#   QUIET_WAIT=300  longest wait (s) for the machine to be idle before a measurement
#   ROUNDS=2      single writes: gateway and pgbench runs, alternating, per side
#   KEEP_SCRATCH=1  keep the sgbench_* databases
#   GATEWAY_BIN=path  benchmark another api-router build (an A/B of a change)
#   SKIP_BUILD=1    use the binaries already in target/release
#
# Installs with apt-get (as root) what is missing: wrk, jq, pgbench (postgresql-contrib
# on older Debian), perf (linux-perf, only for `profile`).
#
# This file only dispatches: what each step measures is a script of its own under
# scripts/bench/ (functions only): lib.sh (settings, helpers, clean-up, set-up),
# sampling.sh (CPU sampling, waiting for a quiet machine), gateway.sh, loadgen.sh (goose,
# pgbench, wrk), writes.sh, reads.sh, replicas.sh, ceiling.sh (the no-op request),
# cache.sh, memory.sh, analytics.sh, cpu.sh (CPU per request and the pgbench floors),
# profile.sh and report.sh.
set -Eeuo pipefail
trap 'echo "bench.sh: error: \"$BASH_COMMAND\" failed (exit $?) at ${BASH_SOURCE[0]#"$REPO/"} line $LINENO" >&2' ERR

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"

# shellcheck source-path=SCRIPTDIR/..
. "$REPO/scripts/bench/lib.sh"
. "$REPO/scripts/bench/sampling.sh"
. "$REPO/scripts/bench/gateway.sh"
. "$REPO/scripts/bench/loadgen.sh"
. "$REPO/scripts/bench/writes.sh"
. "$REPO/scripts/bench/reads.sh"
. "$REPO/scripts/bench/replicas.sh"
. "$REPO/scripts/bench/ceiling.sh"
. "$REPO/scripts/bench/cache.sh"
. "$REPO/scripts/bench/memory.sh"
. "$REPO/scripts/bench/analytics.sh"
. "$REPO/scripts/bench/cpu.sh"
. "$REPO/scripts/bench/profile.sh"
. "$REPO/scripts/bench/report.sh"

main() {
    if (($# > 0)); then
        STEPS=("$@")
        local s
        for s in "${STEPS[@]}"; do
            [[ " ${ALL_STEPS[*]} profile " == *" $s "* ]] || die "unknown step '$s' (steps: ${ALL_STEPS[*]} profile)"
        done
    else
        STEPS=("${ALL_STEPS[@]}")
    fi
    mkdir -p "$OUT"
    : >"$OUT/results"
    : >"$OUT/commands"
    say "results in $OUT"
    local t0=$SECONDS
    ensure_tools
    say "./setup.sh up (the default topology: 3 primaries, 1 replica each)"
    env -u SHARDS -u REPLICAS "$REPO/setup.sh" up >"$OUT/setup.log" 2>&1 || { tail -20 "$OUT/setup.log" >&2; die "./setup.sh up failed"; }
    load_credentials
    for d in /usr/lib/postgresql/*/bin; do [[ -x $d/pgbench ]] && PG_BIN=$d; done
    [[ -x $PG_BIN/pgbench ]] || die "no pgbench in /usr/lib/postgresql/*/bin"
    if [[ $SKIP_BUILD == 1 ]]; then say "SKIP_BUILD=1: using the binaries in $BIN"; else build; fi
    [[ $GATEWAY_BIN == "$BIN/api-router" ]] || result gateway_bin "$GATEWAY_BIN"
    say "shard-admin migrate"
    "$BIN/shard-admin" migrate >"$OUT/migrate.log" 2>&1 || { cat "$OUT/migrate.log" >&2; die "migrate failed"; }
    machine
    start_gateway plain
    prepare

    local step
    for step in "${STEPS[@]}"; do
        [[ $step == replicas ]] && continue
        "step_$step"
    done
    want replicas && step_replicas
    stop_gateway
    result total_secs "$((SECONDS - t0))"
    if [[ ${STEPS[*]} == cpu ]]; then
        cpu_table | tee "$OUT/report.md"
    elif [[ ${STEPS[*]} != profile ]]; then
        report >"$OUT/report.md"
        if want cpu; then { printf '\n## CPU per request\n\n'; cpu_table; } >>"$OUT/report.md"; fi
        printf '\n'
        cat "$OUT/report.md"
    fi
    say "done in $((SECONDS - t0)) s; raw outputs in $OUT"
}

main "$@"
