// The embedded rule engine inside the running exporter: collections of the real stack feed the
// series store, rule files from the config are evaluated, alerts show on /metrics (ALERTS), in
// Prometheus' /api/v1 JSON and on the rules page, and reloads keep or replace them.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "harness.h"

namespace rules_engine_test {

using namespace itest;
namespace fs = std::filesystem;

namespace {

struct RuleDir {
  fs::path dir = fs::temp_directory_path() / ("rbx-rules-" + std::to_string(getpid()));
  RuleDir() { fs::create_directories(dir); }
  ~RuleDir() { fs::remove_all(dir); }
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  }
};

const char* kRules = R"(groups:
  - name: stack
    interval: 1s
    rules:
      - record: stack:pg_up:sum
        expr: sum(pg_up)
      - alert: PrimaryUp
        expr: pg_up{target="primary"} == 1
        labels: {severity: info}
        annotations:
          summary: '{{ $labels.target }} up={{ $value }} ext={{ $externalLabels.site }}'
      - alert: UpForAnHour
        expr: stack:pg_up:sum >= 1
        for: 1h
)";

std::string Config(const std::string& rule_file, bool with_target = true) {
  std::string cfg = "global: {interval: 1s, timeout: 800ms}\nrules:\n  files: [" + rule_file +
                    "]\n  evaluation_interval: 1s\n  external_labels: {site: lab}\ntargets:\n";
  if (with_target) return cfg + "  postgres:\n" + PgTarget("primary", Stack::Get().Port("PG_PRIMARY_PORT"));
  return cfg + "  postgres: []\n";
}

nlohmann::json GetJson(const Exporter& exp, const std::string& path, int expect_status = 200) {
  auto r = Http("GET", exp.url(path));
  CHECK_MESSAGE(r.status == expect_status, (path + ": " + r.body));
  return nlohmann::json::parse(r.body);
}

}  // namespace

TEST_CASE(
    "rule engine: alerts over the stack's series fire, show in ALERTS and the APIs, and survive a bad "
    "reload") {
  RuleDir rd;
  auto rule_file = rd.Write("stack.rules.yml", kRules);
  Exporter exp(Config(rule_file));
  auto firing = [](const Scrape& m) {
    return m.Value("ALERTS", {{"alertname", "PrimaryUp"}, {"alertstate", "firing"}}) == 1;
  };
  auto m = exp.WaitFor(firing, 15s);
  REQUIRE_MESSAGE(firing(m), exp.Log());
  CHECK(m.Value("ALERTS", {{"alertname", "UpForAnHour"}, {"alertstate", "pending"}}) == 1);
  CHECK(m.Has("ALERTS_FOR_STATE", {{"alertname", "UpForAnHour"}}));
  CHECK(m.Value("prometheus_rule_group_rules") == 3);
  CHECK(m.Value("prometheus_rule_evaluations_total") >= 1);
  CHECK(m.Value("prometheus_rule_evaluation_failures_total") == 0);
  CHECK(m.Value("runbook_exporter_series_store_series") > 10);
  // sum(pg_up): its input, its group and the recording rule's result.
  CHECK(m.Value("runbook_exporter_rule_group_remembered_series") == 3);

  auto alerts = GetJson(exp, "/api/v1/alerts");
  CHECK(alerts["status"] == "success");
  bool found = false;
  for (const auto& a : alerts["data"]["alerts"]) {
    if (a["labels"]["alertname"] != "PrimaryUp") continue;
    found = true;
    CHECK(a["state"] == "firing");
    CHECK(a["labels"]["severity"] == "info");
    CHECK(a["labels"]["target"] == "primary");
    CHECK(a["annotations"]["summary"] == "primary up=1 ext=lab");
    CHECK(a["value"] == "1e+00");
  }
  CHECK(found);

  auto rules = GetJson(exp, "/api/v1/rules");
  REQUIRE(rules["data"]["groups"].size() == 1);
  const auto& g = rules["data"]["groups"][0];
  CHECK(g["name"] == "stack");
  CHECK(g["file"] == rule_file);
  CHECK(g["interval"] == 1);
  REQUIRE(g["rules"].size() == 3);
  CHECK(g["rules"][0]["type"] == "recording");
  CHECK(g["rules"][1]["state"] == "firing");
  CHECK(g["rules"][2]["state"] == "pending");
  CHECK(g["rules"][2]["duration"] == 3600);

  // The recording rule's output is queryable like any collected series.
  auto q = GetJson(exp, "/api/v1/query?query=stack:pg_up:sum");
  REQUIRE(q["data"]["resultType"] == "vector");
  REQUIRE(q["data"]["result"].size() == 1);
  CHECK(q["data"]["result"][0]["value"][1] == "1");
  auto bad = GetJson(exp, "/api/v1/query?query=sum(", 400);
  CHECK(bad["errorType"] == "bad_data");
  CHECK(Http("GET", exp.url("/rules")).body.find("PrimaryUp") != std::string::npos);
  CHECK(Http("GET", exp.url("/graph?g0.expr=pg_up")).body.find("primary") != std::string::npos);

  // A rule file that does not parse: the reload fails, names the file, and the rules keep running.
  rd.Write("stack.rules.yml", "groups:\n  - name: stack\n    rules:\n      - alert: X\n        expr: sum(\n");
  auto r = Http("POST", exp.url("/-/reload"));
  CHECK(r.status == 500);
  CHECK_MESSAGE(r.body.find(rule_file) != std::string::npos, r.body);
  m = exp.Metrics();
  CHECK(m.Value("runbook_exporter_config_last_reload_successful") == 0);
  CHECK(firing(m));

  // Without the target its series go stale at once and the alert resolves.
  rd.Write("stack.rules.yml", kRules);
  exp.WriteConfig(Config(rule_file, false));
  REQUIRE(Http("POST", exp.url("/-/reload")).status == 200);
  m = exp.WaitFor([&](const Scrape& s) { return !firing(s); }, 10s);
  CHECK_FALSE(m.Has("ALERTS", {{"alertname", "PrimaryUp"}}));
}

