// Every registered redis collector runs, in registry order, on every redis fixture directory
// (tests/fixtures/redis/<version>/<role>/) with the key checks of its settings.txt and must
// reproduce tests/golden/redis/<version>/<role>/<collector>.prom. A collector that fails on a
// fixture (a derived fixture holds INFO only) has its status as the golden file's one line.
// UPDATE_GOLDEN=1 rewrites the golden files.
#include <doctest/doctest.h>

#include "pg_fixture.h"
#include "redis_fixture.h"
#include "runbook/collector.h"

namespace redis_golden_test {

namespace fs = std::filesystem;
using namespace runbook;

TEST_CASE("redis golden exposition of every redis collector on every fixture") {
  auto dirs = testing::RedisFixtureDirs();
  REQUIRE(!dirs.empty());
  for (const auto& dir : dirs) {
    auto rel = fs::relative(dir, testing::TestsDir() / "fixtures");
    const TargetSettings settings = testing::LoadRedisSettings(dir);
    const bool captured = fs::exists(dir / "replies.resp");
    // As in a target's collection: in registry order, sharing what one hands to the next.
    std::map<std::string, double, std::less<>> shared;
    for (const auto& info : RegisteredCollectors()) {
      if (info.kind != TargetKind::kRedis) continue;
      INFO("fixture " << rel.string() << " collector " << info.name);
      testing::FixtureRedisSession session(dir);
      MetricSink sink(Labels{{"target", "golden"}});
      ScrapeContext ctx{"golden", std::chrono::steady_clock::now() + std::chrono::seconds(5), nullptr,
                        &session, &settings};
      ctx.shared = &shared;
      auto st = CollectOnce(*info.factory(), ctx, sink);
      if (captured || info.name == "info") CHECK_MESSAGE(st.ok(), st.message);
      for (const auto& e : sink.errors()) FAIL_CHECK(e);
      std::string text = st.ok() ? testing::Exposition(sink.Take())
                                 : "# collector failed: reason=" + std::string(ReasonName(st.reason)) + " " +
                                       st.message + "\n";
      auto diff = testing::CheckGolden(testing::TestsDir() / "golden" / rel / (info.name + ".prom"), text);
      CHECK_MESSAGE(diff.empty(), diff);
    }
  }
}

TEST_CASE("redis RESP encoding round-trips replies") {
  RedisReply arr{RedisReply::Type::kArray, {}, 0, {}};
  arr.elements.push_back({RedisReply::Type::kString, std::string("a\r\nb\0c", 6), 0, {}});
  arr.elements.push_back({RedisReply::Type::kInteger, {}, -42, {}});
  arr.elements.push_back({RedisReply::Type::kStatus, "OK", 0, {}});
  arr.elements.push_back({RedisReply::Type::kError, "WRONGTYPE Operation", 0, {}});
  arr.elements.push_back({});
  std::string text = testing::EncodeResp(arr);
  std::size_t pos = 0;
  RedisReply back = testing::DecodeResp(text, pos);
  CHECK(pos == text.size());
  REQUIRE(back.elements.size() == 5);
  CHECK(back.elements[0].str == std::string("a\r\nb\0c", 6));
  CHECK(back.elements[1].integer == -42);
  CHECK(back.elements[2].type == RedisReply::Type::kStatus);
  CHECK(back.elements[3].type == RedisReply::Type::kError);
  CHECK(back.elements[4].type == RedisReply::Type::kNil);
  CHECK(testing::EncodeRequest({"LLEN", "q"}) == "*2\r\n$4\r\nLLEN\r\n$1\r\nq\r\n");
  std::size_t bad = 0;
  CHECK_THROWS(testing::DecodeResp("$5\r\nab\r\n", bad));
}

}  // namespace redis_golden_test
