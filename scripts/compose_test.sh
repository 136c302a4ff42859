# scripts/compose_test.sh: sourced by setup.sh (functions only). `./setup.sh compose test`:
# the stack of docker-compose.yml started fresh (project shardgate-test, volumes of its
# own; first the verdicts on volumes made under other passwords, scripts/compose_volumes.sh,
# and then the labels of its own), its gateway image checked (a numeric user, the OCI labels, one admin binary, no
# debug information), README.md's tour through its HAProxy, each gateway's health check
# (its own probe), then a shard's primary container killed:
#   1. COMPOSE_TEST_WRITES writes, every one acknowledged;
#   2. the primary of the first write's shard (pg_auto_failover's monitor says which)
#      killed (`kill`, SIGKILL); writes go on through HAProxy until COMPOSE_TEST_WRITES
#      more of them are acknowledged on that shard, by its other node, which the monitor
#      promoted (automatic failover in the containers: pg_auto_failover);
#   3. every write acknowledged before and after the kill read back (strong), counted;
#   4. the killed container started again: back as its shard's secondary;
#   5. each service stopped on its own: exit 0 within its grace period, none killed;
# then the stack taken down, its volumes removed. Any step failing stops the test with
# that step's name, the stack's last logs, and a non-zero exit.

COMPOSE_TEST_WRITES=${COMPOSE_TEST_WRITES:-30}

compose_test() {
    COMPOSE_STEP="start"
    local t0=$SECONDS
    trap 'compose_test_end' EXIT
    compose_test_volume_verdicts
    compose_start
    compose_test_volume_labels
    compose_test_image
    compose_test_tour
    compose_test_health
    compose_test_failover
    compose_test_stop
    COMPOSE_STEP="down"
    compose_stop -v
    trap - EXIT
    say "compose test: passed in $((SECONDS - t0))s (tour, failover of $COMPOSE_VICTIM, ${COMPOSE_READ_BACK} acknowledged writes read back)"
}

# The test's containers have the stack's names: none may be there already.
compose_test_free() {
    if [[ -n $("$COMPOSE_ENGINE" ps -a -q --filter name='^shardgate-' 2>/dev/null) ]]; then
        die "containers named shardgate-* exist (the stack is up?): ./setup.sh compose down first"
    fi
}

# Whatever failed (a die, a failed command): name the step, show the logs, take it down.
compose_test_end() {
    local rc=$?
    trap - EXIT
    ((rc == 0)) && return 0
    echo "compose test: FAILED at step: $COMPOSE_STEP (exit $rc)" >&2
    compose_logs meta monitor shard0-a shard0-b shard1-a shard1-b shard2-a shard2-b gateway1 lb 2>&1 |
        tail -n 200 >&2 || true
    "${COMPOSE_CMD[@]}" down -v >>"$COMPOSE_DIR/compose.log" 2>&1 || true
    "$COMPOSE_ENGINE" network rm -f "${COMPOSE_PROJECT}_default" >/dev/null 2>&1 || true
    exit "$rc"
}

step() {
    COMPOSE_STEP=$1
    say "compose test: $1"
}

