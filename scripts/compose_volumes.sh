# scripts/compose_volumes.sh: sourced by setup.sh (functions only). The compose stack's
# data volumes and the passwords they were made under. `./setup.sh compose` makes the
# volumes itself, as compose would name them, labelled with a fingerprint of the
# passwords (dev.shardgate.credentials) and the file holding them
# (dev.shardgate.env-file): podman-compose does not expand variables in the compose
# file's volume labels. `./setup.sh compose up|test` reads the labels of its project's
# volumes before it builds or starts anything:
#   - every volume made under this checkout's passwords: nothing to do;
#   - every one made under the passwords of a file still on this machine (another
#     checkout's .local/compose/compose.env, whose fingerprint still matches): adopted,
#     that file copied over this checkout's (its own kept as compose.env.replaced);
#   - otherwise (another checkout's passwords since removed, .local/ removed here, made
#     by hand or before the labels): refused at once, naming the volumes and the command
#     that removes them. The servers in them would refuse every login, and the start
#     would wait minutes on them.
# A fingerprint is the first 16 hex digits of a SHA-256 of the passwords; it reveals none.

# The fingerprint of the passwords in FILE (compose.env's form, NAME=value lines; read,
# never sourced: another checkout's file is data here).
compose_fingerprint() {
    local v
    for v in "${COMPOSE_PASSWORDS[@]}"; do
        printf '%s=%s\n' "$v" "$(sed -n "s/^$v=//p" "$1" | head -n 1)"
    done | sha256sum | cut -c1-16
}

# The project's volumes, one a line: name, fingerprint, env file (tab-separated; empty
# fields for a volume without the labels).
compose_volume_lines() {
    local project=$1 name labels
    "$COMPOSE_ENGINE" volume ls -q --filter "label=com.docker.compose.project=$project" | sort |
        while read -r name; do
            labels=$("$COMPOSE_ENGINE" volume inspect -f '{{index .Labels "dev.shardgate.credentials"}}	{{index .Labels "dev.shardgate.env-file"}}' "$name")
            printf '%s\t%s\n' "$name" "${labels//<no value>/}"
        done
}

# The verdict on the volume lines on stdin, for this checkout's fingerprint $1 and the
# project $2: prints `ok`, `adopt FILE`, or `refuse MESSAGE` (one line).
compose_volumes_verdict() {
    local own=$1 project=$2 name fp env foreign=() fps=() envs=() mixed=0
    while IFS=$'\t' read -r name fp env; do
        [[ -n $name ]] || continue
        if [[ -n $fp && $fp == "$own" ]]; then
            mixed=1
            continue
        fi
        foreign+=("$name")
        [[ " ${fps[*]} " == *" ${fp:-none} "* ]] || fps+=("${fp:-none}")
        [[ " ${envs[*]} " == *" ${env:-none} "* ]] || envs+=("${env:-none}")
    done
    ((${#foreign[@]} > 0)) || { echo ok; return; }
    env=${envs[0]}
    if ((mixed == 0 && ${#fps[@]} == 1 && ${#envs[@]} == 1)) && [[ $env != none && -r $env ]] &&
        [[ $(compose_fingerprint "$env") == "${fps[0]}" ]]; then
        echo "adopt $env"
        return
    fi
    local why
    if [[ ${fps[*]} == none ]]; then
        why="made by hand or before volumes were labelled: their passwords are unknown"
    elif ((${#envs[@]} == 1)) && [[ $env != none ]]; then
        why="made under the passwords of $env, which $([[ -r $env ]] && echo "holds others now" || echo "is gone")"
    else
        why="made under other passwords, no longer on this machine"
    fi
    echo "refuse the volumes ${foreign[*]} (project $project) were $why; the servers in them would refuse every login. Remove them (their data is lost): ./setup.sh compose down -v, or $COMPOSE_ENGINE volume rm ${foreign[*]}"
}

# Before anything is built or started: the verdict on the project's volumes, acted on.
compose_volumes_check() {
    local project=${COMPOSE_PROJECT:-shardgate} verdict file=$COMPOSE_DIR/compose.env
    verdict=$(compose_volume_lines "$project" | compose_volumes_verdict "$SHARDGATE_COMPOSE_CREDENTIALS" "$project")
    case $verdict in
        ok) ;;
        adopt\ *)
            say "the volumes of project $project were made under the passwords in ${verdict#adopt }: using them (this checkout's kept as $file.replaced)"
            mv "$file" "$file.replaced"
            (umask 077 && cp "${verdict#adopt }" "$file")
            compose_passwords
            ;;
        *) die "${verdict#refuse }" ;;
    esac
}

# The project's data volumes, as docker-compose.yml names them (<project>_NAME).
compose_volume_names() {
    local s
    echo meta monitor
    for s in "${COMPOSE_SHARDS[@]}"; do echo "$s-a" "$s-b"; done
}

# Makes those of the project's data volumes that do not exist yet, labelled for compose
# (so it takes them as its own) and with the passwords' fingerprint and file.
compose_volumes_create() {
    local project=${COMPOSE_PROJECT:-shardgate} v
    for v in $(compose_volume_names); do
        "$COMPOSE_ENGINE" volume inspect "${project}_$v" >/dev/null 2>&1 && continue
        "$COMPOSE_ENGINE" volume create --label "com.docker.compose.project=$project" \
            --label "com.docker.compose.volume=$v" --label "io.podman.compose.project=$project" \
            --label "dev.shardgate.credentials=$SHARDGATE_COMPOSE_CREDENTIALS" \
            --label "dev.shardgate.env-file=$SHARDGATE_COMPOSE_ENV" "${project}_$v" >/dev/null ||
            die "$COMPOSE_ENGINE volume create ${project}_$v failed"
    done
}
