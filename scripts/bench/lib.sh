# scripts/bench/lib.sh: the one file of helpers every step uses, sourced by
# scripts/bench.sh first. Its settings (the environment it reads, ports, paths), small
# helpers (results, arithmetic, psql, the passwords setup.sh generated), scratch
# databases, the clean-up that always runs; then its parts, one idea each: sampling.sh
# (CPU sampling, a quiet machine), gateway.sh (the gateway bench.sh starts) and
# loadgen.sh (goose, pgbench, wrk).

# What the user set, before the defaults: steps with defaults of their own (KEYS=2000 for
# the wrk steps, say) take the user's value when there is one.
USER_KEYS=${KEYS:-}
USER_DURATION=${DURATION:-}
DURATION=${DURATION:-15}
USERS=${USERS:-8}
KEYS=${KEYS:-10000}
BATCH=${BATCH:-1000}
BULK_USERS=${BULK_USERS:-4}
RSS_SECS=${RSS_SECS:-60}
PORT=${PORT:-18080}
QUIET_WAIT=${QUIET_WAIT:-300}
KEEP_SCRATCH=${KEEP_SCRATCH:-0}
CHANGE_LOG=${CHANGE_LOG:-on}
# The change log's triggers on `records` (migration change_log).
CHANGE_LOG_TRIGGERS=(records_log_insert records_log_update records_log_delete)
CHANGE_LOG_OFF=0    # 1 once prepare() disabled them: cleanup() enables them again
REDIS_PORT=${REDIS_PORT:-26379}
ROUNDS=${ROUNDS:-2}
REDIS_N=${REDIS_N:-200000}
PREP=${PREP:-1}

HOST=127.0.0.1
URL="http://$HOST:$PORT"
PRIMARIES=(25432 25433 25434)
META_PORT=25430
REPLICAS=(25532 25533 25534)      # replica 0 of each shard
REPLICAS1=(25548 25549 25550)     # replica 1 of each shard (SHARDS=3 REPLICAS=2)
SCRATCH_DBS=(sgbench_pgb sgbench_rec)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
BIN=${BIN:-$TARGET/dist}   # what build() makes (--profile dist); BIN=path for another
GATEWAY_BIN=${GATEWAY_BIN:-$BIN/api-router}
SKIP_BUILD=${SKIP_BUILD:-0}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$REPO/.local/bench/$STAMP
CLK_TCK=$(getconf CLK_TCK)
# The default run, in order (replicas last: it changes the topology and restores it).
ALL_STEPS=(write read bulk latency ceiling cache rss ryw analytics cpu replicas)
# Steps run only when named: on the gateway bench.sh starts, then on their own
# databases or builds, then measurements written in Rust (cargo bench, tests).
MORE_STEPS=(profile scenarios read-batching write-batching ratios changes connections cluster-analytics builds traces
    lists export queries idle moves planned import txn limits keys timers snapshot outage replication
    async-loss netcut backup one-db)

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
# A line of a step's own table: on standard output and in $OUT/STEP.txt (the report).
line() { printf '%s\n' "$*" | tee -a "$OUT/$STEP.txt"; }

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

# scratch_db NAME: a fresh database NAME, owned by the gateway's role, on every primary
# and the metadata server; dropped at the end unless KEEP_SCRATCH=1.
SCRATCH_OWN=()
scratch_db() {
    local port
    for port in "${PRIMARIES[@]}" "$META_PORT"; do
        sql "$port" postgres "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
        sql "$port" postgres "CREATE DATABASE $1 OWNER shardgate" >/dev/null
    done
    SCRATCH_OWN+=("$1")
}
# with_db NAME CMD...: CMD with the gateway's and the admin CLI's databases set to NAME.
with_db() { SHARDGATE__DATABASE__DBNAME=$1 SHARDGATE__METADATA__DBNAME=$1 "${@:2}"; }

# gateway_on_scratch DB LABEL [VAR=value ...]: a scratch database DB, migrated and its
# map seeded, 2 s for the replicas to replay it, then a gateway LABEL on it.
gateway_on_scratch() {
    local db=$1 label=$2
    scratch_db "$db"
    with_db "$db" "$BIN/shard-admin" migrate >"$OUT/$label-migrate.log" 2>&1
    with_db "$db" "$BIN/shard-admin" init >>"$OUT/$label-migrate.log" 2>&1
    sleep 2 # the replicas replay the new database
    with_db "$db" start_gateway "$label" "${@:3}"
}

# ---------------------------------------------------------------------------------------
# Clean-up: whatever happens, stop what we started and leave the topology as we found it
# ---------------------------------------------------------------------------------------
GW_PID=""
BG_PIDS=()
SET_UP=0            # 1 once a run has begun: before it (help, a bad step) nothing to undo
TOPOLOGY_CHANGED=0
CREATED_REPLICA1=()

# change_log ENABLE|DISABLE: the change log's triggers on every primary's shard database.
change_log() {
    local port t
    for port in "${PRIMARIES[@]}"; do
        for t in "${CHANGE_LOG_TRIGGERS[@]}"; do
            sql "$port" shardgate "ALTER TABLE records $1 TRIGGER $t" >/dev/null
        done
    done
}

cleanup() {
    local rc=$?
    trap - ERR
    set +e
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    ((${#REDIS_BENCH_AUTH[@]} == 0)) || redis_bench_user_gone
    stop_gateway
    if [[ $CHANGE_LOG_OFF == 1 ]]; then
        say "the change log on again"
        change_log ENABLE
    fi
    if [[ $TOPOLOGY_CHANGED -eq 1 ]]; then
        say "restoring the default topology"
        restore_topology
    fi
    if [[ $SET_UP == 1 && $KEEP_SCRATCH != 1 && -n $PG_BIN ]]; then
        local port db
        for port in "${PRIMARIES[@]}"; do
            for db in "${SCRATCH_DBS[@]}"; do
                sql "$port" postgres "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
            done
        done
        for port in "${PRIMARIES[@]}" "$META_PORT"; do
            for db in ${SCRATCH_OWN[@]+"${SCRATCH_OWN[@]}"}; do
                sql "$port" postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
            done
        done
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source-path=SCRIPTDIR
. "$REPO/scripts/bench/sampling.sh"
. "$REPO/scripts/bench/gateway.sh"
. "$REPO/scripts/bench/loadgen.sh"
