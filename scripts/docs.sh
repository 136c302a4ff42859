#!/usr/bin/env bash
# The book under docs/ (mdBook), and the checks of every document.
#   scripts/docs.sh build   build it into target/book and print the path (./setup.sh docs)
#   scripts/docs.sh check   build it, failing on any mdBook warning; check every relative
#                           link and #anchor in docs/src, docs/*.md, README.md, CHANGELOG.md
#                           and CONTRIBUTING.md; check the answer matcher on cases of known
#                           verdict; then run the examples when the topology's environment
#                           is there (./setup.sh test runs it)
#   scripts/docs.sh examples [FILE.md ...]  run the documents' marked examples against the
#                           running topology (scripts/docs_examples.sh)
# mdBook is installed from crates.io with cargo, once, when the pinned version is missing.
set -euo pipefail

MDBOOK_VERSION=0.4.52
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
OUT="${CARGO_TARGET_DIR:-$REPO/target}/book"

# shellcheck source-path=SCRIPTDIR
. "$REPO/scripts/docs_examples.sh"

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

