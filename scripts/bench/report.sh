# scripts/bench/report.sh: sourced by scripts/bench.sh (functions only). The
# Markdown report: only what this run measured, each figure with its command.

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
    cat <<EOF
## Summary

Measured $(m date) on commit \`$(m commit)\` ($(m nproc) × $(m cpu), $(m mem), Linux $(m kernel), PostgreSQL $(m postgres)).
Each ratio's two sides ran one right after the other in the same run of \`scripts/bench.sh\` (DURATION=${DURATION}s, USERS=$USERS).
$(grep -q '^gateway_bin=' "$OUT/results" && printf '\nGateway binary: `%s` (GATEWAY_BIN), not this checkout’s build.\n' "$(r gateway_bin)" || true)

| metric | value | target | met? |
|---|---|---|---|
@write@| W: gateway single writes/s ÷ pgbench upsert TPS ($USERS clients; mean of $ROUNDS alternating rounds: $(r W_rounds)) | $(r W) ($(r write_gw) / $(r write_pg)) | ≥ 0.8 | $(met "$(r W)" '>=' 0.8) |
@write@| the same, writes from wrk (rounds: $(r W_wrk_rounds)) | $(r W_wrk) ($(r write_wrk) / $(r write_pg)) | ≥ 0.8 | $(met "$(r W_wrk)" '>=' 0.8) |
@read@| R: gateway replica point reads/s ÷ \`pgbench -S\` TPS on the replicas | $(r R) ($(r read_gw) / $(r read_pg)) | ≥ 0.5 | $(met "$(r R)" '>=' 0.5) |
@read@| the same, reads from wrk | $(r R_wrk) ($(r read_wrk) / $(r read_pg)) | ≥ 0.5 | $(met "$(r R_wrk)" '>=' 0.5) |
@bulk@| B: bulk-write rows/s ÷ COPY rows/s (same shards) | $(r B) ($(r bulk_gw) / $(r bulk_copy)) | ≥ 0.5 | $(met "$(r B)" '>=' 0.5) |
@latency@| gateway-added p50 latency, point read, 1 user (goose) | $(r lat_added_ms) ms ($(ms "$(r lat_gw_p50_us)") − $(ms "$(r lat_pg_p50_us)")) | ≤ 0.1 ms | $(met "$(r lat_added_ms)" '<=' 0.1) |
@latency@| the same, measured with wrk -c1 | $(r lat_added_wrk_ms) ms ($(ms "$(r lat_wrk_p50_us)") − $(ms "$(r lat_pg_p50_us)")) | ≤ 0.1 ms | $(met "$(r lat_added_wrk_ms)" '<=' 0.1) |
@cache@| C: cached point reads/s ÷ HTTP ceiling (wrk, same server) | $(r C) ($(r cache_on_wrk) / $(r cache_ceiling_wrk)) | ≥ 0.7 | $(met "$(r C)" '>=' 0.7) |
@ceiling+read@| R if the gateway's own work were free: ceiling ÷ (ceiling + pgbench -S), CPU-additive | $(ratio "$(r ceiling_wrk)" "$(calc "$(r ceiling_wrk) + $(r read_pg)" 0)") ($(r ceiling_wrk) req/s HTTP, $(r read_pg) TPS) | (bound) | |
@cache@| C if the gateway's own work were free: Redis GET ÷ (ceiling + Redis GET) | $(r C_bound) (redis-benchmark GET/s: $(r redis_get) from $USERS clients, $(r redis_get_pipelined) from 2 clients $(r redis_depth) deep) | (bound) | |
@analytics@| analytics record path, 1 thread / 2 threads | $(r analytics_record/1_thread) / $(r analytics_record/2_threads) | ≪ 1 µs | $(awk -v a="$(r analytics_record/1_thread)" 'BEGIN { split(a, f, " "); print (f[2] == "ns" && f[1] < 1000) ? "yes" : (a == "n/a" ? "n/a" : "**no**") }') |
@rss@| gateway RSS over a ${RSS_SECS} s mixed run (first → last sample; growth in the second half) | $(r rss_first_mib) → $(r rss_last_mib) MiB ($(r rss_growth_pct) %; $(r rss_growth_last_half_mib) MiB) | flat: < 1 MiB in the second half | $(met "$(r rss_growth_last_half_mib)" '<' 1) |
@ceiling@| goose ceiling ÷ wrk ceiling on /api/health/live | $(r goose_vs_wrk) ($(r ceiling_goose) / $(r ceiling_wrk); loadtest itself: $(r ceiling_goose_self)) | (context) | |
@replicas@| read throughput, 2 replicas ÷ 1 replica per shard | $(r replicas_ratio) ($(r replicas2_gw) / $(r replicas1_gw)) | (context) | |
@cache@| cache speed-up, cached ÷ uncached point reads (wrk / goose) | $(r cache_speedup_wrk) / $(r cache_speedup_goose) | (context) | |
@ryw@| read-your-writes (ryw) | $(r ryw_misses) | 0 misses | $([[ $(r ryw_misses) == *" 0 misses"* ]] && echo yes || echo "**no**") |

## Details

| measurement | gateway | baseline | CPU during the gateway run / the baseline run |
|---|---|---|---|
@write@| single writes (1) | goose $(r write_gw), wrk $(r write_wrk) writes/s; goose p50 $(r write_gw_p50_ms) ms, $(r write_gw_pg_xacts_per_request) PostgreSQL transactions per write | $(r write_pg) TPS (pgbench, same upsert, $(split3 "$USERS" | tr ' ' '/') clients) | goose $(r write_gw_cpu); wrk $(r write_wrk_cpu) / $(r write_pg_cpu) |
@read@| replica point reads (2) | goose $(r read_gw), wrk $(r read_wrk) reads/s; goose p50 $(r read_gw_p50_ms) ms, p99 $(r read_gw_p99_ms) ms, $(r read_gw_pg_xacts_per_request) PostgreSQL transactions per read | $(r read_pg) TPS (pgbench -S -M prepared) | goose $(r read_gw_cpu); wrk $(r read_wrk_cpu) / $(r read_pg_cpu) |
@read@| the same reads, $((USERS * 4)) users (context) | $(r read_gw_x4) reads/s, p50 $(r read_gw_x4_p50_ms) ms | | $(r read_gw_x4_cpu) |
@bulk@| bulk writes (3) | $(r bulk_gw) rows/s ($(r bulk_gw_requests) requests/s × $BATCH, p50 $(r bulk_gw_p50_ms) ms) | $(r bulk_copy) rows/s ($(r bulk_copy_rows) rows in $(r bulk_copy_secs) s) | $(r bulk_gw_cpu) / $(r bulk_copy_cpu) |
@latency@| light-load read latency (4) | p50 $(r lat_gw_p50_us) µs (goose, $(r lat_gw_rate) reads/s), $(r lat_wrk_p50_us) µs (wrk -c1); gateway handler p50 $(r lat_gw_server_p50_ms) ms | p50 $(r lat_pg_p50_us) µs (pgbench -c 1, $(r lat_pg_rate) TPS) | |
@ceiling@| HTTP ceiling, /api/health/live (5) | goose $(r ceiling_goose) req/s | wrk $(r ceiling_wrk) req/s | $(r ceiling_goose_cpu) / $(r ceiling_wrk_cpu) |
@replicas@| replicas (6) | 2 per shard: $(r replicas2_gw) reads/s (served per replica port: $(r replicas2_served)) | 1 per shard: $(r replicas1_gw) reads/s | 2 replicas $(r replicas2_cpu) / 1 replica $(r replicas1_cpu) |
@ryw@| read-your-writes (6) | $(r ryw_pairs) write+read pairs/s; read p50 $(r ryw_read_p50_ms) ms, p99 $(r ryw_read_p99_ms) ms; $(r ryw_replica_share_pct) % of the reads served by a replica | eventual read (2): p50 $(r read_gw_p50_ms) ms, p99 $(r read_gw_p99_ms) ms | $(r ryw_cpu) |
@cache@| cache (7) | cached: wrk $(r cache_on_wrk), goose $(r cache_on_goose) reads/s ($(r cache_on_goose_hits)) | uncached: wrk $(r cache_off_wrk), goose $(r cache_off_goose) reads/s; ceiling wrk $(r cache_ceiling_wrk) req/s | cached $(r cache_on_wrk_cpu) / uncached $(r cache_off_wrk_cpu) |
@cache@| bare Redis GET round trips (7) | $(r redis_get) GET/s (redis-benchmark, $USERS clients, 400-byte values, not pipelined); $(r redis_get_pipelined) GET/s (2 clients, $(r redis_depth) deep) | | $(r redis_get_cpu) / $(r redis_get_pipelined_cpu) |
@cache@| cache at $((USERS * 4)) connections (context) | cached: wrk $(r cache_on_wrk_x4) reads/s = $(r C_x4) of the ceiling | ceiling wrk $(r cache_ceiling_wrk_x4) req/s | cached $(r cache_on_wrk_x4_cpu) |
@rss@| gateway RSS (8) | MiB every 5 s: $(r rss_samples_mib)(idle before the run: $(r rss_idle_mib) MiB) | under $(r rss_rate) | |

@write@Payload sizes (bytes of JSON): single writes $(r write_payload_bytes); bulk orders $(r bulk_payload_bytes).
EOF
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
