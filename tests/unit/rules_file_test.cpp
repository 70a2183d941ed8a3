// Rule-file validation; expected messages are promtool 2.42's for the same input.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli.h"
#include "runbook/rules.h"

namespace rules_file_test {

using namespace runbook;
using namespace runbook::rules;

namespace {
std::string Errors(std::string_view yaml) {
  LoadResult r = ParseRuleFile(yaml, "f.yml");
  std::string out;
  for (const auto& e : r.errors) out += e + "\n";
  return out;
}
}  // namespace

TEST_CASE("rule files: a valid file loads every field") {
  LoadResult r = ParseRuleFile(R"(groups:
  - name: g
    interval: 30s
    limit: 5
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels: {team: db}
      - alert: Down
        expr: job:up:sum == 0
        for: 5m
        keep_firing_for: 1m
        labels:
          severity: page
        annotations:
          summary: '{{ $labels.job }} is down ({{ $value | humanize }})'
)",
                               "f.yml");
  REQUIRE(r.ok());
  REQUIRE(r.groups.size() == 1);
  const GroupDef& g = r.groups[0];
  CHECK(g.name == "g");
  CHECK(g.interval_ms == 30000);
  CHECK(g.limit == 5);
  REQUIRE(g.rules.size() == 2);
  CHECK(g.rules[0].kind == RuleDef::Kind::kRecording);
  CHECK(g.rules[0].labels == Labels{{"team", "db"}});
  CHECK(g.rules[1].kind == RuleDef::Kind::kAlerting);
  CHECK(g.rules[1].name == "Down");
  CHECK(g.rules[1].for_ms == 300000);
  CHECK(g.rules[1].keep_firing_for_ms == 60000);
  CHECK(g.rules[1].line == 9);
  CHECK(g.rules[1].expr != nullptr);
  CHECK(ParseRuleFile("", "f.yml").ok());
}

TEST_CASE("rule files: errors name file, line and field as promtool does") {
  CHECK(Errors("rule_files: [x]\ntests: []\n") ==
        "f.yml: yaml: unmarshal errors:\n  line 1: field rule_files not found in type rulefmt.RuleGroups\n  "
        "line 2: "
        "field tests not found in type rulefmt.RuleGroups\n");
  CHECK(Errors("groups:\n  - name: g\n    rules:\n      - record: x\n        expr: 'test +'\n") ==
        "f.yml: 5:15: group \"g\", rule 1, \"x\": could not parse expression: 1:7: parse error: unexpected "
        "end of "
        "input\n");
  CHECK(Errors("groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n") ==
        "f.yml: 4:5: groupname: \"g\" is repeated in the same file\n");
  CHECK(Errors("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: 5x\n") ==
        "f.yml: not a valid duration string: \"5x\"\n");
  CHECK(
      Errors("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        severity: x\n") ==
      "f.yml: yaml: unmarshal errors:\n  line 6: field severity not found in type rulefmt.RuleNode\n");
  CHECK(
      Errors("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        labels: "
             "{__name__: x, "
             "1a: y}\n") ==
      "f.yml: group \"g\", rule 1, \"A\": invalid label name: 1a\nf.yml: group \"g\", rule 1, \"A\": invalid "
      "label name: __name__\n");
  CHECK(Errors(
            "groups:\n  - name: g\n    rules:\n      - record: 'a b'\n        expr: up\n        for: 1m\n") ==
        "f.yml: 4:17: group \"g\", rule 1, \"a b\": invalid field 'for' in recording rule\nf.yml: 4:17: "
        "group \"g\", "
        "rule 1, \"a b\": invalid recording rule name: a b\n");
  CHECK(Errors("groups:\n  - name: g\n    rules:\n      - record: r\n        alert: a\n        expr: up\n") ==
        "f.yml: 4:17: 5:16: group \"g\", rule 1, \"a\": only one of 'record' and 'alert' must be set\n");
  CHECK(Errors("groups:\n  - name: g\n    rules:\n      - expr: up\n") ==
        "f.yml: 0:0: group \"g\", rule 1, \"\": one of 'record' or 'alert' must be set\n");
  CHECK(Errors("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations:\n"
               "          s: '{{ $labels.instance '\n") ==
        "f.yml: group \"g\", rule 1, \"A\": annotation \"s\": template: __alert_A:1: unclosed action\n");
  CHECK(Errors("groups:\n  - name: g\n    limit: many\n    rules: []\n") ==
        "f.yml: yaml: unmarshal errors:\n  line 3: cannot unmarshal !!str `many` into int\n");
  CHECK(Errors("groups: [\n") != "");
  CHECK(LoadRuleFile("/nonexistent/rules.yml").errors.size() == 1);
}

TEST_CASE("rule files: promtool's duplicate-rule lint") {
  LoadResult r = ParseRuleFile(R"(groups:
  - name: a
    rules:
      - record: r
        expr: up
      - record: r
        expr: up
      - alert: A
        expr: up
        labels: {x: "1"}
  - name: b
    rules:
      - record: r
        expr: up
      - alert: A
        expr: up
        labels: {x: "1"}
      - alert: A
        expr: up
)",
                               "f.yml");
  REQUIRE(r.ok());
  CHECK(DuplicateRulesLint(r.groups) ==
        "2 duplicate rule(s) found.\nMetric: A\nLabel(s):\n\tx: 1\nMetric: r\nLabel(s):\nMight cause "
        "inconsistency "
        "while recording expressions");
}

TEST_CASE("check rules and test rules take embedded:GLOB for the built-in pack") {
  std::ostringstream out, err;
  CHECK(rules::CheckRulesCommand({"embedded:*.rules.yml"}, out, err) == 0);
  for (const auto& f : rules::EmbeddedRuleFiles())
    CHECK_MESSAGE(out.str().find("Checking embedded:" + std::string(f.name) + "\n") != std::string::npos,
                  out.str());
  CHECK(err.str().empty());

  std::ostringstream out2, err2;
  CHECK(rules::CheckRulesCommand({"embedded:nope.yml"}, out2, err2) == 1);
  CHECK(err2.str().find("embedded:nope.yml: no embedded rule file named \"nope.yml\" (embedded: ") !=
        std::string::npos);
  CHECK(err2.str().find("postgres.rules.yml") != std::string::npos);

  CHECK(rules::MatchEmbeddedRuleFiles("embedded:redis*") ==
        std::vector<std::string>{"embedded:redis.rules.yml"});
  CHECK(rules::MatchEmbeddedRuleFiles("redis.rules.yml").empty());

  // A unit-test file may name the built-in pack instead of a path.
  auto dir = std::filesystem::temp_directory_path() / ("rbx-embedded-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "t.yml") << R"(rule_files: ["embedded:thresholds.rules.yml"]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - {series: 'pg_connections_utilization_ratio{target="a"}', values: "0.5 0.5"}
    promql_expr_test:
      - expr: runbook:pg_connections_utilization_ratio:threshold_warning
        eval_time: 1m
        exp_samples:
          - {labels: 'runbook:pg_connections_utilization_ratio:threshold_warning{target="a"}', value: 0.8}
)";
  std::ostringstream out3, err3;
  int rc = rules::TestRulesCommand({(dir / "t.yml").string()}, out3, err3);
  CHECK_MESSAGE(rc == 0, out3.str() << err3.str());
  std::filesystem::remove_all(dir);
}

}  // namespace rules_file_test
