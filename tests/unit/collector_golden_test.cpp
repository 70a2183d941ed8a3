// Every registered collector runs on every fixture directory of its kind (tests/fixtures/<kind>/
// <version>/<role>/, captured verbatim from real servers) and must reproduce its golden
// exposition tests/golden/<kind>/<version>/<role>/<collector>.prom. UPDATE_GOLDEN=1 rewrites.
#include <doctest/doctest.h>

#include <filesystem>

#include "pg_fixture.h"
#include "runbook/collector.h"

namespace collector_golden_test {

namespace fs = std::filesystem;
using namespace runbook;

namespace {

std::vector<fs::path> FixtureDirs(std::string_view kind) {
  std::vector<fs::path> dirs;
  fs::path root = testing::TestsDir() / "fixtures" / std::string(kind);
  if (!fs::exists(root)) return dirs;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file() && e.path().filename() == "server_version_num")
      dirs.push_back(e.path().parent_path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

void CheckKind(TargetKind kind) {
  auto dirs = FixtureDirs(KindName(kind));
  std::size_t collectors = 0;
  for (const auto& info : RegisteredCollectors())
    if (info.kind == kind) ++collectors;
  if (collectors == 0) return;
  REQUIRE_MESSAGE(!dirs.empty(), "no fixtures for kind " << KindName(kind));
  for (const auto& dir : dirs) {
    auto rel = fs::relative(dir, testing::TestsDir() / "fixtures");
    // As in a target's collection: in registry order, sharing what one hands to the next.
    std::map<std::string, double, std::less<>> shared;
    for (const auto& info : RegisteredCollectors()) {
      if (info.kind != kind) continue;
      INFO("fixture " << rel.string() << " collector " << info.name);
      testing::FixturePgSession session(dir);
      MetricSink sink(Labels{{"target", "golden"}});
      ScrapeContext ctx{"golden", std::chrono::steady_clock::now() + std::chrono::seconds(5), &session};
      ctx.shared = &shared;
      auto collector = info.factory();
      auto st = collector->Update(ctx, sink);
      CHECK_MESSAGE(st.ok(), st.message);
      for (const auto& e : sink.errors()) FAIL_CHECK(e);
      auto diff = testing::CheckGolden(testing::TestsDir() / "golden" / rel / (info.name + ".prom"),
                                       testing::Exposition(sink.Take()));
      CHECK_MESSAGE(diff.empty(), diff);
    }
  }
}

}  // namespace

TEST_CASE("golden exposition of every postgres collector on every fixture") {
  CheckKind(TargetKind::kPostgres);
}

TEST_CASE("golden exposition of every pgbouncer collector on every fixture") {
  CheckKind(TargetKind::kPgBouncer);
}

TEST_CASE("collector names are unique per kind and documented") {
  for (const auto& info : RegisteredCollectors()) {
    INFO(info.name);
    CHECK(!info.name.empty());
    CHECK(!info.help.empty());
    CHECK(info.factory);
    CHECK(FindCollector(info.kind, info.name) == &info);
  }
}

}  // namespace collector_golden_test
