# scripts/bench/analytics.sh: sourced by scripts/bench.sh (functions only). The
# analytics recording path (`analytics`), measured by its criterion benchmark.

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
