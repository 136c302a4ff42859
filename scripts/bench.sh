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
set -Eeuo pipefail
trap 'echo "bench.sh: error: \"$BASH_COMMAND\" failed (exit $?) at line $LINENO" >&2' ERR

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"

DURATION=${DURATION:-15}
USERS=${USERS:-8}
KEYS=${KEYS:-10000}
BATCH=${BATCH:-1000}
BULK_USERS=${BULK_USERS:-4}
RSS_SECS=${RSS_SECS:-60}
PORT=${PORT:-18080}
QUIET_WAIT=${QUIET_WAIT:-300}
KEEP_SCRATCH=${KEEP_SCRATCH:-0}
REDIS_PORT=${REDIS_PORT:-26379}
ROUNDS=${ROUNDS:-2}
REDIS_N=${REDIS_N:-200000}

HOST=127.0.0.1
URL="http://$HOST:$PORT"
PRIMARIES=(25432 25433 25434)
REPLICAS=(25532 25533 25534)      # replica 0 of each shard
REPLICAS1=(25548 25549 25550)     # replica 1 of each shard (SHARDS=3 REPLICAS=2)
SCRATCH_DBS=(sgbench_pgb sgbench_rec)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
BIN=$TARGET/release
GATEWAY_BIN=${GATEWAY_BIN:-$BIN/api-router}
SKIP_BUILD=${SKIP_BUILD:-0}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$REPO/.local/bench/$STAMP
CLK_TCK=$(getconf CLK_TCK)
ALL_STEPS=(write read bulk latency ceiling cache rss ryw analytics cpu replicas)

unset PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGOPTIONS PGSERVICE || true
export PGCONNECT_TIMEOUT=5
export PGOPTIONS='-c client_min_messages=warning'

# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------
say() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench.sh: error: %s\n' "$*" >&2; exit 1; }

# Results: KEY=VALUE lines in $OUT/results, read back with r KEY.
result() { printf '%s=%s\n' "$1" "$2" >>"$OUT/results"; say "  $1 = $2"; }
r() { local v; v=$(grep -m1 "^$1=" "$OUT/results" 2>/dev/null | cut -d= -f2-) || true; printf '%s' "${v:-n/a}"; }
# The exact commands behind each figure, for the report.
cmd() { printf '%s\t%s\n' "$1" "${2//"$REPO"\//}" >>"$OUT/commands"; }

calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
ms() { if is_num "$1"; then calc "$1 / 1000" 3; else echo n/a; fi; }   # microseconds -> ms
is_num() { [[ $1 =~ ^-?[0-9]+([.][0-9]+)?$ ]]; }
ratio() { if is_num "$1" && is_num "$2" && [[ $2 != 0 && $2 != 0.0* ]]; then calc "$1 / $2" "${3:-2}"; else echo n/a; fi; }
# met VALUE OP TARGET -> yes / no / n/a
met() {
    is_num "$1" || { echo n/a; return; }
    if awk "BEGIN { exit !($1 $2 $3) }"; then echo yes; else echo "**no**"; fi
}

