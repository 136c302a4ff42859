#!/usr/bin/env bash
# The book under docs/ (mdBook), and the checks of every document.
#   scripts/docs.sh build   build it into target/book and print the path (./setup.sh docs)
#   scripts/docs.sh check   build it, failing on any mdBook warning; check every relative
#                           link and #anchor in docs/src, docs/*.md, README.md, CHANGELOG.md
#                           and CONTRIBUTING.md (remark-validate-links, pinned in
#                           scripts/links/); check the answer matcher on cases of known
#                           verdict; then run the examples when the topology's environment
#                           is there (./setup.sh test runs it)
#   scripts/docs.sh examples [FILE.md ...]  run the documents' marked examples against the
#                           running topology (scripts/docs_examples.sh)
# mdBook is installed from crates.io with cargo, once, when the pinned version is missing;
# the link checker from npm, at the versions scripts/links/package-lock.json pins.
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

# The documents a reader takes in whole stay short: the README a newcomer's first
# minutes, BENCHMARKS one table a topic (the history of runs goes to CHANGELOG.md).
lengths() {
    local file most lines ok=0
    for file in README.md:220 docs/BENCHMARKS.md:400; do
        most=${file#*:} file=${file%:*}
        lines=$(wc -l <"$REPO/$file")
        if ((lines > most)); then
            say "length: $file has $lines lines, more than $most"
            ok=1
        fi
    done
    ((ok == 0)) && say "length: README.md and docs/BENCHMARKS.md within their bounds"
    return "$ok"
}

# remark with remark-validate-links, at the versions scripts/links/package-lock.json pins:
# `npm ci` into scripts/links/node_modules (git-ignored) the first time, and again
# whenever the lock file changes; no install script of a package is run.
remark_bin() {
    local dir=$REPO/scripts/links
    if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.shardgate-lock.json"; then
        if ! command -v npm >/dev/null 2>&1; then
            say "links: no npm here (Node.js 18 or newer): apt-get install nodejs npm (./setup.sh up does)"
            return 1
        fi
        say "installing the link checker (npm ci in scripts/links, once; about 15 seconds)"
        (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2 || return 1
        cp "$dir/package-lock.json" "$dir/node_modules/.shardgate-lock.json"
    fi
    printf '%s\n' "$dir/node_modules/.bin/remark"
}

# Every relative link and image outside code names a file that exists, and an #anchor a
# heading of its target (remark-validate-links; web links are not followed): in README.md,
# CHANGELOG.md, CONTRIBUTING.md and docs/*.md where they are, and in the book as mdBook
# renders it, checked alone in a copy of docs/src: there a link that leaves the book
# names a file the copy does not have, as the built book would not, and each page's
# `{{#include FILE}}` line is replaced by FILE (whole), so FILE's headings are the page's
# anchors and FILE's links are checked from the page.
links() {
    local bin files=() f tmp status=0
    bin=$(remark_bin) || return 1
    cd "$REPO"
    for f in README.md CHANGELOG.md CONTRIBUTING.md docs/*.md; do
        if [[ -f $f ]]; then files+=("$f"); fi
    done
    remark "$bin" "${files[@]}" || status=1
    tmp=$(mktemp -d)
    mkdir "$tmp/docs"
    cp -R docs/src "$tmp/docs/src"
    while IFS= read -r f; do
        awk -v dir="$(dirname "docs/src/$f")" '
            /^[ \t]*\{\{#include [^}]+\}\}[ \t]*$/ {
                file = $0; sub(/^[ \t]*\{\{#include[ \t]+/, "", file); sub(/[ \t]*[:}].*/, "", file)
                while ((getline line < (dir "/" file)) > 0) print line
                close(dir "/" file); next
            }
            { print }' "docs/src/$f" >"$tmp/docs/src/$f"
    done < <(cd docs/src && grep -rl --include='*.md' '{{#include ' .)
    if ! (cd "$tmp" && remark "$bin" docs/src); then
        say "links: the book's pages above were checked in a copy of docs/src alone: a link that leaves the book finds no file there, as in the built book"
        status=1
    fi
    rm -rf "$tmp"
    if ((status == 0)); then say "links: every relative link and #anchor resolves"; fi
    return "$status"
}

# The checker on FILES... (or folders), failing on any dead link or anchor.
remark() {
    local bin=$1
    shift
    NO_COLOR=1 "$bin" --rc-path "$REPO/scripts/links/remarkrc.mjs" --no-config --no-ignore \
        --no-stdout --frail --quiet --no-color "$@"
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
        if lengths; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
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
            echo "test result: FAILED. $passed passed; $failed failed; 0 ignored (docs: mdbook build, links, lengths, answer matcher, examples)"
            exit 1
        fi
        echo "test result: ok. $passed passed; $failed failed; 0 ignored (docs: mdbook build, links, lengths, answer matcher, examples)"
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

