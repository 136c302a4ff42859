# scripts/compose.sh: sourced by setup.sh (functions only). `./setup.sh compose up|down|
# test`: docker-compose.yml run by Docker's compose plugin where a Docker engine answers,
# else by podman and podman-compose (installed when missing, as root). Its images all
# start FROM debian:bookworm-slim: pulled where a registry answers, else made here with
# debootstrap (about 2 minutes, once). The gateway's image takes the host's binaries
# (docker/Dockerfile, target `prebuilt`): release ones, built when needed, or those in
# COMPOSE_BINARIES=DIR as they are (the test run gives its debug build). The stack is
# started in phases, each waited for, so podman-compose (which does not wait on
# depends_on's conditions) and Docker start it the same way. The test: compose_test.sh.
# Its files: .local/compose/ (the passwords, podman's settings, the image's context, logs).
# (podman runs the compose file's health checks only under systemd: `podman ps` may say
# "starting" for good; the phases below check readiness themselves.)

COMPOSE_DIR=$LOCAL/compose
COMPOSE_BASE=debian:bookworm-slim
COMPOSE_LB=http://127.0.0.1:26080
# name:Dockerfile:context, the images the compose file names; the gateway's apart.
COMPOSE_IMAGES=(shardgate-postgres:Dockerfile.postgres shardgate-redis:Dockerfile.redis
    shardgate-haproxy:Dockerfile.haproxy)
COMPOSE_PASSWORDS=(PG_SUPERUSER_PASSWORD REPLICATION_PASSWORD SHARDGATE_DB_PASSWORD
    REDIS_PASSWORD AUTOCTL_NODE_PASSWORD AUTOCTL_MONITOR_PASSWORD MONITOR_READER_PASSWORD
    SHARDGATE_ADMIN_PASSWORD)
COMPOSE_SHARDS=(shard0 shard1 shard2)

cmd_compose() {
    local sub=${1:-}
    case $sub in
        up) compose_prepare release && compose_start && compose_summary ;;
        down) compose_prepare none && compose_stop "${@:2}" ;;
        test)
            COMPOSE_PROJECT=shardgate-test
            compose_prepare none && compose_test_free && compose_prepare release && compose_test
            ;;
        *) die "usage: ./setup.sh compose up|down [-v]|test" ;;
    esac
}

# The engine, the passwords, and (unless $1 is none) the volumes' passwords checked
# (scripts/compose_volumes.sh) and the images.
compose_prepare() {
    mkdir -p "$COMPOSE_DIR"
    compose_engine
    compose_passwords
    [[ $1 == none ]] && return 0
    compose_volumes_check
    compose_base_image
    compose_images "$1"
}

# Docker where its engine answers and has the compose plugin; else podman, installed if
# missing, with runc and this machine's limits (containers.conf: crun and podman's
# default limits fail on some hosts), its bridge network's DNS (dnsname) for names.
compose_engine() {
    if command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1 &&
        docker compose version >/dev/null 2>&1; then
        COMPOSE_ENGINE=docker
        COMPOSE_CMD=(docker compose)
        COMPOSE_STOP_ARGS=()
    else
        local pkgs
        mapfile -t pkgs < <(compose_missing_packages)
        install_packages compose_missing_packages ${pkgs[@]+"${pkgs[@]}"}
        COMPOSE_ENGINE=podman
        COMPOSE_CMD=(podman-compose)
        # podman-compose (1.0) ignores stop_grace_period, and its `down` gives every
        # container 1 s before SIGKILL: `stop` with the longest grace the file gives.
        COMPOSE_STOP_ARGS=(-t 30)
        if [[ -z ${CONTAINERS_CONF:-} ]]; then
            printf '%s\n' '# setup.sh compose: podman with runc and these limits' '[containers]' \
                'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]' \
                '[engine]' 'runtime = "runc"' >"$COMPOSE_DIR/containers.conf"
            export CONTAINERS_CONF=$COMPOSE_DIR/containers.conf
        fi
    fi
    COMPOSE_CMD+=(-p "${COMPOSE_PROJECT:-shardgate}" -f "$REPO/docker-compose.yml")
    say "containers: $COMPOSE_ENGINE ($("$COMPOSE_ENGINE" --version | head -n 1))"
}

compose_missing_packages() {
    command -v podman >/dev/null 2>&1 || echo podman
    command -v runc >/dev/null 2>&1 || echo runc
    command -v podman-compose >/dev/null 2>&1 || echo podman-compose
    command -v debootstrap >/dev/null 2>&1 || echo debootstrap
    command -v objcopy >/dev/null 2>&1 || echo binutils
    [[ -x /usr/lib/cni/dnsname ]] || echo golang-github-containernetworking-plugin-dnsname
}

