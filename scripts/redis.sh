# scripts/redis.sh: sourced by setup.sh (functions only). Redis on 26379, the cache:
# its private config (the password in it, never on argv), start, stop, and its port
# taken from another checkout's Redis; `./setup.sh redis stop|start`.
#
# Redis runs with a password (requirepass, from its private config file, never argv) and,
# when setup.sh is root, as the PostgreSQL OS user rather than root. Its files live with
# the cluster data (.local/cluster/redis, or under /var/tmp when that is where the data is).
redis_home() { echo "$DATA_ROOT/redis"; }
REDIS_PIDFILE="" REDIS_LOG="" REDIS_CONF=""
redis_paths() {
    REDIS_PIDFILE="$(redis_home)/redis.pid"
    REDIS_LOG="$(redis_home)/redis.log"
    REDIS_CONF="$(redis_home)/redis.conf"
}

# An authenticated PING (REDISCLI_AUTH carries the password, not argv).
redis_ping() { [[ $(timeout 2 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }
# Anything answers on the port at all (NOAUTH counts: some Redis is there).
redis_listening() { ss -Hltn "sport = :$REDIS_PORT" 2>/dev/null | grep -q .; }

# Whether pid $1 is a Redis setup.sh started (here or in another clone): Redis rewrites
# its command line, so tell by its working directory, which setup.sh chose.
is_shardgate_redis() {
    local cwd
    cwd=$(readlink "/proc/$1/cwd" 2>/dev/null) || return 1
    [[ $cwd == */.local/redis || $cwd == */.local/cluster/redis || $cwd == /var/tmp/shardgate-*/redis ]]
}

redis_pid() {   # pid of our redis-server, if alive
    local pid
    [[ -f $REDIS_PIDFILE ]] || return 1
    pid=$(<"$REDIS_PIDFILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    alive "$pid" && grep -q redis "/proc/$pid/comm" 2>/dev/null || return 1
    echo "$pid"
}

write_redis_conf() {
    as_pg mkdir -p "$(redis_home)"
    # The password is in this file only (mode 0600, owned by the user Redis runs as).
    as_pg sh -c "umask 077; cat > '$REDIS_CONF.tmp'" <<EOF
# written by setup.sh
bind $HOST
port $REDIS_PORT
protected-mode yes
requirepass $REDIS_PASSWORD
save ""
appendonly no
daemonize yes
pidfile $REDIS_PIDFILE
logfile $REDIS_LOG
dir $(redis_home)
maxmemory 256mb
maxmemory-policy allkeys-lru
EOF
    as_pg mv "$REDIS_CONF.tmp" "$REDIS_CONF"
}

redis_start() {
    redis_paths
    if redis_listening; then
        redis_pid >/dev/null && redis_ping && return 0
        # Not ours. Like the PostgreSQL ports, 26379 belongs to one checkout at a time:
        # take it from another checkout's setup.sh Redis; refuse to touch any other.
        local pid
        pid=$(listener_pid "$REDIS_PORT")
        if [[ -n $pid ]] && is_shardgate_redis "$pid"; then
            say "stopping redis of another checkout (pid $pid): this checkout needs port $REDIS_PORT"
            kill -TERM "$pid" 2>/dev/null || die "cannot stop pid $pid; stop it, then retry"
            local i
            for ((i = 0; i < 100; i++)); do
                redis_listening || break
                sleep 0.05
            done
        else
            die "port $REDIS_PORT is in use by a Redis that setup.sh did not start (pid ${pid:-?})"
        fi
    fi
    command -v redis-server >/dev/null 2>&1 || die "redis-server is not installed; run ./setup.sh up"
    [[ ${QUIET:-0} -eq 1 ]] || say "starting redis on $REDIS_PORT"
    write_redis_conf
    as_pg rm -f "$REDIS_PIDFILE"
    if ! as_pg redis-server "$REDIS_CONF" </dev/null >/dev/null 2>&1; then
        log_tail "$REDIS_LOG"
        die "redis-server did not start"
    fi
    local i
    for ((i = 0; i < 100; i++)); do
        redis_ping && return 0
        sleep 0.1
    done
    log_tail "$REDIS_LOG"
    die "redis did not answer an authenticated PING on port $REDIS_PORT"
}

redis_stop() {   # stop our Redis; no-op when it is not running
    redis_paths
    local pid i
    if pid=$(redis_pid); then
        [[ ${QUIET:-0} -eq 1 ]] || say "stopping redis"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 200; i++)); do
            alive "$pid" || break
            sleep 0.05
        done
        if alive "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
    fi
    rm -f "$REDIS_PIDFILE" 2>/dev/null || as_pg rm -f "$REDIS_PIDFILE"
    if [[ -n ${pid:-} ]]; then
        for ((i = 0; i < 50; i++)); do
            redis_listening || return 0
            sleep 0.1
        done
        log_tail "$REDIS_LOG"
        die "redis still answers on port $REDIS_PORT"
    fi
}

cmd_redis() {
    local QUIET=1
    need_pg_bin
    resolve_data_root
    case ${1:-} in
        stop) lock; redis_stop; unlock ;;
        start) lock; redis_start; unlock ;;
        *) die "usage: ./setup.sh redis stop|start" ;;
    esac
}
