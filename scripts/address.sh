# scripts/address.sh: sourced by setup.sh (functions only). `ADDRESS=1 ./setup.sh up`:
# each shard reached the way CloudNativePG's `-rw`/`-ro` Services or HAProxy before
# Patroni are reached, through two fixed addresses that HAProxy keeps pointed at the
# shard's pg_auto_failover nodes: `rw` (25450+N) leads to the node that takes writes,
# `ro` (25460+N) spreads over the standbys (and every node as a backup). The gateways'
# configuration names only those addresses, with `follow = "address"`, so they learn a
# failover from the servers behind the address, never from the monitor.
#
# HAProxy learns each node's role by signing in as shardgate_check (LOGIN, no privilege,
# trusted from 127.0.0.1 to the postgres database only) and reading the parameters
# PostgreSQL reports before ReadyForQuery: `in_hot_standby` and
# `default_transaction_read_only` (what libpq's target_session_attrs reads). A node
# marked down has its sessions cut. It runs as a daemon (.local/address-haproxy.pid),
# started by `up` and stopped by `down`.
#
# The choice is the cluster's, kept in its data directory (a file `address`) from the
# `up` that made it until `clean`: the map is seeded from it once.

ADDRESS_RW_BASE=25450       # shard N's rw address: 25450 + N
ADDRESS_RO_BASE=25460       # shard N's ro address: 25460 + N
ADDRESS_MAX_SHARDS=10
ADDRESS_CHECK_ROLE=shardgate_check
ADDRESS_CFG="$LOCAL/address-haproxy.cfg"
ADDRESS_PID="$LOCAL/address-haproxy.pid"
ADDRESS_LOG="$LOCAL/address-haproxy.log"

address_marker() { echo "${DATA_ROOT:-$CLUSTER_LINK}/address"; }

# Whether the shards are reached through their addresses: the cluster was made so, or
# this `up` makes it so.
address_on() {
    [[ -f $(address_marker) ]] && return 0
    [[ ${ADDRESS:-0} == 1 ]]
}

# At `up`, before the shards start: refuses what cannot be, records the choice for a new
# cluster.
address_choose() {
    if [[ -f $(address_marker) ]]; then
        [[ ${ADDRESS:-} != 0 ]] ||
            die "this cluster reaches its shards through addresses; ADDRESS=0 needs a new one: ./setup.sh clean first (deletes its data)"
        return 0
    fi
    [[ ${ADDRESS:-0} == 1 ]] || return 0
    ha_on || die "ADDRESS=1 puts HAProxy before each shard's pg_auto_failover nodes: it needs the HA manager (leave HA unset)"
    ((SHARDS <= ADDRESS_MAX_SHARDS)) || die "ADDRESS=1 has addresses for $ADDRESS_MAX_SHARDS shards at most (SHARDS=$SHARDS)"
    [[ ! -f $(datadir "$(primary_name 0)")/PG_VERSION ]] ||
        die "this cluster lists its shards' servers; ADDRESS=1 needs a new one: ./setup.sh clean first (deletes its data)"
    mkdir -p "$(dirname "$(address_marker)")"
    : >"$(address_marker)"
}

address_rw() { echo "$HOST:$((ADDRESS_RW_BASE + $1))"; }
address_ro() { echo "$HOST:$((ADDRESS_RO_BASE + $1))"; }

# The nodes of shard N, each as `name port`: the first node, then its replicas.
address_nodes() {
    local i=$1 r
    echo "$(primary_name "$i") $(port_of "$(primary_name "$i")")"
    for ((r = 0; r < REPLICAS; r++)); do
        echo "$(replica_name "$i" "$r") $(port_of "$(replica_name "$i" "$r")")"
    done
}

# After the formations are up: the check role on every shard (made on its writable node,
# replicated), each node trusting it from loopback, then HAProxy (re)started with the
# addresses, and every shard's rw found leading to a writable node.
address_up() {
    address_on || return 0
    local i name port formation writable hba line="host postgres $ADDRESS_CHECK_ROLE $HOST/32 trust"
    for ((i = 0; i < SHARDS; i++)); do
        formation=shard$i
        writable=$(ha_writable_port "$formation") || die "shard $i has no writable node for the address checks' role"
        sql "$writable" postgres "SET synchronous_commit = local;
            DO \$\$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ADDRESS_CHECK_ROLE') THEN
                    CREATE ROLE $ADDRESS_CHECK_ROLE LOGIN;
                END IF;
            END \$\$" >/dev/null
        while read -r name port; do
            hba=$(datadir "$name")/pg_hba.conf
            if [[ $(as_pg_read head -n 1 "$hba") != "$line" ]]; then
                as_pg sed -i "1i $line" "$hba"
                sql "$port" postgres "SELECT pg_reload_conf()" >/dev/null
            fi
        done < <(address_nodes "$i")
    done
    address_stop quiet
    write_address_cfg >"$ADDRESS_CFG"
    local haproxy
    haproxy=$(command -v haproxy 2>/dev/null || echo /usr/sbin/haproxy)
    [[ -x $haproxy ]] || die "haproxy is not installed (Debian package haproxy); run ./setup.sh up as root"
    if ! "$haproxy" -c -q -f "$ADDRESS_CFG" >"$ADDRESS_LOG" 2>&1; then
        log_tail "$ADDRESS_LOG"
        die "HAProxy refused $ADDRESS_CFG"
    fi
    "$haproxy" -D -p "$ADDRESS_PID" -f "$ADDRESS_CFG" >>"$ADDRESS_LOG" 2>&1 ||
        die "HAProxy for the shards' addresses did not start (log $ADDRESS_LOG)"
    for ((i = 0; i < SHARDS; i++)); do
        address_wait_writable "$i"
    done
    say "shards behind addresses (HAProxy, config $ADDRESS_CFG): rw $(address_rw 0).., ro $(address_ro 0).."
}