# The passwords the compose file asks for, generated once (mode 0600), in our environment.
compose_passwords() {
    local file=$COMPOSE_DIR/compose.env v
    if [[ ! -f $file ]]; then
        (umask 077; for v in "${COMPOSE_PASSWORDS[@]}"; do echo "$v=$(random_secret)"; done >"$file")
    fi
    set -a
    # shellcheck disable=SC1090
    . "$file"
    set +a
    # The labels of the data volumes (scripts/compose_volumes.sh).
    SHARDGATE_COMPOSE_CREDENTIALS=$(compose_fingerprint "$file")
    export SHARDGATE_COMPOSE_CREDENTIALS SHARDGATE_COMPOSE_ENV=$file
}

compose_image_exists() { "$COMPOSE_ENGINE" image inspect "$1" >/dev/null 2>&1; }

# debian:bookworm-slim: there already, pulled, or made with debootstrap (minbase) and
# imported under that name.
compose_base_image() {
    compose_image_exists "$COMPOSE_BASE" && return 0
    say "base image $COMPOSE_BASE: pulling"
    timeout 60 "$COMPOSE_ENGINE" pull -q "$COMPOSE_BASE" >/dev/null 2>&1 && return 0
    say "no registry answers: making $COMPOSE_BASE with debootstrap (about 2 minutes, once)"
    local root=$COMPOSE_DIR/rootfs t0=$SECONDS
    rm -rf "$root"
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian \
        >"$COMPOSE_DIR/debootstrap.log" 2>&1 ||
        { tail -n 20 "$COMPOSE_DIR/debootstrap.log" >&2; die "debootstrap failed (log $COMPOSE_DIR/debootstrap.log)"; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | "$COMPOSE_ENGINE" import - "$COMPOSE_BASE" >/dev/null
    rm -rf "$root"
    [[ $COMPOSE_ENGINE == podman ]] && podman tag "$COMPOSE_BASE" "docker.io/library/$COMPOSE_BASE"
    compose_image_exists "$COMPOSE_BASE" || die "no image $COMPOSE_BASE after the import"
    say "base image $COMPOSE_BASE made in $((SECONDS - t0))s"
}

# The images: Debian's packages on the base (the engine's cache makes a rebuild quick),
# and the gateway's from the host's binaries: $1 release: the dist profile's (built when needed) or those in
# COMPOSE_BINARIES.
compose_images() {
    local bin=${COMPOSE_BINARIES:-} entry name file ctx=$COMPOSE_DIR/context t0=$SECONDS
    if [[ -z $bin ]]; then
        need_cargo
        bin=${CARGO_TARGET_DIR:-$REPO/target}/dist
        if [[ -x $bin/api-router && -x $bin/shard-admin ]]; then
            say "the gateway image's binaries: the dist build in $bin, brought up to date (a change since costs its whole-program link: minutes)"
        else
            say "the gateway image's binaries: no dist build in $bin yet, so cargo builds one now, once: whole-program optimisation, about 6 minutes on 2 idle cores (11 when busy) (COMPOSE_BINARIES=DIR takes binaries built already)"
        fi
        local t_build=$SECONDS
        (cd "$REPO" && cargo build --profile dist --workspace --bin api-router --bin shard-admin) ||
            die "the dist build (the gateway image's binaries) failed"
        say "dist build: $((SECONDS - t_build))s"
    fi
    [[ -x $bin/api-router && -x $bin/shard-admin ]] || die "no api-router and shard-admin in $bin"
    rm -rf "$ctx"
    mkdir -p "$ctx/bin"
    # No debug information in an image, whatever build it is given (a debug build's is
    # most of it; the dist profile has none); the symbol table stays, for profiles.
    for name in api-router shard-admin; do
        objcopy --strip-debug "$bin/$name" "$ctx/bin/$name" || die "objcopy --strip-debug $bin/$name failed"
    done
    cp -r "$REPO/config" "$ctx/config"
    local labels
    labels=(--build-arg "VERSION=$("$bin/api-router" --version | awk '{ print $2 }')"
        --build-arg "REVISION=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)"
        --build-arg "SOURCE=$(compose_source)")
    for entry in "${COMPOSE_IMAGES[@]}" shardgate:; do
        name=${entry%%:*} file=${entry#*:}
        say "image $name:local"
        if [[ -n $file ]]; then
            compose_build -t "$name:local" -f "$REPO/docker/$file" "$REPO/docker"
        else
            compose_build -t "$name:local" -f "$REPO/docker/Dockerfile" --target prebuilt "${labels[@]}" "$ctx"
        fi
    done
    say "images built in $((SECONDS - t0))s; the gateway's holds the binaries of $bin"
}

# The image's source label: the repository's origin, without credentials; empty without one.
compose_source() {
    git -C "$REPO" remote get-url origin 2>/dev/null | sed 's#://[^@/]*@#://#' || true
}

# (Docker's image format: OCI's has no HEALTHCHECK, and podman would drop the gateway's.)
compose_build() {
    local format=()
    [[ $COMPOSE_ENGINE == podman ]] && format=(--format docker)
    "$COMPOSE_ENGINE" build --network host "${format[@]}" -q "$@" >>"$COMPOSE_DIR/build.log" 2>&1 ||
        { tail -n 30 "$COMPOSE_DIR/build.log" >&2; die "$COMPOSE_ENGINE build $* failed (log $COMPOSE_DIR/build.log)"; }
}

# The compose tool, its output in a log (podman-compose is verbose).
compose_run() {
    "${COMPOSE_CMD[@]}" "$@" >>"$COMPOSE_DIR/compose.log" 2>&1 ||
        { tail -n 30 "$COMPOSE_DIR/compose.log" >&2; die "${COMPOSE_CMD[*]} $* failed (log $COMPOSE_DIR/compose.log)"; }
}

# Runs CHECK (a shell command) in container shardgate-$1 until it succeeds, up to $2 s.
compose_wait() {
    local name=$1 limit=$2 check=$3 deadline=$((SECONDS + $2))
    until "$COMPOSE_ENGINE" exec "shardgate-$name" sh -c "$check" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { compose_logs "$name"; die "$name not ready after ${limit}s"; }
        sleep 1
    done
}

compose_logs() {
    local name
    for name in "$@"; do
        echo "---- last lines of shardgate-$name's log" >&2
        "$COMPOSE_ENGINE" logs --tail 25 "shardgate-$name" >&2 2>&1 || true
    done
}

# The stack, in the order depends_on gives: the servers, the first node of each shard,
# the second, migrate + init, the gateways, HAProxy; each phase waited for (--no-deps:
# the phases before are up, and podman-compose would start `migrate` again).
compose_start() {
    local autoctl='test -f /var/lib/postgresql/data/autoctl/ready && pg_isready -q -h 127.0.0.1 -p 5432'
    local s n t0=$SECONDS code
    : >"$COMPOSE_DIR/compose.log"
    compose_volumes_create
    say "starting meta, monitor, redis"
    compose_run up -d --no-deps meta monitor redis
    compose_wait meta 120 'pg_isready -q -h 127.0.0.1 -p 5432'
    compose_wait monitor 180 "$autoctl"
    # shellcheck disable=SC2016 # expanded in the container, from its environment
    compose_wait redis 60 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli ping | grep -q PONG'
    for s in a b; do
        say "starting ${COMPOSE_SHARDS[*]/%/-$s} (pg_auto_failover nodes)"
        compose_run up -d --no-deps "${COMPOSE_SHARDS[@]/%/-$s}"
        for n in "${COMPOSE_SHARDS[@]/%/-$s}"; do compose_wait "$n" 240 "$autoctl"; done
    done
    say "migrate + init"
    "$COMPOSE_ENGINE" rm -f shardgate-migrate >/dev/null 2>&1 || true
    compose_run up -d --no-deps migrate
    code=$("$COMPOSE_ENGINE" wait shardgate-migrate | tail -n 1)
    [[ $code == 0 ]] || { compose_logs migrate; die "migrate exited $code"; }
    say "starting gateway1-3, lb"
    compose_run up -d --no-deps gateway1 gateway2 gateway3 lb
    local deadline=$((SECONDS + 120))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$COMPOSE_LB/api/health/ready") == 200 ]]; do
        ((SECONDS < deadline)) || { compose_logs gateway1 lb; die "HAProxy ($COMPOSE_LB) not ready after 120s"; }
        sleep 1
    done
    say "the stack is up in $((SECONDS - t0))s"
}

compose_summary() {
    cat <<EOF
==> Shardgate in containers ($COMPOSE_ENGINE), 127.0.0.1 only:
    $COMPOSE_LB            HAProxy in front of gateway1-3 (26081-26083); /dashboard, /swagger-ui/
    127.0.0.1:26084        metadata PostgreSQL (shardgate_meta)    26085  pg_auto_failover monitor
    127.0.0.1:26090-26092  shardN-a, 26093-26095 shardN-b         26086  Redis
    passwords: $COMPOSE_DIR/compose.env; stop: ./setup.sh compose down (data kept in volumes)
EOF
}

# Stops the containers, each given its grace period to stop by itself, then removes them
# (the volumes stay unless $1 is -v) and the network.
compose_stop() {
    say "stopping the stack (${COMPOSE_CMD[*]} stop ${COMPOSE_STOP_ARGS[*]}, then down $*)"
    compose_run stop ${COMPOSE_STOP_ARGS[@]+"${COMPOSE_STOP_ARGS[@]}"}
    compose_run down "$@"
    "$COMPOSE_ENGINE" network rm -f "${COMPOSE_PROJECT:-shardgate}_default" >/dev/null 2>&1 || true
}
