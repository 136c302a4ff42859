#!/usr/bin/env bash
# setup.sh: the local Shardgate topology, without Docker.
#
#   ./setup.sh up        install what is missing, start the metadata server, SHARDS
#                        primaries (default 3), REPLICAS streaming replicas each
#                        (default 1) and Redis; migrate the shards and seed the map
#   ./setup.sh down      stop everything (fast shutdown), keep the data
#   ./setup.sh clean     down, then delete the cluster data
#   ./setup.sh status    every server: port, role, up/down, replication state and lag;
#                        the gateways and HAProxy while `run` runs
#   ./setup.sh pg stop|start|restart|psql NAME   one PostgreSQL server (shard1-replica0, ...)
#   ./setup.sh redis stop|start
#   ./setup.sh run       up, build, migrate, seed the map, then run the gateway on
#                        http://127.0.0.1:8080 (GATEWAYS=3: three behind HAProxy there)
#   ./setup.sh test      up, then cargo test --workspace
#   ./setup.sh ha hold|release N   hold shard N's failover (work on its primary)
#   ./setup.sh ha home             every primary back on its first node
#   ./setup.sh compose up|down|test   docker-compose.yml's stack (Docker or podman)
#   Every shard is run by pg_auto_failover (scripts/ha.sh): a monitor on 25420, one
#   formation per shard on the same ports. HA=0 ./setup.sh up makes a cluster without it.
#   ADDRESS=1 ./setup.sh up puts each shard behind two HAProxy addresses (rw, ro), which
#   are all the gateways are told (follow = "address").
#
# This file only dispatches: each component is a script of its own under scripts/, which
# it sources (functions only; the header of each says its one job):
#   scripts/lib/common.sh       settings (ports, names, paths under .local/), say/die, psql, the lock
#   scripts/lib/credentials.sh  the generated passwords and the environment (`env`)
#   scripts/lib/topology.sh     server names, ports, data directories, who owns them
#   scripts/lib/process.sh      pids and listeners, told apart without logging in
#   scripts/lib/expand.sh       text kept in files of its own, expanded where printed
#                               (scripts/usage.txt: `help`)
#   scripts/install.sh          PostgreSQL, cargo and the Debian packages
#   scripts/template.sh         the initdb template every server is copied from
#   scripts/postgres.sh         one plain PostgreSQL server: start, stop (`pg`)
#   scripts/shards.sh           the shards without the HA manager: primaries, replicas
#   scripts/ha.sh               the shards as pg_auto_failover formations (the default),
#                               with ha_node.sh, ha_keeper.sh, ha_monitor.sh,
#                               ha_placement.sh (`ha`) and ha_restore.sh
#   scripts/meta.sh             the metadata server and the shard map seeded there
#   scripts/pgbackrest.sh       WAL archiving and backups
#   scripts/drain.sh            a switchover's drain: who may, and one left behind
#   scripts/redis.sh            the Redis cache (`redis`)
#   scripts/gateways.sh         the gateway's config and `run`
#   scripts/haproxy.sh          several gateways behind HAProxy (GATEWAYS=N run)
#   scripts/address.sh          each shard behind rw/ro addresses (ADDRESS=1 up)
#   scripts/cluster.sh          the whole topology in order: `up`, `down`, `clean`
#   scripts/status.sh           `status`
#   scripts/test-runner.sh      `test`
#   scripts/supply_chain.sh     `cargo deny check` in `test` (deny.toml)
#   scripts/disk_watch.sh       the free disk space under a test run
#   scripts/compose.sh          docker-compose.yml on Docker or podman (`compose`), with
#                               compose_volumes.sh (the volumes' passwords) and
#                               compose_test.sh (`compose test`)
# The files it writes under .local/ are listed in scripts/lib/common.sh.
set -Eeuo pipefail
# A command failing where nobody expected it: say which, rather than exit silently.
trap 'echo "setup.sh: error: \"$BASH_COMMAND\" failed (exit $?) at ${BASH_SOURCE[0]#"$REPO/"} line $LINENO" >&2' ERR

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
SELF="$REPO/$(basename "${BASH_SOURCE[0]}")"

# Settings and helpers first; then the components (functions only).
# shellcheck source-path=SCRIPTDIR
. "$REPO/scripts/lib/common.sh"
. "$REPO/scripts/lib/credentials.sh"
. "$REPO/scripts/lib/topology.sh"
. "$REPO/scripts/lib/process.sh"
. "$REPO/scripts/lib/expand.sh"
. "$REPO/scripts/install.sh"
. "$REPO/scripts/template.sh"
. "$REPO/scripts/postgres.sh"
. "$REPO/scripts/shards.sh"
. "$REPO/scripts/ha.sh"
. "$REPO/scripts/ha_node.sh"
. "$REPO/scripts/ha_keeper.sh"
. "$REPO/scripts/ha_monitor.sh"
. "$REPO/scripts/ha_placement.sh"
. "$REPO/scripts/ha_restore.sh"
. "$REPO/scripts/meta.sh"
. "$REPO/scripts/pgbackrest.sh"
. "$REPO/scripts/drain.sh"
. "$REPO/scripts/redis.sh"
. "$REPO/scripts/gateways.sh"
. "$REPO/scripts/haproxy.sh"
. "$REPO/scripts/address.sh"
. "$REPO/scripts/cluster.sh"
. "$REPO/scripts/status.sh"
. "$REPO/scripts/test-runner.sh"
. "$REPO/scripts/supply_chain.sh"
. "$REPO/scripts/disk_watch.sh"
. "$REPO/scripts/compose.sh"
. "$REPO/scripts/compose_volumes.sh"
. "$REPO/scripts/compose_test.sh"

cmd_help() {
    expand_template "$REPO/scripts/usage.txt"
}

main() {
    local cmd=${1:-help}
    shift || true
    case $cmd in
        help | -h | --help | docs) ;;
        *) load_credentials ;;
    esac
    case $cmd in
        up) cmd_up ;;
        down) cmd_down ;;
        clean) cmd_clean ;;
        status) cmd_status ;;
        pg) cmd_pg "$@" ;;
        redis) cmd_redis "$@" ;;
        ha) cmd_ha "$@" ;;
        run) cmd_run ;;
        test) cmd_test ;;
        compose) cmd_compose "$@" ;;
        env) cmd_env "$@" ;;
        docs) "$REPO/scripts/docs.sh" build ;;
        help | -h | --help) cmd_help ;;
        *) cmd_help >&2; die "unknown command '$cmd'" ;;
    esac
}

main "$@"
