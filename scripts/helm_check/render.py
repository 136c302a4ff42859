"""Renders the Helm chart for one set of values, one object a file, and tightens the
CRD schemas: called by scripts/helm_check.sh (its header says the whole check).

Usage: render.py CHART CNPG_CRDS LOCAL_SCHEMAS OUT SET... (each `default` or a values file)
Writes OUT/<set>/builtin/NN-kind-name.yaml and OUT/<set>/custom/<group_version_Kind>/
NN-kind-name.yaml, one object a file, and OUT/schemas/<Kind>.json, the tightened
schemas; prints a summary; exits 1 when a set did not render.
"""
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

PLUGIN = "barman-cloud.cloudnative-pg.io"

def merged(base, over):
    """values.yaml with a set's values over it, as Helm merges them (maps key by key)."""
    out = dict(base)
    for key, value in (over or {}).items():
        out[key] = merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out

def backups(objects, values):
    """With backup.enabled, every Cluster archives through the Barman Cloud Plugin to a
    rendered ObjectStore and every ScheduledBackup backs up through it (backup.method
    plugin), or, legacy, through spec.backup.barmanObjectStore; with recovery.enabled,
    every Cluster restores from an origin read the same way; with neither, none does."""
    problems = []
    plugin = values["backup"]["method"] == "plugin"
    stores = {o["metadata"]["name"] for o in objects if o.get("kind") == "ObjectStore"}
    for c in (o for o in objects if o.get("kind") == "Cluster"):
        spec, name = c["spec"], c["metadata"]["name"]
        archivers = [p for p in spec.get("plugins", []) if p["name"] == PLUGIN]
        legacy = "barmanObjectStore" in spec.get("backup", {})
        if not values["backup"]["enabled"]:
            if archivers or legacy:
                problems.append(f"Cluster {name}: archives with backup.enabled false")
        elif plugin and (legacy or len(archivers) != 1 or not archivers[0].get("isWALArchiver")
                         or archivers[0].get("parameters", {}).get("barmanObjectName") not in stores):
            problems.append(f"Cluster {name}: backup.method plugin, but not one WAL archiver "
                            f"{PLUGIN} naming a rendered ObjectStore ({sorted(stores)}), or "
                            f"the in-tree barmanObjectStore as well")
        elif not plugin and (archivers or not legacy):
            problems.append(f"Cluster {name}: backup.method barmanObjectStore, but no "
                            f"spec.backup.barmanObjectStore, or the plugin as well")
        if values["recovery"]["enabled"]:
            source = spec.get("bootstrap", {}).get("recovery", {}).get("source")
            origin = next((e for e in spec.get("externalClusters", []) if e["name"] == source), {})
            through = origin.get("plugin", {})
            if plugin and (through.get("name") != PLUGIN
                           or through.get("parameters", {}).get("barmanObjectName") not in stores
                           or "barmanObjectStore" in origin):
                problems.append(f"Cluster {name}: restores, but not through {PLUGIN} from a rendered ObjectStore")
            elif not plugin and "barmanObjectStore" not in origin:
                problems.append(f"Cluster {name}: restores, but its origin has no barmanObjectStore")
    for sb in (o for o in objects if o.get("kind") == "ScheduledBackup"):
        spec = sb["spec"]
        ok = (spec.get("method") == "plugin" and spec.get("pluginConfiguration", {}).get("name") == PLUGIN
              if plugin else spec.get("method") == "barmanObjectStore")
        if not ok:
            problems.append(f"ScheduledBackup {sb['metadata']['name']}: method {spec.get('method')!r} "
                            f"with backup.method {values['backup']['method']!r}")
    return problems

