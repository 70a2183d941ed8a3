#!/usr/bin/python3
"""Consistency checks of the runbook rule pack that promtool does not make.

usage: check_rulepack.py RULES_DIR

- every alert has a severity of warning or critical, a summary, a description and a runbook_url
  of the form rules/runbook/<page>.md#<anchor> whose page exists beside the rules and has a
  heading with that anchor (GitHub's anchor rules);
- every alert is exercised by an alert_rule_test of a *_test.yml that expects it to fire, and by
  one that expects it not to fire;
- every runbook:*:threshold_* series an alert compares with is recorded in thresholds.rules.yml,
  and every threshold recorded there is used by an alert;
- every alert of a warning/critical pair (same alertname) has one rule per severity.
Prints every problem with its file and exits 1 if there is any.
"""
import collections
import pathlib
import re
import sys

import yaml


def github_anchor(heading):
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def main():
    rules_dir = pathlib.Path(sys.argv[1])
    problems = []
    alerts = collections.defaultdict(list)  # alertname -> [(file, rule)]
    used_thresholds = set()
    recorded_thresholds = set()

    for path in sorted(rules_dir.glob("*.rules.yml")):
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    if path.name == "thresholds.rules.yml":
                        recorded_thresholds.add(rule["record"])
                    elif ":threshold_" in rule["record"]:
                        problems.append(f"{path.name}: threshold {rule['record']} outside thresholds.rules.yml")
                    continue
                name = rule["alert"]
                alerts[name].append((path.name, rule))
                used_thresholds.update(re.findall(r"runbook:[A-Za-z0-9_]+:threshold_[a-z]+", rule["expr"]))
                where = f"{path.name}: {name}"
                severity = rule.get("labels", {}).get("severity")
                if severity not in ("warning", "critical"):
                    problems.append(f"{where}: severity is {severity!r}, not warning or critical")
                ann = rule.get("annotations", {})
                for key in ("summary", "description", "runbook_url"):
                    if not ann.get(key):
                        problems.append(f"{where}: no {key} annotation")
                url = ann.get("runbook_url", "")
                m = re.fullmatch(r"rules/runbook/([a-z]+\.md)#([a-z0-9-]+)", url)
                if not m:
                    problems.append(f"{where}: runbook_url {url!r} is not rules/runbook/<page>.md#<anchor>")
                    continue
                page = rules_dir / m.group(1)
                if not page.exists():
                    problems.append(f"{where}: runbook page {m.group(1)} does not exist")
                    continue
                anchors = {github_anchor(line.lstrip("#")) for line in page.read_text().splitlines()
                           if line.startswith("#")}
                if m.group(2) not in anchors:
                    problems.append(f"{where}: {m.group(1)} has no heading with anchor #{m.group(2)}")

    for name, rules in alerts.items():
        severities = [r.get("labels", {}).get("severity") for _, r in rules]
        if len(severities) != len(set(severities)):
            problems.append(f"{rules[0][0]}: {name}: two rules with the same severity")

    for t in sorted(used_thresholds - recorded_thresholds):
        problems.append(f"an alert compares with {t}, which thresholds.rules.yml does not record")
    for t in sorted(recorded_thresholds - used_thresholds):
        problems.append(f"thresholds.rules.yml records {t}, which no alert uses")

    fires, quiet = set(), set()
    for path in sorted(rules_dir.glob("*_test.yml")):
        doc = yaml.safe_load(path.read_text())
        for test in doc.get("tests", []):
            for case in test.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    for name in sorted(alerts):
        if name not in fires:
            problems.append(f"{name}: no alert_rule_test expects it to fire")
        if name not in quiet:
            problems.append(f"{name}: no alert_rule_test expects it not to fire")

    for p in problems:
        print(p)
    print(f"{len(alerts)} alerts, {len(recorded_thresholds)} thresholds, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
