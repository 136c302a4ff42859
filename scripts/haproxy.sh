# scripts/haproxy.sh: sourced by setup.sh (functions only). Several gateways
# (GATEWAYS=N ./setup.sh run) on 8081.. behind HAProxy on 8080: its config, and the
# gateways and HAProxy run as children of setup.sh until Ctrl-C.

# GATEWAYS gateways on 8081.. behind HAProxy on 8080, all children of this shell (no
# service manager): started in that order, each waited for, and all stopped together on
# Ctrl-C or SIGTERM, or when HAProxy exits. A gateway that dies later is taken out of
# rotation by HAProxy's health check and the others go on serving: that is the point of
# several, so it does not end the run.
run_gateways() {
    local bin=$1 i haproxy lb cfg=$LOCAL/haproxy.cfg pids=()
    shift
    haproxy=$(command -v haproxy 2>/dev/null || echo /usr/sbin/haproxy)
    [[ -x $haproxy ]] || die "haproxy is not installed (Debian package haproxy); run ./setup.sh up as root"
    check_gateway_ports
    write_haproxy_cfg >"$cfg"
    if ! "$haproxy" -c -q -f "$cfg" >"$LOCAL/haproxy.log" 2>&1; then
        log_tail "$LOCAL/haproxy.log"
        die "HAProxy refused $cfg"
    fi

    # pids is this function's; the handler runs while it waits, so it sees them.
    trap 'say "stopping the gateways and the load balancer"; stop_children "${pids[@]}"; exit 0' INT TERM
    for ((i = 1; i <= GATEWAYS; i++)); do
        # A gateway told to stop first answers not-ready for 3 s (HAProxy's checks:
        # every 1 s, two failures) while still serving, so HAProxy takes it out before
        # it closes a connection HAProxy might be sending on.
        # HAProxy sends each client's address in the PROXY protocol (send-proxy-v2 in
        # write_haproxy_cfg); the gateways believe it from HAProxy's address only, so
        # protected mode and the audit log judge the real client, not the proxy.
        SHARDGATE__SERVER__LISTEN="$HOST:$((GATEWAY_PORT + i))" SHARDGATE__SERVER__DRAIN_MS=3000 \
            SHARDGATE__SERVER__TRUSTED_PROXIES="$HOST/32" \
            "$bin" "$@" >"$LOCAL/gateway-$i.log" 2>&1 &
        pids+=("$!")
    done
    for ((i = 1; i <= GATEWAYS; i++)); do
        if ! wait_listening $((GATEWAY_PORT + i)) "${pids[i - 1]}"; then
            log_tail "$LOCAL/gateway-$i.log"
            stop_children "${pids[@]}"
            die "gateway $i did not start listening on $HOST:$((GATEWAY_PORT + i)) (log .local/gateway-$i.log)"
        fi
        say "gateway $i: http://$HOST:$((GATEWAY_PORT + i)) (log .local/gateway-$i.log)"
    done
    # -db: stays in the foreground of its own process and logs to stderr, a child like
    # the gateways.
    "$haproxy" -f "$cfg" -db >"$LOCAL/haproxy.log" 2>&1 &
    lb=$!
    pids+=("$lb")
    if ! wait_listening "$GATEWAY_PORT" "$lb"; then
        log_tail "$LOCAL/haproxy.log"
        stop_children "${pids[@]}"
        die "HAProxy did not start listening on $HOST:$GATEWAY_PORT (log .local/haproxy.log)"
    fi
    say "load balancer (HAProxy, round robin over the $GATEWAYS): http://$HOST:$GATEWAY_PORT (config .local/haproxy.cfg, log .local/haproxy.log)"
    say "Swagger UI: http://$HOST:$GATEWAY_PORT/swagger-ui/   dashboard: http://$HOST:$GATEWAY_PORT/dashboard"
    say "Ctrl-C stops every gateway and the load balancer"
    wait "$lb" || true
    log_tail "$LOCAL/haproxy.log" 10
    say "the load balancer exited; stopping the gateways"
    stop_children "${pids[@]}"
    exit 1
}

# Round robin over the gateways; each checked on /api/health/ready every second (two
# failures take it out, one success brings it back; a gateway told to stop answers 503
# there while it drains). A request whose connection is refused (a gateway just died,
# not yet seen by the check) is retried, the last time on another gateway (redispatch).
# A request that reached a gateway which then closed without answering (it died) is
# retried on another only when sending it twice is safe: a GET, or a request with an
# Idempotency-Key (the gateway answers a repeat from the shard's stored answer). The
# fixed part is scripts/haproxy-gateways.cfg; one server line per gateway follows it.
write_haproxy_cfg() {
    local i
    expand_template "$REPO/scripts/haproxy-gateways.cfg"
    for ((i = 1; i <= GATEWAYS; i++)); do
        # send-proxy-v2: each connection opens with the client's address (PROXY protocol
        # v2), which the gateways trust from $HOST only (server.trusted_proxies).
        printf '    server gw%d %s:%d send-proxy-v2 check inter 1s fall 2 rise 1\n' "$i" "$HOST" $((GATEWAY_PORT + i))
    done
}
