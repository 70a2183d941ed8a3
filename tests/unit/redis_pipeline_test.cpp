// The shared round trip of a Redis collection: the collectors' Prepare requests go out together
// (TargetRuntime on the captured Redis 7.0 fixture), and the real session keeps every reply with
// its command, refused or not, and cuts a pipeline at its deadline (HiredisSession against a
// scripted server on loopback).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <sstream>
#include <thread>

#include "pg_fixture.h"
#include "redis_fixture.h"
#include "redis_session.h"
#include "target_runtime.h"

namespace redis_pipeline_test {

using namespace runbook;
using namespace std::chrono_literals;

namespace {

std::filesystem::path Dir() {
  return testing::TestsDir() / "fixtures" / "redis" / "7.0" / "default";
}

class FixtureConnection final : public TargetConnection {
 public:
  explicit FixtureConnection(testing::FixtureRedisSession& s) : session_(s) {}
  Status Connect(Deadline) override {
    if (!connected_) ++connects;
    connected_ = true;
    return Status::Ok();
  }
  bool connected() const override { return connected_; }
  void Disconnect() override { connected_ = false; }
  void Bind(ScrapeContext& ctx) override { ctx.redis = &session_; }
  int connects = 0;

 private:
  testing::FixtureRedisSession& session_;
  bool connected_ = false;
};

// A redis target with every redis collector and the fixture's key checks of database 0.
struct Target {
  testing::FixtureRedisSession session{Dir()};
  FixtureConnection* conn = nullptr;
  std::unique_ptr<TargetRuntime> rt;