TEST_CASE(
    "rule engine: a reload changing external labels, interval and state file keeps a pending alert's "
    "activeAt") {
  RuleDir rd;
  auto rule_file = rd.Write("stack.rules.yml", kRules);
  std::string cfg = Config(rule_file);
  auto replace = [&](const std::string& from, const std::string& to) {
    auto at = cfg.find(from);
    REQUIRE(at != std::string::npos);
    cfg.replace(at, from.size(), to);
  };
  // The state file cannot be written at first (its directory is missing).
  replace("evaluation_interval: 1s",
          "evaluation_interval: 1s\n  state_file: " + (rd.dir / "missing" / "state.json").string());
  Exporter exp(cfg);
  auto active_at = [&]() -> std::string {
    auto alerts = GetJson(exp, "/api/v1/alerts");
    for (const auto& a : alerts["data"]["alerts"])
      if (a["labels"]["alertname"] == "UpForAnHour" && a["state"] == "pending") return a["activeAt"];
    return "";
  };
  std::string before;
  for (auto deadline = std::chrono::steady_clock::now() + 15s;
       before.empty() && std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(100ms))
    before = active_at();
  REQUIRE_MESSAGE(!before.empty(), GetJson(exp, "/api/v1/alerts").dump() << exp.Log());
  CHECK(exp.Metrics().Value("runbook_exporter_rule_state_file_write_failures_total") >= 1);
  CHECK_FALSE(exp.Metrics().Has("runbook_exporter_rule_state_file_last_success_timestamp_seconds"));
  CHECK(exp.Log().find("rule state file " + (rd.dir / "missing" / "state.json").string()) !=
        std::string::npos);
  replace("missing/state.json", "state.json");
  replace("site: lab", "site: lab2");
  replace("evaluation_interval: 1s", "evaluation_interval: 2s");
  exp.WriteConfig(cfg);
  REQUIRE(Http("POST", exp.url("/-/reload")).status == 200);
  // Evaluated again after the reload (ALERTS_FOR_STATE keeps the same activeAt too).
  auto evals = exp.Metrics().Value("prometheus_rule_evaluations_total");
  exp.WaitFor([&](const Scrape& s) { return s.Value("prometheus_rule_evaluations_total") > evals + 1; }, 15s);
  CHECK(active_at() == before);
  CHECK(exp.Metrics().Value("runbook_exporter_rule_state_file_last_success_timestamp_seconds") > 0);
  CHECK(fs::exists(rd.dir / "state.json"));
  auto rules = GetJson(exp, "/api/v1/rules");
  CHECK(rules["data"]["groups"][0]["rules"][1]["alerts"][0]["annotations"]["summary"] ==
        "primary up=1 ext=lab2");
}

TEST_CASE("rule engine: --check-config validates the rule files too") {
  RuleDir rd;
  auto good = rd.Write("good.yml", kRules);
  auto bad =
      rd.Write("bad.yml", "groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: rate(up)\n");
  auto cfg_good = rd.Write("good-config.yml", Config(good));
  auto cfg_bad = rd.Write("bad-config.yml", Config(bad));
  auto [rc, out] = Run(ExporterBinary() + " --check-config --config " + cfg_good);
  CHECK_MESSAGE(rc == 0, out);
  CHECK(out.find("1 rule groups") != std::string::npos);
  std::tie(rc, out) = Run(ExporterBinary() + " --check-config --config " + cfg_bad);
  CHECK(rc == 2);
  CHECK_MESSAGE(out.find(bad) != std::string::npos, out);
}

}  // namespace rules_engine_test
