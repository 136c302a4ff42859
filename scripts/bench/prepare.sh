# scripts/bench/prepare.sh: sourced by scripts/bench.sh (functions only). The set-up
# before the steps: the tools, the release build, the machine's description, and the
# scratch databases and records the default steps measure on.

ensure_tools() {
    local pkgs=()
    command -v wrk >/dev/null || pkgs+=(wrk)
    command -v jq >/dev/null || pkgs+=(jq)
    command -v curl >/dev/null || pkgs+=(curl)
    command -v redis-benchmark >/dev/null || pkgs+=(redis-tools)
    command -v python3 >/dev/null || pkgs+=(python3)
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
    say "cargo build --profile dist -p api-router -p loadtest -p shard-admin"
    cargo build --profile dist -p api-router -p loadtest -p shard-admin 2>&1 | tail -3 >&2
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
        # pgbench's upsert is the write without the change log (the gateway's writes
        # carry it unless CHANGE_LOG=off): W counts what the log costs.
        for t in "${CHANGE_LOG_TRIGGERS[@]}"; do
            sql "$port" sgbench_rec "DROP TRIGGER IF EXISTS $t ON records" >/dev/null
        done
        # The gateway's role (not a superuser) writes there.
        sql "$port" sgbench_rec "DO \$\$ DECLARE r record; BEGIN
            FOR r IN SELECT tablename AS n FROM pg_tables WHERE schemaname = 'public' LOOP
                EXECUTE format('ALTER TABLE %I OWNER TO shardgate', r.n); END LOOP;
            FOR r IN SELECT sequencename AS n FROM pg_sequences WHERE schemaname = 'public' LOOP
                EXECUTE format('ALTER SEQUENCE %I OWNER TO shardgate', r.n); END LOOP;
            END \$\$" >/dev/null
    done
    cmd prepare "pgbench -i -s 1 -q sgbench_pgb   # on each primary; sgbench_rec = pg_dump -s shardgate without the change log's triggers, tables owned by shardgate"
    case $CHANGE_LOG in
        on) result change_log "on: the gateway's writes carry the change log, pgbench's do not" ;;
        off)
            CHANGE_LOG_OFF=1
            change_log DISABLE
            result change_log "off: the change log's triggers disabled for the run"
            ;;
        *) die "CHANGE_LOG is '$CHANGE_LOG': on or off" ;;
    esac
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
# Whether a step runs on the scratch databases and the gateway prepare() sets up (the
# default steps, profile, scenarios, the batching steps, ratios and changes), and whether
# any needs the release binaries (all but idle and the measurements written in Rust).
on_prepared() { [[ " ${ALL_STEPS[*]} profile scenarios read-batching write-batching ratios changes " == *" $1 "* ]]; }
needs_release() { [[ " idle moves import txn limits keys timers snapshot outage replication async-loss netcut backup " != *" $1 "* ]]; }
