# scripts/lib/process.sh: sourced by setup.sh (functions only). Processes and ports,
# told apart without logging in: who listens on a port, whether a pid is alive or one
# of a setup.sh cluster's (here or in another checkout), waiting for a listener and
# stopping the children `run` started.

# A process that exists and is not a zombie (an init that reaps slowly, as in some
# containers, leaves an exited daemon as a zombie for a while).
alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
    [[ $state != Z ]]
}

# The pid listening on TCP port $1, if any (from ss; no login to the server needed);
# nothing, and success, when none.
listener_pid() { ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2 || true; }

# Whether pid $1's command line names a Shardgate data dir of some checkout: the
# servers setup.sh starts, here or in another clone.
is_shardgate_process() {
    local cmd
    cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
    [[ $cmd == */.local/cluster/* || $cmd == */var/tmp/shardgate-* ]]
}

# Waits until something listens on port $1, as long as pid $2 is alive (30 s at most).
wait_listening() {
    local port=$1 pid=$2 i
    for ((i = 0; i < 300; i++)); do
        [[ -n $(listener_pid "$port") ]] && return 0
        alive "$pid" || return 1
        sleep 0.1
    done
    return 1
}

# SIGTERM to each child still running, then wait for them all (the gateways finish the
# requests in flight first).
stop_children() {
    (($# > 0)) || return 0
    kill -TERM "$@" 2>/dev/null || true
    wait "$@" 2>/dev/null || true
}

# "pid N, NAME" of a process, and its directory when that is not this checkout.
describe_pid() {
    local pid=$1 comm cwd
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || echo "?")
    cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
    printf 'pid %s, %s' "$pid" "$comm"
    [[ -z $cwd || $cwd == "$REPO" ]] || printf ', in %s' "$cwd"
}