def gateway_pods(objects, values, full):
    """The gateway Deployment carries what the values give it (image by digest, priority
    class, securityContext, extra volumes, topology spread with the gateways' selector),
    restarts on a changed Secret (checksum/secrets) and names its pod, namespace and node
    to OpenTelemetry (OTEL_RESOURCE_ATTRIBUTES from the downward API); a `helm test` pod
    asks the gateways' Service for /api/health/ready."""
    problems = []
    g, image = values["gateway"], values["image"]
    dep = next((o for o in objects if o.get("kind") == "Deployment" and o["metadata"]["name"] == full), None)
    if dep is None:
        return [f"no gateway Deployment {full}"]
    pod = dep["spec"]["template"]
    spec, c = pod["spec"], pod["spec"]["containers"][0]
    if image["digest"] and c["image"] != f"{image['repository']}@{image['digest']}":
        problems.append(f"gateway image {c['image']}, not by image.digest {image['digest']}")
    if spec.get("priorityClassName", "") != g["priorityClassName"]:
        problems.append(f"gateway priorityClassName {spec.get('priorityClassName')!r}, not {g['priorityClassName']!r}")
    for key, want in g["podSecurityContext"].items():
        if spec.get("securityContext", {}).get(key) != want:
            problems.append(f"gateway pod securityContext.{key} is not {want!r}")
    volumes = {v["name"] for v in spec.get("volumes", [])}
    mounts = {m["name"] for m in c.get("volumeMounts", [])}
    for v in g["extraVolumes"]:
        if v["name"] not in volumes:
            problems.append(f"gateway: extraVolumes {v['name']} not in the pod")
    for m in g["extraVolumeMounts"]:
        if m["name"] not in mounts or m["name"] not in volumes:
            problems.append(f"gateway: extraVolumeMounts {m['name']} not mounted, or no such volume")
    selector = dep["spec"]["selector"]["matchLabels"]
    spread = spec.get("topologySpreadConstraints", [])
    if len(spread) != len(g["topologySpreadConstraints"]) or any(
            "labelSelector" not in t for t in spread):
        problems.append("gateway: topologySpreadConstraints not as given, or one without a labelSelector")
    for t, given in zip(spread, g["topologySpreadConstraints"]):
        if "labelSelector" not in given and t.get("labelSelector", {}).get("matchLabels") != selector:
            problems.append("gateway: a topology spread constraint does not select the gateways")
    if not re.fullmatch(r"[0-9a-f]{64}", pod["metadata"].get("annotations", {}).get("checksum/secrets", "")):
        problems.append("gateway: no checksum/secrets annotation (a changed Secret would not restart it)")
    env = {e["name"]: e for e in c.get("env", [])}
    attrs = dict(kv.split("=", 1) for kv in env.get("OTEL_RESOURCE_ATTRIBUTES", {}).get("value", "").split(",") if "=" in kv)
    for attr, field in (("k8s.pod.name", "metadata.name"), ("k8s.namespace.name", "metadata.namespace"),
                        ("k8s.node.name", "spec.nodeName")):
        var = re.fullmatch(r"\$\(([A-Z0-9_]+)\)", attrs.get(attr, ""))
        if not var or env.get(var[1], {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != field:
            problems.append(f"gateway: OTEL_RESOURCE_ATTRIBUTES has no {attr} from the downward API's {field}")
    service = next((o for o in objects if o.get("kind") == "Service" and o["metadata"]["name"] == full), None)
    tests = [o for o in objects if o.get("kind") == "Pod"
             and o["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    if not tests:
        problems.append("no helm test Pod (annotation helm.sh/hook: test)")
    for t in tests:
        tc = t["spec"]["containers"][0]
        args = tc.get("args", [])
        port = service and service["spec"]["ports"][0]["port"]
        # The gateway image's own probe (its entrypoint, api-router), no shell: `probe
        # --ready` asks GET /api/health/ready and exits 0 on 200 only.
        listen = args[args.index("--listen") + 1] if "--listen" in args[:-1] else None
        if (tc.get("command") or tc.get("image") != c.get("image") or args[:2] != ["probe", "--ready"]
                or listen != f"{full}:{port}"):
            problems.append(f"helm test {t['metadata']['name']}: does not run the gateway image's "
                            f"`api-router probe --ready --listen {full}:{port}` (no command, no shell)")
    return problems

REPO = pathlib.Path(__file__).resolve().parents[2]

def anchors(markdown):
    """The ids mdBook gives a page's headings: lower case, punctuation dropped, spaces
    to hyphens."""
    return {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", markdown, re.M)}

def exposed_families():
    """Every metric family the gateway's exposition names (analytics/src/exposition)."""
    return {name for path in (REPO / "analytics" / "src" / "exposition").glob("*.rs")
            for name in re.findall(r'"(shardgate_[a-z_]+)"', path.read_text())}

def alerts(objects, target):
    """Every PrometheusRule's groups written to <set>/rules/<name>.yaml for `promtool
    check rules`; each alert has a runbook_url into a chapter of the book that
    SUMMARY.md lists, at a heading that chapter has; every shardgate_* metric a rule
    reads is a family the gateway exposes."""
    problems = []
    summary = (REPO / "docs" / "src" / "SUMMARY.md").read_text()
    families = exposed_families()
    for rule in (o for o in objects if o.get("kind") == "PrometheusRule"):
        name = rule["metadata"]["name"]
        (target / "rules").mkdir(parents=True, exist_ok=True)
        (target / "rules" / f"{name}.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
        for group in rule["spec"]["groups"]:
            for r in group["rules"]:
                url = r.get("annotations", {}).get("runbook_url", "")
                m = re.fullmatch(r"https?://\S+/([a-z0-9_-]+)\.html#([a-z0-9_-]+)", url)
                page = m and REPO / "docs" / "src" / f"{m[1]}.md"
                if not m or not page.is_file() or f"({m[1]}.md)" not in summary:
                    problems.append(f"PrometheusRule {name}: {r.get('alert')}'s runbook_url {url!r} is not a chapter of the book")
                elif m[2] not in anchors(page.read_text()):
                    problems.append(f"PrometheusRule {name}: {r.get('alert')}'s runbook_url: docs/src/{m[1]}.md has no heading #{m[2]}")
                for metric in set(re.findall(r"\b(shardgate_[a-z_]+)", r["expr"])) - families:
                    problems.append(f"PrometheusRule {name}: {r.get('alert')} reads {metric}, which the gateway does not expose")
    return problems

def deployment_checksum(values):
    rendered = chart.render(values, name="sg", namespace="shardgate", is_install=True)
    for template, text in rendered.items():
        if not template.endswith(".yaml"):
            continue
        for obj in yaml.safe_load_all(text):
            if obj and obj.get("kind") == "Deployment" and obj["metadata"]["name"] == "sg-shardgate":
                return obj["spec"]["template"]["metadata"]["annotations"].get("checksum/secrets")

def secrets_roll_gateways():
    """A changed password changes the gateways' pod template (so they restart); the same
    one leaves it as it was (no restart on every upgrade)."""
    a1, a2, b = (deployment_checksum({"database": {"password": p}}) for p in ("pw-a", "pw-a", "pw-b"))
    if not a1 or a1 != a2 or a1 == b:
        return [f"checksum/secrets: password pw-a gives {a1} then {a2}, pw-b {b}: "
                f"a changed Secret must change it, the same one must not"]
    return []

chart = helm.Chart.load(chart_dir)
defaults = yaml.safe_load((pathlib.Path(chart_dir) / "values.yaml").read_text())
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
    full = next((o["metadata"]["name"] for o in objects if o.get("kind") == "ConfigMap"
                 and "shardgate.toml" in o.get("data", {})), "-config").removesuffix("-config")
    everything = merged(defaults, values)
    for problem in (secure_defaults(config, objects, values or {}) + backups(objects, everything)
                    + gateway_pods(objects, everything, full) + alerts(objects, target)):
        print(f"[{label}] {problem}", file=sys.stderr)
        failed = True
    (target / "schemas.json").write_text(json.dumps(schemas))
    summary = ", ".join(f"{c} {k}" for k, c in sorted(counts.items()))
    print(f"rendered [{label}]: {n} objects ({summary})")
for problem in secrets_roll_gateways():
    print(problem, file=sys.stderr)
    failed = True
sys.exit(1 if failed else 0)
