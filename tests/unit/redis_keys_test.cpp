// Key checks on the captured Redis 7.0 fixture: TYPE first, then the length command of that
// type; never PFCOUNT; SELECT to other databases and back; SCAN bounded; pipelined. And the
// config collector (CONFIG GET), which is pipelined too.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>

#include "pg_fixture.h"
#include "redis_fixture.h"
#include "redis_session.h"
#include "runbook/collector.h"

namespace redis_keys_test {

using namespace runbook;

namespace {

std::filesystem::path Dir() {
  return testing::TestsDir() / "fixtures" / "redis" / "7.0" / "default";
}

struct Run {
  Status status;
  std::string text;
};

Run Collect(testing::FixtureRedisSession& session, const TargetSettings& settings,
            const std::string& collector = "keys") {
  MetricSink sink(Labels{{"target", "t"}});
  ScrapeContext ctx{"t", std::chrono::steady_clock::now() + std::chrono::seconds(5), nullptr, &session,
                    &settings};
  const auto* info = FindCollector(TargetKind::kRedis, collector);
  REQUIRE(info);
  Run r;
  r.status = CollectOnce(*info->factory(), ctx, sink);
  for (const auto& e : sink.errors()) FAIL_CHECK(e);
  r.text = testing::Exposition(sink.Take());
  return r;
}

std::string Joined(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

}  // namespace

TEST_CASE("redis key checks send TYPE then the matching length command and never PFCOUNT") {
  testing::FixtureRedisSession session(Dir());
  auto settings = testing::LoadRedisSettings(Dir());
  auto r = Collect(session, settings);
  REQUIRE_MESSAGE(r.status.ok(), r.status.message);
  CHECK(r.text.find("redis_key_size{db=\"db0\",key=\"axiomdb:commands\",target=\"t\"} 3\n") !=
        std::string::npos);
  CHECK(r.text.find("redis_key_size{db=\"db2\",key=\"queue:default\",target=\"t\"} 2\n") !=
        std::string::npos);
  // A configured key that does not exist is an empty queue.
  CHECK(r.text.find("redis_key_size{db=\"db0\",key=\"missing:queue\",target=\"t\"} 0\n") !=
        std::string::npos);
  // A HyperLogLog is a string to TYPE: its size in bytes.
  CHECK(r.text.find("redis_key_size{db=\"db0\",key=\"hll\",target=\"t\"} 27\n") != std::string::npos);
  std::vector<std::string> sent;
  for (const auto& argv : session.commands()) sent.push_back(Joined(argv));
  for (const auto& c : sent) CHECK_MESSAGE(!c.starts_with("PFCOUNT"), c);
  // Every length command comes after the TYPE of the same key, since the latest SELECT.
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const auto& argv = session.commands()[i];
    if (argv[0] == "LLEN" || argv[0] == "STRLEN" || argv[0] == "XLEN" || argv[0] == "HLEN" ||
        argv[0] == "SCARD" || argv[0] == "ZCARD") {
      bool typed = false;
      for (std::size_t j = i; j-- > 0 && !sent[j].starts_with("SELECT");)
        typed = typed || sent[j] == "TYPE " + argv[1];
      CHECK_MESSAGE(typed, sent[i]);
    }
  }
  // db2 is visited once, after the session's own database, and the session is put back.
  CHECK(std::count(sent.begin(), sent.end(), "SELECT 2") == 1);
  CHECK(sent.back() == "SELECT 0");
}

TEST_CASE("redis a pattern cut by scan_max_keys says so") {
  testing::FixtureRedisSession session(Dir());
  auto settings = testing::LoadRedisSettings(Dir());
  settings.redis_scan_max_keys = 1;
  auto r = Collect(session, settings);
  REQUIRE_MESSAGE(r.status.ok(), r.status.message);
  CHECK(r.text.find("redis_key_scan_truncated{db=\"db0\",pattern=\"axiomdb:*\",target=\"t\"} 1\n") !=
        std::string::npos);
  CHECK(r.text.find("redis_key_scan_keys{db=\"db0\",pattern=\"axiomdb:*\",target=\"t\"} 1\n") !=
        std::string::npos);
}

TEST_CASE("redis a key of a module type gets no length command") {
  testing::FixtureRedisSession session(Dir());
  TargetSettings settings;
  settings.redis_keys.push_back({0, "axiomdb:commands", false});
  session.SetReply({"TYPE", "axiomdb:commands"}, {RedisReply::Type::kStatus, "ReJSON-RL", 0, {}});
  auto r = Collect(session, settings);
  CHECK(r.status.ok());
  CHECK(r.text.find("redis_key_size") == std::string::npos);
  CHECK(session.commands().size() == 1);
}

TEST_CASE("redis a refused key check fails the collector with its reason and restores the database") {
  testing::FixtureRedisSession session(Dir());
  TargetSettings settings;
  settings.redis_keys.push_back({2, "queue:default", false});
  session.SetReply(
      {"TYPE", "queue:default"},
      {RedisReply::Type::kError, "NOPERM this user has no permissions to access one of the keys", 0, {}});
  auto r = Collect(session, settings);
  CHECK(r.status.reason == ErrorReason::kPermission);
  REQUIRE(!session.commands().empty());
  CHECK(Joined(session.commands().back()) == "SELECT 0");
}

TEST_CASE("redis no key checks send no command") {
  testing::FixtureRedisSession session(Dir());
  auto r = Collect(session, TargetSettings{});
  CHECK(r.status.ok());
  CHECK(session.commands().empty());
}

TEST_CASE("redis a server that refuses SLOWLOG fails only the slowlog collector") {
  testing::FixtureRedisSession session(Dir());
  session.FailCommand("SLOWLOG",
                      Status::Error(ErrorReason::kQuery, "SLOWLOG LEN: ERR unknown command 'SLOWLOG'"));
  auto r = Collect(session, TargetSettings{}, "slowlog");
  CHECK(r.status.reason == ErrorReason::kQuery);
  auto info = Collect(session, TargetSettings{}, "info");
  CHECK(info.status.ok());
}

TEST_CASE("redis error replies are classified") {
  CHECK(ClassifyRedisError("WRONGPASS invalid username-password pair or user is disabled.") ==
        ErrorReason::kAuth);
  CHECK(ClassifyRedisError("NOAUTH Authentication required.") == ErrorReason::kAuth);
  CHECK(ClassifyRedisError("ERR invalid password") == ErrorReason::kAuth);
  CHECK(ClassifyRedisError("NOPERM this user has no permissions to run the 'config|get' command") ==
        ErrorReason::kPermission);
  CHECK(ClassifyRedisError("ERR unknown command 'LATENCY'") == ErrorReason::kQuery);
  CHECK(ClassifyRedisError("WRONGTYPE Operation against a key holding the wrong kind of value") ==
        ErrorReason::kQuery);
}

TEST_CASE("redis a session that cannot connect reports network instead of hanging") {
  RedisConnParams p;
  p.port = 1;  // nothing listens on port 1
  HiredisSession session(p);
  auto st = session.Connect(std::chrono::steady_clock::now() + std::chrono::seconds(2));
  CHECK(st.reason == ErrorReason::kNetwork);
  CHECK_FALSE(session.connected());
  RedisReply r;
  CHECK(session.Command({"PING"}, std::chrono::steady_clock::now() + std::chrono::seconds(1), r).reason ==
        ErrorReason::kNetwork);
}

TEST_CASE("redis key checks pipeline: two round trips per database however many keys") {
  testing::FixtureRedisSession session(Dir());
  TargetSettings settings;
  settings.redis_keys.push_back({0, "axiomdb:commands", false});
  for (int i = 0; i < 40; ++i) {
    std::string key = "queue:" + std::to_string(i);
    settings.redis_keys.push_back({0, key, false});
    session.SetReply({"TYPE", key}, {RedisReply::Type::kStatus, i % 2 ? "none" : "list", 0, {}});
    session.SetReply({"LLEN", key}, {RedisReply::Type::kInteger, {}, i, {}});
  }
  settings.redis_keys.push_back({0, "axiomdb:commands", false});  // named twice, checked once
  auto r = Collect(session, settings);
  REQUIRE_MESSAGE(r.status.ok(), r.status.message);
  CHECK(session.round_trips() == 2);
  CHECK(session.commands().size() == 41 + 21);
  CHECK(r.text.find("redis_key_size{db=\"db0\",key=\"queue:38\",target=\"t\"} 38\n") != std::string::npos);
  CHECK(r.text.find("redis_key_size{db=\"db0\",key=\"queue:39\",target=\"t\"} 0\n") != std::string::npos);
  CHECK(r.text.find("redis_key_size{db=\"db0\",key=\"axiomdb:commands\",target=\"t\"} 3\n") !=
        std::string::npos);
}

TEST_CASE("redis keys found by a pattern and configured too are checked once and read 0 when missing") {
  testing::FixtureRedisSession session(Dir());
  TargetSettings settings;
  settings.redis_keys.push_back({0, "axiomdb:*", true});
  settings.redis_keys.push_back({0, "axiomdb:events", false});
  auto r = Collect(session, settings);
  REQUIRE_MESSAGE(r.status.ok(), r.status.message);
  int types = 0;
  for (const auto& argv : session.commands())
    types += argv == std::vector<std::string>{"TYPE", "axiomdb:events"};
  CHECK(types == 1);
  // SCAN, then one pipeline of TYPE and one of length commands.
  CHECK(session.round_trips() == 3);
}

TEST_CASE("redis config: io-threads, and databases shared for the info collector's zero-filled databases") {
  testing::FixtureRedisSession session(Dir());
  TargetSettings settings;
  std::map<std::string, double, std::less<>> shared;
  MetricSink sink(Labels{{"target", "t"}});
  ScrapeContext ctx{"t", std::chrono::steady_clock::now() + std::chrono::seconds(5), nullptr, &session,
                    &settings};
  ctx.shared = &shared;
  auto st = CollectOnce(*FindCollector(TargetKind::kRedis, "config")->factory(), ctx, sink);
  REQUIRE_MESSAGE(st.ok(), st.message);
  CHECK(session.round_trips() == 1);  // both CONFIG GETs in one pipeline
  CHECK(shared.at("redis.databases") == 16);
  CHECK(testing::Exposition(sink.Take()).find("redis_config_io_threads{target=\"t\"} 1\n") !=
        std::string::npos);

  // A server without io-threads (an empty array) gives no sample and no error.
  session.SetReply({"CONFIG", "GET", "io-threads"}, {RedisReply::Type::kArray, {}, 0, {}});
  auto st2 = CollectOnce(*FindCollector(TargetKind::kRedis, "config")->factory(), ctx, sink);
  CHECK(st2.ok());
  CHECK(sink.errors().empty());
  CHECK(testing::Exposition(sink.Take()).find("io_threads") == std::string::npos);
}

TEST_CASE("redis config refused by the server fails the collector with its reason") {
  testing::FixtureRedisSession session(Dir());
  session.SetReply({"CONFIG", "GET", "io-threads"},
                   {RedisReply::Type::kError,
                    "NOPERM User itest_limited has no permissions to run the 'config|get' command",
                    0,
                    {}});
  auto r = Collect(session, TargetSettings{}, "config");
  CHECK(r.status.reason == ErrorReason::kPermission);
  CHECK(r.status.message.find("NOPERM") != std::string::npos);
}

}  // namespace redis_keys_test
