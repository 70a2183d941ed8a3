// TargetRuntime and Scheduler on fake connections and fake collectors.
#include <doctest/doctest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <sstream>
#include <thread>

#include "pg_fixture.h"
#include "scheduler.h"
#include "target_runtime.h"

namespace target_runtime_test {

using namespace runbook;
using namespace std::chrono_literals;

namespace {

struct FakeWorld {
  std::atomic<int> connects{0};
  std::atomic<int> disconnects{0};
  Status connect_result;
};

class FakeConnection final : public TargetConnection {
 public:
  explicit FakeConnection(FakeWorld& w) : w_(w) {}
  Status Connect(Deadline) override {
    if (connected_) return Status::Ok();
    ++w_.connects;
    connected_ = w_.connect_result.ok();
    return w_.connect_result;
  }
  bool connected() const override { return connected_; }
  void Disconnect() override {
    if (connected_) ++w_.disconnects;
    connected_ = false;
  }
  void Bind(ScrapeContext&) override {}

 private:
  FakeWorld& w_;
  bool connected_ = false;
};

// A collector whose behaviour the test sets through shared state.
struct Script {
  std::atomic<int> calls{0};
  std::atomic<int> running{0};
  std::atomic<int> max_running{0};
  Status result;
  std::chrono::milliseconds sleep{0};
  std::string value_label = "v";
  std::string family;  // published family name; "fake_<collector>" when empty
  MetricKind kind = MetricKind::kGauge;
  std::atomic<std::size_t> seen_keys{0};
  bool share = false;                // writes shared["from_" + name]
  std::atomic<int> shared_seen{-1};  // size of ctx.shared at entry; -1 when null
  std::mutex threads_mu;
  std::vector<std::thread::id> threads;  // the thread of each call
};

class ScriptedCollector final : public Collector {
 public:
  ScriptedCollector(Script& s, std::string name) : s_(s), name_(std::move(name)) {}
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    s_.seen_keys = ctx.settings->redis_keys.size();
    s_.shared_seen = ctx.shared ? static_cast<int>(ctx.shared->size()) : -1;
    if (s_.share && ctx.shared) (*ctx.shared)["from_" + name_] = 1;
    int now = ++s_.running;
    int prev = s_.max_running.load();
    while (now > prev && !s_.max_running.compare_exchange_weak(prev, now)) {
    }
    ++s_.calls;
    {
      std::lock_guard lock(s_.threads_mu);
      s_.threads.push_back(std::this_thread::get_id());
    }
    std::this_thread::sleep_for(s_.sleep);
    sink.Add({s_.family.empty() ? "fake_" + name_ : s_.family, s_.kind, "Fake.", {"label"}}, {s_.value_label},
             1);
    --s_.running;
    return s_.result;
  }

