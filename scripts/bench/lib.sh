# scripts/bench/lib.sh: sourced by scripts/bench.sh first. Its settings (the
# environment it reads, ports, paths), small helpers (results, arithmetic, psql, the
# passwords setup.sh generated), the clean-up that always runs, and the set-up before
# any step (tools, release build, the machine, scratch databases).


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
