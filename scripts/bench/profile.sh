# scripts/bench/profile.sh: sourced by scripts/bench.sh (functions only). A perf
# profile (`profile`, not in the default steps): of a whole read run, or of the
# gateway alone during one request kind, split by layer and drawn as a flame graph.

# ---------------------------------------------------------------------------------------
# Optional: perf profile of a read run (not part of the default steps)
# ---------------------------------------------------------------------------------------
step_profile() {
    [[ -n ${PROFILE_KIND:-} ]] && { profile_gateway "$PROFILE_KIND"; return; }
    local scenario=${PROFILE_SCENARIO:-read}
    say "profile: perf record -a -g for 10 s during a $scenario run ($USERS users)"
    settle profile
    "$BIN/loadtest" -H "$URL" --scenario "$scenario" --keys "$KEYS" -u "$USERS" -r "$USERS" -t 14s >"$OUT/profile-load.log" 2>&1 &
    local pid=$!
    BG_PIDS+=("$pid")
    sleep 3
    perf record -a -g -o "$OUT/perf.data" -- sleep 10 >"$OUT/perf-record.log" 2>&1
    wait "$pid" || true
    { perf report -i "$OUT/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null || true; } |
        awk '!/^#/ && NF && n++ < 12' >"$OUT/profile-by-process.txt"
    { perf report -i "$OUT/perf.data" --no-children --sort dso,sym --stdio -g none \
        --comms 'api-router,actix-rt|system,shardgate-db,tokio-rt-worker' 2>/dev/null || true; } |
        awk '!/^#/ && NF && n++ < 40' >"$OUT/profile-gateway.txt"
    { perf report -i "$OUT/perf.data" --no-children --comm postgres --sort sym --stdio -g none 2>/dev/null || true; } |
        awk '!/^#/ && NF && n++ < 25' >"$OUT/profile-postgres.txt"
    say "  CPU share by process (thread name):"; cat "$OUT/profile-by-process.txt" >&2
    say "  gateway threads by symbol: $OUT/profile-gateway.txt; PostgreSQL: $OUT/profile-postgres.txt; perf report -i $OUT/perf.data"
}
# PROFILE_KIND=read|cached|write|...: the gateway process alone (2 HTTP workers, as in
# the cpu step) during a wrk run of that kind, unwound with DWARF, then split by layer
# (scripts/profile-layers.py) in microseconds per request.
profile_gateway() {
    local kind=$1 secs=6 u0 u1 n
    local -a env=(SHARDGATE__SERVER__WORKERS=2)
    [[ $kind == cached ]] && env+=(SHARDGATE__CACHE__ENABLED=true)
    start_gateway "profile-$kind" "${env[@]}"
    KIND=$kind KEYS=$KEYS wrk -t1 -c8 -d3s -s "$REPO/scripts/wrk-cpu.lua" "$URL" >/dev/null 2>&1 || true
    settle "profile-$kind"
    say "profile: perf record -p (gateway) --call-graph dwarf for $secs s of a $kind run (wrk -t1 -c8)"
    KIND=$kind KEYS=$KEYS wrk -t1 -c8 -d$((secs + 3))s -s "$REPO/scripts/wrk-cpu.lua" "$URL" >"$OUT/profile-$kind-wrk.log" 2>&1 &
    local wrk_pid=$!
    BG_PIDS+=("$wrk_pid")
    sleep 1
    # The requests served while recording, from the gateway's own counter (its
    # analytics count every request; the second reading's own request is not in it yet,
    # the first one's is).
    local n0 n1
    n0=$(requests_served)
    u0=$(pid_ticks "$GW_PID")
    perf record -F 2000 --call-graph dwarf,16384 -p "$GW_PID" -o "$OUT/perf-$kind.data" -- sleep "$secs" >"$OUT/perf-record.log" 2>&1
    u1=$(pid_ticks "$GW_PID")
    n1=$(requests_served)
    wait "$wrk_pid" || true
    n=$((n1 - n0 - 1))
    result "profile_${kind}_requests" "$n"
    local us
    us=$(calc "($u1 - $u0) * 1000000 / $CLK_TCK / $n" 1)
    result "profile_${kind}_us" "$us (CPU per request while recording; perf adds some)"
    perf script -i "$OUT/perf-$kind.data" -F comm,ip,sym,dso 2>/dev/null >"$OUT/perf-$kind.script"
    python3 "$REPO/scripts/profile-layers.py" "$OUT/perf-$kind.script" "$us" | tee "$OUT/profile-$kind-layers.txt" >&2
    rm -f "$OUT/perf-$kind.script"
    flame_graph "$kind"
    cmd "profile-$kind" "PROFILE_KIND=$kind ./scripts/bench.sh profile   # perf record --call-graph dwarf -p <gateway>; scripts/profile-layers.py"
}
