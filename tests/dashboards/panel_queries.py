#!/usr/bin/python3
"""Every PromQL query of the Grafana dashboards, for the tests.

usage: panel_queries.py check DASHBOARD_DIR PROMTOOL OUT_RULE_FILE
           checks the dashboards' structure (schema, ${datasource} everywhere, no fixed datasource
           UID, a unit on every panel), writes every query as a recording rule into OUT_RULE_FILE
           and runs `PROMTOOL check rules` on it, so promtool parses each one
       panel_queries.py list DASHBOARD_DIR
           prints a JSON list of {dashboard, panel, ref, expr} with the Grafana variables replaced
           ($instance, $target: every value; $__rate_interval: 1m; $__interval: 15s; $__range: 1h)
"""
import json
import pathlib
import re
import subprocess
import sys

SUBSTITUTIONS = [("${__rate_interval}", "1m"), ("$__rate_interval", "1m"), ("${__interval}", "15s"),
                 ("$__interval", "15s"), ("${__range}", "1h"), ("$__range", "1h"),
                 ('"$instance"', '".*"'), ('"$target"', '".*"'), ("${instance}", ".*"), ("${target}", ".*")]


def concrete(expr):
    for old, new in SUBSTITUTIONS:
        expr = expr.replace(old, new)
    return expr


def queries(directory):
    out, problems = [], []
    for path in sorted(pathlib.Path(directory).glob("*.json")):
        d = json.loads(path.read_text())
        where = path.name
        if d.get("schemaVersion", 0) < 36:
            problems.append(f"{where}: schemaVersion {d.get('schemaVersion')} is older than Grafana 9")
        def walk(node):
            if isinstance(node, dict):
                for k, v in node.items():
                    if k == "uid" and node is not d and v not in ("${datasource}", "-- Grafana --"):
                        problems.append(f"{where}: a fixed datasource uid {v!r}")
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
        walk(d)
        variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
        if variables.get("datasource", {}).get("type") != "datasource":
            problems.append(f"{where}: no `datasource` variable of type datasource")
        for name in ("instance", "target"):
            if name not in variables:
                problems.append(f"{where}: no `{name}` variable")
        for v in variables.values():
            if v.get("type") == "query":
                if v.get("datasource") != {"type": "prometheus", "uid": "${datasource}"}:
                    problems.append(f"{where}: variable {v['name']}: datasource is not ${{datasource}}")
                m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", v["definition"])
                if not m:
                    problems.append(f"{where}: variable {v['name']}: not label_values(SELECTOR, LABEL)")
                    continue
                out.append({"dashboard": path.name, "panel": f"variable {v['name']}", "ref": m.group(2),
                            "expr": concrete(m.group(1)), "variable": True})
        for p in d.get("panels", []):
            if p["type"] == "row":
                continue
            pw = f"{where}: panel {p['title']!r}"
            if p.get("datasource") != {"type": "prometheus", "uid": "${datasource}"}:
                problems.append(f"{pw}: datasource is {p.get('datasource')}, not ${{datasource}}")
            if not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
                problems.append(f"{pw}: no unit")
            if not p.get("targets"):
                problems.append(f"{pw}: no query")
            for t in p.get("targets", []):
                if t.get("datasource") != {"type": "prometheus", "uid": "${datasource}"}:
                    problems.append(f"{pw} {t.get('refId')}: query datasource is not ${{datasource}}")
                # ALERTS carries the labels of the alerting series, whichever exporter they came from.
                if "$instance" not in t["expr"] and "ALERTS{" not in t["expr"]:
                    problems.append(f"{pw} {t.get('refId')}: no instance=~\"$instance\" selector")
                out.append({"dashboard": path.name, "panel": p["title"], "ref": t["refId"],
                            "expr": concrete(t["expr"])})
    return out, problems


def main():
    mode, directory = sys.argv[1], sys.argv[2]
    qs, problems = queries(directory)
    if mode == "list":
        print(json.dumps([q for q in qs if not q.get("variable")], indent=1))
        return 0
    promtool, rule_file = sys.argv[3], pathlib.Path(sys.argv[4])
    rules = []
    for i, q in enumerate(qs):
        rules.append(f"      # {q['dashboard']}: {q['panel']} ({q['ref']})\n"
                     f"      - record: dashboard_query_{i}\n"
                     f"        expr: {json.dumps(q['expr'])}\n")
    rule_file.write_text("groups:\n  - name: dashboard-queries\n    rules:\n" + "".join(rules))
    for p in problems:
        print(p)
    result = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True, text=True)
    sys.stdout.write(result.stdout + result.stderr)
    if result.returncode != 0:
        problems.append(f"promtool rejects a query of {rule_file} (the comment above each names its panel)")
    print(f"{len(rules)} queries (panels and variables), {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
