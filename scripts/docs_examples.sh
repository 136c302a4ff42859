# scripts/docs_examples.sh: sourced by scripts/docs.sh (functions only). The documents'
# marked examples: every shell block under a `<!-- run: STATUS ... -->` marker in
# README.md and docs/src (or in the files named) runs against a gateway of its own on
# the running topology (fresh databases per document, all made before the first runs).
# Each curl must answer its status, and the answer its `# ...` lines show, as the answer
# matcher judges it (doc-examples/src/answer.rs, built here; the marker's
# `varies: FIELD ...` names fields whose values differ from run to run). Needs the
# topology's environment (eval "$(./setup.sh env)") and the debug binaries api-router
# and shard-admin.

# The answer matcher's binary (doc-examples/src/main.rs), built when missing or stale.
answer_matcher() {
    (cd "$REPO" && cargo build --quiet -p doc-examples --bin doc-examples) >&2 || return 1
    printf '%s\n' "${CARGO_TARGET_DIR:-$REPO/target}/debug/doc-examples"
}

# The answer matcher on answers whose verdict is known (doc-examples/src/answer.rs), so
# a matcher that lets everything through (or nothing) fails the check. No server needed.
matcher() {
    local bin
    bin=$(answer_matcher) || { echo "answer matcher: the build failed" >&2; return 1; }
    "$bin" known-verdicts
}