# METHOD PATH [BODY [HEADER...]] through HAProxy: HTTP_CODE and HTTP_BODY.
http() {
    local method=$1 path=$2 body=${3:-} args=() out
    shift 3 || shift $#
    local h
    for h in "$@"; do args+=(-H "$h"); done
    [[ -n $body ]] && args+=(-H 'content-type: application/json' --data "$body")
    out=$(curl -s --max-time 20 -X "$method" -w '\n%{http_code}' "${args[@]}" "$COMPOSE_LB$path") || true
    HTTP_CODE=${out##*$'\n'}
    HTTP_BODY=${out%$'\n'*}
}

# Fails the step unless the last answer had status $1 (and its body holds $2).
expect() {
    [[ $HTTP_CODE == "$1" ]] || die "$COMPOSE_STEP: expected $1, got $HTTP_CODE: ${HTTP_BODY:0:300}"
    [[ -z ${2:-} || $HTTP_BODY == *"$2"* ]] || die "$COMPOSE_STEP: no '$2' in: ${HTTP_BODY:0:300}"
}

compose_test_tour() {
    step "tour: write"
    http POST /api/write '{"table":"users","id":"42","data":{"name":"Ada","city":"London"}}' 'x-shard-key: user_123'
    expect 201 '"created":true'
    local lsn
    lsn=$(sed -n 's/.*"lsn":"\([^"]*\)".*/\1/p' <<<"$HTTP_BODY")
    step "tour: read (eventual, strong, x-min-lsn $lsn)"
    http GET '/api/read?table=users&id=42' '' 'x-shard-key: user_123'
    expect 200 '"Ada"'
    http GET '/api/read?table=users&id=42&consistency=strong' '' 'x-shard-key: user_123'
    expect 200 '"source":"primary"'
    http GET '/api/read?table=users&id=42' '' 'x-shard-key: user_123' "x-min-lsn: $lsn"
    expect 200 '"London"'
    step "tour: bulk write"
    http POST /api/bulk-write '{"table":"events","records":[{"shard_key":"user_1","id":"e1","data":{"kind":"login"}},{"shard_key":"user_2","id":"e2","data":{"kind":"logout"}}]}'
    expect 200 '"written":2'
    step "tour: a transaction across shards"
    http POST /api/transaction '{"operations":[{"table":"users","shard_key":"alice","id":"alice","data":{"balance":70},"if_version":0},{"table":"users","shard_key":"bob","id":"bob","data":{"balance":30},"if_version":0}]}' 'idempotency-key: transfer-42'
    expect 200 '"committed":true'
    step "tour: list (every shard)"
    http GET '/api/read?table=users&limit=50'
    expect 200 '"alice"'
    [[ $HTTP_BODY == *'"bob"'* && $HTTP_BODY == *'"42"'* ]] || die "$COMPOSE_STEP: the list lacks bob or 42: ${HTTP_BODY:0:300}"
    step "tour: locate, health"
    http GET '/api/shards/locate?key=user_123'
    expect 200 '"shard"'
    http GET /api/health
    expect 200
}

# The verdicts on volumes made under other passwords (scripts/compose_volumes.sh), on two
# real volumes of a project of their own labelled as another checkout's would be, then on
# lines alone: adopted while that checkout's file holds their passwords, else refused
# naming them and `compose down -v`. A second.
compose_test_volume_verdicts() {
    step "volumes under other passwords: adopted or refused"
    local project=shardgate-volcheck dir=$COMPOSE_DIR/volcheck other lines verdict own=$SHARDGATE_COMPOSE_CREDENTIALS v fp
    rm -rf "$dir"
    mkdir -p "$dir"
    other=$dir/compose.env
    for v in "${COMPOSE_PASSWORDS[@]}"; do echo "$v=$(random_secret)"; done >"$other"
    fp=$(compose_fingerprint "$other")
    [[ $fp =~ ^[0-9a-f]{16}$ && $fp != "$own" ]] || die "$COMPOSE_STEP: fingerprint '$fp' (ours '$own')"
    for v in meta monitor; do
        "$COMPOSE_ENGINE" volume rm -f "${project}_$v" >/dev/null 2>&1 || true
        "$COMPOSE_ENGINE" volume create --label "com.docker.compose.project=$project" \
            --label "dev.shardgate.credentials=$fp" --label "dev.shardgate.env-file=$other" "${project}_$v" >/dev/null
    done
    lines=$(compose_volume_lines "$project")
    [[ $lines == "${project}_meta"$'\t'"$fp"$'\t'"$other"$'\n'"${project}_monitor"$'\t'"$fp"$'\t'"$other" ]] ||
        die "$COMPOSE_STEP: the volumes' labels read back as: $lines"
    expect_verdict() {
        verdict=$(compose_volumes_verdict "$own" "$project" <<<"$1")
        [[ $verdict == $2 ]] || die "$COMPOSE_STEP: $3: the verdict is '$verdict', not '$2'"
    }
    expect_verdict "$lines" "adopt $other" "another checkout's passwords, still there"
    local refused="refuse the volumes ${project}_meta ${project}_monitor (project $project) were made under the passwords of $other"
    local removal="Remove them (their data is lost): ./setup.sh compose down -v, or $COMPOSE_ENGINE volume rm ${project}_meta ${project}_monitor"
    sed -i "s/^REDIS_PASSWORD=.*/REDIS_PASSWORD=changed/" "$other"
    expect_verdict "$lines" "$refused, which holds others now;*$removal" "that file's passwords changed"
    rm -f "$other"
    expect_verdict "$lines" "$refused, which is gone;*$removal" "that file removed"
    expect_verdict "x_meta"$'\t\t' "refuse the volumes x_meta * passwords are unknown;*" "a volume without labels"
    expect_verdict "x_meta"$'\t'"$own"$'\t'"$other"$'\n'"x_monitor"$'\t'"$fp"$'\t'"$other" "refuse the volumes x_monitor *" "ours and another's"
    expect_verdict "x_meta"$'\t'"$own"$'\t'"$other" "ok" "ours"
    expect_verdict "" "ok" "none"
    for v in meta monitor; do "$COMPOSE_ENGINE" volume rm -f "${project}_$v" >/dev/null; done
    rm -rf "$dir"
}

# The stack's volumes, made before its start, carry this checkout's fingerprint.
compose_test_volume_labels() {
    step "the stack's volumes labelled with this checkout's passwords' fingerprint"
    local lines count
    lines=$(compose_volume_lines "$COMPOSE_PROJECT")
    count=$(grep -c $'\t'"$SHARDGATE_COMPOSE_CREDENTIALS"$'\t'"$SHARDGATE_COMPOSE_ENV"'$' <<<"$lines" || true)
    ((count == 8)) || die "$COMPOSE_STEP: $count of the 8 volumes labelled: $lines"
}

# The gateway's image to convention: a numeric user, the OCI labels (the version its
# binary says, this checkout's commit), one admin binary, and no debug information in
# either binary (copied out of a running gateway and read with readelf).
compose_test_image() {
    step "the gateway's image: user, labels, binaries"
    local user version label key binaries sections dir=$COMPOSE_DIR/image-check name
    user=$("$COMPOSE_ENGINE" image inspect -f '{{.Config.User}}' shardgate:local)
    [[ $user =~ ^[1-9][0-9]*:[0-9]+$ ]] || die "$COMPOSE_STEP: USER is '$user', not a numeric uid:gid other than root"
    version=$("$COMPOSE_ENGINE" exec shardgate-gateway1 api-router --version | awk '{ print $2 }')
    for key in title:shardgate version:"$version" revision:"$(git -C "$REPO" rev-parse HEAD)" licenses:MIT \
        source:"$(compose_source)"; do
        label=$("$COMPOSE_ENGINE" image inspect -f "{{index .Config.Labels \"org.opencontainers.image.${key%%:*}\"}}" shardgate:local)
        [[ $label == "${key#*:}" ]] || die "$COMPOSE_STEP: label org.opencontainers.image.${key%%:*} is '$label', not '${key#*:}'"
    done
    binaries=$("$COMPOSE_ENGINE" exec shardgate-gateway1 ls /usr/local/bin | tr '\n' ' ')
    [[ $binaries == "api-router shard-admin " ]] || die "$COMPOSE_STEP: /usr/local/bin holds '$binaries', not api-router and shard-admin alone"
    rm -rf "$dir"
    mkdir -p "$dir"
    for name in api-router shard-admin; do
        "$COMPOSE_ENGINE" cp "shardgate-gateway1:/usr/local/bin/$name" "$dir/$name" >/dev/null
        sections=$(readelf -S -W "$dir/$name") || die "$COMPOSE_STEP: readelf -S $dir/$name failed"
        [[ $sections == *' .symtab '* ]] || die "$COMPOSE_STEP: the image's $name has no symbol table (profiles need it)"
        [[ $sections != *' .debug_info '* ]] ||
            die "$COMPOSE_STEP: the image's $name has debug information ($(du -h "$dir/$name" | cut -f1)): $(grep -o '\.debug_[a-z_]*' <<<"$sections" | tr '\n' ' ')"
    done
    say "  user $user; version $version; api-router $(du -h "$dir/api-router" | cut -f1), shard-admin $(du -h "$dir/shard-admin" | cut -f1), no debug information"
    rm -rf "$dir"
}

# Each gateway's health check, the compose file's own (`api-router probe --ready`, no
# shell): podman runs it on demand (it runs none by itself without systemd); Docker's
# engine runs it and says the outcome.
compose_test_health() {
    local n deadline
    for n in gateway1 gateway2 gateway3; do
        step "health check of $n (api-router probe --ready)"
        if [[ $COMPOSE_ENGINE == podman ]]; then
            podman healthcheck run "shardgate-$n" >/dev/null 2>&1 ||
                die "$COMPOSE_STEP: unhealthy: $(podman exec "shardgate-$n" api-router probe --ready --config /etc/shardgate/shardgate.toml 2>&1 | tail -n 1)"
        else
            deadline=$((SECONDS + 30))
            until [[ $(docker inspect -f '{{.State.Health.Status}}' "shardgate-$n") == healthy ]]; do
                ((SECONDS < deadline)) || die "$COMPOSE_STEP: not healthy after 30s: $(docker inspect -f '{{json .State.Health}}' "shardgate-$n")"
                sleep 1
            done
        fi
    done
}

# The shard a write answer names.
answer_shard() { sed -n 's/^{.*"shard":\([0-9]*\).*/\1/p' <<<"$HTTP_BODY"; }

# "name:reported/goal ..." of formation $1's nodes, from the monitor (a killed node's
# reported state is its last report).
monitor_states() {
    "$COMPOSE_ENGINE" exec -u postgres -e PGPASSFILE=/var/lib/postgresql/data/autoctl/pgpass shardgate-monitor \
        psql -X -q -w -At -h /var/run/postgresql -U postgres -d pg_auto_failover -c \
        "SELECT string_agg(nodename || ':' || reportedstate || '/' || goalstate, ' ' ORDER BY nodename) FROM pgautofailover.node WHERE formationid = '$1'"
}

compose_test_failover() {
    local i=0 acked=() shard victim survivor states killed n_after=0 unacked=0 first_back=""
    step "writes before the kill"
    for ((i = 1; i <= COMPOSE_TEST_WRITES; i++)); do
        http POST /api/write "{\"table\":\"orders\",\"id\":\"c$i\",\"data\":{\"n\":$i}}" "x-shard-key: k$i"
        expect 201
        acked+=("$i")
        [[ -n ${shard:-} ]] || shard=$(answer_shard)
    done
    states=$(monitor_states "shard$shard")
    victim=$(sed -n 's/.*\(shard[0-9]-[ab]\):primary\/primary.*/\1/p' <<<"$states")
    [[ -n $victim ]] || die "$COMPOSE_STEP: no primary in formation shard$shard: $states"
    survivor=${victim%-?}-$([[ $victim == *-a ]] && echo b || echo a)
    say "  $COMPOSE_TEST_WRITES writes acknowledged; shard $shard: $states"

    step "kill $victim (the primary of shard $shard)"
    "$COMPOSE_ENGINE" kill "shardgate-$victim" >/dev/null
    killed=$SECONDS
    COMPOSE_VICTIM=$victim

    step "writes after the kill, until $COMPOSE_TEST_WRITES land on shard $shard"
    local deadline=$((SECONDS + 180))
    while ((n_after < COMPOSE_TEST_WRITES)); do
        ((SECONDS < deadline)) || die "$COMPOSE_STEP: only $n_after writes on shard $shard acknowledged in 180s"
        http POST /api/write "{\"table\":\"orders\",\"id\":\"c$i\",\"data\":{\"n\":$i}}" "x-shard-key: k$i"
        if [[ $HTTP_CODE == 201 ]]; then
            acked+=("$i")
            if [[ $(answer_shard) == "$shard" ]]; then
                n_after=$((n_after + 1))
                [[ -n $first_back ]] || first_back=$((SECONDS - killed))
            fi
        else
            unacked=$((unacked + 1))
        fi
        i=$((i + 1))
    done
    states=$(monitor_states "shard$shard")
    say "  first write on shard $shard acknowledged ${first_back}s after the kill; $n_after there, $((${#acked[@]} - COMPOSE_TEST_WRITES)) in all since the kill, $unacked not acknowledged (failed, never promised); shard $shard: $states"
    [[ " $states " == *" $survivor:primary/"* || " $states " == *" $survivor:wait_primary/"* ]] ||
        die "$COMPOSE_STEP: $survivor is not shard $shard's primary: $states"

    step "every acknowledged write read back"
    local found=0 missing=()
    for i in "${acked[@]}"; do
        http GET "/api/read?table=orders&id=c$i&consistency=strong" '' "x-shard-key: k$i"
        # The record's data as written ({"n": i}, as PostgreSQL prints JSON).
        if [[ $HTTP_CODE == 200 && $HTTP_BODY =~ \"n\":\ ?$i[,}] ]]; then
            found=$((found + 1))
        else
            missing+=("c$i:$HTTP_CODE")
        fi
    done
    say "  ${#acked[@]} acknowledged (${COMPOSE_TEST_WRITES} before the kill, $((${#acked[@]} - COMPOSE_TEST_WRITES)) after), $found read back, ${#missing[@]} missing"
    ((${#missing[@]} == 0)) || die "$COMPOSE_STEP: acknowledged writes lost: ${missing[*]:0:20}; the last answer: ${HTTP_BODY:0:300}"
    COMPOSE_READ_BACK=$found

    step "$victim started again, back as shard $shard's secondary"
    # (podman says here it cannot run the health checks without systemd: no matter.)
    "$COMPOSE_ENGINE" start "shardgate-$victim" >/dev/null 2>&1
    deadline=$((SECONDS + 180))
    until [[ " $(monitor_states "shard$shard") " == *" $victim:secondary/secondary $survivor:primary/primary "* ||
        " $(monitor_states "shard$shard") " == *" $survivor:primary/primary $victim:secondary/secondary "* ]]; do
        ((SECONDS < deadline)) || die "$COMPOSE_STEP: $victim not a secondary after 180s: $(monitor_states "shard$shard")"
        sleep 1
    done
    say "  shard $shard: $(monitor_states "shard$shard")"
}

# Each service stopped on its own (`compose stop SERVICE`, its stop signal and grace
# period), in the reverse order of the start: each must exit by itself, not be killed at
# the end of its grace (exit code 137), and exit 0: every one stops cleanly on its signal.
compose_test_stop() {
    local svc code t0 took=() failed=()
    for svc in lb gateway1 gateway2 gateway3 "${COMPOSE_SHARDS[@]/%/-b}" "${COMPOSE_SHARDS[@]/%/-a}" \
        redis monitor meta; do
        step "stop $svc"
        t0=$SECONDS
        compose_run stop ${COMPOSE_STOP_ARGS[@]+"${COMPOSE_STOP_ARGS[@]}"} "$svc"
        code=$("$COMPOSE_ENGINE" inspect -f '{{.State.ExitCode}}' "shardgate-$svc")
        took+=("$svc:${code}/$((SECONDS - t0))s")
        [[ $code == 0 ]] || failed+=("$svc exited $code$([[ $code == 137 ]] && echo ' (SIGKILL: not stopped within its grace)')")
    done
    say "  exit code/seconds: ${took[*]}"
    ((${#failed[@]} == 0)) || { compose_logs "${failed[@]%% *}"; die "compose test: unclean stops: ${failed[*]}"; }
}
