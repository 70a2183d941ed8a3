// Redis seen through the exporter on the stack's real Redis 7.0 (requirepass + ACL user
// `exporter` with a password file). Data is created with redis-cli as the default user.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <regex>

#include "harness.h"

namespace redis_test {

using namespace itest;

namespace {

const std::map<std::string, std::string> kCache{{"target", "cache"}};

std::string RedisTarget(const std::string& extra = "", const std::string& password_file = "") {
  auto& s = Stack::Get();
  return "    - name: cache\n      host: 127.0.0.1\n      port: " + s["REDIS_PORT"] +
         "\n      user: " + s["REDIS_EXPORTER_USER"] + "\n      password_file: " +
         (password_file.empty() ? s["REDIS_EXPORTER_PASSWORD_FILE"] : password_file) + "\n" + extra;
}

std::string Config(const std::string& targets, const std::string& global = "{interval: 1s, timeout: 800ms}") {
  return "global: " + global + "\ntargets:\n  redis:\n" + targets;
}

// redis-cli as the default (super) user; returns its output, fails the test on a non-zero exit.
std::string Cli(const std::string& args) {
  auto& s = Stack::Get();
  auto [rc, out] = Run("redis-cli --no-auth-warning -p " + s["REDIS_PORT"] + " -a \"$(cat " +
                       s["REDIS_PASSWORD_FILE"] + ")\" " + args);
  REQUIRE_MESSAGE(rc == 0, out);
  return out;
}

// Resumes a frozen Redis even when an assertion fails half-way.

int CountNamedClients() {
  std::string list = Cli("CLIENT LIST");
  int n = 0;
  for (auto pos = list.find("name=runbook_exporter "); pos != std::string::npos;
       pos = list.find("name=runbook_exporter ", pos + 1))
    ++n;
  return n;
}

}  // namespace

TEST_CASE("redis with a password file reports up and a queue of 1234 as its length") {
  Cli("DEL itest:queue");
  Cli("EVAL \"for i = 1, 1234 do redis.call('RPUSH', KEYS[1], i) end\" 1 itest:queue");
  Exporter exp(Config(RedisTarget("      keys:\n        - {db: 0, key: itest:queue}\n")));
  auto m = exp.WaitFor(
      [](const Scrape& m) {
        return m.Value("redis_key_size", {{"target", "cache"}, {"key", "itest:queue"}}) == 1234;
      },
      10s);
  CHECK(m.Value("redis_up", kCache) == 1);
  CHECK(m.Value("redis_connected_clients", kCache) >= 1);
  CHECK(m.Value("redis_key_size", {{"target", "cache"}, {"db", "db0"}, {"key", "itest:queue"}}) == 1234);
  CHECK(m.Value("runbook_exporter_collector_success", {{"target", "cache"}, {"collector", "info"}}) == 1);
  CHECK(m.Value("runbook_exporter_collector_success", {{"target", "cache"}, {"collector", "keys"}}) == 1);
  Cli("DEL itest:queue");
}

TEST_CASE(
    "redis 100 collections with key checks of every type leave errorstats unchanged on one connection") {
  Cli("DEL itest:list itest:string itest:set itest:hash itest:zset itest:stream itest:hll");
  Cli("RPUSH itest:list a b");
  Cli("SET itest:string hello");
  Cli("SADD itest:set a b c");
  Cli("HSET itest:hash f v");
  Cli("ZADD itest:zset 1 a");
  Cli("XADD itest:stream '*' f v");
  Cli("PFADD itest:hll a b");
  Cli("-n 1 RPUSH itest:db1 x");
  const std::string keys =
      "      keys:\n"
      "        - {db: 0, key: itest:list}\n        - {db: 0, key: itest:string}\n"
      "        - {db: 0, key: itest:set}\n        - {db: 0, key: itest:hash}\n"
      "        - {db: 0, key: itest:zset}\n        - {db: 0, key: itest:stream}\n"
      "        - {db: 0, key: itest:hll}\n        - {db: 0, key: itest:absent}\n"
      "        - {db: 1, key: itest:db1}\n        - {db: 0, pattern: \"itest:*\"}\n";
  const std::string before = Cli("INFO errorstats");
  const int clients_before = CountNamedClients();
  // 200 ms: on a shared 2-core machine (load 12) a 50 ms deadline was missed now and then, and a
  // timeout rightly reconnects.
  Exporter exp(Config(RedisTarget(keys), "{interval: 200ms, timeout: 200ms}"));
  int max_named = 0;
  auto m = exp.WaitFor(
      [&](const Scrape& m) {
        max_named = std::max(max_named, CountNamedClients() - clients_before);
        return m.Value("runbook_exporter_collections_total", kCache) >= 101;
      },
      60s);
  REQUIRE(m.Value("runbook_exporter_collections_total", kCache) >= 101);
  CHECK(m.Value("redis_up", kCache) == 1);
  CHECK(m.Value("runbook_exporter_collector_success", {{"target", "cache"}, {"collector", "keys"}}) == 1);
  CHECK(m.Value("redis_key_size", {{"target", "cache"}, {"key", "itest:string"}}) == 5);
  CHECK(m.Value("redis_key_size", {{"target", "cache"}, {"key", "itest:set"}}) == 3);
  CHECK(m.Value("redis_key_size", {{"target", "cache"}, {"key", "itest:stream"}}) == 1);
  CHECK(m.Value("redis_key_size", {{"target", "cache"}, {"key", "itest:absent"}}) == 0);
  CHECK(m.Value("redis_key_size", {{"target", "cache"}, {"db", "db1"}, {"key", "itest:db1"}}) == 1);
  CHECK(m.Value("redis_key_scan_truncated", {{"target", "cache"}, {"pattern", "itest:*"}}) == 0);
  // Our checks never made Redis answer with an error.
  CHECK(Cli("INFO errorstats") == before);
  // One persistent connection for the whole run.
  INFO(exp.Log());
  CHECK(m.Value("runbook_exporter_connection_attempts_total", kCache) == 1);
  CHECK(max_named == 1);
  CHECK(CountNamedClients() - clients_before == 1);
  Cli("DEL itest:list itest:string itest:set itest:hash itest:zset itest:stream itest:hll");
  Cli("-n 1 DEL itest:db1");
}

TEST_CASE("redis frozen Redis cuts the collection at its deadline and metrics still answer at once") {
  Exporter exp(Config(RedisTarget()));
  CheckFreezeCutAtDeadline(exp, "redis_up", "cache", {std::stoi(Stack::Get()["REDIS_PID"])});
}

TEST_CASE("redis a wrong redis password reads as reason auth and is never logged") {
  auto dir = Stack::Get().dir();
  std::string path = (dir / "itest-wrong-redis.pw").string();
  std::ofstream(path) << "not-the-redis-password-4711\n";
  Exporter exp(Config(RedisTarget("", path)));
  auto m = exp.WaitFor(
      [](const Scrape& m) {
        return m.Value("runbook_exporter_target_error", {{"target", "cache"}, {"reason", "auth"}}) == 1;
      },
      10s);
  CHECK(m.Value("redis_up", kCache) == 0);
  CHECK(m.Value("runbook_exporter_target_error", {{"target", "cache"}, {"reason", "auth"}}) == 1);
  CHECK(exp.Log().find("not-the-redis-password-4711") == std::string::npos);
  CHECK(exp.Log().find("WRONGPASS") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("redis a command the server refuses fails only its collector and the target stays up") {
  auto& s = Stack::Get();
  std::string path = (s.dir() / "itest-limited-redis.pw").string();
  std::ofstream(path) << "limited-pw-1\n";
  Cli("ACL SETUSER itest_limited reset on '>limited-pw-1' '~*' '+@read' '+info' '+select' '+client|setname' "
      "'+latency|latest' '-slowlog'");
  Exporter exp(Config("    - name: cache\n      port: " + s["REDIS_PORT"] +
                      "\n      user: itest_limited\n      password_file: " + path + "\n"));
  auto m = exp.WaitFor(
      [](const Scrape& m) {
        return m.Has("runbook_exporter_collector_success", {{"target", "cache"}, {"collector", "slowlog"}});
      },
      10s);
  CHECK(m.Value("redis_up", kCache) == 1);
  CHECK(m.Value("runbook_exporter_collector_success", {{"target", "cache"}, {"collector", "slowlog"}}) == 0);
  CHECK(m.Value("runbook_exporter_collector_success", {{"target", "cache"}, {"collector", "info"}}) == 1);
  CHECK(m.Value("runbook_exporter_collector_success", {{"target", "cache"}, {"collector", "latency"}}) == 1);
  CHECK_FALSE(m.Has("redis_slowlog_length", kCache));
  CHECK(m.Has("redis_connected_clients", kCache));
  // CONFIG, refused as managed services do: only the config collector fails, and without
  // databases from it the info collector publishes the keyspace INFO lists, no zero-filled ones.
  CHECK(m.Value("runbook_exporter_collector_success", {{"target", "cache"}, {"collector", "config"}}) == 0);
  CHECK_FALSE(m.Has("redis_config_io_threads", kCache));
  CHECK_FALSE(m.Has("redis_db_keys", {{"target", "cache"}, {"db", "db15"}}));
  // Several collections later each refusal was logged once, and CONFIG (slow tier) asked once.
  const std::string before = Cli("INFO commandstats");
  exp.WaitFor([](const Scrape& m) { return m.Value("runbook_exporter_collections_total", kCache) >= 4; },
              10s);
  auto count = [](const std::string& text, const std::string& what) {
    int n = 0;
    for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
    return n;
  };
  const std::string log = exp.Log();
  CHECK(count(log, "collector config failed: reason=permission") == 1);
  CHECK(count(log, "collector slowlog failed: reason=permission") == 1);
  // rejected_calls of CONFIG GET ("" when Redis keeps no line for it) did not move.
  auto rejected = [](const std::string& stats) {
    auto line = stats.find("cmdstat_config|get:");
    if (line == std::string::npos) return std::string();
    auto from = stats.find("rejected_calls=", line);
    auto to = stats.find_first_not_of("0123456789", from + 15);
    return from == std::string::npos ? std::string() : stats.substr(from, to - from);
  };
  CHECK(rejected(Cli("INFO commandstats")) == rejected(before));
  Cli("ACL DELUSER itest_limited");
  std::remove(path.c_str());
}

}  // namespace redis_test
