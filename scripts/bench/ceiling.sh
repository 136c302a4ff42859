# scripts/bench/ceiling.sh: sourced by scripts/bench.sh (functions only). The load
# tools' own ceilings on a no-op request, GET /api/health/live, which touches no
# database (`ceiling`): wrk against goose.

# ---------------------------------------------------------------------------------------
# 5. The load tools' own ceilings on GET /api/health/live (no database)
# ---------------------------------------------------------------------------------------
step_ceiling() {
    say "5. HTTP ceiling on /api/health/live: wrk vs goose ($USERS connections/users)"
    settle ceiling
    cpu_begin
    wrk_run ceiling-wrk -t2 -c"$USERS" -d"${DURATION}s" "$URL/api/health/live"
    cpu_end ceiling_wrk
    wrk_check ceiling-wrk
    result ceiling_wrk "$(wrk_rps ceiling-wrk)"
    settle ceiling
    cpu_begin
    goose ceiling-goose --scenario live -u "$USERS" -r "$USERS" -t "${DURATION}s"
    cpu_end ceiling_goose
    goose_check ceiling-goose
    result ceiling_goose "$(goose_rate ceiling-goose 'GET live')"
    # The loadtest's own CPU over its measured span (its summary's "load tester:" line).
    result ceiling_goose_self "$(sed -n 's/^load tester: //p' "$OUT/ceiling-goose.log" | head -1)"
    result goose_vs_wrk "$(ratio "$(r ceiling_goose)" "$(r ceiling_wrk)")"
}