# Waits until shard N's rw address leads to a node that takes writes.
address_wait_writable() {
    local i=$1 t
    for ((t = 0; t < START_TIMEOUT * 5; t++)); do
        [[ $(address_sql "$(address_rw "$i")" "SELECT NOT pg_is_in_recovery()" 2>/dev/null) == t ]] && return 0
        sleep 0.2
    done
    die "shard $i's rw address $(address_rw "$i") leads to no writable node after ${START_TIMEOUT}s (log $ADDRESS_LOG)"
}

# One query through an address (host:port), as the superuser.
address_sql() {
    local port=${1##*:}
    sql "$port" postgres "$2"
}

address_stop() {
    local pid
    [[ -f $ADDRESS_PID ]] || return 0
    pid=$(<"$ADDRESS_PID")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        [[ ${1:-} == quiet ]] || say "stopping HAProxy before the shards' addresses"
        kill "$pid" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$ADDRESS_PID"
}

# Where each address leads now, asked through it: `status`.
address_status() {
    address_on || return 0
    local i kind addr found
    echo "shards behind addresses (HAProxy, log $ADDRESS_LOG):"
    for ((i = 0; i < SHARDS; i++)); do
        for kind in rw ro; do
            addr=$(address_"$kind" "$i")
            found=$(address_sql "$addr" "SELECT inet_server_port() || CASE WHEN pg_is_in_recovery() THEN ' (standby)' ELSE ' (writable)' END" 2>/dev/null) ||
                found="no answer"
            printf '  shard %d %s %s -> %s\n' "$i" "$kind" "$addr" "$found"
        done
    done
}

# `bytes` (printf's format, so \0 is a NUL) in upper-case hex, as HAProxy dumps an answer.
address_hex() {
    # shellcheck disable=SC2059 # the format is the bytes
    printf "$1" | od -An -v -tx1 | tr -d ' \n' | tr 'a-f' 'A-F'
}

# PostgreSQL's StartupMessage (protocol 3.0) for the check role on `postgres`, in hex.
address_startup_hex() {
    local body len
    body=$(address_hex "\\0\\003\\0\\0user\\0${ADDRESS_CHECK_ROLE}\\0database\\0postgres\\0\\0")
    len=$((${#body} / 2 + 4))
    printf '%08X%s' "$len" "$body"
}

# The `tcp-check` rules of a role: sign in, fail at once on an ErrorResponse, wait for
# ReadyForQuery (every ParameterStatus came before it), match each NAME=VALUE given,
# say goodbye.
address_checks() {
    local pair
    printf '    option tcp-check\n    tcp-check connect\n'
    printf '    tcp-check send-binary %s\n' "$(address_startup_hex)"
    printf '    tcp-check expect !rstring ^E min-recv 5\n'
    printf '    tcp-check expect rbinary %s\n' "$(address_hex 'Z\0\0\0\005I')"
    for pair in "$@"; do
        printf '    tcp-check expect rbinary %s min-recv 6\n' "$(address_hex "${pair%%=*}\\0${pair#*=}\\0")"
    done
    printf '    tcp-check send-binary %s\n' "$(address_hex 'X\0\0\0\004')"
}

write_address_cfg() {
    local i name port servers backups
    cat <<EOF
# Generated by setup.sh (ADDRESS=1) for $SHARDS shards; rewritten by every ./setup.sh up.
global
    pidfile $ADDRESS_PID

defaults
    mode tcp
    timeout connect 1s
    timeout client 1h
    timeout server 1h
    timeout check 1s
    default-server inter 300ms fastinter 100ms rise 1 fall 2 on-marked-down shutdown-sessions
EOF
    for ((i = 0; i < SHARDS; i++)); do
        servers="" backups=""
        while read -r name port; do
            servers+="    server $name $HOST:$port check"$'\n'
            backups+="    server ${name}_any $HOST:$port backup track shard${i}_any/$name"$'\n'
        done < <(address_nodes "$i")
        printf '\nlisten shard%d_rw\n    bind %s\n    balance first\n' "$i" "$(address_rw "$i")"
        address_checks in_hot_standby=off default_transaction_read_only=off
        printf '%s' "$servers"
        printf '\nlisten shard%d_ro\n    bind %s\n    balance roundrobin\n' "$i" "$(address_ro "$i")"
        address_checks in_hot_standby=on
        printf '%s%s' "$servers" "$backups"
        printf '\nbackend shard%d_any\n' "$i"
        address_checks
        printf '%s' "$servers"
    done
}
