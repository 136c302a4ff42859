# scripts/supply_chain.sh: sourced by setup.sh (functions only). The supply chain's
# check, `cargo deny check` against deny.toml: licences, banned crates and duplicates
# (duplicates warn), sources (crates.io only, no git). Advisories are checked only when
# RustSec's database is on this machine (`cargo deny fetch` puts it in cargo's home;
# it comes from GitHub, which the suite never asks: that run is offline); without it,
# said so.

supply_chain_check() {
    local deny
    deny=$(need_cargo_deny)
    say "cargo deny check licenses bans sources"
    (cd "$REPO" && "$deny" deny --log-level error check licenses bans sources) || return 1
    if [[ ! -d ${CARGO_HOME:-$HOME/.cargo}/advisory-dbs ]]; then
        say "no advisory database (cargo deny fetch, from GitHub): advisories not checked"
        return 0
    fi
    say "cargo deny check advisories (the database on this machine, not fetched)"
    (cd "$REPO" && "$deny" deny --offline --log-level error check advisories)
}
