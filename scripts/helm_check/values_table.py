"""The chart README's values table against values.yaml: every key the table names is a
key of values.yaml (or, under a list, of its items in values.schema.json), and every
key of values.yaml is named by the table, itself or a key above it. Prints each key
missing from one side and exits 1; exits 0 with a one-line summary when they agree.

    values_table.py CHART_DIR

A row's first cell names keys in code spans: the first in full (`gateway.drainMs`),
the next ones in full too or as its siblings, either bare (`nodeSelector`) or from
their dot (`.shutdownTimeoutSecs`); after a list's `key[]`, `.field` names a field of
its items.
"""

import json
import re
import sys
from pathlib import Path

import yaml


def table_keys(readme: str) -> list[str]:
    """The keys named in the first cell of each row under the `## Values` heading."""
    section = readme.split("\n## Values\n", 1)[1].split("\n## ", 1)[0]
    keys = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        spans = re.findall(r"`([^`]+)`", line.split(" | ", 1)[0])
        first = spans[0]
        keys.append(first)
        parent = first.rsplit(".", 1)[0] if "." in first else ""
        for span in spans[1:]:
            if first.endswith("[]"):
                keys.append(first + span)
            elif "." in span and not span.startswith("."):
                keys.append(span)
            elif span.startswith("."):
                keys.append(parent + span)
            else:
                keys.append(f"{parent}.{span}" if parent else span)
    return keys


def value_keys(values, prefix: str = "") -> list[str]:
    """Every key of values.yaml down to its leaves (a scalar, a list, an empty map)."""
    keys = []
    for name, value in values.items():
        key = f"{prefix}{name}"
        keys.append(key)
        if isinstance(value, dict) and value:
            keys.extend(value_keys(value, key + "."))
    return keys


def leaves(values, prefix: str = "") -> list[str]:
    out = []
    for name, value in values.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            out.extend(leaves(value, key + "."))
        else:
            out.append(key)
    return out


def item_fields(schema: dict, path: str) -> set[str]:
    """The fields values.schema.json allows in the items of the list at `path`."""
    node = schema
    for name in path.split("."):
        node = node.get("properties", {}).get(name, {})
    return set(node.get("items", {}).get("properties", {}))


def main() -> int:
    chart = Path(sys.argv[1])
    values = yaml.safe_load((chart / "values.yaml").read_text())
    schema = json.loads((chart / "values.schema.json").read_text())
    named = table_keys((chart / "README.md").read_text())
    known = set(value_keys(values))
    problems = []
    for key in named:
        if "[]" in key:
            path, field = key.split("[]", 1)
            ok = path in known and (not field or field[1:] in item_fields(schema, path))
        else:
            ok = key in known
        if not ok:
            problems.append(f"the README's values table names {key}, which values.yaml does not have")
    covered = {k.split("[]", 1)[0] for k in named}
    for leaf in leaves(values):
        parts = leaf.split(".")
        if not any(".".join(parts[:i]) in covered for i in range(1, len(parts) + 1)):
            problems.append(f"values.yaml has {leaf}, which the README's values table does not name")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"values table: {len(named)} keys named, every one in values.yaml; "
          f"all {len(leaves(values))} of values.yaml's keys named")
    return 0


if __name__ == "__main__":
    sys.exit(main())
