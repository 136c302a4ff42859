#!/usr/bin/env bash
# The book under docs/ (mdBook).
#   scripts/docs.sh build   build it into target/book and print the path (./setup.sh docs)
#   scripts/docs.sh check   build it, failing on any mdBook warning, then check that every
#                           relative link in docs/src, docs/*.md, README.md, CHANGELOG.md and
#                           CONTRIBUTING.md names a file that exists, and every #anchor a
#                           heading of that file; check the answer matcher on cases of known
#                           verdict; then run the examples (./setup.sh test runs it)
#   scripts/docs.sh examples [FILE.md ...]  run every shell block marked `<!-- run: STATUS ... -->`
#                           in README.md and docs/src (or in the files named) against a gateway of its own on the running
#                           topology (fresh databases per document, all made before the first runs), checking each curl's
#                           status and the answer its `# ...` lines show (answer_diff below;
#                           the marker's `varies: FIELD ...` names fields whose values differ
#                           from run to run). Needs the topology's environment
#                           (eval "$(./setup.sh env)"), jq, and the debug binaries api-router
#                           and shard-admin.
# mdBook is installed from crates.io with cargo, once, when the pinned version is missing.
set -euo pipefail

MDBOOK_VERSION=0.4.52
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
OUT="${CARGO_TARGET_DIR:-$REPO/target}/book"

say() { printf '==> %s\n' "$*" >&2; }

# The pinned mdbook on PATH or in cargo's bin directory, installed there when missing.
mdbook_bin() {
    local bin
    for bin in "$(command -v mdbook 2>/dev/null || true)" "${CARGO_HOME:-$HOME/.cargo}/bin/mdbook"; do
        if [[ -x $bin ]] && [[ $("$bin" --version 2>/dev/null) == "mdbook v$MDBOOK_VERSION" ]]; then
            printf '%s\n' "$bin"
            return
        fi
    done
    say "installing mdbook $MDBOOK_VERSION (cargo install, once; about 2 minutes)"
    cargo install mdbook --locked --no-default-features --version "$MDBOOK_VERSION" --quiet >&2
    printf '%s\n' "${CARGO_HOME:-$HOME/.cargo}/bin/mdbook"
}

# Builds the book; with `strict`, any warning or error mdBook logs fails it.
build() {
    local log status=0 bin
    bin=$(mdbook_bin)
    log=$(mktemp)
    "$bin" build "$REPO/docs" --dest-dir "$OUT" >"$log" 2>&1 || status=$?
    if ((status != 0)) || { [[ ${1:-} == strict ]] && grep -qE '\[(WARN|ERROR)\]' "$log"; }; then
        grep -vE '\[INFO\]' "$log" >&2 || true
        rm -f "$log"
        say "mdbook build failed (or warned)"
        return 1
    fi
    rm -f "$log"
}

