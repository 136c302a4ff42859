# scripts/lib/topology.sh: sourced by setup.sh (functions only). The topology's
# servers: their names, ports and data directories, and where the data lives and who
# owns it.

validate_topology() {
    if [[ ! $SHARDS =~ ^[0-9]+$ ]] || ((10#$SHARDS < 1 || 10#$SHARDS > MAX_SHARDS)); then
        die "SHARDS must be 1..$MAX_SHARDS (got '$SHARDS')"
    fi
    if [[ ! $REPLICAS =~ ^[0-9]+$ ]] || ((10#$REPLICAS > MAX_REPLICAS)); then
        die "REPLICAS must be 0..$MAX_REPLICAS (got '$REPLICAS')"
    fi
    if [[ ! $SPARE_SHARDS =~ ^[0-9]+$ ]] || ((10#$SHARDS + 10#$SPARE_SHARDS > MAX_SHARDS)); then
        die "SPARE_SHARDS must be 0..$((MAX_SHARDS - 10#$SHARDS)) with SHARDS=$SHARDS (got '$SPARE_SHARDS')"
    fi
    SHARDS=$((10#$SHARDS))
    REPLICAS=$((10#$REPLICAS))
    SPARE_SHARDS=$((10#$SPARE_SHARDS))
}

primary_name() { printf 'shard%d-primary' "$1"; }
replica_name() { printf 'shard%d-replica%d' "$1" "$2"; }

# Port of a server name; fails for a name that is not shardN-primary / shardN-replicaR.
port_of() {
    local name=$1
    if [[ $name == "$META_NAME" ]]; then
        echo "$META_PORT"
    elif [[ $name == "$HA_MONITOR_NAME" ]]; then
        echo "$HA_MONITOR_PORT"
    elif [[ $name =~ ^shard([0-9]+)-primary$ ]]; then
        local i=$((10#${BASH_REMATCH[1]}))
        ((i < MAX_SHARDS)) || return 1
        echo $((PRIMARY_BASE_PORT + i))
    elif [[ $name =~ ^shard([0-9]+)-replica([0-9]+)$ ]]; then
        local i=$((10#${BASH_REMATCH[1]})) r=$((10#${BASH_REMATCH[2]}))
        ((i < MAX_SHARDS && r < MAX_REPLICAS)) || return 1
        echo $((REPLICA_BASE_PORT + i + REPLICA_STRIDE * r))
    else
        return 1
    fi
}
is_replica_name() { [[ $1 == *-replica* ]]; }
shard_of() { local n=${1#shard}; echo "${n%%-*}"; }   # shard3-replica0 -> 3

datadir() { echo "$DATA_ROOT/$1"; }
logfile() { echo "$DATA_ROOT/$1/log/postgresql.log"; }

# Names in the requested topology: the metadata server, then primaries first within
# each shard; the spare shards (started empty, outside the map, for `add-shard`) last.
topology_names() {
    local i r
    echo "$META_NAME"
    for ((i = 0; i < SHARDS + SPARE_SHARDS; i++)); do
        primary_name "$i"; echo
        for ((r = 0; r < REPLICAS; r++)); do replica_name "$i" "$r"; echo; done
    done
}

# Every server that has a data dir, in a stable order (shard, then primary before replicas).
existing_names() {
    [[ -n $DATA_ROOT && -d $DATA_ROOT ]] || return 0
    [[ -f $DATA_ROOT/$META_NAME/PG_VERSION ]] && echo "$META_NAME"
    local d n
    for d in "$DATA_ROOT"/shard*-primary "$DATA_ROOT"/shard*-replica*; do
        [[ -d $d ]] || continue
        n=$(basename "$d")
        port_of "$n" >/dev/null || continue
        echo "$n"
    done | sort -t- -k1.6n -k2,2
}


# (No `topology_names | grep -q`: with pipefail, grep quitting early can fail the pipe.)
in_topology() {
    local names
    names=$(topology_names)
    grep -qx -- "$1" <<<"$names"
}

# ---------------------------------------------------------------------------------------
# Where the data lives, and who owns it
# ---------------------------------------------------------------------------------------
# Refuses a data dir that is a symlink, or that is owned by someone other than root or
# the PostgreSQL OS user, or that others may write to: it could be another user's trap.
check_private_dir() {
    local dir=$1 owner mode
    [[ ! -L $dir && -d $dir ]] || die "$dir exists and is not a plain directory; remove it and retry"
    owner=$(stat -c %U "$dir")
    mode=$(stat -c %a "$dir")
    [[ $owner == root || $owner == "$PG_OS_USER" ]] ||
        die "$dir belongs to $owner, not to root or $PG_OS_USER; remove it and retry"
    ((8#$mode & 8#022)) && die "$dir is writable by others (mode $mode); remove it and retry"
    return 0
}

# Sets DATA_ROOT (may not exist yet) and PG_OS_USER. With create=1, also makes the
# directory (deciding between .local/cluster and /var/tmp as described at the top).
resolve_data_root() {
    local create=${1:-0}
    if [[ -L $CLUSTER_LINK ]]; then
        DATA_ROOT=$(readlink "$CLUSTER_LINK")
    else
        DATA_ROOT=$CLUSTER_LINK
    fi

    # The OS user PostgreSQL runs as.
    if [[ $IS_ROOT -ne 1 ]]; then
        PG_OS_USER=$(id -un)
    elif [[ -d $DATA_ROOT ]] && [[ $(stat -c %U "$DATA_ROOT") != root ]]; then
        PG_OS_USER=$(stat -c %U "$DATA_ROOT")   # whoever created it before
    else
        PG_OS_USER=postgres
    fi
    if [[ $IS_ROOT -ne 1 && -d $DATA_ROOT && $(stat -c %U "$DATA_ROOT") != "$PG_OS_USER" ]]; then
        die "$DATA_ROOT belongs to $(stat -c %U "$DATA_ROOT"); run setup.sh as root (or as that user)"
    fi

    [[ $create -eq 1 ]] || return 0
    if [[ -d $DATA_ROOT ]]; then
        [[ $DATA_ROOT != /var/tmp/shardgate-* ]] || check_private_dir "$DATA_ROOT"
        # An earlier run may have died between mkdir and chown.
        if [[ $IS_ROOT -eq 1 && $(stat -c %U "$DATA_ROOT") != "$PG_OS_USER" ]]; then
            chown "$PG_OS_USER": "$DATA_ROOT"
        fi
        return 0
    fi

    if [[ $IS_ROOT -eq 1 ]]; then
        if ! id -u postgres >/dev/null 2>&1; then
            say "creating the postgres system user"
            useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
                --shell /bin/bash postgres
        fi
        mkdir -p "$LOCAL"
        if [[ -L $CLUSTER_LINK ]] || ! runuser -u "$PG_OS_USER" -- test -x "$LOCAL" 2>/dev/null; then
            # The postgres user cannot traverse the repo path (e.g. /root is 0700): keep the
            # data under /var/tmp, one directory per clone, and point .local/cluster at it.
            local hash
            hash=$(printf '%s' "$REPO" | sha256sum | cut -c1-12)
            DATA_ROOT=/var/tmp/shardgate-$hash
            say "$PG_OS_USER cannot reach $LOCAL; cluster data goes to $DATA_ROOT"
            # A predictable name in a shared directory: someone else may have made it
            # first. Create it ourselves, or refuse one we did not make.
            if ! mkdir -m 700 "$DATA_ROOT" 2>/dev/null; then
                check_private_dir "$DATA_ROOT"
            fi
            ln -sfn "$DATA_ROOT" "$CLUSTER_LINK"
        else
            mkdir -p "$DATA_ROOT"
        fi
        chown "$PG_OS_USER": "$DATA_ROOT"
    else
        mkdir -p "$DATA_ROOT"
    fi
    chmod 755 "$DATA_ROOT"
}
