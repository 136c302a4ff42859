# scripts/disk_watch.sh: sourced by setup.sh (functions only). The free disk space under
# a test run: said at the start (with a warning when it is less than a run needs), watched
# every few seconds while the suites run, and the lowest figure said at the end, so that a
# run failing with "No space left on device" says so in its last lines.

# About what a cold `./setup.sh test` takes at its peak: the test build (target/), the
# topology's data and WAL archive (.local/), and the private servers of the failover and
# backup suites (under /tmp): 6.2-6.6 GB in fresh-clone runs, as this file's closing line
# reports them (docs/src/getting-started.md says "up to about 7 GB").
DISK_NEED_GB=${DISK_NEED_GB:-8}

DISK_WATCH_PID=
DISK_WATCH_LOG=
DISK_WATCH_START_KB=

# Free kilobytes of the file system holding $1.
disk_free_kb() {
    df -Pk "$1" 2>/dev/null | awk 'NR == 2 { print $4 }'
}

# Kilobytes as gigabytes, one decimal.
disk_gb() {
    awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1048576 }'
}

# Says the free space of the repository's and /tmp's file systems, warns when it is less
# than DISK_NEED_GB, and starts the sampler: the lowest free figure of each, every 5 s,
# into .local/disk-watch.log.
disk_watch_start() {
    local repo_kb tmp_kb
    repo_kb=$(disk_free_kb "$REPO")
    tmp_kb=$(disk_free_kb /tmp)
    say "disk: $(disk_gb "$repo_kb") GB free under $REPO, $(disk_gb "$tmp_kb") GB under /tmp"
    if ((repo_kb < DISK_NEED_GB * 1048576 || tmp_kb < DISK_NEED_GB * 1048576)); then
        say "warning: a test run takes up to about $DISK_NEED_GB GB; with less free, servers stop with 'No space left on device'"
    fi
    DISK_WATCH_LOG=$LOCAL/disk-watch.log
    DISK_WATCH_START_KB=$repo_kb
    echo "$repo_kb $tmp_kb" >"$DISK_WATCH_LOG"
    # The sampler ends with this shell ($$), however it ends.
    # shellcheck disable=SC2016 # the sampler's own script
    bash -c 'low_r=$1 low_t=$2
        while sleep 5 && kill -0 "$5" 2>/dev/null; do
            r=$(df -Pk "$3" 2>/dev/null | awk "NR == 2 { print \$4 }")
            t=$(df -Pk /tmp 2>/dev/null | awk "NR == 2 { print \$4 }")
            [[ -n $r && $r -lt $low_r ]] && low_r=$r
            [[ -n $t && $t -lt $low_t ]] && low_t=$t
            echo "$low_r $low_t" >"$4"
        done' disk-watch "$repo_kb" "$tmp_kb" "$REPO" "$DISK_WATCH_LOG" "$$" >/dev/null 2>&1 &
    DISK_WATCH_PID=$!
}

# Stops the sampler and says the lowest free space seen, and how much the run took at most.
disk_watch_report() {
    [[ -n $DISK_WATCH_PID ]] || return 0
    kill "$DISK_WATCH_PID" 2>/dev/null || true
    wait "$DISK_WATCH_PID" 2>/dev/null || true
    DISK_WATCH_PID=
    local low_r low_t
    read -r low_r low_t <"$DISK_WATCH_LOG" || return 0
    say "disk: at the lowest $(disk_gb "$low_r") GB free under $REPO, $(disk_gb "$low_t") GB under /tmp (the run took up to $(disk_gb $((DISK_WATCH_START_KB - low_r))) GB)"
    if ((low_r < 1048576 || low_t < 1048576)); then
        say "warning: the disk came within 1 GB of full: failures above may be 'No space left on device'"
    fi
}