# Every relative link [text](path#anchor) outside code: the path exists, relative to the
# file; an anchor names a heading of the target (GitHub's and mdBook's ids: lower case,
# spaces to '-', other punctuation dropped, '-1', '-2' for repeats). A link from the book's
# sources may not leave docs/src: the built book would not have its target. A page's
# mdBook `{{#include FILE}}` counts as written there: FILE's headings are the page's
# anchors, and FILE's links are checked from the page too (where the book renders them).
links() {
    local files=() f
    cd "$REPO"
    for f in README.md CHANGELOG.md CONTRIBUTING.md docs/*.md; do
        if [[ -f $f ]]; then files+=("$f"); fi
    done
    mapfile -t -O "${#files[@]}" files < <(find docs/src -name '*.md' | sort)
    awk '
        function dir(p) { return (p ~ /\//) ? substr(p, 1, match(p, /\/[^\/]*$/) - 1) : "." }
        function clean(p,   n, i, parts, out, k) {
            n = split(p, parts, "/"); k = 0
            for (i = 1; i <= n; i++) {
                if (parts[i] == "" || parts[i] == ".") continue
                if (parts[i] == ".." && k > 0 && out[k] != "..") { k--; continue }
                out[++k] = parts[i]
            }
            p = ""; for (i = 1; i <= k; i++) p = p (i > 1 ? "/" : "") out[i]
            return p == "" ? "." : p
        }
        function slug(h) {
            sub(/^#+[ \t]+/, "", h); sub(/[ \t]+#*[ \t]*$/, "", h)
            while (match(h, /\[[^]]*\]\([^)]*\)/)) {
                t = substr(h, RSTART + 1); t = substr(t, 1, index(t, "]") - 1)
                h = substr(h, 1, RSTART - 1) t substr(h, RSTART + RLENGTH)
            }
            h = tolower(h); gsub(/[^a-z0-9 _-]/, "", h); gsub(/ /, "-", h)
            return h
        }
        # The file an mdBook include line names (its path before any ":anchor" or
        # ":lines"), relative to the including file; "" for any other line.
        function included(file, line,   t) {
            if (line !~ /^[ \t]*\{\{#include [^}]+\}\}[ \t]*$/) return ""
            t = line; sub(/^[ \t]*\{\{#include[ \t]+/, "", t); sub(/[ \t]*\}\}[ \t]*$/, "", t); sub(/:.*/, "", t)
            return clean(dir(file) "/" t)
        }
        function load(p) { if (!(p in loaded)) { loaded[p] = 1; headings(p, p) } }
        # The headings of file f, as anchors of page p (f itself, or a page including it).
        function headings(p, f,   line, fence, s, inc) {
            fence = 0
            while ((getline line < f) > 0) {
                if (line ~ /^[ \t]*(```|~~~)/) { fence = !fence; continue }
                if (fence) continue
                if ((inc = included(f, line)) != "") { headings(p, inc); continue }
                if (line !~ /^#+[ \t]/) continue
                s = slug(line)
                if ((p, s) in anchor) { n = ++repeats[p, s]; s = s "-" n }
                anchor[p, s] = 1
            }
            close(f)
        }
        function exists(p) { return system("test -e \"" p "\"") == 0 }
        function check(file, lineno, target,   path, frag, i, resolved) {
            if (via != "") lineno = lineno " (" via ")"
            if (target ~ /^(https?:|mailto:|ftp:)/ || target ~ /^</) return
            sub(/[ \t]+"[^"]*"$/, "", target)
            i = index(target, "#")
            if (i) { path = substr(target, 1, i - 1); frag = substr(target, i + 1) } else { path = target; frag = "" }
            resolved = (path == "") ? file : clean(dir(file) "/" path)
            if (!exists(resolved)) { printf "%s:%s: dead link %s (no file %s)\n", file, lineno, target, resolved; bad++; return }
            if (file ~ /^docs\/src\// && resolved !~ /^docs\/src\//) {
                printf "%s:%s: link %s leaves the book (docs/src): the built book has no %s\n", file, lineno, target, resolved; bad++; return
            }
            if (frag != "" && resolved ~ /\.md$/) {
                load(resolved)
                if (!((resolved, frag) in anchor)) { printf "%s:%s: dead anchor %s (no such heading in %s)\n", file, lineno, target, resolved; bad++ }
            }
            links++
        }
        # The links of one line of text, checked as written in file at lineno.
        function links_of(file, lineno, line,   t) {
            gsub(/`[^`]*`/, "", line)
            if (match(line, /^[ \t]*\[[^]]+\]:[ \t]*[^ \t]+/)) {
                t = line; sub(/^[ \t]*\[[^]]+\]:[ \t]*/, "", t); sub(/[ \t].*$/, "", t)
                check(file, lineno, t)
                return
            }
            while (match(line, /\]\([^) \t]+( "[^"]*")?\)/)) {
                t = substr(line, RSTART + 2, RLENGTH - 3)
                line = substr(line, RSTART + RLENGTH)
                check(file, lineno, t)
            }
        }
        # The links of an included file, as the including page shows them.
        function links_included(file, lineno, f,   line, fence, n, inc) {
            if (!exists(f)) { printf "%s:%d: dead include (no file %s)\n", file, lineno, f; bad++; return }
            fence = 0; n = 0
            while ((getline line < f) > 0) {
                n++
                if (line ~ /^[ \t]*(```|~~~)/) { fence = !fence; continue }
                if (fence) continue
                if ((inc = included(f, line)) != "") { links_included(file, lineno, inc); continue }
                via = f ":" n
                links_of(file, lineno, line)
                via = ""
            }
            close(f)
        }
        FNR == 1 { fence = 0 }
        /^[ \t]*(```|~~~)/ { fence = !fence; next }
        fence { next }
        {
            if ((inc = included(FILENAME, $0)) != "") { links_included(FILENAME, FNR, inc); next }
            links_of(FILENAME, FNR, $0)
        }
        END {
            printf "links: %d relative link(s) checked, %d dead\n", links, bad
            exit bad > 0
        }
    ' "${files[@]}"
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

# How an answer differs from the one a document shows ($1: the `# ...` lines; $2: the
# body; $3: the varying field names), one line per difference; nothing when it matches.
# A shown answer that starts with `{` or `[` is JSON (one document, or one per line):
#   - an object's fields are checked, and the answer may have others;
#   - a string with `…` in it ("…", "7771…") stands for any string;
#   - `…` among an object's fields (`{"a":1,…}`) marks fields left out, at the end of an
#     array (`[{"shard":0},…]`) elements left out, and alone (`[…]`) any array;
#   - a field named in `varies:` must be there with the same JSON type, any value;
#   - anything else must be equal.
# Any other answer (CSV, `curl -i`'s status line and headers) is text: each shown line is
# a line of the answer, in the same order, where `…` stands for any text (a line of `…`
# alone for lines left out).
answer_diff() {
    local want=$1 got=$2 varies=$3
    if ! head -n 1 "$want" | grep -q '^[[:space:]]*[[{]'; then
        awk -v want="$want" '
            function like(line, pat,   n, parts, i, pos, k) {
                n = split(pat, parts, "…")
                if (n == 1) return line == pat
                if (substr(line, 1, length(parts[1])) != parts[1]) return 0
                pos = length(parts[1]) + 1
                for (i = 2; i < n; i++) {
                    k = index(substr(line, pos), parts[i])
                    if (!k) return 0
                    pos += k - 1 + length(parts[i])
                }
                return length(line) - pos + 1 >= length(parts[n]) && substr(line, length(line) - length(parts[n]) + 1) == parts[n]
            }
            BEGIN { while ((getline l < want) > 0) if (l !~ /^[[:space:]]*…[[:space:]]*$/) p[++n] = l }
            { sub(/\r$/, "") }
            i < n && like($0, p[i + 1]) { i++ }
            END { if (i < n) print "no line of the answer is like: " p[i + 1] }
        ' "$got"
        return
    fi
    # The shown answer as JSON: `…` outside strings becomes nothing (left-out fields) or
    # the array element "…" (left-out elements).
    tr '\n' ' ' <"$want" | sed -E \
        -e 's/,[[:space:]]*…[[:space:]]*\}/}/g' -e 's/\{[[:space:]]*…[[:space:]]*\}/{}/g' \
        -e 's/…[[:space:]]*,[[:space:]]*("[^"]*"[[:space:]]*:)/\1/g' \
        -e 's/([[,])[[:space:]]*…[[:space:]]*]/\1"…"]/g' >"$want.json"
    if ! jq -e -s . "$want.json" >/dev/null 2>&1; then
        echo "the shown answer is not JSON (… read as above): $(head -c 300 "$want.json")"
        return
    fi
    if ! jq -e -s . "$got" >/dev/null 2>&1; then
        echo "the answer is not JSON: $(head -c 300 "$got")"
        return
    fi
    jq -n -r --slurpfile want "$want.json" --slurpfile got "$got" \
        --argjson varies "$(jq -cn --arg v "$varies" '$v | split(" ") | map(select(. != ""))')" '
        def diff($want; $at):
            . as $got
            | if ($want | type) == "string" and ($want | contains("…")) then
                if ($got | type) == "string" then empty else "\($at): a string, got \($got | tojson)" end
            elif ($want | type) == "object" then
                if ($got | type) != "object" then "\($at): an object, got \($got | tojson)"
                else $want | to_entries[] | .key as $k | .value as $v
                    | if ($got | has($k) | not) then "\($at).\($k): missing"
                      elif ($varies | index([$k])) then
                          if ($got[$k] | type) == ($v | type) then empty
                          else "\($at).\($k): a \($v | type) (it varies), got \($got[$k] | tojson)" end
                      else $got[$k] | diff($v; "\($at).\($k)") end
                end
            elif ($want | type) == "array" then
                ($want | length > 0 and .[-1] == "…") as $open
                | ($want | if $open then .[:-1] else . end) as $items
                | if ($got | type) != "array" then "\($at): an array, got \($got | tojson)"
                  elif ($got | length) < ($items | length) or (($open | not) and ($got | length) != ($items | length)) then
                      "\($at): \($items | length)\(if $open then " or more" else "" end) elements, got \($got | length)"
                  else range(0; $items | length) as $i | $got[$i] | diff($items[$i]; "\($at)[\($i)]") end
            elif $want == $got then empty
            else "\($at): \($want | tojson), got \($got | tojson)" end;
        if ($want | length) > 1 and ($got | length) != ($want | length) then
            "\($want | length) JSON documents shown, \($got | length) answered"
        else range(0; $want | length) as $i
            | ($got[$i] | diff($want[$i]; if ($want | length) > 1 then "document \($i + 1) " else "" end))
        end'
}

# answer_diff on answers whose verdict is known, so a matcher that lets everything through
# (or nothing) fails the check: each case is a shown answer, an answer, the varying
# fields, and whether they must match, separated by `|`.
matcher() {
    local dir n=0 bad=0 want got varies verdict
    dir=$(mktemp -d)
    while IFS='|' read -r want got varies verdict; do
        n=$((n + 1))
        printf '%b\n' "$want" >"$dir/want"
        printf '%b' "$got" >"$dir/got"
        if [[ -z $(answer_diff "$dir/want" "$dir/got" "$varies") ]]; then got=match; else got=differ; fi
        if [[ $got != "$verdict" ]]; then
            echo "answer matcher: case $n should $verdict but does not: shown $want" >&2
            bad=$((bad + 1))
        fi
    done <<'CASES'
{"a":1,"b":"x"}|{"b":"x","a":1,"c":[]}||match
{"a":1}|{"a":2}||differ
{"a":1}|{"b":1}||differ
{"v":12,…,"lsn":"1:0/A"}|{"v":3,"x":0,"lsn":"1:0/B"}|v lsn|match
{"v":12}|{"v":"12"}|v|differ
{"id":"9d1c…"}|{"id":"anything"}||match
{"id":"…"}|{"id":7}||differ
{"s":[{"k":1},…]}|{"s":[{"k":1},{"k":2}]}||match
{"s":[{"k":1}]}|{"s":[{"k":1},{"k":2}]}||differ
{"s":[…]}|{"s":{}}||differ
{"a":1}\n{"b":2}|{"a":1}\n{"b":3}||differ
{"a":1,|{"a":1}||differ
HTTP/1.1 201 Created\n…\nreplayed: true|HTTP/1.1 201 Created\r\nx: 1\r\nreplayed: true\r\n||match
HTTP/1.1 201 Created\nreplayed: true|HTTP/1.1 201 Created\r\nx: 1\r\n||differ
u,a,…,"{""c"": 1}"|k\nu,a,1,2026-11-25T15:01,"{""c"": 1}"||match
u,a,…,"{""c"": 2}"|k\nu,a,1,2026-11-25T15:01,"{""c"": 1}"||differ
CASES
    rm -rf "$dir"
    if ((bad)); then return 1; fi
    echo "answer matcher: $n cases as expected"
}

# One command: run with `curl` writing its body to a file and its status to stdout (a
# GET is asked again for up to 3 s while its answer differs: eventual reads may lag);
# then the status and the answer its `# ...` lines show.
run_example() {
    local n=$1 dir=$2 url=$3 cmd status want body=$2/$1.body tries=0 diffs=""
    cmd=$(sed -e "s#http://127.0.0.1:8080#$url#g" -e "s#localhost:8080#${url#http://}#g" "$dir/$n.cmd")
    want=$(cat "$dir/$n.status")
    while :; do
        status=$(BODY=$body CMD=$cmd bash -c 'curl() { command curl "$@" -o "$BODY" -w "%{http_code}"; }; eval "$CMD"' 2>/dev/null) || true
        diffs=""
        if [[ -s $dir/$n.answer ]]; then diffs=$(answer_diff "$dir/$n.answer" "$body" "$(cat "$dir/$n.varies")"); fi
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
    if ! command -v jq >/dev/null; then
        echo "examples: jq is missing (apt-get install jq): it compares each answer with the one shown" >&2
        return 2
    fi
    if [[ -z ${SHARDGATE__DATABASE__PASSWORD:-} ]]; then
        echo "examples: no topology environment (run eval \"\$(./setup.sh env)\" after ./setup.sh up)" >&2
        return 2
    fi
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

case ${1:-build} in
    build)
        build
        printf '%s\n' "$OUT/index.html"
        ;;
    check)
        passed=0 failed=0 EXAMPLES_PASSED=0 EXAMPLES_FAILED=0
        if build strict; then passed=$((passed + 1)); say "mdbook build: no warning"; else failed=$((failed + 1)); fi
        if links; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
        if matcher; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
        # The examples need the topology: always under ./setup.sh test (SHARDGATE_SETUP),
        # else when its environment is there.
        if [[ -n ${SHARDGATE_SETUP:-} || -n ${SHARDGATE__DATABASE__PASSWORD:-} ]]; then
            examples || failed=$((failed + (EXAMPLES_FAILED > 0 ? 0 : 1)))
            passed=$((passed + EXAMPLES_PASSED)) failed=$((failed + EXAMPLES_FAILED))
        else
            say "examples: skipped (no topology environment: eval \"\$(./setup.sh env)\" to run them)"
        fi
        # The closing line in cargo's form, so ./setup.sh test counts these checks.
        if ((failed)); then
            echo "test result: FAILED. $passed passed; $failed failed; 0 ignored (docs: mdbook build, links, answer matcher, examples)"
            exit 1
        fi
        echo "test result: ok. $passed passed; $failed failed; 0 ignored (docs: mdbook build, links, answer matcher, examples)"
        ;;
    examples)
        shift
        examples "$@"
        ;;
    *)
        echo "usage: scripts/docs.sh build|check|examples" >&2
        exit 2
        ;;
esac
