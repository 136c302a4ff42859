# scripts/gateways.sh: sourced by setup.sh (functions only). The gateway: its config
# for a non-default topology (.local/shardgate.toml), and `./setup.sh run`, which
# brings the topology up, builds the release gateway and runs it on 8080 (or GATEWAYS
# of them behind HAProxy, scripts/haproxy.sh).
#
write_gateway_config() {
    if ((SHARDS == DEFAULT_SHARDS && REPLICAS == DEFAULT_REPLICAS)) && ! ha_on; then
        # config/default.toml already describes this topology.
        if [[ -f $GEN_CONFIG ]] && is_generated_config; then
            rm -f "$GEN_CONFIG"
        fi
        return 0
    fi
    local content i r reps sep
    content="$GEN_MARKER for SHARDS=$SHARDS REPLICAS=$REPLICAS$(ha_on && echo ' HA=1')$(address_on && echo ' ADDRESS=1' || true); layered on config/default.toml
# with --config. Rewritten by every ./setup.sh up; removed for the default topology."
    for ((i = 0; i < SHARDS; i++)); do
        reps="" sep=""
        for ((r = 0; r < REPLICAS; r++)); do
            reps+="$sep\"$HOST:$(port_of "$(replica_name "$i" "$r")")\""
            sep=", "
        done
        if address_on; then
            content+=$'\n\n'"[[shards]]"$'\n'"primary = \"$(address_rw "$i")\""
            content+=$'\n'"replicas = [\"$(address_ro "$i")\"]"$'\n'"follow = \"address\""
            continue
        fi
        content+=$'\n\n'"[[shards]]"$'\n'"primary = \"$HOST:$(port_of "$(primary_name "$i")")\""
        content+=$'\n'"replicas = [$reps]"
    done
    if ha_on; then
        # pg_auto_failover promotes within seconds: writes wait for it rather than fail.
        content+=$'\n\n'"[failover]"$'\n'"write_wait_ms = $HA_WRITE_WAIT_MS"
    fi
    content+=$'\n'
    if [[ ! -f $GEN_CONFIG || $(<"$GEN_CONFIG")$'\n' != "$content" ]]; then
        printf '%s' "$content" >"$GEN_CONFIG"
        say "wrote $GEN_CONFIG ($SHARDS shards x $REPLICAS replicas$(ha_on && echo ", failover.write_wait_ms = $HA_WRITE_WAIT_MS"))"
    fi
}

is_generated_config() {   # .local/shardgate.toml exists and was written by us
    local first
    [[ -f $GEN_CONFIG ]] || return 1
    IFS= read -r first <"$GEN_CONFIG" || true
    [[ $first == "$GEN_MARKER"* ]]
}

config_args() {   # prints --config PATH when the generated config exists
    [[ -f $GEN_CONFIG ]] && printf '%s\n%s\n' --config "$GEN_CONFIG"
    return 0
}

cmd_run() {
    if [[ ! $GATEWAYS =~ ^[0-9]+$ ]] || ((10#$GATEWAYS < 1 || 10#$GATEWAYS > MAX_GATEWAYS)); then
        die "GATEWAYS must be a number from 1 to $MAX_GATEWAYS (got '$GATEWAYS'): 1 runs one gateway on $GATEWAY_PORT, more run them on $((GATEWAY_PORT + 1))+ behind HAProxy on $GATEWAY_PORT"
    fi
    GATEWAYS=$((10#$GATEWAYS))
    ((GATEWAYS == 1)) || check_gateway_ports   # now, not after the build (and again then)
    # Up (packages, servers), then the release build, migrate and init (seed_map).
    BUILD_PROFILE=release cmd_up
    cd "$REPO"
    local target=${CARGO_TARGET_DIR:-$REPO/target} args
    mapfile -t args < <(config_args)
    export_app_env
    if ((GATEWAYS > 1)); then
        run_gateways "$target/release/api-router" ${args[@]+"${args[@]}"}   # until Ctrl-C
    fi
    cat <<EOF
==> gateway:    http://127.0.0.1:8080
==> Swagger UI: http://127.0.0.1:8080/swagger-ui/
==> dashboard:  http://127.0.0.1:8080/dashboard
EOF
    exec "$target/release/api-router" ${args[@]+"${args[@]}"}
}

# GATEWAYS > 1 needs 8080 (HAProxy) and 8081.. free: say who holds one.
check_gateway_ports() {
    local i port pid
    for ((i = 0; i <= GATEWAYS; i++)); do
        port=$((GATEWAY_PORT + i))
        pid=$(listener_pid "$port")
        [[ -z $pid ]] || die "port $port is in use ($(describe_pid "$pid")); GATEWAYS=$GATEWAYS needs $GATEWAY_PORT-$((GATEWAY_PORT + GATEWAYS))"
    done
}
