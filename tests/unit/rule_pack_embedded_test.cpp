// The shipped rule pack compiled into the binary: the embedded default config evaluates it, and
// `embedded:NAME` rule files resolve to the same groups as the files in rules/runbook/.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config.h"
#include "engine.h"

namespace rule_pack_embedded_test {

using namespace runbook;

namespace {

std::string Joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// rules/runbook/*.rules.yml in the source tree, sorted by name.
std::vector<std::filesystem::path> SourcePackFiles() {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(RUNBOOK_SOURCE_DIR "/rules/runbook"))
    if (e.path().filename().string().ends_with(".rules.yml")) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("the embedded default config evaluates every shipped rule file, identical to rules/runbook/") {
  auto cfg = EmbeddedDefaultConfig();
  REQUIRE_MESSAGE(cfg.config, Joined(cfg.errors));
  const auto& files = cfg.config->rules.files;
  const auto source = SourcePackFiles();
  REQUIRE(source.size() >= 6);
  REQUIRE(files.size() == source.size());
  for (std::size_t i = 0; i < files.size(); ++i)
    CHECK(files[i] == "embedded:" + source[i].filename().string());

  std::vector<rules::GroupDef> embedded;
  auto errors = LoadRuleFiles(cfg.config->rules, embedded);
  REQUIRE_MESSAGE(errors.empty(), Joined(errors));

  std::vector<rules::GroupDef> expected;
  for (const auto& path : source) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    auto r = rules::ParseRuleFile(text.str(), "embedded:" + path.filename().string());
    REQUIRE_MESSAGE(r.ok(), Joined(r.errors));
    for (auto& g : r.groups) expected.push_back(std::move(g));
  }
  REQUIRE(embedded.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO(expected[i].file << " group " << expected[i].name);
    CHECK(embedded[i].SameDefinition(expected[i]));
  }
}

TEST_CASE("embedded: rule files in an operator's config: one file, globs, unknown names") {
  auto one = ParseConfig(
      "rules:\n  files: [embedded:redis.rules.yml, embedded:thresholds.rules.yml]\ntargets: {}\n", "c.yml");
  REQUIRE_MESSAGE(one.config, Joined(one.errors));
  CHECK(one.config->rules.files ==
        std::vector<std::string>{"embedded:redis.rules.yml", "embedded:thresholds.rules.yml"});
  std::vector<rules::GroupDef> groups;
  auto errors = LoadRuleFiles(one.config->rules, groups);
  REQUIRE_MESSAGE(errors.empty(), Joined(errors));
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].name == "runbook-redis");
  CHECK(groups[0].file == "embedded:redis.rules.yml");
  CHECK(groups[1].name == "runbook-thresholds");

  auto glob = ParseConfig("rules:\n  files: ['embedded:p*.rules.yml']\ntargets: {}\n", "c.yml");
  REQUIRE_MESSAGE(glob.config, Joined(glob.errors));
  CHECK(glob.config->rules.files ==
        std::vector<std::string>{"embedded:pgbouncer.rules.yml", "embedded:postgres.rules.yml"});

  for (const char* yaml : {"rules:\n  files: [embedded:nope.rules.yml]\ntargets: {}\n",
                           "rules:\n  files: ['embedded:*.nope']\ntargets: {}\n"}) {
    auto bad = ParseConfig(yaml, "b.yml");
    CHECK_FALSE(bad.config);
    REQUIRE(bad.errors.size() == 1);
    CHECK_MESSAGE(
        bad.errors[0].starts_with("b.yml:2:11: rules.files[0]: no embedded rule file matches embedded:"),
        bad.errors[0]);
    CHECK_MESSAGE(bad.errors[0].find("postgres.rules.yml") != std::string::npos, bad.errors[0]);
  }

  auto direct = rules::LoadRuleFile("embedded:nope.rules.yml");
  REQUIRE(direct.errors.size() == 1);
  CHECK(direct.errors[0] ==
        "embedded:nope.rules.yml: no embedded rule file named \"nope.rules.yml\" (embedded: " +
            rules::EmbeddedRuleFileNames() + ")");
}

}  // namespace rule_pack_embedded_test