# The marked examples, one file per command under $1: N.doc (document:line), N.status
# (the status the marker gives it), N.varies (the marker's varying fields), N.cmd (the
# command, continuation lines and multi-line quotes joined, an inline `  # comment`
# dropped) and N.answer (the `# ...` lines after it).
extract_examples() {
    local dir=$1 files=()
    shift
    if (($#)); then files=("$@"); else mapfile -t files < <(printf '%s\n' README.md; find docs/src -name '*.md' | sort); fi
    awk -v dir="$dir" '
        function quotes(t,   n, i) { n = 0; for (i = 1; i <= length(t); i++) if (substr(t, i, 1) == "\047") n++; return n }
        function uncomment(t,   i, q, c) {
            q = 0
            for (i = 1; i <= length(t); i++) {
                c = substr(t, i, 1)
                if (c == "\047") q = !q
                if (!q && c == "#" && i > 1 && substr(t, i - 1, 1) ~ /[ \t]/) return substr(t, 1, i - 1)
            }
            return t
        }
        function flush() {
            if (cmd == "") return
            n++
            if (next_status > nstatus) { printf "%s:%d: more commands than statuses in its run marker\n", FILENAME, cmd_line > "/dev/stderr"; bad = 1 }
            print FILENAME ":" cmd_line > (dir "/" n ".doc")
            print status[next_status++] > (dir "/" n ".status")
            print varies > (dir "/" n ".varies")
            close(dir "/" n ".varies")
            print cmd > (dir "/" n ".cmd")
            printf "%s", answer > (dir "/" n ".answer")
            close(dir "/" n ".doc"); close(dir "/" n ".status"); close(dir "/" n ".cmd"); close(dir "/" n ".answer")
            cmd = ""; answer = ""
        }
        FNR == 1 { marked = 0; inblock = 0 }
        /^<!-- run: .* -->$/ {
            line = $0; sub(/^<!-- run: */, "", line); sub(/ *-->$/, "", line)
            varies = ""
            if (match(line, / *varies: */)) { varies = substr(line, RSTART + RLENGTH); line = substr(line, 1, RSTART - 1) }
            nstatus = split(line, status, " "); next_status = 1; marked = 1; next
        }
        marked && !inblock && /^```/ { inblock = 1; cmd = ""; answer = ""; open = 0; cont = 0; next }
        inblock && /^```/ {
            flush()
            if (next_status <= nstatus) { printf "%s:%d: fewer commands than statuses in its run marker\n", FILENAME, FNR > "/dev/stderr"; bad = 1 }
            inblock = 0; marked = 0; next
        }
        !inblock { next }
        {
            if (open || cont) {
                cmd = cmd "\n" (open ? $0 : uncomment($0))
            } else {
                if ($0 ~ /^[ \t]*$/) next
                if ($0 ~ /^#/) { t = $0; sub(/^# ?/, "", t); answer = answer t "\n"; next }
                flush(); answer = ""
                cmd_line = FNR; cmd = uncomment($0)
            }
            open = quotes(cmd) % 2
            cont = !open && ($0 ~ /\\$/)
        }
        END { exit bad }
    ' "${files[@]}"
}

# Fresh databases named $1 on the servers $2 (the metadata server and every primary;
# more words: the replicas), migrated and seeded, and replayed by every replica; the
# programs' output in the log $3.
prepare_databases() {
    local db=$1 servers=$2 replicas=$3 log=$4 bin=${CARGO_TARGET_DIR:-$REPO/target}/debug config=() server i
    if [[ -f $REPO/.local/shardgate.toml ]]; then config=(--config "$REPO/.local/shardgate.toml"); fi
    export SHARDGATE__DATABASE__DBNAME=$db SHARDGATE__METADATA__DBNAME=$db NO_COLOR=1
    for server in $servers; do
        sql "$server" postgres "CREATE DATABASE $db" >>"$log" 2>&1 &   # every server at once
    done
    wait
    "$bin/shard-admin" "${config[@]}" migrate >>"$log" 2>&1 || return 1
    "$bin/shard-admin" "${config[@]}" init >>"$log" 2>&1 || return 1
    # Every replica has replayed the schema before the first read can reach it.
    for server in $replicas; do
        for ((i = 0; i < 300; i++)); do
            sql "$server" "$db" "SELECT 1 FROM records LIMIT 1" >/dev/null 2>&1 && break
            sleep 0.1
        done
    done
}

# A gateway of its own on the databases named $1 (prepare_databases made them); sets URL
# once it listens (GATEWAY: its pid).
start_gateway() {
    local db=$1 log=$2 bin=${CARGO_TARGET_DIR:-$REPO/target}/debug config=() port i
    if [[ -f $REPO/.local/shardgate.toml ]]; then config=(--config "$REPO/.local/shardgate.toml"); fi
    export SHARDGATE__DATABASE__DBNAME=$db SHARDGATE__METADATA__DBNAME=$db NO_COLOR=1
    RUST_LOG=info "$bin/api-router" "${config[@]}" --listen 127.0.0.1:0 >>"$log" 2>&1 &
    GATEWAY=$!
    for ((i = 0; i < 300; i++)); do
        port=$(sed -n 's/.*gateway listening port=\([0-9]*\).*/\1/p' "$log" | head -n 1)
        if [[ -n $port ]]; then URL=http://127.0.0.1:$port; return; fi
        kill -0 "$GATEWAY" 2>/dev/null || break
        sleep 0.1
    done
    echo "the gateway did not start (log $log)" >&2
    return 1
}

# psql as the application role on server $1 (host:port), database $2.
sql() {
    local psql
    psql=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql | tail -n 1)
    PGPASSWORD=$SHARDGATE__DATABASE__PASSWORD "$psql" -X -q -w -h "${1%:*}" -p "${1##*:}" \
        -U "${SHARDGATE__DATABASE__USER:-shardgate}" -d "$2" -c "$3"
}

# The gateway stopped, then the databases named $1 dropped on the servers $2, all at once.
stop_gateway() {
    local db=$1 servers=$2 server drops=()
    if [[ -n ${GATEWAY:-} ]]; then kill -TERM "$GATEWAY" 2>/dev/null || true; wait "$GATEWAY" 2>/dev/null || true; fi
    GATEWAY=
    for server in $servers; do
        sql "$server" postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 &
        drops+=($!)
    done
    if ((${#drops[@]})); then wait "${drops[@]}" || true; fi
}

# One command: run with `curl` writing its body to a file and its status to stdout (a
# GET is asked again for up to 3 s while its answer differs: eventual reads may lag);
# then the status and the answer its `# ...` lines show.
run_example() {
    local n=$1 dir=$2 url=$3 cmd status want body=$2/$1.body tries=0 diffs="" varies=()
    read -ra varies <"$dir/$n.varies" || true
    cmd=$(sed -e "s#http://127.0.0.1:8080#$url#g" -e "s#localhost:8080#${url#http://}#g" "$dir/$n.cmd")
    want=$(cat "$dir/$n.status")
    while :; do
        status=$(BODY=$body CMD=$cmd bash -c 'curl() { command curl "$@" -o "$BODY" -w "%{http_code}"; }; eval "$CMD"' 2>/dev/null) || true
        diffs=""
        if [[ -s $dir/$n.answer ]]; then
            diffs=$("$ANSWER_MATCHER" diff "$dir/$n.answer" "$body" "${varies[@]}" 2>&1) ||
                diffs=${diffs:-the answer matcher failed}
        fi
        [[ $status == "$want" && -z $diffs ]] && break
        [[ $cmd == *" -X "* || $cmd == *" -d "* ]] && break
        ((++tries < 15)) || break
        sleep 0.2
    done
    if [[ $status != "$want" || -n $diffs ]]; then
        printf '%s: expected %s, got %s\n  %s\n%s  answer: %s\n' "$(cat "$dir/$n.doc")" "$want" "$status" \
            "$(head -n 1 "$dir/$n.cmd")" "$(printf '%s\n' "$diffs" | sed '/^$/d; s/^/  differs: /')${diffs:+$'\n'}" \
            "$(head -c 300 "$body" 2>/dev/null)"
        return 1
    fi
}

# Every marked example, each document on databases and a gateway of its own, one
# document after the other. Every document's databases are made first, a few documents
# at a time, and dropped at the end, so no schema is being made while examples run (a
# replica replaying it could lag past max_lag and the reads the documents show on a
# replica would go to the primary).
examples() {
    local dir n doc first=() i dbs=() ready=() pids=() servers replicas passed=0 failed=0 log bin config=()
    if [[ -z ${SHARDGATE__DATABASE__PASSWORD:-} ]]; then
        echo "examples: no topology environment (run eval \"\$(./setup.sh env)\" after ./setup.sh up)" >&2
        return 2
    fi
    ANSWER_MATCHER=$(answer_matcher) || { echo "examples: the answer matcher did not build" >&2; return 2; }
    cd "$REPO"
    dir=$(mktemp -d)
    extract_examples "$dir" "$@" || { rm -rf "$dir"; return 1; }
    # Each document's first example, and one past the last.
    for ((n = 1; ; n++)); do
        [[ -f $dir/$n.cmd ]] || break
        doc=$(cut -d: -f1 "$dir/$n.doc")
        if ((n == 1)) || [[ $doc != $(cut -d: -f1 "$dir/$((n - 1)).doc") ]]; then first+=("$n"); fi
    done
    first+=("$n")
    for ((i = 0; i + 1 < ${#first[@]}; i++)); do dbs+=("sgtest_docs_$(date +%s)_$$_${first[i]}"); done
    # The servers the databases live on, from the configuration.
    bin=${CARGO_TARGET_DIR:-$REPO/target}/debug
    if [[ -f $REPO/.local/shardgate.toml ]]; then config=(--config "$REPO/.local/shardgate.toml"); fi
    NO_COLOR=1 "$bin/shard-admin" "${config[@]}" check >"$dir/shards" 2>&1 || true
    servers="${SHARDGATE__METADATA__ADDRESS:-127.0.0.1:25430} $(sed -n 's/^shard-[0-9]*: primary \([^,]*\),.*/\1/p' "$dir/shards" | tr '\n' ' ')"
    replicas=$(sed -n 's/.*replicas \[\([^]]*\)\].*/\1/p' "$dir/shards" | tr ',\n' '  ')
    GATEWAY=
    trap 'kill "${pids[@]}" 2>/dev/null || true; stop_gateway "" ""; for n in "${dbs[@]}"; do stop_gateway "$n" "$servers"; done; rm -rf "$dir"' EXIT
    for ((i = 0; i < ${#dbs[@]}; i++)); do
        prepare_databases "${dbs[i]}" "$servers" "$replicas" "$dir/gateway-$i.log" &
        pids[i]=$!
        if ((i % 3 == 2 || i + 1 == ${#dbs[@]})); then   # three documents at a time
            for n in "${!pids[@]}"; do
                ready[n]=1
                wait "${pids[n]}" || ready[n]=0
            done
            pids=()
        fi
    done
    for ((i = 0; i + 1 < ${#first[@]}; i++)); do
        log=$dir/gateway-$i.log
        URL=
        if ((ready[i])); then start_gateway "${dbs[i]}" "$log" || true; fi
        [[ -n $URL ]] || cat "$log" >&2
        for ((n = first[i]; n < first[i + 1]; n++)); do
            if [[ -n $URL ]] && run_example "$n" "$dir" "$URL"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
        done
        stop_gateway "" ""
    done
    for ((i = 0; i < ${#dbs[@]}; i++)); do stop_gateway "${dbs[i]}" "$servers" & done
    wait
    trap - EXIT
    rm -rf "$dir"
    echo "examples: $passed passed, $failed failed"
    EXAMPLES_PASSED=$passed EXAMPLES_FAILED=$failed
    ((failed == 0))
}
