# scripts/ha_placement.sh: sourced by setup.sh (functions only). Where each formation's
# primary is (scripts/ha.sh): `./setup.sh ha hold|release N` (hold a shard's failover),
# waiting for a formation to settle, and the switch back to each first node (`test`, and
# `./setup.sh ha home`).

# `./setup.sh ha hold N`: the monitor promotes none of shard N's secondaries (candidate
# priority 0), so the primary may be stopped for work that must not fail it over (the
# failure tests' primary outages, or an operator's maintenance); reads go on from the
# secondaries. `./setup.sh ha release N` gives them back pg_auto_failover's default
# priority, 50, once the formation has settled (its primary back, every secondary
# streaming), and waits for that.
ha_hold() {
    local formation=shard$1 held
    # (The monitor's NOTICE "preventing automated failover" is what was asked: not shown.)
    held=$(sql "$HA_MONITOR_PORT" "$HA_MONITOR_DB" "SET client_min_messages = warning; SELECT count(*) FROM (
        SELECT pgautofailover.set_node_candidate_priority(formationid, nodename, 0)
          FROM pgautofailover.node
         WHERE formationid = '$formation' AND candidatepriority > 0
           AND goalstate NOT IN ('primary', 'wait_primary', 'single')) s")
    [[ ${QUIET:-0} -eq 1 ]] || say "$formation: failover held ($held secondaries at candidate priority 0)"
}

ha_release() {
    local formation=shard$1
    ha_wait_formation "$formation"
    sql "$HA_MONITOR_PORT" "$HA_MONITOR_DB" "SELECT count(*) FROM (
        SELECT pgautofailover.set_node_candidate_priority(formationid, nodename, 50)
          FROM pgautofailover.node
         WHERE formationid = '$formation' AND candidatepriority = 0) s" >/dev/null
    ha_wait_formation "$formation"   # the primary applies the new settings
    [[ ${QUIET:-0} -eq 1 ]] || say "$formation: failover released"
}

# Waits until every node of FORMATION is where the monitor wants it (primary, or
# single, and secondaries) and the monitor counts it healthy: its keeper has reported
# in the last 1.5 s that its PostgreSQL runs, and the monitor's check reaches it. A
# primary whose keeper's last report (from before its PostgreSQL was up again) still
# says "not running" is one the monitor fails over as soon as a secondary may be
# promoted: a release must wait for the next report.
ha_wait_formation() {
    local formation=$1 deadline=$((SECONDS + STREAM_TIMEOUT * 2)) left
    while :; do
        left=$(sql "$HA_MONITOR_PORT" "$HA_MONITOR_DB" "SELECT count(*) FROM pgautofailover.node
            WHERE formationid = '$formation' AND NOT (reportedstate = goalstate
              AND reportedstate IN ('primary', 'secondary', 'single')
              AND reportedpgisrunning AND health = 1
              AND reporttime > now() - interval '1500 ms')")
        ((left == 0)) && return 0
        if ((SECONDS >= deadline)); then
            ha_show_state >&2
            die "$formation: $left node(s) not settled after $((STREAM_TIMEOUT * 2))s"
        fi
        sleep 0.2
    done
}

# `test`: every formation's first node (shardN-primary, on the port the tests'
# configuration names as the primary) its primary. A formation that failed over (in an
# earlier run, by hand, or by the HA manager during this one) is switched back through
# the monitor (perform_promotion), after any hold a killed run left is released. Sets
# HA_SWITCHED_BACK=1 when it switched one (the map must then record it).
HA_SWITCHED_BACK=0
ha_first_nodes_primary() {
    local i formation first want port deadline
    for ((i = 0; i < SHARDS + SPARE_SHARDS; i++)); do
        formation=shard$i
        first=$(primary_name "$i")
        want=$(port_of "$first")
        sql "$HA_MONITOR_PORT" "$HA_MONITOR_DB" "SET client_min_messages = warning; SELECT count(*) FROM (
            SELECT pgautofailover.set_node_candidate_priority(formationid, nodename, 50)
              FROM pgautofailover.node
             WHERE formationid = '$formation' AND candidatepriority = 0) s" >/dev/null
        ha_wait_formation "$formation"
        port=$(ha_writable_port "$formation")
        [[ $port == "$want" ]] && continue
        say "$formation's primary is on $port (it failed over earlier); switching it back to $first ($want), where the tests' configuration has it"
        sql "$HA_MONITOR_PORT" "$HA_MONITOR_DB" "SELECT pgautofailover.perform_promotion('$formation', '$first')" >/dev/null
        deadline=$((SECONDS + STREAM_TIMEOUT * 2))
        until [[ $(ha_writable_port "$formation") == "$want" ]]; do
            ((SECONDS < deadline)) || { ha_show_state >&2; die "$formation: $first is not primary $((STREAM_TIMEOUT * 2))s after the switch back"; }
            sleep 0.2
        done
        ha_wait_formation "$formation"
        HA_SWITCHED_BACK=1
    done
}

# ./setup.sh ha hold|release N (scripts/ha.sh's ha_hold and ha_release).
cmd_ha() {
    local action=${1:-} shard=${2:-}
    [[ $action =~ ^(hold|release)$ && $shard =~ ^[0-9]+$ || $action == home && -z $shard ]] ||
        die "usage: ./setup.sh ha hold|release N (N: a shard number, 0 for shard0), or ./setup.sh ha home"
    need_pg_bin
    resolve_data_root
    ha_on && [[ -f $(datadir "$HA_MONITOR_NAME")/PG_VERSION ]] ||
        die "no HA manager runs this cluster (it was made with HA=0); nothing to hold"
    pg_ready "$HA_MONITOR_PORT" || die "the pg_auto_failover monitor on $HA_MONITOR_PORT does not answer (./setup.sh up starts it)"
    if [[ $action == home ]]; then
        # Every formation's primary back on its first node (shardN-primary), through the
        # monitor; the gateways follow (and `shard-admin init` records it in the map).
        ha_first_nodes_primary
        return
    fi
    [[ -n $(sql "$HA_MONITOR_PORT" "$HA_MONITOR_DB" "SELECT 1 FROM pgautofailover.formation WHERE formationid = 'shard$((10#$shard))'") ]] ||
        die "shard $shard has no formation on the monitor"
    local QUIET=${QUIET:-0}
    case $action in
        hold) ha_hold "$((10#$shard))" ;;
        release) ha_release "$((10#$shard))" ;;
    esac
}
