# scripts/lib/expand.sh: sourced by setup.sh and scripts/bench.sh (functions only). Text
# kept in a file of its own (a usage text, a configuration template, a report) and
# expanded where it is printed.

# Prints FILE with its $NAME, ${...} and $(...) expanded in the caller's shell, as an
# unquoted heredoc would expand them (a backslash keeps the next $, ` or \ literal).
expand_template() {
    local end=__SHARDGATE_TEMPLATE_END__
    eval "cat <<$end"$'\n'"$(<"$1")"$'\n'"$end"
}
