# scripts/bench/sampling.sh: part of lib.sh (functions only). CPU sampling around each
# measurement (who used the cores: the gateway, the load generator, PostgreSQL, the
# rest), the machine's load before one, and the waits before one: a quiet machine, a
# settled cluster.

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

# The machine's busy and total ticks, every CPU (/proc/stat).
cpu_ticks() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9; exit }' /proc/stat; }
# Ticks of every postgres process with its reaped children's (a postmaster's ended
# backends). cat fails on a process that ended since the glob: what it read still counts.
pg_ticks() {
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk '$2 == "(postgres)" { t += $14 + $15 + $16 + $17 } END { print t + 0 }'
}
# busy_before [SECS]: "X cores busy, idle share Y" over SECS (2) seconds, ours included.
busy_before() {
    local a b
    a=$(cpu_ticks)
    sleep "${1:-2}"
    b=$(cpu_ticks)
    awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " ")
        f = (y[1] - x[1]) / (y[2] - x[2]); printf "%.2f cores busy, idle share %.2f", f * n, 1 - f }'
}
# split_begin [GATEWAY_PID] before a run, split_end REQUESTS after it: what the whole
# machine spent per request while it ran, split into the gateway, every PostgreSQL process
# and the rest (the load generator, the HA keepers, Redis, the kernel's own work).
split_begin() {
    SPLIT_GW=${1:-}
    SPLIT_M0=$(cpu_ticks)
    SPLIT_G0=0
    [[ -z $SPLIT_GW ]] || SPLIT_G0=$(pid_ticks "$SPLIT_GW")
    SPLIT_P0=$(pg_ticks)
}
split_end() {
    local m1 g1=0 p1
    m1=$(cpu_ticks)
    [[ -z $SPLIT_GW ]] || g1=$(pid_ticks "$SPLIT_GW")
    p1=$(pg_ticks)
    awk -v m0="$SPLIT_M0" -v m1="$m1" -v g="$((g1 - SPLIT_G0))" -v p="$((p1 - SPLIT_P0))" -v n="$1" \
        -v c="$CLK_TCK" -v cores="$(nproc)" 'BEGIN { split(m0, a, " "); split(m1, b, " "); busy = b[1] - a[1]
        printf "machine %.2f cores busy during; CPU per request: machine %.1f µs = gateway %.1f + postgres %.1f + rest %.1f",
            busy / (b[2] - a[2]) * cores, busy * 1e6 / c / n, g * 1e6 / c / n, p * 1e6 / c / n, (busy - g - p) * 1e6 / c / n }'
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
