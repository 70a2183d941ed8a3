// The shipped rule pack compiled into the exporter (`embedded:` rule files) evaluated against the
// stack: every group of rules/runbook/*.rules.yml is listed by /api/v1/rules and, after three
// evaluations of each, every rule is healthy (its query runs on the series the exporter collects).
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "harness.h"

namespace rule_pack_test {

using namespace itest;
namespace fs = std::filesystem;

namespace {

// The `- name:` of every group in the source tree's rule pack, read without the rule parser.
std::set<std::string> SourceGroupNames() {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(RUNBOOK_SOURCE_DIR "/rules/runbook")) {
    if (!e.path().filename().string().ends_with(".rules.yml")) continue;
    std::ifstream in(e.path());
    for (std::string line; std::getline(in, line);) {
      auto at = line.find("- name: ");
      if (at != std::string::npos && line.find_first_not_of(' ') == at) names.insert(line.substr(at + 8));
    }
  }
  return names;
}

}  // namespace

TEST_CASE("rule pack: the embedded pack is evaluated against the stack and every rule is healthy") {
  auto& s = Stack::Get();
  auto config_file = fs::temp_directory_path() / ("rbx-pack-" + std::to_string(getpid()) + ".yml");
  REQUIRE(s.Control("write-config", config_file.string() + " --interval 1s --timeout 800ms") == 0);
  std::ifstream in(config_file);
  std::string config{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  fs::remove(config_file);
  REQUIRE(config.find("\nrules:") == std::string::npos);
  config += "rules:\n  files: ['embedded:*.rules.yml']\n  evaluation_interval: 1s\n";
  Exporter exp(config);

  const auto expected = SourceGroupNames();
  REQUIRE(expected.size() >= 6);
  nlohmann::json groups;
  std::string problems;
  for (auto deadline = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < deadline;) {
    auto r = Http("GET", exp.url("/api/v1/rules"));
    REQUIRE_MESSAGE(r.status == 200, r.body);
    groups = nlohmann::json::parse(r.body)["data"]["groups"];
    problems.clear();
    for (const auto& g : groups) {
      if (g["lastEvaluation"] == "0001-01-01T00:00:00Z")
        problems += "\n  group " + g["name"].get<std::string>() + " not evaluated yet";
      for (const auto& rule : g["rules"])
        if (rule["health"] != "ok")
          problems += "\n  " + g["name"].get<std::string>() + "/" + rule["name"].get<std::string>() + ": " +
                      rule["health"].get<std::string>() + " " + rule.value("lastError", "");
    }
    std::size_t evaluated_thrice = 0;
    for (const auto& [series, value] : exp.Metrics().samples)
      if (series.starts_with("prometheus_rule_evaluations_total{") && value >= 3) ++evaluated_thrice;
    if (evaluated_thrice < expected.size()) problems += "\n  not every group has been evaluated 3 times";
    if (problems.empty() && groups.size() == expected.size()) break;
    std::this_thread::sleep_for(500ms);
  }
  CHECK_MESSAGE(problems.empty(), problems << "\n" << exp.Log());
  std::set<std::string> served;
  std::size_t rules = 0;
  for (const auto& g : groups) {
    served.insert(g["name"].get<std::string>());
    CHECK(g["file"].get<std::string>().starts_with("embedded:"));
    CHECK(g["interval"] == 1);
    rules += g["rules"].size();
  }
  CHECK(served == expected);
  CHECK(rules > 50);

  // No evaluation of any group failed, not even the first ones.
  auto m = exp.Metrics();
  std::size_t counted = 0;
  for (const auto& [series, value] : m.samples) {
    if (!series.starts_with("prometheus_rule_evaluation_failures_total{")) continue;
    ++counted;
    CHECK_MESSAGE(value == 0, series);
  }
  CHECK(counted == expected.size());
}

}  // namespace rule_pack_test