  explicit Target(std::vector<RedisKeyCheck> extra_keys = {}) {
    TargetConfig cfg;
    cfg.kind = TargetKind::kRedis;
    cfg.name = "t";
    cfg.interval = cfg.timeout = 1s;
    cfg.slow_interval = 1h;
    for (const auto& info : RegisteredCollectors())
      if (info.kind == TargetKind::kRedis) cfg.collectors.insert(info.name);
    for (const auto& c : testing::LoadRedisSettings(Dir()).redis_keys)
      if (c.db == 0) cfg.settings.redis_keys.push_back(c);
    for (auto& c : extra_keys) cfg.settings.redis_keys.push_back(std::move(c));
    rt = std::make_unique<TargetRuntime>(cfg, [this](const TargetConfig&) {
      auto c = std::make_unique<FixtureConnection>(session);
      conn = c.get();
      return c;
    });
  }
  std::string Text() const { return testing::Exposition(rt->Snapshot()->families); }
  const CollectorReport& Report(const std::string& name) const {
    for (const auto& c : rt->Snapshot()->collectors)
      if (c.name == name) return c;
    FAIL("no collector " << name);
    throw std::logic_error("unreachable");
  }
};

bool Contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

std::vector<std::string> Joined(const std::vector<std::vector<std::string>>& commands, std::size_t from,
                                std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = from; i < from + n; ++i) {
    std::string s;
    for (const auto& a : commands[i]) s += (s.empty() ? "" : " ") + a;
    out.push_back(s);
  }
  return out;
}

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TEST_CASE("redis a collection sends every collector's independent requests in one round trip") {
  Target t;
  t.rt->Collect();
  REQUIRE_MESSAGE(t.rt->Snapshot()->up, t.rt->Snapshot()->status.message);
  for (const auto& c : t.rt->Snapshot()->collectors) CHECK_MESSAGE(c.success, c.name << ": " << c.error);
  const auto& sent = t.session.commands();
  REQUIRE(!t.session.exchanges().empty());
  auto first = Joined(sent, 0, t.session.exchanges()[0]);
  for (const char* c : {"INFO ALL", "LATENCY LATEST", "SLOWLOG LEN", "SLOWLOG GET 1", "CONFIG GET io-threads",
                        "CONFIG GET databases", "TYPE axiomdb:commands", "TYPE missing:queue",
                        "SCAN 0 MATCH axiomdb:* COUNT 100", "SCAN 0 MATCH [hmz]* COUNT 100"})
    CHECK_MESSAGE(Has(first, c), c);
  // The first collection: the shared round trip, then the length commands of the configured keys
  // with the TYPE of the keys the patterns found, then those keys' length commands.
  CHECK(t.session.round_trips() == 3);
  // The next ones know the found keys: their TYPE goes in the shared round trip too.
  const std::size_t before = sent.size();
  t.rt->Collect();
  CHECK(t.session.round_trips() == 5);
  auto second = Joined(sent, before, t.session.exchanges()[3]);
  CHECK(Has(second, "TYPE axiomdb:events"));
  CHECK_FALSE(Has(second, "CONFIG GET databases"));  // slow tier: not due
  // TYPE strictly before the length command of each key, in the same collection.
  auto all = Joined(sent, before, sent.size() - before);
  for (std::size_t i = 0; i < all.size(); ++i)
    for (const char* cmd : {"LLEN ", "STRLEN ", "XLEN ", "HLEN ", "SCARD ", "ZCARD "})
      if (all[i].starts_with(cmd)) {
        const std::string type = "TYPE " + all[i].substr(all[i].find(' ') + 1);
        CHECK_MESSAGE(std::find(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(i), type) !=
                          all.begin() + static_cast<std::ptrdiff_t>(i),
                      all[i]);
      }
  // The same samples as the first collection (goldens: tests/golden/redis/7.0/default/keys.prom).
  auto text = t.Text();
  CHECK(Contains(text, "redis_key_size{db=\"db0\",key=\"axiomdb:commands\",target=\"t\"} 3\n"));
  CHECK(Contains(text, "redis_key_size{db=\"db0\",key=\"missing:queue\",target=\"t\"} 0\n"));
  CHECK(Contains(text, "redis_slowlog_length{target=\"t\"} "));
  CHECK(Contains(text, "redis_config_io_threads{target=\"t\"} 1\n"));
}

TEST_CASE("redis a command refused in the shared round trip fails only its collector, logged once") {
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
  Target t;
  // Between INFO and SLOWLOG in the pipeline, as a managed service that disables LATENCY answers.
  t.session.SetReply(
      {"LATENCY", "LATEST"},
      {RedisReply::Type::kError, "ERR unknown command 'LATENCY', with args beginning with: 'LATEST'", 0, {}});
  for (int i = 0; i < 3; ++i) t.rt->Collect();
  spdlog::set_default_logger(previous);
  auto snap = t.rt->Snapshot();
  CHECK(snap->up);
  CHECK_FALSE(t.Report("latency").success);
  CHECK(Contains(t.Report("latency").error,
                 "ERR unknown command 'LATENCY', with args beginning with: 'LATEST'"));
  for (const char* ok : {"info", "slowlog", "keys", "config"}) CHECK_MESSAGE(t.Report(ok).success, ok);
  // Every other collector got its own reply: nothing shifted past the refused one.
  auto text = t.Text();
  CHECK(Contains(text, "redis_connected_clients{target=\"t\"} "));
  CHECK(Contains(text, "redis_slowlog_last_id{target=\"t\"} "));
  CHECK(Contains(text, "redis_key_size{db=\"db0\",key=\"axiomdb:commands\",target=\"t\"} 3\n"));
  CHECK_FALSE(Contains(text, "redis_latency_spike"));
  CHECK(Contains(text, "runbook_exporter_collector_success{collector=\"latency\",target=\"t\"} 0\n"));
  const std::string logged = log.str();
  int n = 0;
  for (auto pos = logged.find("collector latency failed: reason=query"); pos != std::string::npos;
       pos = logged.find("collector latency failed: reason=query", pos + 1))
    ++n;
  CHECK(n == 1);
  CHECK(t.conn->connects == 1);
}

TEST_CASE("redis a connection lost in the shared round trip fails the target with that reason") {
  Target t;
  t.session.FailCommand("SLOWLOG", Status::Error(ErrorReason::kTimeout, "SLOWLOG LEN: deadline exceeded"));
  t.rt->Collect();
  auto snap = t.rt->Snapshot();
  CHECK_FALSE(snap->up);
  CHECK(snap->status.reason == ErrorReason::kTimeout);
  CHECK_FALSE(t.conn->connected());
  CHECK(t.session.round_trips() == 1);  // nothing more was sent once the connection was lost
  CHECK(Contains(t.Text(), "runbook_exporter_target_error{reason=\"timeout\",target=\"t\"} 1\n"));
}

TEST_CASE("redis a refused SELECT back to the target's database makes the target reconnect") {
  // A key check in database 3: SELECT 3 works, the SELECT back to 0 is refused (an ACL changed
  // meanwhile), which would leave every later command of the session in database 3.
  RedisKeyCheck other;
  other.db = 3;
  other.key = "elsewhere";
  Target t({other});
  t.session.SetReply({"SELECT", "3"}, {RedisReply::Type::kStatus, "OK", 0, {}});
  t.session.SetReply({"TYPE", "elsewhere"}, {RedisReply::Type::kStatus, "none", 0, {}});
  t.session.SetReply({"SELECT", "0"}, {RedisReply::Type::kError,
                                       "NOPERM this user has no permissions to access one of the "
                                       "databases used in this command",
                                       0,
                                       {}});
  t.rt->Collect();
  CHECK_FALSE(t.Report("keys").success);
  CHECK(Contains(t.Report("keys").error, "NOPERM"));
  CHECK(t.rt->Snapshot()->up);  // the other collectors' figures are good
  CHECK_FALSE(t.conn->connected());
  t.rt->Collect();
  CHECK(t.conn->connects == 2);
}

namespace {

// A one-connection RESP server on loopback that waits for `expect` (the exact request bytes),
// answers `reply`, then keeps the connection open and silent until the client closes it: a server
// frozen after its first replies.
class ScriptedServer {
 public:
  ScriptedServer(std::string expect, std::string reply) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    REQUIRE(listen(listener_, 1) == 0);
    thread_ = std::thread([this, expect = std::move(expect), reply = std::move(reply)] {
      int fd = accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      std::string got;
      char buf[4096];
      while (got.size() < expect.size()) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
      }
      received_ = got == expect;
      if (write(fd, reply.data(), reply.size()) < 0) received_ = false;
      while (read(fd, buf, sizeof buf) > 0) {
      }
      close(fd);
    });
  }
  ~ScriptedServer() {
    shutdown(listener_, SHUT_RDWR);
    thread_.join();
    close(listener_);
  }
  int port() const { return port_; }
  bool received() const { return received_; }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> received_{false};
  std::thread thread_;
};

