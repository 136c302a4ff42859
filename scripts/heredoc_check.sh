#!/usr/bin/env bash
# scripts/heredoc_check.sh: no heredoc in the shell scripts (setup.sh, scripts/, docker/)
# runs over MAX lines (default 20). A longer text (a usage, a configuration, SQL, a
# report, a program) lives in a file of its own, named for it, that the script reads:
# it reads in one sitting and an editor knows its language. Prints each heredoc over the
# bound (file, line, length) and a closing line in cargo's form (./setup.sh test counts
# it); exits non-zero when there is one.
#   scripts/heredoc_check.sh [FILE ...]   the given scripts instead of every one
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
MAX=${MAX:-20}

if (($# == 0)); then
    mapfile -t files < <(cd "$REPO" && { echo setup.sh; find scripts docker -name '*.sh' -type f; } | sort)
    cd "$REPO"
else
    files=("$@")
fi

# A heredoc opens at `<<TAG`, `<<-TAG`, `<<'TAG'` or `<<"TAG"` (not `<<<`, not in a
# comment line) and ends at the line that is TAG alone (tabs before it with `<<-`).
long=$(awk -v max="$MAX" '
    function unclosed() { if (tag != "") printf "%s:%d: a heredoc not closed (%s)\n", name, start, tag; tag = "" }
    FNR == 1 { unclosed(); name = FILENAME }
    tag != "" {
        line = $0
        if (dash) sub(/^\t+/, "", line)
        if (line == tag) {
            if (FNR - start - 1 > max) printf "%s:%d: a heredoc of %d lines (at most %d)\n", FILENAME, start, FNR - start - 1, max
            tag = ""
        }
        next
    }
    /^[ \t]*#/ { next }
    match($0, /(^|[^<])<<-?[ \t]*["\x27]?[A-Za-z_][A-Za-z0-9_]*/) {
        op = substr($0, RSTART, RLENGTH); sub(/^[^<]?<</, "", op)
        dash = (op ~ /^-/); sub(/^-/, "", op); gsub(/[ \t"\x27]/, "", op)
        tag = op; start = FNR
    }
    END { unclosed() }
' "${files[@]}")

if [[ -n $long ]]; then
    printf '%s\n' "$long" >&2
    echo "test result: FAILED. 0 passed; 1 failed; 0 ignored (scripts: no heredoc over $MAX lines in ${#files[@]} scripts)"
    exit 1
fi
echo "test result: ok. 1 passed; 0 failed; 0 ignored (scripts: no heredoc over $MAX lines in ${#files[@]} scripts)"
