# scripts/install.sh: sourced by setup.sh (functions only). What the topology needs
# installed: PostgreSQL's binaries, cargo, and the Debian packages whose programs are
# missing (apt-get when root, else the exact command to run).

# The newest /usr/lib/postgresql/*/bin (Debian layout); else whatever pg_ctl is on PATH.
find_pg_bin() {
    [[ -n $PG_BIN ]] && return 0
    local d best=""
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]] || continue
        best=$(printf '%s\n%s\n' "$best" "$d" | sed '/^$/d' | sort -V | tail -n 1)
    done
    if [[ -z $best ]] && command -v pg_ctl >/dev/null 2>&1; then
        best=$(dirname "$(command -v pg_ctl)")
    fi
    [[ -n $best ]] || return 1
    PG_BIN=$best
}

need_pg_bin() {
    find_pg_bin || die "no PostgreSQL server found (looked in /usr/lib/postgresql/*/bin); run ./setup.sh up"
}

find_cargo() {
    command -v cargo >/dev/null 2>&1 && return 0
    local home=${HOME:-$(getent passwd "$(id -un)" | cut -d: -f6)}
    if [[ -n $home && -x $home/.cargo/bin/cargo ]]; then
        export PATH="$home/.cargo/bin:$PATH"
        return 0
    fi
    return 1
}

need_cargo() {
    find_cargo && return 0
    cat >&2 <<'EOF'
setup.sh: error: no `cargo` on PATH or in ~/.cargo/bin.
Install the Rust toolchain with rustup, then open a new shell:
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh
(see https://rustup.rs; the workspace needs Rust 1.88 or newer)
EOF
    exit 1
}

# cargo-deny, pinned, for the supply chain's check (scripts/supply_chain.sh): found on
# PATH or in cargo's bin directory at this version, else installed there (cargo
# install from crates.io, once: 12.7 minutes on a busy 2-core machine). Prints its path.
CARGO_DENY_VERSION=0.20.2
need_cargo_deny() {
    local bin
    for bin in "$(command -v cargo-deny 2>/dev/null || true)" "${CARGO_HOME:-$HOME/.cargo}/bin/cargo-deny"; do
        if [[ -x $bin ]] && [[ $("$bin" --version 2>/dev/null) == "cargo-deny $CARGO_DENY_VERSION" ]]; then
            printf '%s\n' "$bin"
            return
        fi
    done
    say "installing cargo-deny $CARGO_DENY_VERSION (cargo install, once; up to about 13 minutes)" >&2
    cargo install cargo-deny --locked --version "$CARGO_DENY_VERSION" --quiet >&2
    printf '%s\n' "${CARGO_HOME:-$HOME/.cargo}/bin/cargo-deny"
}

# Debian packages whose programs are missing.
missing_packages() {
    local pkgs=()
    if ! find_pg_bin; then
        pkgs+=(postgresql postgresql-client postgresql-contrib)
    else
        [[ -x $PG_BIN/psql && -x $PG_BIN/pg_isready ]] || pkgs+=(postgresql-client)
        [[ -x $PG_BIN/pg_basebackup ]] || pkgs+=(postgresql-client)
        # contrib extensions ship with the server package on Debian >= 15
        local ver
        ver=$(basename "$(dirname "$PG_BIN")")
        if [[ $PG_BIN == /usr/lib/postgresql/* && ! -e /usr/share/postgresql/$ver/extension/pg_stat_statements.control ]]; then
            pkgs+=(postgresql-contrib)
        fi
    fi
    command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || pkgs+=(redis-server)
    command -v pkg-config >/dev/null 2>&1 || pkgs+=(pkg-config)
    if ! pkg-config --exists libpq 2>/dev/null && [[ ! -e /usr/include/postgresql/libpq-fe.h ]]; then
        pkgs+=(libpq-dev)
    fi
    command -v cc >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || pkgs+=(build-essential)
    command -v runuser >/dev/null 2>&1 && command -v flock >/dev/null 2>&1 || pkgs+=(util-linux)
    command -v ss >/dev/null 2>&1 || pkgs+=(iproute2)   # who listens on a port
    # WAL archiving and backups of every primary (`shard-admin backup`).
    command -v pgbackrest >/dev/null 2>&1 || pkgs+=(pgbackrest)
    # promtool (Debian ships it only in `prometheus`): the suite lints /metrics with it.
    command -v promtool >/dev/null 2>&1 || pkgs+=(prometheus)
    # glibc's locale sources: shard-manager's german_messages test compiles de_DE with
    # localedef into a temporary directory (nothing is installed system-wide).
    [[ -e /usr/share/i18n/locales/de_DE ]] || pkgs+=(locales)
    # The load balancer in front of several gateways (GATEWAYS=3 ./setup.sh run).
    command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]] || pkgs+=(haproxy)
    # Node.js's npm: scripts/docs.sh installs the documents' link checker with it.
    command -v npm >/dev/null 2>&1 || pkgs+=(npm)
    # Headless Chromium for the dashboard's browser test (api-router/tests/browser).
    command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
    ((${#pkgs[@]} == 0)) || printf '%s\n' "${pkgs[@]}" | awk '!seen[$0]++'
}

# Install with apt-get when root, else print the exact command and stop.
ensure_packages() {
    local pkgs
    mapfile -t pkgs < <(missing_packages)
    install_packages missing_packages ${pkgs[@]+"${pkgs[@]}"}
    # pg_auto_failover's packages name the PostgreSQL version: known only now.
    if ha_on || ((NEED_HA_PACKAGES)); then
        need_pg_bin
        mapfile -t pkgs < <(ha_missing_packages)
        install_packages ha_missing_packages ${pkgs[@]+"${pkgs[@]}"}
    fi
}

# Installs PACKAGES..., then asks CHECK (a function listing what is missing) again.
install_packages() {
    local check=$1 pkgs
    shift
    pkgs=("$@")
    ((${#pkgs[@]} == 0)) && return 0

    local cmd="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${pkgs[*]}"
    if [[ $IS_ROOT -ne 1 ]]; then
        printf 'setup.sh: error: missing packages: %s\nInstall them with:\n' "${pkgs[*]}" >&2
        printf '    sudo apt-get update && sudo %s\n' "$cmd" >&2
        exit 1
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "missing: ${pkgs[*]}, and no apt-get here: install them with your package manager"

    say "installing ${pkgs[*]}"
    # Debian's postgresql package would create and start a 'main' cluster on 5432 that we
    # never use: tell pg_createcluster not to. And keep the packages' services (that
    # cluster, a system redis on 6379) from starting during the install, via a temporary
    # policy-rc.d, unless the machine already has one.
    mkdir -p /etc/postgresql-common/createcluster.d
    if [[ ! -e /etc/postgresql-common/createcluster.d/shardgate.conf ]]; then
        printf '# setup.sh (Shardgate): no default "main" cluster\ncreate_main_cluster = false\n' \
            >/etc/postgresql-common/createcluster.d/shardgate.conf
    fi
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# temporary, from Shardgate setup.sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        added_policy=1
    fi
    local rc=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"
    } </dev/null >"$LOCAL/apt.log" 2>&1 || rc=$?
    if [[ $added_policy -eq 1 ]]; then rm -f "$policy"; fi
    if [[ $rc -ne 0 ]]; then
        log_tail "$LOCAL/apt.log" 40
        die "apt-get failed (exit $rc); full output in $LOCAL/apt.log"
    fi
    PG_BIN=""
    need_pg_bin
    local still
    still=$("$check" | tr '\n' ' ')
    [[ -z $still ]] || die "still missing after apt-get install: $still"
}