struct Calls {
  std::vector<std::vector<std::string>> argv;
  std::vector<RedisReply> replies;
  std::vector<Status> statuses;
  std::vector<RedisCall> calls;
  explicit Calls(std::vector<std::vector<std::string>> commands)
      : argv(std::move(commands)), replies(argv.size()), statuses(argv.size()) {
    for (std::size_t i = 0; i < argv.size(); ++i) calls.push_back({&argv[i], &replies[i], &statuses[i]});
  }
  std::string Request() const {
    std::string s;
    for (const auto& a : argv) s += testing::EncodeRequest(a);
    return s;
  }
};

RedisConnParams Params(int port) {
  RedisConnParams p;
  p.port = port;
  p.client_name.clear();  // nothing sent at connect: the server sees only the pipeline
  return p;
}

}  // namespace

TEST_CASE("redis session: every reply of a pipeline goes to its own command around an error reply") {
  Calls c({{"INFO", "ALL"}, {"LATENCY", "LATEST"}, {"SLOWLOG", "LEN"}, {"TYPE", "q"}});
  ScriptedServer server(c.Request(), "$5\r\nx:1\r\n\r\n-ERR unknown command 'LATENCY'\r\n:7\r\n+list\r\n");
  HiredisSession session(Params(server.port()));
  REQUIRE(session.Connect(std::chrono::steady_clock::now() + 2s).ok());
  auto st = session.Exchange(c.calls, std::chrono::steady_clock::now() + 2s);
  CHECK(st.reason == ErrorReason::kQuery);
  CHECK(st.message == "LATENCY LATEST: ERR unknown command 'LATENCY'");
  CHECK(c.statuses[0].ok());
  CHECK(c.replies[0].str == "x:1\r\n");
  CHECK(c.statuses[1].reason == ErrorReason::kQuery);
  CHECK(c.replies[1].type == RedisReply::Type::kError);
  CHECK(c.statuses[2].ok());
  CHECK(c.replies[2].integer == 7);
  CHECK(c.statuses[3].ok());
  CHECK(c.replies[3].str == "list");
  CHECK(session.connected());  // an error reply keeps the connection
  CHECK(server.received());
}

TEST_CASE("redis session: a server frozen mid-pipeline is cut at the deadline") {
  Calls c({{"INFO", "ALL"}, {"LATENCY", "LATEST"}, {"SLOWLOG", "LEN"}});
  ScriptedServer server(c.Request(), "$3\r\nx:1\r\n");  // the first reply only, then nothing
  HiredisSession session(Params(server.port()));
  REQUIRE(session.Connect(std::chrono::steady_clock::now() + 2s).ok());
  const auto start = std::chrono::steady_clock::now();
  auto st = session.Exchange(c.calls, start + 300ms);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(st.reason == ErrorReason::kTimeout);
  CHECK(c.statuses[0].ok());
  CHECK(c.replies[0].str == "x:1");
  CHECK(c.statuses[1].reason == ErrorReason::kTimeout);
  CHECK(c.statuses[2].reason == ErrorReason::kTimeout);
  CHECK(c.replies[2].type == RedisReply::Type::kNil);
  CHECK_FALSE(session.connected());  // the next collection starts on a new connection
  CHECK(took >= 250ms);
  CHECK(took < 5s);  // not hiredis' default of no timeout
  // Queue and Flush are the same exchange: a queued command says "not sent" until flushed.
  RedisReply r;
  Status s;
  const std::vector<std::string> ping{"PING"};
  session.Queue(ping, r, s);
  CHECK(s.message == "not sent");
  CHECK(session.Flush(std::chrono::steady_clock::now() + 1s).reason == ErrorReason::kNetwork);
  CHECK(s.reason == ErrorReason::kNetwork);
  CHECK(session.queued() == 0);
}

}  // namespace redis_pipeline_test
