"""The Grafana dashboard deploy/grafana/shardgate.json: every metric its queries read is
a family the gateway exposes (analytics/src/exposition; a histogram's _bucket, _sum and
_count are its family's), every panel asks the dashboard's data source variable, and
panel ids are unique. Writes its queries, Grafana's variables replaced, as recording
rules to OUT for `promtool check rules` (their PromQL parses). Prints problems and
exits 1; exits 0 with a one-line summary.

    dashboard.py DASHBOARD OUT_RULES_FILE
"""
import json
import pathlib
import re
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$job": ".+"}


def families() -> set[str]:
    return {name for path in (REPO / "analytics" / "src" / "exposition").glob("*.rs")
            for name in re.findall(r'"((?:shardgate|process)_[a-z_]+)"', path.read_text())}


def panels(node):
    for panel in node.get("panels", []):
        yield panel
        yield from panels(panel)


def main() -> int:
    dashboard = json.loads(pathlib.Path(sys.argv[1]).read_text())
    known, problems, rules, ids = families(), [], [], set()
    queries = [(p, t["expr"]) for p in panels(dashboard) for t in p.get("targets", [])]
    queries += [({"title": f"variable {v['name']}"}, v["definition"])
                for v in dashboard["templating"]["list"] if v["type"] == "query"]
    for panel in panels(dashboard):
        if panel["id"] in ids:
            problems.append(f"panel id {panel['id']} twice")
        ids.add(panel["id"])
        if panel["type"] != "row" and panel.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"panel {panel['title']!r}: not on the ${{datasource}} variable")
    for panel, expr in queries:
        for metric in set(re.findall(r"\b((?:shardgate|process)_[a-z_]+)", expr)):
            family = re.sub(r"_(bucket|sum|count)$", "", metric)
            if metric not in known and family not in known:
                problems.append(f"panel {panel['title']!r} reads {metric}, which the gateway does not expose")
        if expr.startswith("label_values("):
            continue
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        rules.append({"record": f"dashboard:query{len(rules)}", "expr": expr})
    pathlib.Path(sys.argv[2]).write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    for problem in problems:
        print(f"{sys.argv[1]}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"dashboard: {len(queries)} queries over {len(ids)} panels, every metric one the gateway exposes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
