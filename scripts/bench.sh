#!/usr/bin/env bash
# scripts/bench.sh: every figure of docs/BENCHMARKS.md, measured end to end.
#
#   ./scripts/bench.sh              the default steps, in order (about 12 minutes once built)
#   ./scripts/bench.sh write read   only those steps
#   ./scripts/bench.sh help         the steps, one line each
#
# Default steps: write read bulk latency ceiling cache rss ryw analytics cpu replicas
# (replicas last: it switches to SHARDS=3 REPLICAS=2 and back). Steps run only when named:
#   ratios             W, R and C at 16 and 64 clients (CONNS="16 64") in one run: writes
#                      beside pgbench upserts, replica reads beside pgbench -S, cached
#                      reads beside the no-op; CPU per request and the idle load
#   changes            W with change streams on (the log, a consumer following) and off
#                      (CONNS="16 64", ROUNDS turns); loadtest verify following its table
#                      at WRITE_RATE=500 writes/s and unthrottled: changes delivered/s, lag
#   profile            perf profile of a read run (PROFILE_SCENARIO=write for another);
#                      PROFILE_KIND=read|cached|write|noop: the gateway alone during a cpu
#                      step's request kind, split by layer and drawn as a flame graph
#   scenarios          loadtest list, fan-out, mixed and read-cached
#   read-batching      point reads batched and not, beside pgbench -S
#   write-batching     single writes grouped and alone, beside pgbench; the machine's CPU
#                      per write (CONNS="1 16 64")
#   connections        reads and no-ops at 16 and 1,000 connections (CONNS="16 1000")
#   cluster-analytics  the load per slot on and off; the publisher's idle cost
#   builds             CPU per request of two builds taking turns: A_BIN=path B_BIN=path
#                      (CONNS="16 64" for other client counts than 8)
#   traces             CPU per request with trace export off, at the default ratio and
#                      with every request sampled, taking turns (an OTLP sink on SINK_PORT)
#   lists, export      the gateway's memory under large lists; export (RECORDS=100000)
#   queries            a filtered, sorted page over RECORDS=300000 records without and
#                      with an index built online; the merge's memory at 10,000 a page
#   idle               what the topology costs while nothing uses it (IDLE_SECS=10)
#   planned            the pause each switchover and 16-slot move shows keyed and unkeyed
#                      writers (ROUNDS of each), and what a held write costs
#   moves import txn limits keys timers snapshot outage replication async-loss netcut
#   backup one-db      the measurements written in Rust (cargo bench, tests,
#                      shard-admin bench), run with the topology's environment
#
# What it does: ./setup.sh up (the default topology), builds the release binaries,
# migrates; for the default steps and the others that need them, scratch databases
# sgbench_pgb and sgbench_rec on the primaries (the replicas follow) and its own gateway
# on 127.0.0.1:$PORT (stopped on exit, also on error or Ctrl-C). It measures the gateway
# and, in the same run, the baseline each ratio divides by: pgbench straight against the
# same PostgreSQL servers, COPY into the same shards, wrk on the same server. Every load
# is bounded in time. Scratch databases are dropped at the end (KEEP_SCRATCH=1 keeps
# them). Raw outputs land in .local/bench/<UTC time>/; the last thing printed is a
# Markdown report (also report.md in that folder).
#
# Settings (environment):
#   DURATION=15   seconds of each measured load (after goose's 1 s ramp-up); the wrk
#                 steps run 8 or 10 s unless it is set
#   USERS=8       concurrent goose users = pgbench clients = wrk connections
#   KEYS=10000    loadtest key space (users/rec_0 .. rec_{KEYS-1}); 2000 for the wrk
#                 steps unless it is set
#   CONNS=...     wrk connections of the wrk steps (each step's default is above)
#   BATCH=1000    records per bulk-write request;  BULK_USERS=4  goose users for it
#   RSS_SECS=60   length of the mixed run whose gateway RSS is sampled every 5 s
#   WRITE_RATE=500  writes/s of the changes step's throttled verify run
#   PORT=18080    the gateway this script starts
#   QUIET_WAIT=300  longest wait (s) for the machine to be idle before a measurement
#   ROUNDS=2      rounds of the steps that alternate two sides
#   PREP=0        the wrk steps keep the records already written
#   KEEP_SCRATCH=1  keep the scratch databases
#   GATEWAY_BIN=path  benchmark another api-router build (an A/B of a change)
#   SKIP_BUILD=1    use the binaries already in target/dist
#   CHANGE_LOG=off  the gateway's writes without the change log (its triggers disabled on
#                 every primary for the run, enabled again at the end): W with change
#                 streams off. The run's writes are then missing from the streams
#
# Installs with apt-get (as root) what is missing: wrk, jq, pgbench (postgresql-contrib
# on older Debian), redis-tools, python3, time, perf (linux-perf, only for `profile`).
#
# This file only dispatches. The helpers every step uses are scripts/bench/lib.sh (with
# its parts sampling.sh, gateway.sh, loadgen.sh); prepare.sh sets up; each step is a
# function step_NAME in a file of its topic under scripts/bench/: writes.sh, reads.sh,
# replicas.sh, ceiling.sh, cache.sh, memory.sh, analytics.sh, cpu.sh, profile.sh,
# scenarios.sh, batching.sh, ratios.sh, changes.sh, connections.sh, export.sh, queries.sh, idle.sh, rust.sh; report.sh
# writes the report (from report-template.md, expanded by scripts/lib/expand.sh).
set -Eeuo pipefail
trap 'echo "bench.sh: error: \"$BASH_COMMAND\" failed (exit $?) at ${BASH_SOURCE[0]#"$REPO/"} line $LINENO" >&2' ERR

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"

