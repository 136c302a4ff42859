# scripts/bench/idle.sh: sourced by scripts/bench.sh (functions only). What the local
# topology costs while nothing uses it (`idle`): /proc read twice, IDLE_SECS (10) apart,
# and the CPU each component used, in % of one core: every keeper (pg_autoctl and its
# processes), every server's PostgreSQL (postmaster, background processes and backends;
# the backends that ended in between are counted through their parent's cutime/cstime),
# Redis (any redis-server); then the processes created per second on the whole machine
# (/proc/stat `processes`). Servers are named by their data dir under CLUSTER_DIR
# (.local/cluster); whatever runs elsewhere is summed as "rest of the machine" (its
# running processes only). It generates no load, and stops bench.sh's gateway first.

# One line per process: pid ppid ticks reaped-children-ticks label. The label is set on
# the processes that name their component (a keeper's `pg_autoctl run --pgdata DIR`, a
# postmaster's `postgres -D DIR`, redis-server); the others inherit their parent's.
idle_snapshot() {
    local d stat f args label i
    for d in /proc/[0-9]*; do
        { read -r stat <"$d/stat" && mapfile -d '' args <"$d/cmdline"; } 2>/dev/null || continue
        read -ra f <<<"${stat##*) }"
        label=-
        case ${args[0]:-} in
            pg_autoctl | */pg_autoctl) label=keeper ;;
            postgres | */postgres) label=pg ;;
            redis-server*) label=redis ;;
        esac
        if [[ $label != redis && $label != - ]]; then
            for ((i = 1; i < ${#args[@]}; i++)); do
                [[ ${args[i - 1]} == --pgdata || ${args[i - 1]} == -D ]] || continue
                [[ ${args[i]} == "$IDLE_ROOT"/* ]] && label="$label:${args[i]#"$IDLE_ROOT"/}" || label=-
                break
            done
            [[ $label == *:* ]] || label=-
        fi
        echo "${d#/proc/} ${f[1]} $((f[11] + f[12])) $((f[13] + f[14])) $label"
    done
}

step_idle() {
    local secs=${IDLE_SECS:-10} before after p0 p1 t0 t1
    IDLE_ROOT=$(readlink -e "${CLUSTER_DIR:-$REPO/.local/cluster}") || die "no topology in ${CLUSTER_DIR:-.local/cluster} (./setup.sh up)"
    [[ $secs =~ ^[0-9]+$ ]] && ((secs > 0)) || die "IDLE_SECS must be a whole number of seconds"
    stop_gateway
    say "idle: the topology's CPU per component over $secs s, nothing using it"
    cmd idle "IDLE_SECS=$secs scripts/bench.sh idle   # /proc read twice, $secs s apart"
    before=$(idle_snapshot)
    p0=$(awk '$1 == "processes" { print $2 }' /proc/stat)
    t0=$EPOCHREALTIME
    sleep "$secs"
    p1=$(awk '$1 == "processes" { print $2 }' /proc/stat)
    t1=$EPOCHREALTIME
    after=$(idle_snapshot)

    awk -v self=$$ -v hz="$(getconf CLK_TCK)" -v t0="$t0" -v t1="$t1" -v p0="$p0" -v p1="$p1" '
        function component(pid,   p, n) {
            for (p = pid; n < 8 && p in ppid; n++) {
                if (label[p] != "-") return label[p]
                if (p == self) return "(this script)"
                p = ppid[p]
            }
            return "rest of the machine"
        }
        FNR == 1 { file++ }
        file == 1 { b[$1] = $3; bc[$1] = $4; next }
        { ppid[$1] = $2; t[$1] = $3; c[$1] = $4; label[$1] = $5 }
        END {
            secs = t1 - t0
            for (pid in t) {
                # A process found only at the end started in between: all its time is new.
                used = t[pid] - (pid in b ? b[pid] : 0)
                reaped = (pid in b) ? c[pid] - bc[pid] : 0
                name = component(pid)
                # (the cutime of other processes is all their children, started long before)
                if (name == "rest of the machine") reaped = 0
                sub(/^keeper:/, "keeper ", name); sub(/^pg:/, "postgres ", name)
                cpu[name] += used + reaped; kids[name] += reaped
            }
            printf "%-30s %9s %12s\n", "component", "cpu %", "of which ended"
            for (name in cpu) {
                if (name == "(this script)") continue
                line = sprintf("%-30s %9.1f %12.1f", name, 100 * cpu[name] / hz / secs, 100 * kids[name] / hz / secs)
                if (name == "rest of the machine") rest = line; else print line | "sort"
                if (name != "rest of the machine") total += cpu[name]
            }
            close("sort")
            printf "%-30s %9.1f\n", "topology total", 100 * total / hz / secs
            print rest
            printf "processes created: %.1f/s (whole machine, over %.1f s)\n", (p1 - p0) / secs, secs
        }' <(echo "$before") <(echo "$after") | tee -a "$OUT/$STEP.txt"
    back_to_plain
}
