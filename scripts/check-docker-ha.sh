#!/usr/bin/env bash
# scripts/check-docker-ha.sh: runs the entrypoints of docker-compose.yml's shards and monitor
# (docker/autoctl-monitor.sh, docker/autoctl-node.sh) as local processes, without Docker,
# to show that their pg_autoctl invocations make a working formation:
#   1. the monitor, then two nodes of formation shard0, each script started as the
#      compose file would start it (as root when we are root: the scripts hand themselves
#      to the `postgres` user), with the environment the compose file gives it, except
#      the ports (26650-26652, 127.0.0.1), host names and directories (a temporary one);
#   2. waits for one primary and one secondary (`pg_autoctl show state`);
#   3. writes as the gateway's role `shardgate` through the primary, reads it on the
#      secondary (synchronous replication);
#   4. kill -9 of the primary node's process group (its script, keeper and PostgreSQL);
#      waits for the secondary to be promoted and take writes as `shardgate`;
#   5. starts the killed node's script again (its PGDATA exists: it just runs) and waits
#      for it to come back as the secondary;
#   6. stops and removes everything.
# Needs the Debian packages postgresql-15 and postgresql-15-auto-failover. Touches no port
# outside 26650-26699 and nothing under .local/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
BASE_PORT=${CHECK_BASE_PORT:-26650}
MON_PORT=$BASE_PORT
HOST=127.0.0.1
FORMATION=shard0
NODES=(shard0-a shard0-b)
declare -A PORT=([shard0-a]=$((BASE_PORT + 1)) [shard0-b]=$((BASE_PORT + 2)))
declare -A PGID=()
TIMEOUT=${CHECK_TIMEOUT:-120}