# shellcheck source-path=SCRIPTDIR/..
. "$REPO/scripts/bench/lib.sh"
. "$REPO/scripts/lib/expand.sh"
for f in prepare writes reads replicas ceiling cache memory analytics cpu profile scenarios \
    batching ratios changes connections export queries idle rust report; do
    . "$REPO/scripts/bench/$f.sh"
done

main() {
    if [[ ${1:-} == help || ${1:-} == -h || ${1:-} == --help ]]; then
        sed -n '2,/^set -E/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        return
    fi
    if (($# > 0)); then STEPS=("$@"); else STEPS=("${ALL_STEPS[@]}"); fi
    local s prepared=0 release=0
    for s in "${STEPS[@]}"; do
        [[ " ${ALL_STEPS[*]} ${MORE_STEPS[*]} " == *" $s "* ]] || die "unknown step '$s' (scripts/bench.sh help lists them)"
        on_prepared "$s" && prepared=1
        needs_release "$s" && release=1
    done
    if want builds; then
        [[ -x ${A_BIN:-} && -x ${B_BIN:-} ]] || die "the builds step needs A_BIN and B_BIN, two api-router binaries"
    fi
    SET_UP=1
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
    if ((release)); then
        if [[ $SKIP_BUILD == 1 ]]; then say "SKIP_BUILD=1: using the binaries in $BIN"; else build; fi
        [[ $GATEWAY_BIN == "$BIN/api-router" ]] || result gateway_bin "$GATEWAY_BIN"
        say "shard-admin migrate"
        "$BIN/shard-admin" migrate >"$OUT/migrate.log" 2>&1 || { cat "$OUT/migrate.log" >&2; die "migrate failed"; }
    fi
    machine
    if ((prepared)); then
        start_gateway plain
        PLAIN_GATEWAY=1
        prepare
    fi

    for STEP in "${STEPS[@]}"; do
        [[ $STEP == replicas ]] && continue
        "step_${STEP//-/_}"
    done
    STEP=replicas
    want replicas && step_replicas
    stop_gateway
    result total_secs "$((SECONDS - t0))"
    write_report
    say "done in $((SECONDS - t0)) s; raw outputs in $OUT"
}

# The report: the default steps' tables, the CPU table, then each other step's own lines.
write_report() {
    local s ran=0
    for s in "${STEPS[@]}"; do [[ " ${ALL_STEPS[*]} " != *" $s "* ]] || ran=1; done
    : >"$OUT/report.md"
    if [[ ${STEPS[*]} == cpu ]]; then
        cpu_table >"$OUT/report.md"
    elif ((ran)); then
        report >"$OUT/report.md"
        if want cpu; then { printf '\n## CPU per request\n\n'; cpu_table; } >>"$OUT/report.md"; fi
    fi
    for s in "${STEPS[@]}"; do
        [[ -s $OUT/$s.txt ]] || continue
        printf '\n## %s\n\n```text\n%s\n```\n' "$s" "$(cat "$OUT/$s.txt")" >>"$OUT/report.md"
    done
    printf '\n'
    cat "$OUT/report.md"
}

main "$@"
