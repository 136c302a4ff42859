# scripts/bench/report.sh: sourced by scripts/bench.sh (functions only). The
# Markdown report: only what this run measured, each figure with its command. Its
# summary and tables are scripts/bench/report-template.md, expanded here.

# ---------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------
# The report holds only what this run measured: a line tagged @STEP@ (or @A+B@: every
# one of them) stays, untagged, when those steps ran and goes otherwise; a table left
# with no row goes with its heading ("## Details" and its table).
report() {
    report_all | awk -v ran=" ${STEPS[*]} " '
        /^@[a-z+]+@/ {
            tag = substr($0, 2, index(substr($0, 2), "@") - 1)
            n = split(tag, need, "+"); keep = 1
            for (i = 1; i <= n; i++) if (index(ran, " " need[i] " ") == 0) keep = 0
            if (!keep) next
            $0 = substr($0, length(tag) + 3)
        }
        { print }' | awk '
        # Drop a table (header and separator) left with no row, and a "## Details"
        # heading whose table went.
        { buf[NR] = $0 }
        END {
            for (i = 1; i <= NR; i++) {
                if (buf[i] ~ /^\| / && buf[i + 1] ~ /^\|---/ && buf[i + 2] !~ /^\| /) {
                    if (buf[i - 2] == "## Details") { drop[i - 2] = 1; drop[i - 1] = 1 }
                    drop[i] = 1; drop[i + 1] = 1; i++
                    continue
                }
            }
            for (i = 1; i <= NR; i++) if (!drop[i]) print buf[i]
        }' | cat -s
}

report_all() {
    local m
    m() { grep -m1 "^$1=" "$OUT/machine" | cut -d= -f2-; }
    expand_template "$REPO/scripts/bench/report-template.md"
    if grep -q '^analytics_' "$OUT/results"; then
        printf '\nAnalytics (criterion median): %s\n' "$(grep '^analytics_' "$OUT/results" | sed 's/^analytics_//; s/=/ /' | paste -sd ';' | sed 's/;/; /g')"
    fi
    if grep -qE '_(warning|failed_requests|non_2xx|failed)=' "$OUT/results"; then
        printf '\nWarnings:\n'
        grep -E '_(warning|failed_requests|non_2xx|failed)=' "$OUT/results" | sed 's/^/- /'
    fi
    printf '\n## Commands\n\n```sh\n'
    awk -F'\t' '{ printf "# %s\n%s\n", $1, $2 }' "$OUT/commands"
    printf '```\n\nMachine: %s, %s cores, %s, Linux %s, %s; PostgreSQL %s (%s); rustc %s, goose %s, wrk %s.\n' \
        "$(m cpu)" "$(m nproc)" "$(m mem)" "$(m kernel)" "$(m os)" "$(m postgres)" "$(m pg_settings)" "$(m rustc)" "$(m goose)" "$(m wrk)"
}