PG_BIN=""
for d in /usr/lib/postgresql/*/bin; do
    [[ -x $d/psql ]] && PG_BIN=$d
done
psql_() {   # PORT DB psql-args...
    local port=$1 db=$2
    shift 2
    "$PG_BIN/psql" -X -q -w -A -t -v ON_ERROR_STOP=1 -h "$HOST" -p "$port" -U postgres -d "$db" "$@"
}
sql() { psql_ "$1" "$2" -c "$3"; }

# The passwords ./setup.sh generated: psql and pgbench log in as the superuser through
# .local/pgpass; the gateway as its own role (./setup.sh env); Redis tools with its password.
load_credentials() {
    [[ -f $REPO/.local/credentials.env ]] || "$REPO/setup.sh" up >/dev/null
    eval "$("$REPO/setup.sh" env)"
    export PGPASSFILE="$REPO/.local/pgpass"
    REDIS_PASSWORD=$(sed -n 's/^SHARDGATE_REDIS_PASSWORD=//p' "$REPO/.local/credentials.env")
    export REDISCLI_AUTH="$REDIS_PASSWORD"
}

# redis-benchmark takes a password only on its command line (-a; unlike redis-cli it
# ignores REDISCLI_AUTH), where ps shows it. So it never gets Redis's: it signs in as a
# user of its own, made for the one run with a throwaway password (REDIS_BENCH_AUTH) and
# allowed GET, SET and PING on the benchmark's keys (key:*) only, and deleted after it.
REDIS_BENCH_USER=shardgate-bench
REDIS_BENCH_AUTH=()
redis_bench_user() {
    local pw
    pw=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    printf 'ACL SETUSER %s reset on >%s ~key:* +get +set +ping\n' "$REDIS_BENCH_USER" "$pw" |
        redis-cli -p "$REDIS_PORT" >/dev/null || die "redis-cli could not make the benchmark's user"
    REDIS_BENCH_AUTH=(--user "$REDIS_BENCH_USER" -a "$pw")
}
redis_bench_user_gone() {
    printf 'ACL DELUSER %s\n' "$REDIS_BENCH_USER" | redis-cli -p "$REDIS_PORT" >/dev/null 2>&1 || true
    REDIS_BENCH_AUTH=()
}

# ---------------------------------------------------------------------------------------
# Clean-up: whatever happens, stop what we started and leave the topology as we found it
# ---------------------------------------------------------------------------------------
GW_PID=""
BG_PIDS=()
TOPOLOGY_CHANGED=0
CREATED_REPLICA1=()

cleanup() {
    local rc=$?
    trap - ERR
    set +e
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    ((${#REDIS_BENCH_AUTH[@]} == 0)) || redis_bench_user_gone
    stop_gateway
    if [[ $TOPOLOGY_CHANGED -eq 1 ]]; then
        say "restoring the default topology"
        restore_topology
    fi
    if [[ $KEEP_SCRATCH != 1 && -n $PG_BIN ]]; then
        local port db
        for port in "${PRIMARIES[@]}"; do
            for db in "${SCRATCH_DBS[@]}"; do
                sql "$port" postgres "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
            done
        done
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------
# CPU accounting: who used the 2 cores during a measurement
# ---------------------------------------------------------------------------------------
proc_busy() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9; exit }' /proc/stat; }
pid_ticks() { awk '{ print $14+$15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

cpu_begin() {
    CPU_T0=$EPOCHREALTIME
    CPU_B0=$(proc_busy)
    CPU_G0=0
    [[ -n $GW_PID ]] && CPU_G0=$(pid_ticks "$GW_PID")
    CLIENT_CPU_FILES=()
}
# cpu_end NAME: writes NAME_cpu = "busy X of N cores: gateway G, load generator L,
# PostgreSQL/Redis/kernel P" (cores, averaged over the wall time of the measurement).
cpu_end() {
    local name=$1 t1 b1 g1 wall busy gw client=0 f
    t1=$EPOCHREALTIME
    b1=$(proc_busy)
    g1=0
    [[ -n $GW_PID ]] && g1=$(pid_ticks "$GW_PID")
    wall=$(calc "$t1 - $CPU_T0" 3)
    for f in "${CLIENT_CPU_FILES[@]}"; do
        # /usr/bin/time -f '%e %U %S'
        client=$(awk -v c="$client" 'NF == 3 && $1 ~ /^[0-9.]+$/ { c += $2 + $3 } END { print c }' "$f")
    done
    busy=$(calc "($b1 - $CPU_B0) / $CLK_TCK / $wall")
    gw=$(calc "($g1 - $CPU_G0) / $CLK_TCK / $wall")
    client=$(calc "$client / $wall")
    local rest
    rest=$(calc "$busy - $gw - $client")
    [[ -n $GW_PID ]] || gw="-"
    result "${name}_cpu" "$busy of $(nproc) cores busy: gateway $gw, load generator $client, PostgreSQL+Redis+kernel $rest"
}
timed() {   # NAME cmd...: runs cmd under /usr/bin/time, counted as load-generator CPU
    local name=$1
    shift
    CLIENT_CPU_FILES+=("$OUT/$name.time")
    /usr/bin/time -f '%e %U %S' -o "$OUT/$name.time" "$@"
}

# ---------------------------------------------------------------------------------------
# Waiting for a quiet machine and a settled cluster
# ---------------------------------------------------------------------------------------
# Busy cores over one second, ours included (the gateway is idle between runs).
busy_now() {
    local b0 b1
    b0=$(proc_busy)
    sleep 1
    b1=$(proc_busy)
    calc "($b1 - $b0) / $CLK_TCK"
}

# Before each measurement: no compiler running, under 0.3 busy cores. Bounded wait;
# a measurement taken on a busy machine is flagged in the results.
wait_quiet() {
    local name=$1 deadline=$((SECONDS + QUIET_WAIT)) b
    while :; do
        b=$(busy_now)
        if ! pgrep -x rustc >/dev/null && awk "BEGIN { exit !($b < 0.3) }"; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            say "  WARNING: machine still busy ($b cores, rustc running: $(pgrep -xc rustc || true)) after ${QUIET_WAIT}s; measuring anyway"
            result "${name}_warning" "machine busy before the run ($b cores in use by others)"
            return 0
        fi
        sleep 4
    done
}

# The ports are fixed, and `./setup.sh up` in another checkout (a CI clone, say) takes
# them over: make sure every server we measure is still this checkout's.
check_servers() {
    local cluster port dir
    cluster=$(readlink -f "$REPO/.local/cluster")
    for port in "${PRIMARIES[@]}" "${REPLICAS[@]}" ${EXTRA_PORTS[@]+"${EXTRA_PORTS[@]}"}; do
        dir=$(sql "$port" postgres "SHOW data_directory" 2>/dev/null) || die "nothing answers on port $port (./setup.sh status)"
        [[ $(readlink -f "$dir") == "$cluster"/* ]] || {
            # Not ours to restore or clean up now; ./setup.sh up does it later.
            if [[ $TOPOLOGY_CHANGED -eq 1 ]]; then
                say "  left SHARDS=3 REPLICAS=2 in place: run ./setup.sh up (and delete .local/cluster/shard*-replica1) once the other checkout is done"
            fi
            TOPOLOGY_CHANGED=0
            KEEP_SCRATCH=1
            die "port $port is served from $dir, not this checkout's $cluster: another checkout's ./setup.sh took the ports; run the benchmark again when it is done"
        }
    done
}
EXTRA_PORTS=()

# Before each measurement: VACUUM the gateway's records table (the baselines' tables are
# freshly loaded and vacuumed, so both sides start without dead row versions; right
# after a write run a replica's point reads otherwise walk the dead versions the updates
# left until autovacuum comes by), CHECKPOINT every primary (no checkpoint in the middle
# of a run), and wait until every replica has replayed what its primary wrote.
settle() {
    local name=$1 port i lag deadline=$((SECONDS + 120))
    check_servers
    for port in "${PRIMARIES[@]}"; do sql "$port" shardgate "VACUUM (ANALYZE) records" >/dev/null; done
    for port in "${PRIMARIES[@]}"; do sql "$port" postgres "CHECKPOINT" >/dev/null; done
    for port in "${PRIMARIES[@]}"; do
        while :; do
            lag=$(sql "$port" postgres "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::bigint FROM pg_stat_replication")
            ((lag < 1048576)) && break
            ((SECONDS < deadline)) || { say "  WARNING: replicas of $port still $lag bytes behind"; break; }
            sleep 0.5
        done
    done
    wait_quiet "$name"
}

# ---------------------------------------------------------------------------------------
# The gateway
# ---------------------------------------------------------------------------------------
# start_gateway LABEL [VAR=value ...]: runs target/release/api-router on $PORT with
# $GW_CONFIG_ARGS; waits until it answers and every replica takes reads.
GW_CONFIG_ARGS=()
start_gateway() {
    local label=$1
    shift
    stop_gateway
    say "gateway ($label) on $URL"
    env "$@" RUST_LOG=warn "$GATEWAY_BIN" --listen "$HOST:$PORT" "${GW_CONFIG_ARGS[@]}" \
        >"$OUT/gateway-$label.log" 2>&1 &
    GW_PID=$!
    GW_LABEL=$label
    local i ok=0
    for ((i = 0; i < 300; i++)); do
        kill -0 "$GW_PID" 2>/dev/null || { tail -20 "$OUT/gateway-$label.log" >&2; die "the gateway exited"; }
        if curl -fsS -m 2 "$URL/api/health" 2>/dev/null |
            jq -e '.healthy and ([.shards[].replicas[].gateway.takes_reads] | all)' >/dev/null 2>&1; then
            ok=1
            break
        fi
        sleep 0.1
    done
    [[ $ok -eq 1 ]] || die "the gateway on $URL did not become healthy with every replica taking reads in 30 s"
}
stop_gateway() {
    [[ -n $GW_PID ]] || return 0
    kill -TERM "$GW_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 150; i++)); do
        kill -0 "$GW_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$GW_PID" 2>/dev/null || true
    wait "$GW_PID" 2>/dev/null || true
    GW_PID=""
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$GW_PID/status" 2>/dev/null || echo 0; }

# Requests each server served, by role (from GET /api/shards).
served() { curl -fsS -m 5 "$URL/api/shards" | jq "[.. | objects | select(has(\"served\")) | select(.role == \"$1\") | .served] | add"; }
# Transactions PostgreSQL counted in the shardgate database of these servers.
xacts() {
    local port n=0
    for port in "$@"; do
        n=$((n + $(sql "$port" postgres "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'shardgate'")))
    done
    echo "$n"
}

# ---------------------------------------------------------------------------------------
# Load generators and their figures
# ---------------------------------------------------------------------------------------
# goose NAME ARGS...: the loadtest binary against our gateway, JSON report in NAME.json.
goose() {
    local name=$1
    shift
    cmd "$name" "target/release/loadtest -H $URL $*"
    timed "$name" "$BIN/loadtest" -H "$URL" --report-file "$OUT/$name.json" "$@" >"$OUT/$name.log" 2>&1 ||
        { tail -30 "$OUT/$name.log" >&2; die "loadtest $name failed (see $OUT/$name.log)"; }
    check_servers
}
# Requests per second of REQUEST ("GET read", "POST write", ...) over the time all users
# ran (goose's Maintaining phase; ramp-up excluded as goose resets its metrics then).
JQ_TS='def ts: capture("^(?<s>[^.Z]+)(\\.(?<f>[0-9]+))?Z$") | (.s + "Z" | fromdateiso8601) + ((.f // "0") | ("0." + .) | tonumber);'
goose_rate() {
    jq -r --arg n "$2" "$JQ_TS"'
        (.raw_metrics.history | map(select(.action == "Maintaining"))[0].timestamp | ts) as $a
      | (.raw_metrics.history | map(select(.action == "Decreasing"))[0].timestamp | ts) as $b
      | .raw_metrics.requests[$n] | (.success_count + .fail_count) / ($b - $a) | . * 10 | round / 10' "$OUT/$1.json"
}
goose_count() { jq -r --arg n "$2" '.raw_metrics.requests[$n] | .success_count + .fail_count' "$OUT/$1.json"; }
goose_fails() { jq -r '[.raw_metrics.requests[] | .fail_count] | add' "$OUT/$1.json"; }
# Percentile P (0..1) of REQUEST's time to first byte, in microseconds, from goose's
# histogram.
goose_pct_us() {
    jq -r --arg n "$2" --argjson p "$3" '
        .raw_metrics.requests[$n].raw_data.times_us
      | to_entries | map({t: (.key | tonumber), c: .value}) | sort_by(.t) as $h
      | ($h | map(.c) | add) as $total
      | reduce $h[] as $e ({cum: 0, v: null};
            if .v == null and (.cum + $e.c) >= ($total * $p) then .v = $e.t else . end
            | .cum += $e.c)
      | .v' "$OUT/$1.json"
}
# The gateway's own handler p50 (ms) for an endpoint, from the loadtest summary.
server_p50_ms() { awk -v e="endpoint $2" '$0 ~ e" " { print $(NF-3); exit }' "$OUT/$1.log"; }
goose_check() {   # fail loudly when a run had failed requests
    local f
    f=$(goose_fails "$1")
    [[ $f == 0 ]] || { say "  WARNING: $1 had $f failed requests"; result "${1}_failed_requests" "$f"; }
}

# pgbench NAME PORT CLIENTS ARGS...: one pgbench process in the background.
pgbench_bg() {
    local name=$1 port=$2 clients=$3
    shift 3
    CLIENT_CPU_FILES+=("$OUT/$name.time")
    /usr/bin/time -f '%e %U %S' -o "$OUT/$name.time" \
        "$PG_BIN/pgbench" -h "$HOST" -p "$port" -U postgres -c "$clients" -j 1 "$@" >"$OUT/$name.log" 2>&1 &
    PGB_PIDS+=($!)
}
pgbench_wait() {
    local p rc=0
    for p in "${PGB_PIDS[@]}"; do wait "$p" || rc=$?; done
    PGB_PIDS=()
    ((rc == 0)) || die "a pgbench run failed (see $OUT/*.log)"
}
pgbench_tps() { awk '/^tps = / { print $3; exit }' "$OUT/$1.log"; }
pgbench_failed() { awk '/number of failed transactions/ { print $5; exit }' "$OUT/$1.log"; }
# USERS clients over the 3 servers: 8 -> 3 3 2.
split3() { local n=$1; echo $(((n + 2) / 3)) $(((n + 1) / 3)) $((n / 3)); }

# wrk NAME ARGS...: requests/s, p50 and non-2xx count into NAME_*.
wrk_run() {
    local name=$1
    shift
    cmd "$name" "wrk $*"
    timed "$name" wrk "$@" >"$OUT/$name.log" 2>&1 || { cat "$OUT/$name.log" >&2; die "wrk $name failed"; }
}
wrk_rps() { awk '/^Requests\/sec:/ { printf "%.0f\n", $2; exit }' "$OUT/$1.log"; }
wrk_errors() { awk '/Non-2xx or 3xx responses:/ { n = $5 } /Socket errors/ { s = $0 } END { print (n ? n : 0) }' "$OUT/$1.log"; }
wrk_p50_us() {   # from --latency: "50%  312.00us"
    awk '$1 == "50%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
         m = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1000000 : 0; print v * m; exit }' "$OUT/$1.log"
}
wrk_check() {
    local e
    e=$(wrk_errors "$1")
    [[ $e == 0 ]] || { say "  WARNING: $1 had $e non-2xx answers"; result "${1}_non_2xx" "$e"; }
}

# Every request the gateway on $URL has answered, from its Prometheus counters.
requests_served() {
    curl -fsS -m 5 "$URL/metrics" |
        awk '/^shardgate_http_requests_total[{ ]/ { s += $NF } END { printf "%d", s }'
}

# The same recording as a flame graph ($OUT/flame-KIND.svg, open it in a browser; the
# folded stacks beside it, generic arguments dropped from the names by
# scripts/short-frames.py), drawn with inferno, which is installed into .local/tools
# (cargo install, a minute or two) the first time. Without it the profile still stands.
flame_graph() {
    local kind=$1 tools="$REPO/.local/tools/bin"
    if [[ ! -x $tools/inferno-flamegraph ]]; then
        say "cargo install inferno (flame graphs) into .local/tools"
        cargo install --quiet --locked --root "$REPO/.local/tools" inferno >"$OUT/inferno-install.log" 2>&1 ||
            { say "  no flame graph: inferno did not install (see $OUT/inferno-install.log)"; return 0; }
    fi
    perf script -i "$OUT/perf-$kind.data" 2>/dev/null | "$tools/inferno-collapse-perf" |
        python3 "$REPO/scripts/short-frames.py" >"$OUT/profile-$kind.folded"
    "$tools/inferno-flamegraph" --minwidth 1 --title "api-router, $kind requests (wrk -t1 -c8, 2 workers)" \
        <"$OUT/profile-$kind.folded" >"$OUT/flame-$kind.svg"
    gzip -f "$OUT/profile-$kind.folded"
    say "  flame graph: $OUT/flame-$kind.svg (folded stacks: profile-$kind.folded.gz)"
}

# ---------------------------------------------------------------------------------------
# Set-up
# ---------------------------------------------------------------------------------------
ensure_tools() {
    local pkgs=()
    command -v wrk >/dev/null || pkgs+=(wrk)
    command -v jq >/dev/null || pkgs+=(jq)
    command -v curl >/dev/null || pkgs+=(curl)
    command -v redis-benchmark >/dev/null || pkgs+=(redis-tools)
    [[ -x /usr/bin/time ]] || pkgs+=(time)
    if ! compgen -G "/usr/lib/postgresql/*/bin/pgbench" >/dev/null; then pkgs+=(postgresql-contrib); fi
    if [[ " ${STEPS[*]} " == *" profile "* ]] && ! command -v perf >/dev/null; then pkgs+=(linux-perf); fi
    ((${#pkgs[@]} == 0)) && return 0
    [[ $(id -u) -eq 0 ]] || die "missing: ${pkgs[*]}; install them with: sudo apt-get install ${pkgs[*]}"
    say "apt-get install ${pkgs[*]}"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}" ||
        { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"; }; } \
        >"$OUT/apt.log" 2>&1 || { tail -20 "$OUT/apt.log" >&2; die "apt-get failed"; }
}

build() {
    say "cargo build --release -p api-router -p loadtest -p shard-admin"
    cargo build --release -p api-router -p loadtest -p shard-admin 2>&1 | tail -3 >&2
    if want analytics; then
        say "cargo bench -p analytics --bench record --no-run"
        cargo bench -p analytics --bench record --no-run 2>&1 | tail -2 >&2
    fi
}

machine() {
    local pgv
    pgv=$(sql "${PRIMARIES[0]}" postgres "SHOW server_version")
    {
        echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- . ':!scripts' ':!docs' 2>/dev/null || echo ' (+ uncommitted changes)')"
        echo "cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
        echo "nproc=$(nproc)"
        echo "mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
        echo "kernel=$(uname -r)"
        echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
        echo "postgres=$pgv"
        echo "rustc=$(rustc --version | cut -d' ' -f2)"
        echo "wrk=$({ wrk -v 2>&1 || true; } | awk 'NR == 1 { print $2 }')"
        echo "goose=$(grep -A1 '^name = "goose"$' Cargo.lock | awk -F'"' '/version/ { print $2 }')"
        echo "pg_settings=shared_buffers $(sql "${PRIMARIES[0]}" postgres "SHOW shared_buffers"), synchronous_commit $(sql "${PRIMARIES[0]}" postgres "SHOW synchronous_commit"), fsync $(sql "${PRIMARIES[0]}" postgres "SHOW fsync")"
    } >"$OUT/machine"
}

prepare() {
    say "prepare: scratch databases ${SCRATCH_DBS[*]} on every primary"
    local i port
    for i in 0 1 2; do
        port=${PRIMARIES[$i]}
        for db in "${SCRATCH_DBS[@]}"; do
            sql "$port" postgres "DROP DATABASE IF EXISTS $db" >/dev/null
            sql "$port" postgres "CREATE DATABASE $db OWNER shardgate" >/dev/null
        done
        # pgbench's tables for -S (100,000 accounts).
        "$PG_BIN/pgbench" -h "$HOST" -p "$port" -U postgres -i -s 1 -q sgbench_pgb >"$OUT/pgbench-init-$i.log" 2>&1
        # The shard schema exactly as migrated (records with its sequence, indexes and
        # capture trigger, and the functions and tables that trigger reads).
        "$PG_BIN/pg_dump" -h "$HOST" -p "$port" -U postgres -s -O -x shardgate |
            psql_ "$port" sgbench_rec >/dev/null
        # The gateway's role (not a superuser) writes there.
        sql "$port" sgbench_rec "DO \$\$ DECLARE r record; BEGIN
            FOR r IN SELECT tablename AS n FROM pg_tables WHERE schemaname = 'public' LOOP
                EXECUTE format('ALTER TABLE %I OWNER TO shardgate', r.n); END LOOP;
            FOR r IN SELECT sequencename AS n FROM pg_sequences WHERE schemaname = 'public' LOOP
                EXECUTE format('ALTER SEQUENCE %I OWNER TO shardgate', r.n); END LOOP;
            END \$\$" >/dev/null
    done
    cmd prepare "pgbench -i -s 1 -q sgbench_pgb   # on each primary; sgbench_rec = pg_dump -s shardgate, tables owned by shardgate"
    # The replicas follow: wait until they have pgbench's tables.
    local deadline=$((SECONDS + 60))
    for port in "${REPLICAS[@]}"; do
        until [[ $(sql "$port" sgbench_pgb "SELECT count(*) FROM pgbench_accounts" 2>/dev/null) == 100000 ]]; do
            ((SECONDS < deadline)) || die "replica $port does not show sgbench_pgb after 60 s"
            sleep 0.5
        done
    done
    # The loadtest key space (users/rec_0 .. rec_{KEYS-1}), so that writes are updates
    # and reads find their records: a 1 s read run prefills it when missing.
    say "prepare: loadtest prefill of $KEYS keys"
    goose prefill --scenario read --keys "$KEYS" -u 1 -t 1s
}

want() { [[ " ${STEPS[*]} " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------------------
# 1. Single writes: gateway vs pgbench upserts on the same primaries
# ---------------------------------------------------------------------------------------
step_write() {
    say "1. single writes: loadtest write ($USERS users) vs pgbench (same statement, $USERS clients over 3 primaries), $ROUNDS rounds each, alternating"
    settle write
    local x0 s0 x1 s1 idle round gw pg gws=() pgs=() wrks=()
    x0=$(xacts "${PRIMARIES[@]}"); sleep 2; x1=$(xacts "${PRIMARIES[@]}"); idle=$(calc "($x1 - $x0) / 2")
    local per_shard=$(((KEYS + 2) / 3)) i c
    for i in 0 1 2; do
        psql_ "${PRIMARIES[$i]}" sgbench_rec -c "TRUNCATE records" -v keys="$per_shard" -f "$REPO/scripts/bench/write-prefill.sql" >/dev/null
    done
    read -r -a c <<<"$(split3 "$USERS")"
    # Commits wait on fsync, whose speed drifts by 2x within minutes on a shared VM:
    # gateway and pgbench take turns, and W divides the sums.
    for ((round = 1; round <= ROUNDS; round++)); do
        settle write
        x0=$(xacts "${PRIMARIES[@]}"); s0=$(served primary); local t0=$EPOCHREALTIME
        cpu_begin
        goose "write-$round" --scenario write --keys "$KEYS" -u "$USERS" -r "$USERS" -t "${DURATION}s"
        cpu_end "write_gw_$round"
        x1=$(xacts "${PRIMARIES[@]}"); s1=$(served primary)
        goose_check "write-$round"
        gw=$(goose_rate "write-$round" 'POST write')
        gws+=("$gw")
        # The same writes from wrk, whose own CPU per request is a fraction of goose's.
        settle write
        cpu_begin
        KEYS=$KEYS wrk_run "write-wrk-$round" -t1 -c"$USERS" -d"${DURATION}s" --latency -s "$REPO/scripts/wrk-write.lua" "$URL"
        cpu_end "write_wrk_$round"
        wrk_check "write-wrk-$round"
        wrks+=("$(wrk_rps "write-wrk-$round")")
        if ((round == 1)); then
            result write_gw_p50_ms "$(calc "$(goose_pct_us write-1 'POST write' 0.5) / 1000")"
            # PostgreSQL transactions per gateway write (minus the monitor's idle rate).
            result write_gw_pg_xacts_per_request "$(calc "(($x1 - $x0) - $idle * ($EPOCHREALTIME - $t0)) / ($s1 - $s0)" 1)"
        fi

        settle write
        cpu_begin
        PGB_PIDS=()
        for i in 0 1 2; do
            ((c[i] > 0)) || continue
            pgbench_bg "write-pgbench-$round-$i" "${PRIMARIES[$i]}" "${c[$i]}" -n -M prepared -T "$DURATION" \
                -D keys="$per_shard" -f "$REPO/scripts/bench/write.sql" sgbench_rec
            ((round == 1)) && cmd write-pgbench "pgbench -h $HOST -p ${PRIMARIES[$i]} -U postgres -c ${c[$i]} -j 1 -n -M prepared -T $DURATION -D keys=$per_shard -f scripts/bench/write.sql sgbench_rec"
        done
        pgbench_wait
        cpu_end "write_pg_$round"
        local f
        pg=0
        for i in 0 1 2; do
            ((c[i] > 0)) || continue
            f=$(pgbench_failed "write-pgbench-$round-$i"); [[ ${f:-0} == 0 ]] || result "write_pgbench_${round}_${i}_failed" "$f"
            pg=$(calc "$pg + $(pgbench_tps "write-pgbench-$round-$i")" 1)
        done
        pgs+=("$pg")
        result "W_round_$round" "$(ratio "$gw" "$pg") ($gw / $pg)"
        result "W_wrk_round_$round" "$(ratio "${wrks[-1]}" "$pg") (${wrks[-1]} / $pg)"
    done
    result write_gw "$(calc "($(IFS=+; echo "${gws[*]}")) / $ROUNDS" 1)"
    result write_pg "$(calc "($(IFS=+; echo "${pgs[*]}")) / $ROUNDS" 1)"
    result write_gw_cpu "$(r write_gw_1_cpu)"
    result write_pg_cpu "$(r write_pg_1_cpu)"
    result W_rounds "$(for ((round = 1; round <= ROUNDS; round++)); do printf '%s; ' "$(r "W_round_$round")"; done | sed 's/; $//')"
    result write_payload_bytes "gateway $(sql "${PRIMARIES[0]}" shardgate "SELECT avg(octet_length(data::text))::int FROM records WHERE table_name = 'users' AND id IN (SELECT 'rec_' || n FROM generate_series(0, $((KEYS - 1))) n)"), pgbench $(sql "${PRIMARIES[0]}" sgbench_rec "SELECT avg(octet_length(data::text))::int FROM records")"
    result W "$(ratio "$(r write_gw)" "$(r write_pg)")"
    result write_wrk "$(calc "($(IFS=+; echo "${wrks[*]}")) / $ROUNDS" 1)"
    result write_wrk_cpu "$(r write_wrk_1_cpu)"
    result W_wrk_rounds "$(for ((round = 1; round <= ROUNDS; round++)); do printf '%s; ' "$(r "W_wrk_round_$round")"; done | sed 's/; $//')"
    result W_wrk "$(ratio "$(r write_wrk)" "$(r write_pg)")"
}

# ---------------------------------------------------------------------------------------
# 2. Point reads on replicas: gateway vs pgbench -S
# ---------------------------------------------------------------------------------------
step_read() {
    say "2. replica point reads: loadtest read ($USERS users) vs pgbench -S on the replicas"
    settle read
    local x0 s0 x1 s1 idle t0
    x0=$(xacts "${REPLICAS[@]}"); sleep 2; x1=$(xacts "${REPLICAS[@]}"); idle=$(calc "($x1 - $x0) / 2")
    x0=$(xacts "${REPLICAS[@]}"); s0=$(served replica); t0=$EPOCHREALTIME
    cpu_begin
    goose read --scenario read --keys "$KEYS" -u "$USERS" -r "$USERS" -t "${DURATION}s"
    cpu_end read_gw
    x1=$(xacts "${REPLICAS[@]}"); s1=$(served replica)
    goose_check read
    result read_gw "$(goose_rate read 'GET read')"
    result read_gw_p50_ms "$(calc "$(goose_pct_us read 'GET read' 0.5) / 1000")"
    result read_gw_p99_ms "$(calc "$(goose_pct_us read 'GET read' 0.99) / 1000")"
    result read_gw_pg_xacts_per_request "$(calc "(($x1 - $x0) - $idle * ($EPOCHREALTIME - $t0)) / ($s1 - $s0)" 1)"
    # The same reads from wrk, whose own CPU per request is a fraction of goose's.
    settle read
    cpu_begin
    KEYS=$KEYS wrk_run read-wrk -t2 -c"$USERS" -d"${DURATION}s" --latency -s "$REPO/scripts/wrk-read.lua" "$URL"
    cpu_end read_wrk
    wrk_check read-wrk
    result read_wrk "$(wrk_rps read-wrk)"
    # Context: with 4x the users the gateway is no longer bound by each request's
    # latency; is it then bound by CPU?
    settle read
    cpu_begin
    goose read-x4 --scenario read --keys "$KEYS" -u $((USERS * 4)) -r $((USERS * 4)) -t "${DURATION}s"
    cpu_end read_gw_x4
    goose_check read-x4
    result read_gw_x4 "$(goose_rate read-x4 'GET read')"
    result read_gw_x4_p50_ms "$(calc "$(goose_pct_us read-x4 'GET read' 0.5) / 1000")"

    settle read
    local i c sum=0
    read -r -a c <<<"$(split3 "$USERS")"
    cpu_begin
    PGB_PIDS=()
    for i in 0 1 2; do
        ((c[i] > 0)) || continue
        pgbench_bg "read-pgbench-$i" "${REPLICAS[$i]}" "${c[$i]}" -S -n -M prepared -T "$DURATION" sgbench_pgb
        cmd read-pgbench "pgbench -h $HOST -p ${REPLICAS[$i]} -U postgres -c ${c[$i]} -j 1 -S -n -M prepared -T $DURATION sgbench_pgb"
    done
    pgbench_wait
    cpu_end read_pg
    for i in 0 1 2; do
        ((c[i] > 0)) || continue
        sum=$(calc "$sum + $(pgbench_tps "read-pgbench-$i")" 1)
    done
    result read_pg "$sum"
    result R "$(ratio "$(r read_gw)" "$(r read_pg)")"
    result R_wrk "$(ratio "$(r read_wrk)" "$(r read_pg)")"
}

# ---------------------------------------------------------------------------------------
# 3. Bulk writes: gateway bulk-write vs COPY of as many rows into the same shards
# ---------------------------------------------------------------------------------------
step_bulk() {
    say "3. bulk writes: loadtest bulk-write (batch $BATCH, $BULK_USERS users) vs COPY"
    settle bulk
    cpu_begin
    goose bulk --scenario bulk-write --keys "$KEYS" --batch "$BATCH" -u "$BULK_USERS" -r "$BULK_USERS" -t "${DURATION}s"
    cpu_end bulk_gw
    goose_check bulk
    local reqs rows
    reqs=$(goose_rate bulk 'POST bulk-write')
    result bulk_gw_requests "$reqs"
    result bulk_gw "$(calc "$reqs * $BATCH" 0)"
    result bulk_gw_p50_ms "$(calc "$(goose_pct_us bulk 'POST bulk-write' 0.5) / 1000" 1)"
    # As many rows as the gateway wrote in the run, a third per shard, with the payloads
    # it just wrote (the orders on each shard, repeated under new ids), into an empty
    # copy of the records table on the same primaries, all three at once.
    rows=$(calc "$(goose_count bulk 'POST bulk-write') * $BATCH" 0)
    local per=$(((rows + 2) / 3)) i port
    for i in 0 1 2; do
        port=${PRIMARIES[$i]}
        sql "$port" shardgate "COPY (SELECT table_name, shard_key, id, slot, data FROM records WHERE table_name = 'orders') TO STDOUT" >"$OUT/copy-src-$i.tsv"
        awk -F'\t' -v OFS='\t' -v want="$per" '
            { row[NR] = $0 }
            END { k = 0; while (k < want) for (i = 1; i <= NR && k < want; i++) {
                      split(row[i], f, "\t"); print f[1], f[2], "c" int(k / NR) "_" f[3], f[4], f[5]; k++ } }' \
            "$OUT/copy-src-$i.tsv" >"$OUT/copy-$i.tsv"
        sql "$port" sgbench_rec "TRUNCATE records" >/dev/null
    done
    result bulk_payload_bytes "$(sql "${PRIMARIES[0]}" shardgate "SELECT avg(octet_length(data::text))::int FROM records WHERE table_name = 'orders'")"
    settle bulk
    cpu_begin
    local t0 t1 pids=()
    t0=$EPOCHREALTIME
    for i in 0 1 2; do
        CLIENT_CPU_FILES+=("$OUT/copy-$i.time")
        /usr/bin/time -f '%e %U %S' -o "$OUT/copy-$i.time" \
            "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "${PRIMARIES[$i]}" -U postgres -d sgbench_rec \
            -c "COPY records (table_name, shard_key, id, slot, data) FROM STDIN" <"$OUT/copy-$i.tsv" >"$OUT/copy-$i.log" 2>&1 &
        pids+=($!)
        cmd bulk-copy "psql -h $HOST -p ${PRIMARIES[$i]} -U postgres -d sgbench_rec -c 'COPY records (table_name, shard_key, id, slot, data) FROM STDIN' < copy-$i.tsv   # $per rows, the three at once"
    done
    local p
    for p in "${pids[@]}"; do wait "$p" || die "COPY failed (see $OUT/copy-*.log)"; done
    t1=$EPOCHREALTIME
    cpu_end bulk_copy
    rm -f "$OUT"/copy-*.tsv   # ~100 MB of generated rows
    result bulk_copy_rows "$((per * 3))"
    result bulk_copy_secs "$(calc "$t1 - $t0")"
    result bulk_copy "$(calc "$per * 3 / ($t1 - $t0)" 0)"
    result B "$(ratio "$(r bulk_gw)" "$(r bulk_copy)")"
}

# ---------------------------------------------------------------------------------------
# 4. Latency the gateway adds at light load (1 user / 1 client)
# ---------------------------------------------------------------------------------------
step_latency() {
    say "4. light-load latency: loadtest read with 1 user vs the same SELECT with pgbench -c 1"
    settle latency
    goose latency --scenario read --keys "$KEYS" -u 1 -r 1 -t "${DURATION}s"
    goose_check latency
    result lat_gw_p50_us "$(goose_pct_us latency 'GET read' 0.5)"
    result lat_gw_server_p50_ms "$(server_p50_ms latency /api/read)"
    result lat_gw_rate "$(goose_rate latency 'GET read')"
    # The gateway's query (store::find), straight to shard 0's replica, over 64 keys of
    # the loadtest key space that live on shard 0 (so every read finds its row).
    local ns i script=$OUT/direct-read.sql
    mapfile -t ns < <(sql "${REPLICAS[0]}" shardgate "
        SELECT n FROM (SELECT CASE WHEN id ~ '^rec_[0-9]{1,9}\$' THEN substr(id, 5)::int END AS n, shard_key
                         FROM records WHERE table_name = 'users') AS u
         WHERE n < $KEYS AND shard_key = 'user_' || n ORDER BY n LIMIT 64")
    ((${#ns[@]} > 0)) || die "no loadtest users on shard 0's replica"
    {
        echo "-- generated by scripts/bench.sh: the gateway's point read (store::find), one of ${#ns[@]} keys on shard 0"
        echo "\\set i random(0, $((${#ns[@]} - 1)))"
        printf '\\set n CASE'
        for i in "${!ns[@]}"; do printf ' WHEN :i = %d THEN %d' "$i" "${ns[$i]}"; done
        printf ' END\n'
        echo "SELECT table_name, shard_key, id, slot, data, version, created_at, updated_at FROM records"
        echo " WHERE table_name = 'users' AND shard_key = 'user_' || :n AND id = 'rec_' || :n LIMIT 1;"
    } >"$script"
    cp "$script" "$OUT/direct-read.sql.txt"
    settle latency
    rm -f "$OUT"/direct-lat.*
    PGB_PIDS=()
    pgbench_bg latency-pgbench "${REPLICAS[0]}" 1 -n -M prepared -T "$DURATION" -f "$script" \
        -l --log-prefix="$OUT/direct-lat" shardgate
    pgbench_wait
    cmd latency-pgbench "pgbench -h $HOST -p ${REPLICAS[0]} -U postgres -c 1 -j 1 -n -M prepared -T $DURATION -f direct-read.sql -l shardgate   # p50 of the per-transaction log"
    result lat_pg_p50_us "$(cat "$OUT"/direct-lat.* | awk '{ print $3 }' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
    result lat_pg_rate "$(calc "$(pgbench_tps latency-pgbench)" 0)"
    result lat_added_ms "$(calc "($(r lat_gw_p50_us) - $(r lat_pg_p50_us)) / 1000" 3)"
    # The same gateway read from wrk, whose own per-request cost is lower than goose's.
    settle latency
    KEYS=$KEYS wrk_run latency-wrk -t1 -c1 -d"${DURATION}s" --latency -s "$REPO/scripts/wrk-read.lua" "$URL"
    wrk_check latency-wrk
    result lat_wrk_p50_us "$(wrk_p50_us latency-wrk)"
    result lat_added_wrk_ms "$(calc "($(r lat_wrk_p50_us) - $(r lat_pg_p50_us)) / 1000" 3)"
}

# ---------------------------------------------------------------------------------------
# 5. The load tools' own ceilings on GET /api/health/live (no database)
# ---------------------------------------------------------------------------------------
step_ceiling() {
    say "5. HTTP ceiling on /api/health/live: wrk vs goose ($USERS connections/users)"
    settle ceiling
    cpu_begin
    wrk_run ceiling-wrk -t2 -c"$USERS" -d"${DURATION}s" "$URL/api/health/live"
    cpu_end ceiling_wrk
    wrk_check ceiling-wrk
    result ceiling_wrk "$(wrk_rps ceiling-wrk)"
    settle ceiling
    cpu_begin
    goose ceiling-goose --scenario live -u "$USERS" -r "$USERS" -t "${DURATION}s"
    cpu_end ceiling_goose
    goose_check ceiling-goose
    result ceiling_goose "$(goose_rate ceiling-goose 'GET live')"
    # The loadtest's own CPU over its measured span (its summary's "load tester:" line).
    result ceiling_goose_self "$(sed -n 's/^load tester: //p' "$OUT/ceiling-goose.log" | head -1)"
    result goose_vs_wrk "$(ratio "$(r ceiling_goose)" "$(r ceiling_wrk)")"
}

# ---------------------------------------------------------------------------------------
# 7. Cache: cached vs uncached point reads, and cached reads vs the HTTP ceiling
# ---------------------------------------------------------------------------------------
step_cache() {
    say "7. cache: read-cached without and with [cache] enabled; wrk reads vs wrk /api/health/live"
    settle cache
    goose cache-off --scenario read-cached --keys "$KEYS" -u "$USERS" -r "$USERS" -t "${DURATION}s"
    goose_check cache-off
    result cache_off_goose "$(goose_rate cache-off 'GET read-cached')"
    settle cache
    cpu_begin
    KEYS=$KEYS wrk_run cache-off-wrk -t2 -c"$USERS" -d"${DURATION}s" -s "$REPO/scripts/wrk-read.lua" "$URL"
    cpu_end cache_off_wrk
    wrk_check cache-off-wrk
    result cache_off_wrk "$(wrk_rps cache-off-wrk)"

    start_gateway cache SHARDGATE__CACHE__ENABLED=true
    cmd cache-gateway "SHARDGATE__CACHE__ENABLED=true target/release/api-router --listen $HOST:$PORT"
    # Warm the cache (every key read at least once, most several times); not measured.
    KEYS=$KEYS wrk -t2 -c"$USERS" -d5s -s "$REPO/scripts/wrk-read.lua" "$URL" >"$OUT/cache-warm.log" 2>&1
    settle cache
    goose cache-on --scenario read-cached --keys "$KEYS" -u "$USERS" -r "$USERS" -t "${DURATION}s"
    goose_check cache-on
    result cache_on_goose "$(goose_rate cache-on 'GET read-cached')"
    result cache_on_goose_hits "$(grep -o 'x-cache hit [0-9]* ([0-9.]*%)' "$OUT/cache-on.log" | head -1)"
    settle cache
    cpu_begin
    KEYS=$KEYS wrk_run cache-on-wrk -t2 -c"$USERS" -d"${DURATION}s" -s "$REPO/scripts/wrk-read.lua" "$URL"
    cpu_end cache_on_wrk
    wrk_check cache-on-wrk
    result cache_on_wrk "$(wrk_rps cache-on-wrk)"
    settle cache
    cpu_begin
    wrk_run cache-ceiling-wrk -t2 -c"$USERS" -d"${DURATION}s" "$URL/api/health/live"
    cpu_end cache_ceiling_wrk
    wrk_check cache-ceiling-wrk
    result cache_ceiling_wrk "$(wrk_rps cache-ceiling-wrk)"
    # Context: the same two with 4x the connections.
    settle cache
    cpu_begin
    KEYS=$KEYS wrk_run cache-on-wrk-x4 -t2 -c$((USERS * 4)) -d"${DURATION}s" -s "$REPO/scripts/wrk-read.lua" "$URL"
    cpu_end cache_on_wrk_x4
    wrk_check cache-on-wrk-x4
    result cache_on_wrk_x4 "$(wrk_rps cache-on-wrk-x4)"
    settle cache
    wrk_run cache-ceiling-wrk-x4 -t2 -c$((USERS * 4)) -d"${DURATION}s" "$URL/api/health/live"
    wrk_check cache-ceiling-wrk-x4
    result cache_ceiling_wrk_x4 "$(wrk_rps cache-ceiling-wrk-x4)"
    result C_x4 "$(ratio "$(r cache_on_wrk_x4)" "$(r cache_ceiling_wrk_x4)")"
    result cache_speedup_wrk "$(ratio "$(r cache_on_wrk)" "$(r cache_off_wrk)")"
    result cache_speedup_goose "$(ratio "$(r cache_on_goose)" "$(r cache_off_goose)")"
    result C "$(ratio "$(r cache_on_wrk)" "$(r cache_ceiling_wrk)")"
    # The floor under a cached read: a bare Redis GET round trip of a record-sized value
    # from as many clients, no HTTP and no gateway (redis-benchmark, not pipelined).
    settle cache
    cmd redis-get "redis-benchmark -p $REDIS_PORT -c $USERS -n $REDIS_N -t set,get -d 400 --csv"
    cpu_begin
    redis_bench_user
    timed redis-get redis-benchmark "${REDIS_BENCH_AUTH[@]}" -p "$REDIS_PORT" -c "$USERS" -n "$REDIS_N" -t set,get -d 400 --csv \
        >"$OUT/redis-get.log" 2>&1
    redis_bench_user_gone
    cpu_end redis_get
    result redis_get "$(awk -F'"' '$2 == "GET" { printf "%.0f\n", $4 }' "$OUT/redis-get.log")"
    # The best batching the gateway can do: each worker thread (2 by default here) has one
    # connection and its share of the USERS connections' lookups in flight.
    local depth=$(((USERS + 1) / 2))
    settle cache
    cmd redis-get-pipelined "redis-benchmark -p $REDIS_PORT -c 2 -P $depth -n $REDIS_N -t set,get -d 400 --csv"
    cpu_begin
    redis_bench_user
    timed redis-get-pipelined redis-benchmark "${REDIS_BENCH_AUTH[@]}" -p "$REDIS_PORT" -c 2 -P "$depth" -n "$REDIS_N" -t set,get -d 400 --csv \
        >"$OUT/redis-get-pipelined.log" 2>&1
    redis_bench_user_gone
    cpu_end redis_get_pipelined
    result redis_get_pipelined "$(awk -F'"' '$2 == "GET" { printf "%.0f\n", $4 }' "$OUT/redis-get-pipelined.log")"
    result redis_depth "$depth"
    # If everything but HTTP and the Redis round trips cost nothing, cached reads/s would
    # be 1 / (1/ceiling + 1/redis): C could reach at most redis / (ceiling + redis), with
    # redis the faster of the two ways of asking.
    local best
    best=$(awk -v a="$(r redis_get)" -v b="$(r redis_get_pipelined)" 'BEGIN { print (b + 0 > a + 0) ? b : a }')
    result C_bound "$(ratio "$best" "$(calc "$(r cache_ceiling_wrk) + $best" 0)")"
    start_gateway plain
}

# ---------------------------------------------------------------------------------------
# 8a. Gateway memory over a one-minute mixed run
# ---------------------------------------------------------------------------------------
step_rss() {
    say "8. gateway RSS every 5 s during a ${RSS_SECS} s mixed run ($USERS users)"
    settle rss
    local samples=() t pid start
    result rss_idle_mib "$(calc "$(rss_kib) / 1024" 1)"
    cmd rss "target/release/loadtest -H $URL --scenario mixed --keys $KEYS -u $USERS -r $USERS -t ${RSS_SECS}s   # VmRSS of the gateway from /proc every 5 s"
    "$BIN/loadtest" -H "$URL" --scenario mixed --keys "$KEYS" -u "$USERS" -r "$USERS" -t "${RSS_SECS}s" \
        --report-file "$OUT/rss.json" >"$OUT/rss.log" 2>&1 &
    pid=$!
    BG_PIDS+=("$pid")
    start=$SECONDS
    # Goose starts the users within a second of its start; sample from there.
    sleep 1.5
    for ((t = 0; t <= RSS_SECS; t += 5)); do
        samples+=("$(rss_kib)")
        ((t + 5 <= RSS_SECS)) && sleep 5
    done
    wait "$pid" || die "the mixed run failed (see $OUT/rss.log)"
    goose_check rss
    local first=${samples[0]} last=${samples[-1]} max=0 s
    for s in "${samples[@]}"; do ((s > max)) && max=$s; done
    result rss_samples_mib "$(for s in "${samples[@]}"; do calc "$s / 1024" 1; printf ' '; done)"
    result rss_first_mib "$(calc "$first / 1024" 1)"
    result rss_last_mib "$(calc "$last / 1024" 1)"
    result rss_growth_pct "$(calc "($last - $first) * 100 / $first" 1)"
    # The second half of the run: after the pools and the analytics' first slots filled.
    result rss_growth_last_half_mib "$(calc "($last - ${samples[$((${#samples[@]} / 2))]}) / 1024" 1)"
    result rss_rate "$(goose_rate rss 'POST write') writes/s + $(goose_rate rss 'GET read') reads/s"
}

# ---------------------------------------------------------------------------------------
# 6a. Read-your-writes vs eventual reads
# ---------------------------------------------------------------------------------------
step_ryw() {
    say "6. read-your-writes: loadtest ryw ($USERS users)"
    settle ryw
    local s0 p0 s1 p1
    s0=$(served replica); p0=$(served primary)
    cpu_begin
    goose ryw --scenario ryw --keys "$KEYS" -u "$USERS" -r "$USERS" -t "${DURATION}s"
    cpu_end ryw
    s1=$(served replica); p1=$(served primary)
    goose_check ryw
    result ryw_pairs "$(goose_rate ryw 'GET ryw: read')"
    result ryw_read_p50_ms "$(calc "$(goose_pct_us ryw 'GET ryw: read' 0.5) / 1000")"
    result ryw_read_p99_ms "$(calc "$(goose_pct_us ryw 'GET ryw: read' 0.99) / 1000")"
    result ryw_write_p50_ms "$(calc "$(goose_pct_us ryw 'POST ryw: write' 0.5) / 1000")"
    result ryw_misses "$(grep -o '[0-9]* write-then-read pairs, [0-9]* misses ([0-9.]*%)' "$OUT/ryw.log" | head -1)"
    # Primaries served every write plus the reads that fell back to them.
    local reads=$((s1 - s0 + (p1 - p0) - $(goose_count ryw 'POST ryw: write')))
    ((reads > 0)) && result ryw_replica_share_pct "$(calc "($s1 - $s0) * 100 / $reads" 1)"
}

# ---------------------------------------------------------------------------------------
# 8b. Analytics record path (criterion)
# ---------------------------------------------------------------------------------------
step_analytics() {
    say "8. cargo bench -p analytics --bench record"
    wait_quiet analytics
    cmd analytics "cargo bench -p analytics --bench record"
    cargo bench -p analytics --bench record >"$OUT/analytics.log" 2>&1 || { tail -20 "$OUT/analytics.log" >&2; die "cargo bench failed"; }
    # "record/1_thread   time:   [41.2 ns 41.5 ns 41.9 ns]"; a long name sits on the
    # line before its "time:" line. The middle figure is criterion's estimate.
    awk '
        /time:/ { name = ($1 == "time:") ? prev : $1; line = $0
                  sub(/.*\[/, "", line); sub(/\].*/, "", line); split(line, f, " ")
                  printf "%s=%s %s\n", name, f[3], f[4] }
        { prev = $1 }' "$OUT/analytics.log" >"$OUT/analytics.txt"
    local line
    while IFS= read -r line; do result "analytics_${line%%=*}" "${line#*=}"; done <"$OUT/analytics.txt"
}

# ---------------------------------------------------------------------------------------
# 6b. One vs two replicas per shard (last: changes the topology, then restores it)
# ---------------------------------------------------------------------------------------
replica1_dir() { echo "$REPO/.local/cluster/shard$1-replica1"; }

restore_topology() {
    stop_gateway
    env -u SHARDS -u REPLICAS "$REPO/setup.sh" up >>"$OUT/setup.log" 2>&1 || say "  WARNING: ./setup.sh up failed (see $OUT/setup.log)"
    local i dir
    for i in "${CREATED_REPLICA1[@]}"; do
        dir=$(replica1_dir "$i")
        # Made by this run and stopped by `up` above: remove it again.
        if [[ -d $dir ]] && ! "$PG_BIN/pg_isready" -q -h "$HOST" -p "${REPLICAS1[$i]}" -t 2; then
            rm -rf --one-file-system "$(readlink -f "$dir")"
        fi
    done
    CREATED_REPLICA1=()
    TOPOLOGY_CHANGED=0
    "$REPO/setup.sh" status >"$OUT/status-after.txt" 2>&1 || true
}

step_replicas() {
    say "6. replicas: loadtest read ($USERS users) with 1, then 2 replicas per shard"
    settle replicas
    cpu_begin
    goose replicas-1 --scenario read --keys "$KEYS" -u "$USERS" -r "$USERS" -t "${DURATION}s"
    cpu_end replicas1
    goose_check replicas-1
    result replicas1_gw "$(goose_rate replicas-1 'GET read')"

    stop_gateway
    local i
    for i in 0 1 2; do [[ -e $(replica1_dir "$i") ]] || CREATED_REPLICA1+=("$i"); done
    TOPOLOGY_CHANGED=1
    say "SHARDS=3 REPLICAS=2 ./setup.sh up (clones a second replica per shard)"
    cmd replicas-up "SHARDS=3 REPLICAS=2 ./setup.sh up; target/release/api-router --listen $HOST:$PORT --config .local/shardgate.toml"
    local t0=$SECONDS
    SHARDS=3 REPLICAS=2 "$REPO/setup.sh" up >>"$OUT/setup.log" 2>&1 || { tail -20 "$OUT/setup.log" >&2; die "SHARDS=3 REPLICAS=2 ./setup.sh up failed"; }
    result replicas_setup_secs "$((SECONDS - t0))"
    GW_CONFIG_ARGS=(--config "$REPO/.local/shardgate.toml")
    EXTRA_PORTS=("${REPLICAS1[@]}")
    start_gateway replicas2
    settle replicas
    local s0
    s0=$(curl -fsS "$URL/api/shards" | jq -c '[.. | objects | select(has("served")) | select(.role == "replica") | .served]')
    cpu_begin
    goose replicas-2 --scenario read --keys "$KEYS" -u "$USERS" -r "$USERS" -t "${DURATION}s"
    cpu_end replicas2
    goose_check replicas-2
    result replicas2_gw "$(goose_rate replicas-2 'GET read')"
    result replicas2_served "$(curl -fsS "$URL/api/shards" | jq -r --argjson s0 "$s0" '
        [.. | objects | select(has("served")) | select(.role == "replica")] as $now
      | [range(0; $now | length) | "\($now[.].server | sub(".*:"; "")) \($now[.].served - $s0[.])"] | join(", ")')"
    result replicas_ratio "$(ratio "$(r replicas2_gw)" "$(r replicas1_gw)")"
    GW_CONFIG_ARGS=()
    EXTRA_PORTS=()
    say "restoring the default topology (./setup.sh up)"
    restore_topology
    local up
    up=$(grep -cE '^shard[0-2]-(primary|replica0) .* up ' "$OUT/status-after.txt" || true)
    result topology_after "$up of 6 default servers up$(grep -q 'replica1' "$OUT/status-after.txt" && echo ', replica1 data kept (it existed before this run)')"
    [[ $up == 6 ]] || say "  WARNING: ./setup.sh status does not show 3+3 servers up (see $OUT/status-after.txt)"
}

# ---------------------------------------------------------------------------------------
# Optional: perf profile of a read run (not part of the default steps)
# ---------------------------------------------------------------------------------------
step_profile() {
    [[ -n ${PROFILE_KIND:-} ]] && { profile_gateway "$PROFILE_KIND"; return; }
    local scenario=${PROFILE_SCENARIO:-read}
    say "profile: perf record -a -g for 10 s during a $scenario run ($USERS users)"
    settle profile
    "$BIN/loadtest" -H "$URL" --scenario "$scenario" --keys "$KEYS" -u "$USERS" -r "$USERS" -t 14s >"$OUT/profile-load.log" 2>&1 &
    local pid=$!
    BG_PIDS+=("$pid")
    sleep 3
    perf record -a -g -o "$OUT/perf.data" -- sleep 10 >"$OUT/perf-record.log" 2>&1
    wait "$pid" || true
    { perf report -i "$OUT/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null || true; } |
        awk '!/^#/ && NF && n++ < 12' >"$OUT/profile-by-process.txt"
    { perf report -i "$OUT/perf.data" --no-children --sort dso,sym --stdio -g none \
        --comms 'api-router,actix-rt|system,shardgate-db,tokio-rt-worker' 2>/dev/null || true; } |
        awk '!/^#/ && NF && n++ < 40' >"$OUT/profile-gateway.txt"
    { perf report -i "$OUT/perf.data" --no-children --comm postgres --sort sym --stdio -g none 2>/dev/null || true; } |
        awk '!/^#/ && NF && n++ < 25' >"$OUT/profile-postgres.txt"
    say "  CPU share by process (thread name):"; cat "$OUT/profile-by-process.txt" >&2
    say "  gateway threads by symbol: $OUT/profile-gateway.txt; PostgreSQL: $OUT/profile-postgres.txt; perf report -i $OUT/perf.data"
}
# PROFILE_KIND=read|cached|write|...: the gateway process alone (2 HTTP workers, as in
# the cpu step) during a wrk run of that kind, unwound with DWARF, then split by layer
# (scripts/profile-layers.py) in microseconds per request.
profile_gateway() {
    local kind=$1 secs=6 u0 u1 n
    local -a env=(SHARDGATE__SERVER__WORKERS=2)
    [[ $kind == cached ]] && env+=(SHARDGATE__CACHE__ENABLED=true)
    start_gateway "profile-$kind" "${env[@]}"
    KIND=$kind KEYS=$KEYS wrk -t1 -c8 -d3s -s "$REPO/scripts/wrk-cpu.lua" "$URL" >/dev/null 2>&1 || true
    settle "profile-$kind"
    say "profile: perf record -p (gateway) --call-graph dwarf for $secs s of a $kind run (wrk -t1 -c8)"
    KIND=$kind KEYS=$KEYS wrk -t1 -c8 -d$((secs + 3))s -s "$REPO/scripts/wrk-cpu.lua" "$URL" >"$OUT/profile-$kind-wrk.log" 2>&1 &
    local wrk_pid=$!
    BG_PIDS+=("$wrk_pid")
    sleep 1
    # The requests served while recording, from the gateway's own counter (its
    # analytics count every request; the second reading's own request is not in it yet,
    # the first one's is).
    local n0 n1
    n0=$(requests_served)
    u0=$(pid_ticks "$GW_PID")
    perf record -F 2000 --call-graph dwarf,16384 -p "$GW_PID" -o "$OUT/perf-$kind.data" -- sleep "$secs" >"$OUT/perf-record.log" 2>&1
    u1=$(pid_ticks "$GW_PID")
    n1=$(requests_served)
    wait "$wrk_pid" || true
    n=$((n1 - n0 - 1))
    result "profile_${kind}_requests" "$n"
    local us
    us=$(calc "($u1 - $u0) * 1000000 / $CLK_TCK / $n" 1)
    result "profile_${kind}_us" "$us (CPU per request while recording; perf adds some)"
    perf script -i "$OUT/perf-$kind.data" -F comm,ip,sym,dso 2>/dev/null >"$OUT/perf-$kind.script"
    python3 "$REPO/scripts/profile-layers.py" "$OUT/perf-$kind.script" "$us" | tee "$OUT/profile-$kind-layers.txt" >&2
    rm -f "$OUT/perf-$kind.script"
    flame_graph "$kind"
    cmd "profile-$kind" "PROFILE_KIND=$kind ./scripts/bench.sh profile   # perf record --call-graph dwarf -p <gateway>; scripts/profile-layers.py"
}

# ---------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------
# The report holds only what this run measured: a line tagged @STEP@ (or @A+B@: every
# one of them) stays, untagged, when those steps ran and goes otherwise; a table left
# with no row goes with its heading ("## Details" and its table).
report() {
    report_all | awk -v ran=" ${STEPS[*]} " '
        /^@[a-z+]+@/ {
            tag = substr($0, 2, index(substr($0, 2), "@") - 1)
            n = split(tag, need, "+"); keep = 1
            for (i = 1; i <= n; i++) if (index(ran, " " need[i] " ") == 0) keep = 0
            if (!keep) next
            $0 = substr($0, length(tag) + 3)
        }
        { print }' | awk '
        # Drop a table (header and separator) left with no row, and a "## Details"
        # heading whose table went.
        { buf[NR] = $0 }
        END {
            for (i = 1; i <= NR; i++) {
                if (buf[i] ~ /^\| / && buf[i + 1] ~ /^\|---/ && buf[i + 2] !~ /^\| /) {
                    if (buf[i - 2] == "## Details") { drop[i - 2] = 1; drop[i - 1] = 1 }
                    drop[i] = 1; drop[i + 1] = 1; i++
                    continue
                }
            }
            for (i = 1; i <= NR; i++) if (!drop[i]) print buf[i]
        }' | cat -s
}

report_all() {
    local m
    m() { grep -m1 "^$1=" "$OUT/machine" | cut -d= -f2-; }
    cat <<EOF
## Summary

Measured $(m date) on commit \`$(m commit)\` ($(m nproc) × $(m cpu), $(m mem), Linux $(m kernel), PostgreSQL $(m postgres)).
Each ratio's two sides ran one right after the other in the same run of \`scripts/bench.sh\` (DURATION=${DURATION}s, USERS=$USERS).
$(grep -q '^gateway_bin=' "$OUT/results" && printf '\nGateway binary: `%s` (GATEWAY_BIN), not this checkout’s build.\n' "$(r gateway_bin)" || true)

| metric | value | target | met? |
|---|---|---|---|
@write@| W: gateway single writes/s ÷ pgbench upsert TPS ($USERS clients; mean of $ROUNDS alternating rounds: $(r W_rounds)) | $(r W) ($(r write_gw) / $(r write_pg)) | ≥ 0.8 | $(met "$(r W)" '>=' 0.8) |
@write@| the same, writes from wrk (rounds: $(r W_wrk_rounds)) | $(r W_wrk) ($(r write_wrk) / $(r write_pg)) | ≥ 0.8 | $(met "$(r W_wrk)" '>=' 0.8) |
@read@| R: gateway replica point reads/s ÷ \`pgbench -S\` TPS on the replicas | $(r R) ($(r read_gw) / $(r read_pg)) | ≥ 0.5 | $(met "$(r R)" '>=' 0.5) |
@read@| the same, reads from wrk | $(r R_wrk) ($(r read_wrk) / $(r read_pg)) | ≥ 0.5 | $(met "$(r R_wrk)" '>=' 0.5) |
@bulk@| B: bulk-write rows/s ÷ COPY rows/s (same shards) | $(r B) ($(r bulk_gw) / $(r bulk_copy)) | ≥ 0.5 | $(met "$(r B)" '>=' 0.5) |
@latency@| gateway-added p50 latency, point read, 1 user (goose) | $(r lat_added_ms) ms ($(ms "$(r lat_gw_p50_us)") − $(ms "$(r lat_pg_p50_us)")) | ≤ 0.1 ms | $(met "$(r lat_added_ms)" '<=' 0.1) |
@latency@| the same, measured with wrk -c1 | $(r lat_added_wrk_ms) ms ($(ms "$(r lat_wrk_p50_us)") − $(ms "$(r lat_pg_p50_us)")) | ≤ 0.1 ms | $(met "$(r lat_added_wrk_ms)" '<=' 0.1) |
@cache@| C: cached point reads/s ÷ HTTP ceiling (wrk, same server) | $(r C) ($(r cache_on_wrk) / $(r cache_ceiling_wrk)) | ≥ 0.7 | $(met "$(r C)" '>=' 0.7) |
@ceiling+read@| R if the gateway's own work were free: ceiling ÷ (ceiling + pgbench -S), CPU-additive | $(ratio "$(r ceiling_wrk)" "$(calc "$(r ceiling_wrk) + $(r read_pg)" 0)") ($(r ceiling_wrk) req/s HTTP, $(r read_pg) TPS) | (bound) | |
@cache@| C if the gateway's own work were free: Redis GET ÷ (ceiling + Redis GET) | $(r C_bound) (redis-benchmark GET/s: $(r redis_get) from $USERS clients, $(r redis_get_pipelined) from 2 clients $(r redis_depth) deep) | (bound) | |
@analytics@| analytics record path, 1 thread / 2 threads | $(r analytics_record/1_thread) / $(r analytics_record/2_threads) | ≪ 1 µs | $(awk -v a="$(r analytics_record/1_thread)" 'BEGIN { split(a, f, " "); print (f[2] == "ns" && f[1] < 1000) ? "yes" : (a == "n/a" ? "n/a" : "**no**") }') |
@rss@| gateway RSS over a ${RSS_SECS} s mixed run (first → last sample; growth in the second half) | $(r rss_first_mib) → $(r rss_last_mib) MiB ($(r rss_growth_pct) %; $(r rss_growth_last_half_mib) MiB) | flat: < 1 MiB in the second half | $(met "$(r rss_growth_last_half_mib)" '<' 1) |
@ceiling@| goose ceiling ÷ wrk ceiling on /api/health/live | $(r goose_vs_wrk) ($(r ceiling_goose) / $(r ceiling_wrk); loadtest itself: $(r ceiling_goose_self)) | (context) | |
@replicas@| read throughput, 2 replicas ÷ 1 replica per shard | $(r replicas_ratio) ($(r replicas2_gw) / $(r replicas1_gw)) | (context) | |
@cache@| cache speed-up, cached ÷ uncached point reads (wrk / goose) | $(r cache_speedup_wrk) / $(r cache_speedup_goose) | (context) | |
@ryw@| read-your-writes (ryw) | $(r ryw_misses) | 0 misses | $([[ $(r ryw_misses) == *" 0 misses"* ]] && echo yes || echo "**no**") |

## Details

| measurement | gateway | baseline | CPU during the gateway run / the baseline run |
|---|---|---|---|
@write@| single writes (1) | goose $(r write_gw), wrk $(r write_wrk) writes/s; goose p50 $(r write_gw_p50_ms) ms, $(r write_gw_pg_xacts_per_request) PostgreSQL transactions per write | $(r write_pg) TPS (pgbench, same upsert, $(split3 "$USERS" | tr ' ' '/') clients) | goose $(r write_gw_cpu); wrk $(r write_wrk_cpu) / $(r write_pg_cpu) |
@read@| replica point reads (2) | goose $(r read_gw), wrk $(r read_wrk) reads/s; goose p50 $(r read_gw_p50_ms) ms, p99 $(r read_gw_p99_ms) ms, $(r read_gw_pg_xacts_per_request) PostgreSQL transactions per read | $(r read_pg) TPS (pgbench -S -M prepared) | goose $(r read_gw_cpu); wrk $(r read_wrk_cpu) / $(r read_pg_cpu) |
@read@| the same reads, $((USERS * 4)) users (context) | $(r read_gw_x4) reads/s, p50 $(r read_gw_x4_p50_ms) ms | | $(r read_gw_x4_cpu) |
@bulk@| bulk writes (3) | $(r bulk_gw) rows/s ($(r bulk_gw_requests) requests/s × $BATCH, p50 $(r bulk_gw_p50_ms) ms) | $(r bulk_copy) rows/s ($(r bulk_copy_rows) rows in $(r bulk_copy_secs) s) | $(r bulk_gw_cpu) / $(r bulk_copy_cpu) |
@latency@| light-load read latency (4) | p50 $(r lat_gw_p50_us) µs (goose, $(r lat_gw_rate) reads/s), $(r lat_wrk_p50_us) µs (wrk -c1); gateway handler p50 $(r lat_gw_server_p50_ms) ms | p50 $(r lat_pg_p50_us) µs (pgbench -c 1, $(r lat_pg_rate) TPS) | |
@ceiling@| HTTP ceiling, /api/health/live (5) | goose $(r ceiling_goose) req/s | wrk $(r ceiling_wrk) req/s | $(r ceiling_goose_cpu) / $(r ceiling_wrk_cpu) |
@replicas@| replicas (6) | 2 per shard: $(r replicas2_gw) reads/s (served per replica port: $(r replicas2_served)) | 1 per shard: $(r replicas1_gw) reads/s | 2 replicas $(r replicas2_cpu) / 1 replica $(r replicas1_cpu) |
@ryw@| read-your-writes (6) | $(r ryw_pairs) write+read pairs/s; read p50 $(r ryw_read_p50_ms) ms, p99 $(r ryw_read_p99_ms) ms; $(r ryw_replica_share_pct) % of the reads served by a replica | eventual read (2): p50 $(r read_gw_p50_ms) ms, p99 $(r read_gw_p99_ms) ms | $(r ryw_cpu) |
@cache@| cache (7) | cached: wrk $(r cache_on_wrk), goose $(r cache_on_goose) reads/s ($(r cache_on_goose_hits)) | uncached: wrk $(r cache_off_wrk), goose $(r cache_off_goose) reads/s; ceiling wrk $(r cache_ceiling_wrk) req/s | cached $(r cache_on_wrk_cpu) / uncached $(r cache_off_wrk_cpu) |
@cache@| bare Redis GET round trips (7) | $(r redis_get) GET/s (redis-benchmark, $USERS clients, 400-byte values, not pipelined); $(r redis_get_pipelined) GET/s (2 clients, $(r redis_depth) deep) | | $(r redis_get_cpu) / $(r redis_get_pipelined_cpu) |
@cache@| cache at $((USERS * 4)) connections (context) | cached: wrk $(r cache_on_wrk_x4) reads/s = $(r C_x4) of the ceiling | ceiling wrk $(r cache_ceiling_wrk_x4) req/s | cached $(r cache_on_wrk_x4_cpu) |
@rss@| gateway RSS (8) | MiB every 5 s: $(r rss_samples_mib)(idle before the run: $(r rss_idle_mib) MiB) | under $(r rss_rate) | |

@write@Payload sizes (bytes of JSON): single writes $(r write_payload_bytes); bulk orders $(r bulk_payload_bytes).
EOF
    if grep -q '^analytics_' "$OUT/results"; then
        printf '\nAnalytics (criterion median): %s\n' "$(grep '^analytics_' "$OUT/results" | sed 's/^analytics_//; s/=/ /' | paste -sd ';' | sed 's/;/; /g')"
    fi
    if grep -qE '_(warning|failed_requests|non_2xx|failed)=' "$OUT/results"; then
        printf '\nWarnings:\n'
        grep -E '_(warning|failed_requests|non_2xx|failed)=' "$OUT/results" | sed 's/^/- /'
    fi
    printf '\n## Commands\n\n```sh\n'
    awk -F'\t' '{ printf "# %s\n%s\n", $1, $2 }' "$OUT/commands"
    printf '```\n\nMachine: %s, %s cores, %s, Linux %s, %s; PostgreSQL %s (%s); rustc %s, goose %s, wrk %s.\n' \
        "$(m cpu)" "$(m nproc)" "$(m mem)" "$(m kernel)" "$(m os)" "$(m postgres)" "$(m pg_settings)" "$(m rustc)" "$(m goose)" "$(m wrk)"
}

# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------
# CPU per request: the gateway's utime+stime (from /proc) around a bounded wrk run of one
# request kind, divided by the requests wrk completed. Steadier than throughput on a
# 2-core machine, where the gateway shares the cores with PostgreSQL and the load.
# ---------------------------------------------------------------------------------------
CPU_KINDS=(noop read list fanout write keyed bulk1)
CPU_SECS=${CPU_SECS:-8}
pid_ctxt() { awk '/ctxt_switches/ { s += $2 } END { print s + 0 }' /proc/"$1"/task/*/status 2>/dev/null || echo 0; }
pid_user_sys() { awk '{ print $14, $15 }' "/proc/$1/stat" 2>/dev/null || echo 0 0; }
cpu_run() {   # KIND: one wrk run against the running gateway
    local kind=$1 u0 s0 u1 s1 c0 c1 n
    settle "cpu-$kind"
    read -r u0 s0 <<<"$(pid_user_sys "$GW_PID")"
    c0=$(pid_ctxt "$GW_PID")
    cmd "cpu-$kind" "KIND=$kind KEYS=$KEYS wrk -t1 -c8 -d${CPU_SECS}s -s scripts/wrk-cpu.lua $URL"
    KIND=$kind KEYS=$KEYS timed "cpu-$kind" wrk -t1 -c8 -d"${CPU_SECS}s" -s "$REPO/scripts/wrk-cpu.lua" "$URL" \
        >"$OUT/cpu-$kind.log" 2>&1 || { cat "$OUT/cpu-$kind.log" >&2; die "wrk cpu-$kind failed"; }
    read -r u1 s1 <<<"$(pid_user_sys "$GW_PID")"
    c1=$(pid_ctxt "$GW_PID")
    n=$(awk '/requests in/ { print $1; exit }' "$OUT/cpu-$kind.log")
    result "cpu_${kind}_requests" "$n"
    result "cpu_${kind}_rps" "$(wrk_rps "cpu-$kind")"
    result "cpu_${kind}_errors" "$(wrk_errors "cpu-$kind")"
    result "cpu_${kind}_us" "$(calc "($u1 + $s1 - $u0 - $s0) * 1000000 / $CLK_TCK / $n" 1)"
    result "cpu_${kind}_user_us" "$(calc "($u1 - $u0) * 1000000 / $CLK_TCK / $n" 1)"
    result "cpu_${kind}_sys_us" "$(calc "($s1 - $s0) * 1000000 / $CLK_TCK / $n" 1)"
    result "cpu_${kind}_ctxt" "$(calc "($c1 - $c0) / $n" 2)"
}
# The floor under each ratio: what a bare C client spends on the same round trip, on
# the same servers, from the same number of connections. A gateway request is an HTTP
# exchange (the no-op) plus that round trip, so no-op + floor is the least it can cost.
#   FLOOR pgbench NAME PORTS SCRIPT DB KEYS: pgbench processes' CPU per transaction
cpu_floor_pgbench() {
    local name=$1 ports=$2 script=$3 db=$4 keys=$5 i p n=0 ticks=0 f
    local -a port_list c
    read -r -a port_list <<<"$ports"
    read -r -a c <<<"$(split3 8)"
    settle "cpu-$name"
    PGB_PIDS=()
    for i in 0 1 2; do
        p=${port_list[$i]}
        pgbench_bg "cpu-$name-$i" "$p" "${c[$i]}" -n -M prepared -T "$CPU_SECS" -D keys="$keys" -f "$REPO/$script" "$db"
        cmd "cpu-$name" "pgbench -h $HOST -p $p -U postgres -c ${c[$i]} -j 1 -n -M prepared -T $CPU_SECS -D keys=$keys -f $script $db"
    done
    pgbench_wait
    for i in 0 1 2; do
        f=$OUT/cpu-$name-$i
        n=$((n + $(awk '/number of transactions actually processed/ { split($NF, a, "/"); print a[1]; exit }' "$f.log")))
        ticks=$(calc "$ticks + $(awk '{ print $2 + $3 }' "$f.time")" 3)
    done
    result "cpu_${name}_us" "$(calc "$ticks * 1000000 / $n" 1)"
    result "cpu_${name}_rps" "$(calc "$n / $CPU_SECS" 0)"
}
cpu_floor_redis() {
    local n=$((CPU_SECS * 20000))
    settle cpu-floor_cached
    cmd cpu-floor_cached "redis-benchmark -p $REDIS_PORT -c 8 -n $n -t get -d 400 --threads 1 --csv"
    redis_bench_user
    /usr/bin/time -f '%e %U %S' -o "$OUT/cpu-floor_cached.time" \
        redis-benchmark "${REDIS_BENCH_AUTH[@]}" -p "$REDIS_PORT" -c 8 -n "$n" -t get -d 400 --threads 1 --csv \
        >"$OUT/cpu-floor_cached.log" 2>&1 || { redis_bench_user_gone; die "redis-benchmark failed (see $OUT/cpu-floor_cached.log)"; }
    redis_bench_user_gone
    result cpu_floor_cached_us "$(calc "$(awk '{ print $2 + $3 }' "$OUT/cpu-floor_cached.time") * 1000000 / $n" 1)"
    result cpu_floor_cached_rps "$(awk -F'"' '/GET/ { printf "%.0f", $4; exit }' "$OUT/cpu-floor_cached.log")"
}
step_cpu() {
    say "cpu: gateway CPU per request, wrk -t1 -c8 -d${CPU_SECS}s per kind, 2 HTTP workers"
    start_gateway cpu SHARDGATE__SERVER__WORKERS=2
    local k
    for k in "${CPU_KINDS[@]}"; do cpu_run "$k"; done
    start_gateway cpu-cache SHARDGATE__SERVER__WORKERS=2 SHARDGATE__CACHE__ENABLED=true
    # Fill the cache first: one pass over the key space.
    KIND=cached KEYS=$KEYS wrk -t1 -c8 -d3s -s "$REPO/scripts/wrk-cpu.lua" "$URL" >/dev/null 2>&1 || true
    cpu_run cached
    start_gateway plain
    say "cpu: the floors: a bare client's CPU for the same round trip (pgbench, redis-benchmark)"
    cpu_floor_pgbench floor_read "${REPLICAS[*]}" scripts/bench/read.sql shardgate "$KEYS"
    local per_shard=$(((KEYS + 2) / 3)) i
    for i in 0 1 2; do
        psql_ "${PRIMARIES[$i]}" sgbench_rec -c "TRUNCATE records" -v keys="$per_shard" -f "$REPO/scripts/bench/write-prefill.sql" >/dev/null
    done
    cpu_floor_pgbench floor_write "${PRIMARIES[*]}" scripts/bench/write-token.sql sgbench_rec "$per_shard"
    cpu_floor_redis
    local noop
    noop=$(r cpu_noop_us)
    for k in "${CPU_KINDS[@]}" cached; do
        result "cpu_${k}_x_noop" "$(ratio "$(r "cpu_${k}_us")" "$noop" 1)"
    done
    for k in read write cached; do
        result "cpu_floor_${k}_x_noop" "$(ratio "$(calc "$noop + $(r "cpu_floor_${k}_us")" 1)" "$noop" 2)"
    done
}
cpu_table() {
    echo "| request | gateway CPU per request | × no-op | user / system | context switches per request | requests/s | non-2xx |"
    echo "|---|---|---|---|---|---|---|"
    local k label
    for k in noop read list fanout write keyed bulk1 cached; do
        case $k in
            noop) label="GET /api/health/live (no-op)" ;;
            read) label="replica point read" ;;
            list) label="list of 10 (one key)" ;;
            fanout) label="fan-out list of 10 (3 shards)" ;;
            write) label="single write (upsert + token)" ;;
            keyed) label="single write with an Idempotency-Key" ;;
            bulk1) label="bulk write of one record" ;;
            cached) label="cached point read" ;;
        esac
        echo "| $label | $(r "cpu_${k}_us") µs | $(r "cpu_${k}_x_noop") | $(r "cpu_${k}_user_us") / $(r "cpu_${k}_sys_us") µs | $(r "cpu_${k}_ctxt") | $(r "cpu_${k}_rps") | $(r "cpu_${k}_errors") |"
    done
    echo
    echo "The floor: a bare client's CPU for the same round trip, same servers, 8 connections; a request cannot cost less than the no-op plus it."
    echo
    echo "| round trip | bare client | its rate | no-op + floor, × no-op | target |"
    echo "|---|---|---|---|---|"
    echo "| point query on the replicas (pgbench -M prepared, scripts/bench/read.sql) | $(r cpu_floor_read_us) µs | $(r cpu_floor_read_rps)/s | $(r cpu_floor_read_x_noop) | replica read ≤ 2.0 |"
    echo "| upsert + token statement, pipelined, on the primaries (scripts/bench/write-token.sql) | $(r cpu_floor_write_us) µs | $(r cpu_floor_write_rps)/s | $(r cpu_floor_write_x_noop) | single write ≤ 3.0 |"
    echo "| Redis GET of 400 bytes (redis-benchmark --threads 1) | $(r cpu_floor_cached_us) µs | $(r cpu_floor_cached_rps)/s | $(r cpu_floor_cached_x_noop) | cached read ≤ 1.5 |"
}

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
    say "shard-manager migrate"
    "$BIN/shard-manager" migrate >"$OUT/migrate.log" 2>&1 || { cat "$OUT/migrate.log" >&2; die "migrate failed"; }
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