T0=$(date +%s%N)
say() {
    local ms=$((($(date +%s%N) - T0) / 1000000))
    printf '%4d.%02ds  %s\n' $((ms / 1000)) $((ms % 1000 / 10)) "$*"
}
fail() {
    say "FAILED: $*" >&2
    local f
    for f in "$WORK"/*.log; do
        [ -f "$f" ] && { echo "---- tail $f" >&2; tail -20 "$f" >&2; }
    done
    exit 1
}

command -v pg_autoctl >/dev/null || { echo "pg_autoctl not found (apt-get install postgresql-15-auto-failover)" >&2; exit 1; }
for p in $MON_PORT "${PORT[@]}"; do
    if (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then echo "port $p is taken" >&2; exit 1; fi
done

WORK=$(mktemp -d /tmp/check-docker-ha.XXXXXX)
AS_PG=()
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$WORK"
    AS_PG=(runuser -u postgres --)
fi

# The passwords .env would hold, fresh.
secret() { head -c 18 /dev/urandom | base64 | tr -dc A-Za-z0-9; }
export PG_SUPERUSER_PASSWORD=$(secret) REPLICATION_PASSWORD=$(secret) SHARDGATE_DB_PASSWORD=$(secret)
export AUTOCTL_NODE_PASSWORD=$(secret) AUTOCTL_MONITOR_PASSWORD=$(secret) MONITOR_READER_PASSWORD=$(secret)
export SHARDGATE_ADMIN_PASSWORD=$(secret)
PASSWORDS=("$PG_SUPERUSER_PASSWORD" "$REPLICATION_PASSWORD" "$SHARDGATE_DB_PASSWORD"
    "$AUTOCTL_NODE_PASSWORD" "$AUTOCTL_MONITOR_PASSWORD" "$MONITOR_READER_PASSWORD"
    "$SHARDGATE_ADMIN_PASSWORD")
# Our own psql and pg_autoctl calls read the passwords from here, as the scripts do.
printf '*:*:*:postgres:%s\n*:*:*:autoctl_node:%s\n*:*:*:shardgate:%s\n*:*:*:shardgate_monitor_reader:%s\n*:*:*:shardgate_admin:%s\n' \
    "$PG_SUPERUSER_PASSWORD" "$AUTOCTL_NODE_PASSWORD" "$SHARDGATE_DB_PASSWORD" "$MONITOR_READER_PASSWORD" "$SHARDGATE_ADMIN_PASSWORD" |
    "${AS_PG[@]}" sh -c "umask 077; cat > '$WORK/pgpass'"
export PGPASSFILE=$WORK/pgpass PGCONNECT_TIMEOUT=3
MONITOR_URI="postgres://autoctl_node@$HOST:$MON_PORT/pg_auto_failover?sslmode=disable"

# Every node's process group TERM (what `docker compose stop` sends), KILL if it is
# still there after 20 s; then the work dir goes (or is kept, CHECK_KEEP=1).
cleanup() {
    local name i alive
    for name in "${!PGID[@]}"; do kill -TERM -- "-${PGID[$name]}" 2>/dev/null || true; done
    for ((i = 0; i < 200; i++)); do
        alive=0
        for name in "${!PGID[@]}"; do kill -0 -- "-${PGID[$name]}" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for name in "${!PGID[@]}"; do
        kill -0 -- "-${PGID[$name]}" 2>/dev/null || continue
        say "$name still running 20 s after TERM: KILL"
        kill -KILL -- "-${PGID[$name]}" 2>/dev/null || true
    done
    if [ "${CHECK_KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# One entrypoint in a session of its own (so the node can be killed whole), with the
# environment the compose file gives it, moved to our ports and directories.
start() {
    local name=$1 script=$2 port=$3
    shift 3
    mkdir -p "$WORK/$name"
    setsid env VOLUME_DIR="$WORK/$name" AUTOCTL_RUN_DIR="$WORK/$name.run" \
        AUTOCTL_SOCKET_DIR="$WORK/sock" SHARED_PG_CONF="$ROOT/docker/postgresql.conf" \
        AUTOCTL_HOSTNAME=$HOST AUTOCTL_PGPORT="$port" AUTOCTL_LISTEN=$HOST "$@" \
        bash "$ROOT/docker/$script" </dev/null >>"$WORK/$name.log" 2>&1 &
    PGID[$name]=$!
    disown   # no "Killed" notice from bash when we kill it
    say "started $script for $name (port $port, process group ${PGID[$name]})"
}

start_node() {
    start "$1" autoctl-node.sh "${PORT[$1]}" AUTOCTL_NAME="$1" AUTOCTL_FORMATION=$FORMATION \
        AUTOCTL_MONITOR_HOST=$HOST AUTOCTL_MONITOR_PORT="$MON_PORT"
}

# Seconds since a `date +%s%N` time, to the hundredth.
since() {
    local ms=$((($(date +%s%N) - $1) / 1000000))
    printf '%d.%02ds' $((ms / 1000)) $((ms % 1000 / 10))
}

q() { "$PG_BIN/psql" -X -q -w -At -v ON_ERROR_STOP=1 "$@"; }
monitor_q() { q -d "$MONITOR_URI" -c "$1" 2>/dev/null; }
as_shardgate() { q -h $HOST -p "$1" -U shardgate -d shardgate -c "$2"; }

# "name:reported/goal" of each node, by node id.
states() {
    monitor_q "SELECT string_agg(nodename || ':' || reportedstate || '/' || goalstate, ' ' ORDER BY nodeid)
        FROM pgautofailover.node WHERE formationid = '$FORMATION'"
}

# Waits until every node in $1 (name:state ...) reports the state the monitor wants.
wait_states() {
    local want=$1 what=$2 deadline=$((SECONDS + TIMEOUT)) got="" last=""
    while :; do
        got=$(states || true)
        [ "$got" != "$last" ] && { say "  $got"; last=$got; }
        local ok=1 w n s
        for w in $want; do
            n=${w%%:*} s=${w#*:}
            [[ " $got " == *" $n:$s/$s "* ]] || ok=0
        done
        ((ok)) && return 0
        ((SECONDS < deadline)) || fail "$what: not there after ${TIMEOUT}s"
        sleep 0.25
    done
}

show_state() {
    "${AS_PG[@]}" env PGPASSFILE="$PGPASSFILE" pg_autoctl show state --monitor "$MONITOR_URI" --formation $FORMATION
}

say "work dir $WORK; monitor $HOST:$MON_PORT, nodes ${PORT[shard0-a]} and ${PORT[shard0-b]}"
start monitor autoctl-monitor.sh "$MON_PORT" AUTOCTL_FORMATIONS=$FORMATION
deadline=$((SECONDS + TIMEOUT))
until [ "$(monitor_q "SELECT count(*) FROM pgautofailover.formation WHERE formationid = '$FORMATION'")" = 1 ]; do
    ((SECONDS < deadline)) || fail "monitor not up with formation $FORMATION"
    sleep 0.25
done
timings=$(monitor_q "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings WHERE name IN
    ('pgautofailover.health_check_period', 'pgautofailover.node_considered_unhealthy_timeout', 'pgautofailover.primary_demote_timeout')")
say "monitor up as autoctl_node (password from pgpass); formation $FORMATION exists; $timings"

start_node shard0-a
wait_states "shard0-a:single" "the first node registered as single"
start_node shard0-b
wait_states "shard0-a:primary shard0-b:secondary" "one primary and one secondary"
show_state
say "the monitor's health checks (as pgautofailover_monitor): $(monitor_q "SELECT string_agg(nodename || ' health=' || health, ', ' ORDER BY nodeid) FROM pgautofailover.node WHERE formationid = '$FORMATION'")"

primary=$(monitor_q "SELECT nodename FROM pgautofailover.node WHERE formationid = '$FORMATION' AND reportedstate = 'primary'")
[ "$primary" = shard0-a ] || fail "the primary is $primary, expected shard0-a"
standby=shard0-b
say "settings on the primary: $(q -h $HOST -p "${PORT[$primary]}" -U postgres -d postgres -c \
    "SELECT 'synchronous_standby_names=' || current_setting('synchronous_standby_names') || ' lc_collate=' || datcollate || ' encoding=' || pg_encoding_to_char(encoding) || ' shared_buffers=' || current_setting('shared_buffers') FROM pg_database WHERE datname = 'shardgate'")"
say "roles: $(q -h $HOST -p "${PORT[$primary]}" -U postgres -d postgres -c \
    "SELECT string_agg(rolname || CASE WHEN rolsuper THEN '(super)' ELSE '' END, ' ' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('shardgate', 'postgres', 'pgautofailover_replicator', 'pgautofailover_monitor')"); shardgate owned by $(q -h $HOST -p "${PORT[$primary]}" -U postgres -d postgres -c "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shardgate'")"

as_shardgate "${PORT[$primary]}" "CREATE TABLE check_ha (id int PRIMARY KEY, note text); INSERT INTO check_ha VALUES (1, 'before the kill')"
say "wrote row 1 as shardgate through $primary; on $standby (read-only, synchronous): $(as_shardgate "${PORT[$standby]}" "SELECT note FROM check_ha WHERE id = 1") / in recovery: $(as_shardgate "${PORT[$standby]}" "SELECT pg_is_in_recovery()")"

kill -KILL -- "-${PGID[$primary]}"
killed=$(date +%s%N)
say "kill -9 of $primary's process group ${PGID[$primary]} (script, keeper, PostgreSQL)"
unset "PGID[$primary]"
sleep 0.5
pgrep -f "pg_autoctl run --pgdata $WORK/$primary/" >/dev/null && fail "$primary's keeper still runs"
wait_states "$standby:wait_primary" "$standby promoted"
deadline=$((SECONDS + TIMEOUT))
until as_shardgate "${PORT[$standby]}" "INSERT INTO check_ha VALUES (2, 'after the kill')" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "$standby takes no write"
    sleep 0.25
done
say "$standby promoted and took a write as shardgate $(since "$killed") after the kill; rows there: $(as_shardgate "${PORT[$standby]}" "SELECT string_agg(id || '=' || note, ', ' ORDER BY id) FROM check_ha")"
show_state

say "restarting $primary's script: its PGDATA exists, so it just runs"
restarted=$(date +%s%N)
start_node "$primary"
wait_states "$standby:primary $primary:secondary" "$primary back as the secondary"
say "$primary rewound and a secondary $(since "$restarted") after its script started again; row 2 there: $(as_shardgate "${PORT[$primary]}" "SELECT note FROM check_ha WHERE id = 2")"
say "'pg_autoctl create' runs in $primary's log over its two starts: $(grep -c 'pg_autoctl create postgres (' "$WORK/$primary.log"); 'pg_autoctl run': $(grep -c ': pg_autoctl run$' "$WORK/$primary.log")"
show_state

# The gateways' role on the monitor reads the formation's state and may not fail it over.
READER_URI="postgres://shardgate_monitor_reader@$HOST:$MON_PORT/pg_auto_failover?sslmode=disable"
[ "$(q -d "$READER_URI" -c "SELECT count(*) FROM pgautofailover.node WHERE formationid = '$FORMATION'")" = 2 ] ||
    fail "shardgate_monitor_reader cannot read the formation's nodes"
if out=$(q -d "$READER_URI" -c "BEGIN; SELECT pgautofailover.perform_failover('$FORMATION'); ROLLBACK" 2>&1) ||
    [[ $out != *"permission denied"* ]]; then
    fail "shardgate_monitor_reader may fail the formation over: $out"
fi
say "shardgate_monitor_reader reads the formation's state and may not fail it over"

# The administrator's role may drain the primary (ALTER SYSTEM of the one parameter, a
# reload); the gateway's may not.
drain_as() {
    q -h $HOST -p "${PORT[$standby]}" -U "$1" -d shardgate \
        -c "ALTER SYSTEM RESET default_transaction_read_only" -c "SELECT pg_reload_conf()" 2>&1
}
out=$(drain_as shardgate_admin) || fail "shardgate_admin may not drain the primary: $out"
if out=$(drain_as shardgate) || [[ $out != *"permission denied"* ]]; then
    fail "the gateway's role may drain the primary: $out"
fi
say "shardgate_admin may drain the primary, the gateway's role shardgate may not"

# No password on any process's command line.
for pid in /proc/[0-9]*; do
    args=$(tr '\0' ' ' 2>/dev/null <"$pid/cmdline") || continue
    for pw in "${PASSWORDS[@]}"; do
        [[ $args != *"$pw"* ]] || fail "a password is on the command line of pid ${pid#/proc/}: ${args%% *}"
    done
done
say "no password on any command line"

# Nothing secret in a file anyone but postgres can read.
for pw in "${PASSWORDS[@]}"; do
    grep -rlF -- "$pw" "$WORK" 2>/dev/null || true
done | sort -u | while read -r f; do
    mode=$(stat -c '%a %U' "$f")
    say "a password is in ${f#"$WORK"/} (mode $mode)"
    [[ $mode == [67]00\ * ]] || fail "${f#"$WORK"/} holds a password and others may read it"
done

say "stopping (TERM to every process group) and removing $WORK"
echo "check-docker-ha: 1 passed, 0 failed"
