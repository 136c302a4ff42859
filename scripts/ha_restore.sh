# scripts/ha_restore.sh: sourced by setup.sh (functions only). A pg_auto_failover
# formation (scripts/ha.sh) re-formed after `shard-admin restore`.
#
# With the HA manager stopped (./setup.sh down), the restore puts each shard's stanza
# back into its formation's first node (shardN-primary, pg1 of the stanza) and gives
# that data dir a new incarnation (shardgate.incarnation). What the monitor remembers of
# the formation is then wrong (its nodes' states and positions are from after the
# point; the first node may have been a secondary), and the other nodes hold data from
# after the point or from another timeline: none may start with it. So `up` compares
# each formation's first node's incarnation with the one the formation was made with
# (.local/cluster/ha/shardN.incarnation) and, when they differ, stops the formation's
# keepers and servers, has the monitor forget its nodes (pgautofailover.remove_node,
# forced), deletes their pg_autoctl configuration and state, and empties the other
# nodes' data dirs; ha_ensure_shard then makes the formation again: `pg_autoctl create
# postgres` adopts the restored data dir as its first node (single), and clones each
# secondary from it.

# Where formation I's incarnation is remembered.
ha_incarnation_file() { echo "$(ha_home)/shard$1.incarnation"; }

# Formation I is made around its first node's current incarnation.
ha_remember_incarnation() {
    incarnation "$(datadir "$(primary_name "$1")")" |
        as_pg sh -c "cat > '$(ha_incarnation_file "$1")'"
}

# Formation I's first node has another incarnation than the formation was made with:
# it was restored. A formation made before they were remembered is judged by its first
# secondary (a clone carries its primary's incarnation file).
ha_restored() {
    local i=$1 now was="" first
    now=$(incarnation "$(datadir "$(primary_name "$i")")")
    [[ -n $now ]] || return 1
    was=$(cat "$(ha_incarnation_file "$i")" 2>/dev/null || true)
    if [[ -z $was ]] && ((REPLICAS > 0)); then
        first=$(datadir "$(replica_name "$i" 0)")
        if [[ -f $first/PG_VERSION ]]; then was=$(incarnation "$first"); fi
    fi
    [[ -n $was && $was != "$now" ]]
}

# Formation I made ready to be made again around its restored first node (see above).
ha_reform() {
    local i=$1 formation=shard$1 pname pdir name names=()
    pname=$(primary_name "$i")
    pdir=$(datadir "$pname")
    if [[ -e $pdir/recovery.signal || -e $pdir/standby.signal ]]; then
        die "$pname has a new incarnation but has not left recovery (its restore did not finish): run shard-admin restore --point NAME --yes again, then ./setup.sh up"
    fi
    say "$pname was restored (a new incarnation): re-forming formation $formation around it; its other nodes are cloned again"
    names=("$pname")
    while read -r name; do
        if is_replica_name "$name" && [[ $(shard_of "$name") == "$i" ]]; then names+=("$name"); fi
    done < <(existing_names)
    for name in "${names[@]}"; do
        ha_keeper_stop "$name" TERM
        if [[ -f $(datadir "$name")/PG_VERSION ]]; then pg_stop "$name" fast; fi
    done
    ha_forget_formation "$formation"
    for name in "${names[@]}"; do
        ha_forget_node "$name"
        if [[ $name != "$pname" ]]; then
            say "emptying $name (it holds data from after the point)"
            as_pg rm -rf "$(datadir "$name")"
        fi
    done
    # Its files may be another node's: the backup was taken on whichever was primary.
    ha_instance_conf "$pname" "$pdir"
}

# The monitor forgets every node of FORMATION (forced: their keepers are stopped).
ha_forget_formation() {
    local f=$1 i
    sql "$HA_MONITOR_PORT" "$HA_MONITOR_DB" "SELECT pgautofailover.remove_node(nodeid, true)
        FROM pgautofailover.node WHERE formationid = '$f'" >/dev/null
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        [[ -n $(sql "$HA_MONITOR_PORT" "$HA_MONITOR_DB" \
            "SELECT 1 FROM pgautofailover.node WHERE formationid = '$f' LIMIT 1") ]] || return 0
        sleep 0.1
    done
    die "the monitor still lists nodes of formation $f ${START_TIMEOUT}s after removing them"
}

# pg_autoctl's configuration, state and run files of node NAME (its data dir is kept).
ha_forget_node() {
    local home rel
    home=$(ha_home)
    rel=pg_autoctl$(datadir "$1")
    as_pg rm -rf "$home/config/$rel" "$home/share/$rel" "$home/run/$rel" "$home/$1.pid"
}