 private:
  Script& s_;
  std::string name_;
};

CollectorInfo Info(Script& s, const std::string& name, Tier tier) {
  return {name,   TargetKind::kPostgres,
          true,   tier,
          "fake", [&s, name] { return std::make_unique<ScriptedCollector>(s, name); }};
}

TargetConfig Target(const std::string& name, std::vector<std::string> collectors, Millis interval = 100ms) {
  TargetConfig t;
  t.name = name;
  t.interval = interval;
  t.timeout = interval;
  t.slow_interval = 10s;
  t.collectors = {collectors.begin(), collectors.end()};
  return t;
}

std::string Text(const TargetRuntime& rt) {
  auto snap = rt.Snapshot();
  REQUIRE(snap);
  return testing::Exposition(snap->families);
}

bool Contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("slow tier collectors run once per slow interval and their output is served from cache") {
  FakeWorld world;
  Script fast, slow;
  std::vector<CollectorInfo> registry{Info(fast, "fast", Tier::kFast), Info(slow, "slow", Tier::kSlow)};
  TargetRuntime rt(
      Target("t", {"fast", "slow"}),
      [&](const TargetConfig&) { return std::make_unique<FakeConnection>(world); }, registry);
  for (int i = 0; i < 3; ++i) rt.Collect();
  CHECK(fast.calls == 3);
  CHECK(slow.calls == 1);
  auto text = Text(rt);
  CHECK(Contains(text, "fake_slow{label=\"v\",target=\"t\"} 1"));
  CHECK(Contains(text, "pg_up{target=\"t\"} 1"));
  CHECK(world.connects == 1);
}

TEST_CASE("a refused slow collector is asked again after slow_interval, not every collection") {
  FakeWorld world;
  Script fast, refused;
  refused.result = Status::Error(ErrorReason::kPermission, "NOPERM CONFIG");
  std::vector<CollectorInfo> registry{Info(fast, "fast", Tier::kFast), Info(refused, "refused", Tier::kSlow)};
  auto cfg = Target("t", {"fast", "refused"});
  cfg.slow_interval = 150ms;
  TargetRuntime rt(
      cfg, [&](const TargetConfig&) { return std::make_unique<FakeConnection>(world); }, registry);
  for (int i = 0; i < 3; ++i) rt.Collect();
  CHECK(fast.calls == 3);
  CHECK(refused.calls == 1);
  auto text = Text(rt);
  CHECK(Contains(text, "pg_up{target=\"t\"} 1"));
  CHECK(Contains(text, "runbook_exporter_collector_success{collector=\"refused\",target=\"t\"} 0"));
  CHECK_FALSE(Contains(text, "fake_refused{"));
  std::this_thread::sleep_for(160ms);
  refused.result = Status::Ok();
  rt.Collect();
  CHECK(refused.calls == 2);
  CHECK(Contains(Text(rt), "fake_refused{"));
}

TEST_CASE("a failed connection backs off instead of retrying every collection") {
  FakeWorld world;
  world.connect_result = Status::Error(ErrorReason::kAuth, "password authentication failed");
  Script fast;
  std::vector<CollectorInfo> registry{Info(fast, "fast", Tier::kFast)};
  TargetRuntime rt(
      Target("t", {"fast"}, 200ms),
      [&](const TargetConfig&) { return std::make_unique<FakeConnection>(world); }, registry);
  for (int i = 0; i < 5; ++i) rt.Collect();
  CHECK(world.connects == 1);
  CHECK(fast.calls == 0);
  auto text = Text(rt);
  CHECK(Contains(text, "pg_up{target=\"t\"} 0"));
  CHECK(Contains(text, "runbook_exporter_target_error{reason=\"auth\",target=\"t\"} 1"));
  CHECK(Contains(text, "runbook_exporter_collection_failures_total{reason=\"auth\",target=\"t\"} 5"));
  CHECK(Contains(text, "runbook_exporter_collector_success{collector=\"fast\",target=\"t\"} 0"));
  CHECK_FALSE(Contains(text, "fake_fast"));
  std::this_thread::sleep_for(200ms);  // one interval: the first step of the backoff
  rt.Collect();
  CHECK(world.connects == 2);
  rt.Collect();
  std::this_thread::sleep_for(200ms);  // the second step is two intervals long
  rt.Collect();
  CHECK(world.connects == 2);
  world.connect_result = Status::Ok();
  std::this_thread::sleep_for(250ms);
  rt.Collect();
  CHECK(world.connects == 3);
  CHECK(Contains(Text(rt), "pg_up{target=\"t\"} 1"));
}

TEST_CASE("a collector refused by the server fails alone while the target stays up") {
  FakeWorld world;
  Script ok, denied;
  denied.result = Status::Error(ErrorReason::kPermission, "permission denied for function pg_ls_waldir");
  std::vector<CollectorInfo> registry{Info(ok, "ok", Tier::kFast), Info(denied, "denied", Tier::kFast)};
  TargetRuntime rt(
      Target("t", {"ok", "denied"}),
      [&](const TargetConfig&) { return std::make_unique<FakeConnection>(world); }, registry);
  rt.Collect();
  auto text = Text(rt);
  CHECK(Contains(text, "pg_up{target=\"t\"} 1"));
  CHECK(Contains(text, "runbook_exporter_collector_success{collector=\"denied\",target=\"t\"} 0"));
  CHECK(Contains(text, "runbook_exporter_collector_success{collector=\"ok\",target=\"t\"} 1"));
  CHECK(Contains(text, "fake_ok{"));
  CHECK_FALSE(Contains(text, "fake_denied{"));  // a failed collector's partial output is dropped
  auto snap = rt.Snapshot();
  bool found = false;
  for (const auto& c : snap->collectors)
    found |= c.name == "denied" && Contains(c.error, "permission denied");
  CHECK(found);
}

TEST_CASE("a timeout in one collector makes the whole target stale and reconnects next time") {
  FakeWorld world;
  Script a, b;
  a.result = Status::Error(ErrorReason::kTimeout, "deadline exceeded");
  std::vector<CollectorInfo> registry{Info(a, "a", Tier::kFast), Info(b, "b", Tier::kFast)};
  TargetRuntime rt(
      Target("t", {"a", "b"}), [&](const TargetConfig&) { return std::make_unique<FakeConnection>(world); },
      registry);
  rt.Collect();
  CHECK(b.calls == 0);  // collection stopped at the timeout
  auto text = Text(rt);
  CHECK(Contains(text, "pg_up{target=\"t\"} 0"));
  CHECK(Contains(text, "runbook_exporter_target_error{reason=\"timeout\",target=\"t\"} 1"));
  CHECK_FALSE(Contains(text, "fake_"));
  CHECK(world.disconnects == 1);
}

TEST_CASE("what a slow collector shares outlives its cached runs and is cleared when the target fails") {
  FakeWorld world;
  Script reader, writer;
  writer.share = true;
  std::vector<CollectorInfo> registry{Info(reader, "a_reader", Tier::kFast),
                                      Info(writer, "b_writer", Tier::kSlow)};
  TargetRuntime rt(
      Target("t", {"a_reader", "b_writer"}),
      [&](const TargetConfig&) { return std::make_unique<FakeConnection>(world); }, registry);
  rt.Collect();
  CHECK(reader.shared_seen == 0);  // runs before the writer
  rt.Collect();
  CHECK(writer.calls == 1);  // served from its cache
  CHECK(reader.shared_seen == 1);
  reader.result = Status::Error(ErrorReason::kTimeout, "deadline exceeded");
  rt.Collect();
  reader.result = Status::Ok();
  rt.Collect();
  CHECK(reader.shared_seen == 0);  // the failure cleared it; the writer runs again after the reader
  CHECK(writer.calls == 2);
}

TEST_CASE("collectors that did not run before the deadline are reported as timed out") {
  FakeWorld world;
  Script slow, later;
  slow.sleep = 120ms;
  std::vector<CollectorInfo> registry{Info(slow, "a_slow", Tier::kFast), Info(later, "b_later", Tier::kFast)};
  TargetRuntime rt(
      Target("t", {"a_slow", "b_later"}, 100ms),
      [&](const TargetConfig&) { return std::make_unique<FakeConnection>(world); }, registry);
  rt.Collect();
  CHECK(later.calls == 0);
  CHECK(Contains(Text(rt), "runbook_exporter_target_error{reason=\"timeout\",target=\"t\"} 1"));
}

TEST_CASE(
    "scheduler collects each target on its interval single-flight and a slow target does not stall others") {
  FakeWorld world;
  Script slow, quick;
  slow.sleep = 150ms;  // longer than its 50 ms interval
  std::vector<CollectorInfo> registry{Info(slow, "slow", Tier::kFast), Info(quick, "quick", Tier::kFast)};
  Scheduler sched(
      2, [&](const TargetConfig&) { return std::make_unique<FakeConnection>(world); }, registry);
  auto slow_target = Target("slow_target", {"slow"}, 50ms);
  slow_target.timeout = 50ms;
  sched.Apply({slow_target, Target("quick_target", {"quick"}, 50ms)});
  std::this_thread::sleep_for(600ms);
  CHECK(sched.AllCollectedOnce());
  CHECK(slow.max_running == 1);
  CHECK(quick.calls >= 6);
  CHECK(slow.calls >= 2);
  CHECK(slow.calls <= 5);  // no burst of catch-up collections after each overrun
  sched.Stop();
}

TEST_CASE("scheduler keeps a lone target's schedule whether its collections finish in time or overrun") {
  // With one target the worker that finished a collection is the one to wait for the next due
  // time, in time or after an overrun; nothing else would wake it.
  FakeWorld world;
  Script in_time, overrun;
  overrun.sleep = 30ms;  // longer than its 20 ms interval
  std::vector<CollectorInfo> registry{Info(in_time, "in_time", Tier::kFast),
                                      Info(overrun, "overrun", Tier::kFast)};
  auto factory = [&](const TargetConfig&) { return std::make_unique<FakeConnection>(world); };
  {
    Scheduler sched(1, factory, registry);
    sched.Apply({Target("a", {"in_time"}, 20ms)});
    std::this_thread::sleep_for(300ms);
    sched.Stop();
  }
  CHECK(in_time.calls >= 8);
  CHECK(in_time.calls <= 16);
  {
    auto t = Target("b", {"overrun"}, 20ms);
    Scheduler sched(1, factory, registry);
    sched.Apply({t});
    std::this_thread::sleep_for(300ms);
    sched.Stop();
  }
  CHECK(overrun.calls >= 5);
}

TEST_CASE("scheduler: the idle worker that wakes for a due collection runs it, without a timer thread") {
  // A hand-off from a timer thread to a worker would cost a second wake-up per collection.
  FakeWorld world;
  Script s;
  std::vector<CollectorInfo> registry{Info(s, "c", Tier::kFast)};
  // (Not checked by counting the process's threads: TSan starts a thread of its own meanwhile.)
  Scheduler sched(
      3, [&](const TargetConfig&) { return std::make_unique<FakeConnection>(world); }, registry);
  sched.Apply({Target("a", {"c"}, 10ms)});
  const auto give_up = std::chrono::steady_clock::now() + 5s;
  while (s.calls < 25 && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(10ms);
  sched.Stop();
  std::lock_guard lock(s.threads_mu);
  REQUIRE(s.threads.size() >= 25);
  // After the first collections (the first watcher may have waited without a due time), one
  // worker watches the clock, collects and watches again; the others stay asleep.
  const std::vector<std::thread::id> last(s.threads.end() - 20, s.threads.end());
  CHECK(std::count(last.begin(), last.end(), last.front()) == 20);
}

TEST_CASE("scheduler apply keeps unchanged targets and replaces changed and removed ones") {
  FakeWorld world;
  Script s;
  std::vector<CollectorInfo> registry{Info(s, "c", Tier::kFast)};
  Scheduler sched(
      1, [&](const TargetConfig&) { return std::make_unique<FakeConnection>(world); }, registry);
  sched.Apply({Target("a", {"c"}, 1s), Target("b", {"c"}, 1s)});
  auto before = sched.Targets();
  REQUIRE(before.size() == 2);
  auto changed = Target("b", {"c"}, 2s);
  sched.Apply({Target("a", {"c"}, 1s), changed, Target("new", {"c"}, 1s)});
  auto after = sched.Targets();
  REQUIRE(after.size() == 3);
  CHECK(after[0] == before[0]);
  CHECK(after[1] != before[1]);
  CHECK(after[1]->config().interval == 2s);
  sched.Apply({Target("new", {"c"}, 1s)});
  REQUIRE(sched.Targets().size() == 1);
  CHECK(sched.Targets()[0] == after[2]);
  sched.Stop();
}

TEST_CASE("scheduler keeps collecting every target through reloads during collections") {
  FakeWorld world;
  Script s;
  s.sleep = 1ms;
  std::vector<CollectorInfo> registry{Info(s, "c", Tier::kFast)};
  // A slow factory keeps Apply busy building the changed target while collections go on.
  auto slow_factory = [&](const TargetConfig&) {
    std::this_thread::sleep_for(1ms);
    return std::make_unique<FakeConnection>(world);
  };
  Scheduler sched(2, slow_factory, registry);
  auto a = Target("a", {"c"}, 2ms), b1 = Target("b", {"c"}, 2ms), b2 = Target("b", {"c"}, 3ms);
  for (int i = 0; i < 300; ++i) {
    sched.Apply({a, i % 2 ? b1 : b2});
    for (const auto& t : sched.Targets()) REQUIRE(t != nullptr);
  }
  auto a_runtime = sched.Targets()[0];
  auto collected = [&] { return a_runtime->Snapshot() ? 1 : 0; };
  std::this_thread::sleep_for(50ms);
  CHECK(collected() == 1);
  const int calls = s.calls;
  std::this_thread::sleep_for(50ms);
  CHECK(s.calls > calls);  // no target was left marked as running forever
  sched.Stop();
}

TEST_CASE("collectors see their target's settings") {
  FakeWorld world;
  Script s;
  std::vector<CollectorInfo> registry{Info(s, "c", Tier::kFast)};
  auto cfg = Target("t", {"c"});
  cfg.settings.redis_keys = {{0, "queue", false}, {1, "jobs:*", true}};
  TargetRuntime rt(
      cfg, [&](const TargetConfig&) { return std::make_unique<FakeConnection>(world); }, registry);
  rt.Collect();
  CHECK(s.seen_keys == 2);
}

TEST_CASE("a collector that keeps failing is logged once and its recovery once") {
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
  FakeWorld world;
  Script s;
  s.result = Status::Error(ErrorReason::kPermission, "NOPERM this user has no permissions to run 'slowlog'");
  std::vector<CollectorInfo> registry{Info(s, "slowlog", Tier::kFast)};
  TargetRuntime rt(
      Target("t", {"slowlog"}), [&](const TargetConfig&) { return std::make_unique<FakeConnection>(world); },
      registry);
  for (int i = 0; i < 4; ++i) rt.Collect();
  s.result = Status::Ok();
  for (int i = 0; i < 3; ++i) rt.Collect();
  spdlog::set_default_logger(previous);
  auto text = log.str();
  auto count = [&](const std::string& needle) {
    int n = 0;
    for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
    return n;
  };
  CHECK(count("collector slowlog failed: reason=permission NOPERM") == 1);
  CHECK(count("collector slowlog succeeds again") == 1);
  CHECK(Contains(Text(rt), "runbook_exporter_collector_success{collector=\"slowlog\",target=\"t\"} 1"));
}

TEST_CASE("a family published with two types is kept once and the dropped samples are reported") {
  FakeWorld world;
  Script gauge, counter;
  gauge.family = counter.family = "fake_shared";
  counter.kind = MetricKind::kCounter;
  counter.value_label = "other";
  std::vector<CollectorInfo> registry{Info(gauge, "a", Tier::kFast), Info(counter, "b", Tier::kFast)};
  TargetRuntime rt(
      Target("t", {"a", "b"}), [&](const TargetConfig&) { return std::make_unique<FakeConnection>(world); },
      registry);
  rt.Collect();
  auto text = Text(rt);
  CHECK(Contains(text, "# TYPE fake_shared gauge"));
  CHECK_FALSE(Contains(text, "fake_shared{label=\"other\""));
  CHECK(Contains(text, "runbook_exporter_data_errors_total{target=\"t\"} 1"));
  auto snap = rt.Snapshot();
  REQUIRE(snap->data_errors.size() == 1);
  CHECK(Contains(snap->data_errors[0], "1 samples dropped"));
}

namespace {
std::string RenderedText(const TargetSnapshot& snap) {
  std::string out;
  for (const auto& f : snap.Rendered()) out += f.header + f.body;
  return out;
}
}  // namespace

TEST_CASE("snapshots reuse old buffers without touching one a reader still holds") {
  FakeWorld world;
  Script s;
  std::vector<CollectorInfo> registry{Info(s, "fast", Tier::kFast)};
  TargetRuntime rt(
      Target("t", {"fast"}), [&](const TargetConfig&) { return std::make_unique<FakeConnection>(world); },
      registry);
  rt.Collect();
  auto held = rt.Snapshot();
  const std::string held_text = testing::Exposition(held->families);
  CHECK(RenderedText(*held) == held_text);
  CHECK(Contains(held_text, "fake_fast{label=\"v\",target=\"t\"} 1\n"));

  // The family changes name, then label value, then the target fails and recovers: every
  // snapshot shows that collection alone, in both forms, while `held` stays as it was.
  std::vector<std::string> texts;
  auto collect = [&] {
    rt.Collect();
    auto snap = rt.Snapshot();
    const std::string text = testing::Exposition(snap->families);
    CHECK(RenderedText(*snap) == text);
    CHECK(RenderFamilies(snap->families).size() == snap->Rendered().size());
    texts.push_back(text);
  };
  s.family = "renamed_family";
  collect();
  collect();
  s.value_label = "w";
  collect();
  s.result = Status::Error(ErrorReason::kNetwork, "connection reset");
  collect();
  s.result = Status::Ok();
  s.family.clear();
  collect();
  collect();

  CHECK(testing::Exposition(held->families) == held_text);
  CHECK(RenderedText(*held) == held_text);
  REQUIRE(texts.size() == 6);
  CHECK_FALSE(Contains(texts[0], "fake_fast"));
  CHECK(Contains(texts[0], "renamed_family{label=\"v\",target=\"t\"} 1\n"));
  CHECK(Contains(texts[2], "renamed_family{label=\"w\",target=\"t\"} 1\n"));
  CHECK_FALSE(Contains(texts[2], "label=\"v\""));
  CHECK_FALSE(Contains(texts[3], "renamed_family"));  // the failed collection publishes no samples
  CHECK(Contains(texts[3], "pg_up{target=\"t\"} 0\n"));
  CHECK(Contains(texts[4], "fake_fast{label=\"w\",target=\"t\"} 1\n"));
  CHECK_FALSE(Contains(texts[4], "renamed_family"));
  CHECK(Contains(texts[5], "runbook_exporter_collections_total{target=\"t\"} 7\n"));
}

TEST_CASE("a snapshot is rendered once, by whichever reader asks first") {
  FakeWorld world;
  Script s;
  std::vector<CollectorInfo> registry{Info(s, "fast", Tier::kFast)};
  TargetRuntime rt(
      Target("t", {"fast"}), [&](const TargetConfig&) { return std::make_unique<FakeConnection>(world); },
      registry);
  for (int round = 0; round < 3; ++round) {
    rt.Collect();  // the previous snapshot, never read, goes back to the target unrendered
    auto snap = rt.Snapshot();
    std::vector<const std::vector<RenderedFamily>*> seen(4);
    std::vector<std::thread> readers;
    for (auto& out : seen) readers.emplace_back([&snap, &out] { out = &snap->Rendered(); });
    for (auto& t : readers) t.join();
    for (const auto* r : seen) CHECK(r == seen[0]);
    CHECK(RenderedText(*snap) == testing::Exposition(snap->families));
  }
}

}  // namespace target_runtime_test
