// Alert delivery on a fake clock and a fake HTTP client: payloads against the captured
// Alertmanager/Prometheus bodies, grouping timers, inhibition, retries, the circuit breaker,
// the durable outbox and request signing.
#include <doctest/doctest.h>

#include <atomic>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "config.h"
#include "notify/notifier.h"
#include "notify/outbox.h"
#include "notify/payload.h"
#include "pg_fixture.h"
#include "runbook/notify.h"

namespace notify_test {

using namespace runbook;
using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

class FakeClock : public Clock {
 public:
  explicit FakeClock(TimestampMs t) : t_(t) {}
  TimestampMs NowMs() const override { return t_; }
  void Set(TimestampMs t) { t_ = t; }
  void Advance(TimestampMs d) { t_ += d; }

 private:
  std::atomic<TimestampMs> t_;
};

struct Request {
  HttpRequest req;
  TimestampMs at;
  std::string Header(const std::string& name) const {
    for (const auto& [n, v] : req.headers)
      if (n == name) return v;
    return {};
  }
};

class FakeHttp : public HttpClient {
 public:
  explicit FakeHttp(const Clock& clock) : clock_(clock) {}
  HttpResponse Post(const HttpRequest& r) override {
    std::lock_guard lock(mu_);
    requests.push_back({r, clock_.NowMs()});
    if (script.empty()) return {200, "", "", std::nullopt};
    auto resp = script.front();
    script.pop_front();
    return resp;
  }
  std::vector<Request> To(const std::string& url) const {
    std::lock_guard lock(mu_);
    std::vector<Request> out;
    for (const auto& r : requests)
      if (r.req.url == url) out.push_back(r);
    return out;
  }
  std::deque<HttpResponse> script;
  std::vector<Request> requests;

 private:
  const Clock& clock_;
  mutable std::mutex mu_;
};

TimestampMs ParseTime(const std::string& s) {
  std::tm tm{};
  strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  TimestampMs ms = static_cast<TimestampMs>(timegm(&tm)) * 1000;
  if (auto dot = s.find('.'); dot != std::string::npos) ms += std::stoi(s.substr(dot + 1, 3));
  return ms;
}

json Fixture(const std::string& name) {
  std::ifstream in(testing::TestsDir() / "fixtures" / "alerting" / name);
  REQUIRE_MESSAGE(in, name);
  return json::parse(in);
}

std::vector<Alert> AlertsFrom(const json& posted) {
  std::vector<Alert> out;
  for (const auto& j : posted) {
    Alert a;
    for (const auto& [k, v] : j["labels"].items()) a.labels.emplace_back(k, v);
    for (const auto& [k, v] : j["annotations"].items()) a.annotations.emplace_back(k, v);
    a.starts_at = ParseTime(j["startsAt"]);
    a.ends_at = ParseTime(j["endsAt"]);
    a.generator_url = j["generatorURL"];
    out.push_back(a);
  }
  return out;
}

NotifierConfig ParseAlerting(const std::string& yaml) {
  auto r = ParseConfig("targets: {}\nalerting:\n" + yaml, "t.yml");
  for (const auto& e : r.errors) FAIL_CHECK(e);
  REQUIRE(r.config);
  return r.config->alerting;
}

struct Rig {
  explicit Rig(TimestampMs start, const std::string& yaml) : clock(start), cfg(ParseAlerting(yaml)) {
    http = std::make_shared<FakeHttp>(clock);
    NotifierOptions o;
    o.clock = &clock;
    o.http = http;
    o.start_threads = false;
    o.seed = 42;
    n = MakeNotifier(o);
    auto errors = n->Apply(cfg);
    REQUIRE(errors.empty());
  }
  // Polls every `step` until `until`.
  void RunUntil(TimestampMs until, TimestampMs step = 1000) {
    while (clock.NowMs() < until) {
      clock.Advance(std::min(step, until - clock.NowMs()));
      n->Poll();
    }
  }
  double Metric(const std::string& family, const std::string& label_value) const {
    for (const auto& f : n->Metrics()) {
      if (f.name != family) continue;
      for (const auto& m : f.metric)
        if (label_value.empty() || (!m.label.empty() && m.label[0].value == label_value))
          return family.ends_with("_total") ? m.counter.value : m.gauge.value;
    }
    return -1;
  }
  FakeClock clock;
  NotifierConfig cfg;
  std::shared_ptr<FakeHttp> http;
  std::unique_ptr<Notifier> n;
};

const char* kLabConfig = R"(  external_url: http://127.0.0.1:29093
  receivers:
    - {name: webhook, url: "http://hook/all"}
    - {name: webhook-max1, url: "http://hook/max1", max_alerts: 1}
    - {name: noresolved, url: "http://hook/noresolved", send_resolved: false}
  route:
    receiver: webhook
    group_by: [alertname]
    group_wait: 10s
    group_interval: 30s
    repeat_interval: 2m
    routes:
      - {matchers: ['alertname=~".+"'], receiver: webhook, continue: true}
      - {matchers: ['alertname="LabGaugeHigh"'], receiver: webhook-max1, continue: true}
      - {matchers: ['alertname="LabGaugeHigh"'], receiver: noresolved, continue: true}
)";

}  // namespace

TEST_CASE("fingerprints are Alertmanager's (FNV-1a over sorted label pairs)") {
  for (const auto* file : {"webhook_firing.json", "webhook_firing_template_functions.json"}) {
    auto fixture = Fixture(file);
    for (const auto& a : fixture["alerts"]) {
      Labels labels;
      for (const auto& [k, v] : a["labels"].items()) labels.emplace_back(k, v);
      CHECK(AlertFingerprint(labels) == a["fingerprint"].get<std::string>());
    }
  }
  CHECK(AlertFingerprint({}) == "cbf29ce484222325");
}

TEST_CASE("time formats: three fixed digits for API v2, trimmed RFC3339Nano for webhooks") {
  TimestampMs t = ParseTime("2026-11-21T08:09:16.713Z");
  CHECK(notify::FormatTimeMillis(t) == "2026-11-21T08:09:16.713Z");
  CHECK(notify::FormatTimeNano(t) == "2026-11-21T08:09:16.713Z");
  CHECK(notify::FormatTimeNano(t + 87) == "2026-11-21T08:09:16.8Z");
  CHECK(notify::FormatTimeNano(ParseTime("2099-01-01T00:00:00Z")) == "2099-01-01T00:00:00Z");
  CHECK(notify::FormatTimeMillis(ParseTime("2099-01-01T00:00:00Z")) == "2099-01-01T00:00:00.000Z");
}

TEST_CASE("Alertmanager sink posts Prometheus' body to every Alertmanager, field by field") {
  auto firing = Fixture("prometheus_to_am.json");
  TimestampMs t0 = ParseTime("2026-11-21T08:09:16.718Z");
  Rig rig(t0,
          "  alertmanagers:\n    - {url: 'http://am1:9093/'}\n    - {url: 'http://am2:9093', name: two}\n");
  rig.n->Notify(AlertsFrom(firing));
  rig.n->Poll();
  for (const auto* url : {"http://am1:9093/api/v2/alerts", "http://am2:9093/api/v2/alerts"}) {
    auto reqs = rig.http->To(url);
    REQUIRE(reqs.size() == 1);
    CHECK(json::parse(reqs[0].req.body) == firing);
    CHECK(reqs[0].Header("Content-Type") == "application/json");
  }
  // Resolved alerts go out with their endsAt, as Prometheus sends them.
  auto resolved = Fixture("prometheus_to_am_resolved.json");
  rig.n->Notify(AlertsFrom(resolved));
  rig.n->Poll();
  auto reqs = rig.http->To("http://am1:9093/api/v2/alerts");
  REQUIRE(reqs.size() == 2);
  CHECK(json::parse(reqs[1].req.body) == resolved);
  CHECK(rig.Metric("prometheus_notifications_sent_total", "http://am1:9093/api/v2/alerts") == 4);
  CHECK(rig.Metric("prometheus_notifications_alertmanagers_discovered", "") == 2);
}

TEST_CASE("Alertmanager batches hold at most 64 alerts") {
  Rig rig(1'800'000'000'000, "  alertmanagers:\n    - {url: 'http://am1:9093'}\n");
  std::vector<Alert> alerts;
  for (int i = 0; i < 150; ++i)
    alerts.push_back({{{"alertname", "A"}, {"i", std::to_string(i)}}, {}, 1, rig.clock.NowMs() + 240000, ""});
  rig.n->Notify(alerts);
  rig.n->Poll();
  std::vector<std::size_t> sizes;
  for (const auto& r : rig.http->requests) sizes.push_back(json::parse(r.req.body).size());
  CHECK(sizes == std::vector<std::size_t>{64, 64, 22});
}

TEST_CASE("ValidUntil is now + 4 x max(resend delay, evaluation interval)") {
  CHECK(ValidUntil(1000, 60s, 5s) == 1000 + 240000);
  CHECK(ValidUntil(1000, 60s, 2min) == 1000 + 480000);
}

TEST_CASE("webhook payloads match Alertmanager's captured ones, with group_wait, max_alerts and resolve") {
  auto am_firing = Fixture("prometheus_to_am.json");
  TimestampMs t0 = ParseTime("2026-11-21T08:09:16.718Z");
  Rig rig(t0, kLabConfig);
  rig.n->Notify(AlertsFrom(am_firing));
  rig.n->Poll();
  CHECK(rig.http->requests.empty());  // group_wait
  rig.RunUntil(t0 + 9000);
  CHECK(rig.http->requests.empty());
  rig.RunUntil(t0 + 10000);
  auto all = rig.http->To("http://hook/all");
  REQUIRE(all.size() == 1);
  CHECK(json::parse(all[0].req.body) == Fixture("webhook_firing.json"));
  CHECK(all[0].req.body.ends_with("}\n"));
  auto max1 = rig.http->To("http://hook/max1");
  REQUIRE(max1.size() == 1);
  CHECK(json::parse(max1[0].req.body) == Fixture("webhook_firing_max_alerts_1.json"));

  // Prometheus re-sends every 65 s; nothing changes, so only repeat_interval (2m, checked on
  // the 30 s group_interval ticks) sends again.
  TimestampMs resolved_at = ParseTime("2026-11-21T08:13:06.718Z");
  for (TimestampMs t = t0 + 65000; t < resolved_at; t += 65000) {
    rig.RunUntil(t);
    auto again = AlertsFrom(am_firing);
    for (auto& a : again) a.ends_at = t + 240000;
    rig.n->Notify(again);
  }
  rig.RunUntil(resolved_at);
  all = rig.http->To("http://hook/all");
  REQUIRE(all.size() == 2);
  CHECK(all[1].at == t0 + 10000 + 120000);  // first flush + repeat_interval, on a tick
  rig.n->Notify(AlertsFrom(Fixture("prometheus_to_am_resolved.json")));
  rig.RunUntil(ParseTime("2026-11-21T08:13:26.718Z"));
  all = rig.http->To("http://hook/all");
  REQUIRE(all.size() == 3);
  CHECK(all[2].at == ParseTime("2026-11-21T08:13:26.718Z"));  // the next group_interval tick
  CHECK(json::parse(all[2].req.body) == Fixture("webhook_resolved.json"));
  // send_resolved: false gets the firing messages only.
  auto nores = rig.http->To("http://hook/noresolved");
  CHECK(nores.size() == 2);
  for (const auto& r : nores) CHECK(json::parse(r.req.body)["status"] == "firing");
  // The group is gone after its resolved flush: nothing more is sent.
  rig.RunUntil(ParseTime("2026-11-21T08:20:00.000Z"));
  CHECK(rig.http->To("http://hook/all").size() == 3);
}

TEST_CASE("a new alert in a flushed group waits for the next group_interval tick") {
  TimestampMs t0 = 1'800'000'000'000;
  Rig rig(t0, R"(  receivers: [{name: r, url: "http://hook/r"}]
  route: {receiver: r, group_by: [alertname], group_wait: 10s, group_interval: 1m, repeat_interval: 1h}
)");
  auto alert = [&](const char* instance) {
    return Alert{{{"alertname", "Down"}, {"instance", instance}},
                 {},
                 rig.clock.NowMs(),
                 rig.clock.NowMs() + 240000,
                 ""};
  };
  rig.n->Notify({alert("a")});
  rig.n->Poll();
  rig.RunUntil(t0 + 10000);
  REQUIRE(rig.http->requests.size() == 1);
  rig.RunUntil(t0 + 20000);
  rig.n->Notify({alert("b")});
  rig.n->Poll();
  rig.RunUntil(t0 + 69000);
  CHECK(rig.http->requests.size() == 1);
  rig.RunUntil(t0 + 70000);
  REQUIRE(rig.http->requests.size() == 2);
  auto body = json::parse(rig.http->requests[1].req.body);
  CHECK(body["alerts"].size() == 2);
  CHECK(body["groupKey"] == "{}:{alertname=\"Down\"}");
  // An old alert (startsAt + group_wait already past) in a new group flushes at once.
  Alert old{{{"alertname", "Old"}}, {}, t0, rig.clock.NowMs() + 240000, ""};
  rig.n->Notify({old});
  rig.n->Poll();
  CHECK(rig.http->requests.size() == 3);
}

TEST_CASE("inhibition: critical suppresses warning with equal labels; a down target its other alerts") {
  TimestampMs t0 = 1'800'000'000'000;
  Rig rig(t0, R"(  receivers: [{name: r, url: "http://hook/r"}]
  route: {receiver: r, group_by: ['...'], group_wait: 1s, group_interval: 1m}
  inhibit_rules:
    - source_matchers: [severity="critical"]
      target_matchers: [severity="warning"]
      equal: [alertname, target]
    - source_matchers: ['alertname=~"(Postgres|Redis)Down"']
      target_matchers: ['alertname!~"(Postgres|Redis)Down"']
      equal: [target]
)");
  TimestampMs end = t0 + 240000;
  rig.n->Notify({
      {{{"alertname", "Lag"}, {"severity", "critical"}, {"target", "pg1"}}, {}, t0, end, ""},
      {{{"alertname", "Lag"}, {"severity", "warning"}, {"target", "pg1"}}, {}, t0, end, ""},  // inhibited
      {{{"alertname", "Lag"}, {"severity", "warning"}, {"target", "pg2"}}, {}, t0, end, ""},  // other target
      {{{"alertname", "PostgresDown"}, {"severity", "critical"}, {"target", "pg3"}}, {}, t0, end, ""},
      {{{"alertname", "Conns"}, {"severity", "warning"}, {"target", "pg3"}}, {}, t0, end, ""},  // inhibited
  });
  rig.RunUntil(t0 + 2000);
  std::set<std::string> sent;
  for (const auto& r : rig.http->requests) {
    auto body = json::parse(r.req.body);
    for (const auto& a : body["alerts"])
      sent.insert(a["labels"]["alertname"].get<std::string>() + "/" +
                  a["labels"]["severity"].get<std::string>() + "/" +
                  a["labels"]["target"].get<std::string>());
  }
  CHECK(sent == std::set<std::string>{"Lag/critical/pg1", "Lag/warning/pg2", "PostgresDown/critical/pg3"});
  // Once the source resolves, the inhibited alert is notified at its group's next tick.
  rig.n->Notify({{{{"alertname", "PostgresDown"}, {"severity", "critical"}, {"target", "pg3"}},
                  {},
                  t0,
                  t0 + 3000,
                  ""}});
  rig.RunUntil(t0 + 62000);
  bool conns = false;
  for (const auto& r : rig.http->requests) {
    auto body = json::parse(r.req.body);
    for (const auto& a : body["alerts"]) conns |= a["labels"]["alertname"] == "Conns";
  }
  CHECK(conns);
}

TEST_CASE("retries: 5xx and network errors back off with jitter, 429 honours Retry-After, 4xx is final") {
  TimestampMs t0 = 1'800'000'000'000;
  Rig rig(t0, R"(  receivers: [{name: r, url: "http://hook/r"}]
  route: {receiver: r}
  retry: {initial_backoff: 1s, max_backoff: 8s, breaker_failures: 100}
)");
  rig.http->script = {{500, "", "", std::nullopt}, {0, "connection refused", "", std::nullopt},
                      {503, "", "", std::nullopt}, {429, "", "", std::chrono::milliseconds(30000)},
                      {200, "", "", std::nullopt}, {400, "", "bad payload", std::nullopt}};
  auto r = rig.n->SendTest("r");
  REQUIRE(r.ok);
  rig.n->Poll();
  rig.RunUntil(t0 + 60000, 100);
  auto reqs = rig.http->requests;
  REQUIRE(reqs.size() == 5);
  for (const auto& q : reqs) CHECK(q.Header("Idempotency-Key") == r.idempotency_key);
  // Delays: attempt n waits within [base/2, base], base = 1s, 2s, 4s; then Retry-After 30s.
  TimestampMs lo[] = {500, 1000, 2000, 30000}, hi[] = {1100, 2100, 4100, 30100};
  for (int i = 0; i < 4; ++i) {
    TimestampMs gap = reqs[i + 1].at - reqs[i].at;
    CHECK(gap >= lo[i]);
    CHECK(gap <= hi[i]);
  }
  CHECK(rig.Metric("prometheus_notifications_sent_total", "r") == 1);
  CHECK(rig.Metric("prometheus_notifications_errors_total", "r") == 4);
  CHECK(rig.n->QueueLength() == 0);
  // 400: one attempt, counted as an error and dropped, never retried.
  auto r2 = rig.n->SendTest("r");
  rig.RunUntil(t0 + 120000, 100);
  CHECK(rig.http->requests.size() == 6);
  CHECK(rig.Metric("prometheus_notifications_dropped_total", "r") == 1);
  CHECK(rig.n->QueueLength() == 0);
}

TEST_CASE("the circuit breaker holds a failing receiver back, then lets one attempt through") {
  TimestampMs t0 = 1'800'000'000'000;
  Rig rig(t0, R"(  receivers: [{name: r, url: "http://hook/r"}]
  route: {receiver: r}
  retry: {initial_backoff: 100ms, max_backoff: 200ms, breaker_failures: 3, breaker_open_for: 1m}
)");
  for (int i = 0; i < 10; ++i) rig.http->script.push_back({502, "", "", std::nullopt});
  rig.n->SendTest("r");
  rig.n->Poll();
  rig.RunUntil(t0 + 59000, 50);
  CHECK(rig.http->requests.size() == 3);
  CHECK(rig.Metric("runbook_notifications_circuit_open", "r") == 1);
  rig.RunUntil(t0 + 61000, 50);
  CHECK(rig.http->requests.size() == 4);  // half-open: one probe, it failed: open again
  rig.http->script.clear();
  rig.RunUntil(t0 + 125000, 50);
  CHECK(rig.http->requests.size() == 5);
  CHECK(rig.n->QueueLength() == 0);
  CHECK(rig.Metric("runbook_notifications_circuit_open", "r") == 0);
}

TEST_CASE("the outbox survives a restart: same notification, same idempotency key, delivered once") {
  fs::path dir = fs::temp_directory_path() / ("rbx-outbox-" + std::to_string(getpid()));
  fs::remove_all(dir);
  std::string yaml = "  outbox: {dir: '" + dir.string() + R"(', capacity: 3}
  receivers: [{name: r, url: "http://hook/r"}]
  route: {receiver: r}
)";
  TimestampMs t0 = 1'800'000'000'000;
  std::vector<std::string> keys;
  {
    Rig rig(t0, yaml);
    for (int i = 0; i < 5; ++i) rig.http->script.push_back({0, "refused", "", std::nullopt});
    for (int i = 0; i < 5; ++i) keys.push_back(rig.n->SendTest("r").idempotency_key);
    CHECK(rig.Metric("prometheus_notifications_dropped_total", "r") == 2);  // capacity 3: oldest two
    CHECK(rig.Metric("prometheus_notifications_queue_length", "r") == 3);
    CHECK(rig.Metric("prometheus_notifications_queue_capacity", "") == 3);
    rig.n->Poll();
    CHECK(rig.http->requests.size() == 1);
    CHECK(rig.http->requests[0].Header("Idempotency-Key") == keys[2]);
  }
  {
    Rig rig(t0 + 1000, yaml);  // a second process on the same directory
    CHECK(rig.n->QueueLength() == 3);
    rig.n->Poll();
    std::vector<std::string> got;
    for (const auto& r : rig.http->requests) got.push_back(r.Header("Idempotency-Key"));
    CHECK(got == std::vector<std::string>{keys[2], keys[3], keys[4]});
    CHECK(rig.n->QueueLength() == 0);
  }
  {
    Rig rig(t0 + 2000, yaml);
    rig.n->Poll();
    CHECK(rig.http->requests.empty());
  }
  fs::remove_all(dir);
}

TEST_CASE("the outbox ignores a torn record at the end of its log") {
  fs::path dir = fs::temp_directory_path() / ("rbx-outbox-torn-" + std::to_string(getpid()));
  fs::remove_all(dir);
  std::string error;
  {
    auto box = notify::Outbox::Open(dir.string(), 10, true, error);
    REQUIRE(box);
    std::vector<notify::OutboxEntry> entries{{0, "receiver/r", "k1", "{}", 1, 1},
                                             {0, "receiver/r", "k2", "{}", 2, 1}};
    box->Put(entries);
    box->Remove({entries[0].id});
  }
  {
    std::ofstream(dir / "outbox.log", std::ios::app | std::ios::binary) << "A\x40\x00";  // a torn write
  }
  auto box = notify::Outbox::Open(dir.string(), 10, true, error);
  REQUIRE(box);
  CHECK(box->corrupt_records() == 1);
  REQUIRE(box->size() == 1);
  CHECK(box->entries().begin()->second.key == "k2");
  CHECK(!notify::Outbox::Open(dir.string(), 10, true, error));  // locked by `box`
  CHECK(error.find("in use") != std::string::npos);
  box.reset();
  fs::remove_all(dir);
}

TEST_CASE("the outbox is dirty after an unsynced removal until Sync, and never without fsync") {
  fs::path dir = fs::temp_directory_path() / ("rbx-outbox-dirty-" + std::to_string(getpid()));
  fs::remove_all(dir);
  std::string error;
  for (bool fsync : {true, false}) {
    auto box = notify::Outbox::Open(dir.string(), 10, fsync, error);
    REQUIRE(box);
    std::vector<notify::OutboxEntry> entries{{0, "receiver/r", "k1", "{}", 1, 1}};
    box->Put(entries);
    CHECK(!box->dirty());  // Put syncs
    box->Remove({entries[0].id});
    CHECK(box->dirty() == fsync);
    box->Sync();
    CHECK(!box->dirty());
    box.reset();
    fs::remove_all(dir);
  }
  auto memory = notify::Outbox::Open("", 10, true, error);
  REQUIRE(memory);
  std::vector<notify::OutboxEntry> entries{{0, "receiver/r", "k1", "{}", 1, 1}};
  memory->Put(entries);
  memory->Remove({entries[0].id});
  CHECK(!memory->dirty());
}

TEST_CASE("requests are signed with HMAC-SHA256 over timestamp.body and carry auth and headers") {
  CHECK(notify::HmacSha256Hex("key", "The quick brown fox jumps over the lazy dog") ==
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
  fs::path secret = fs::temp_directory_path() / ("rbx-hmac-" + std::to_string(getpid()));
  std::ofstream(secret) << "s3cret\n";
  Rig rig(1'800'000'000'000, "  receivers:\n    - {name: r, url: 'http://hook/r', hmac_secret_file: '" +
                                 secret.string() + "', basic_auth: {username: u, password_file: '" +
                                 secret.string() + "'}, headers: {X-Team: db}}\n  route: {receiver: r}\n");
  rig.n->SendTest("r");
  rig.n->Poll();
  REQUIRE(rig.http->requests.size() == 1);
  const auto& q = rig.http->requests[0];
  CHECK(q.Header("X-Runbook-Timestamp") == "1800000000");
  CHECK(q.Header("X-Runbook-Signature") ==
        "sha256=" + notify::HmacSha256Hex("s3cret", "1800000000." + q.req.body));
  CHECK(q.Header("Authorization") == "Basic dTpzM2NyZXQ=");
  CHECK(q.Header("X-Team") == "db");
  fs::remove(secret);
}

TEST_CASE("alerting config: every field parsed, errors name file:line:column and field") {
  auto cfg = ParseAlerting(R"(  external_url: http://exporter:9187
  resend_delay: 2m
  outbox: {dir: /var/lib/rbx, capacity: 500, fsync: false}
  retry: {initial_backoff: 2s, max_backoff: 1m, give_up_after: 2h, breaker_failures: 3, breaker_open_for: 10s}
  alertmanagers:
    - url: http://am:9093
      timeout: 5s
      bearer_token_file: /t
      tls: {ca_file: /ca.pem, insecure_skip_verify: true}
      proxy_url: http://proxy:3128
  receivers:
    - {name: ops, url: "https://hooks/x", send_resolved: false, max_alerts: 10}
  route:
    receiver: ops
    group_by: [alertname, target]
    group_wait: 5s
    routes:
      - {matchers: ['severity="critical"', 'team=~"db|ops"'], group_interval: 1m}
  inhibit_rules:
    - {source_matchers: [severity=critical], target_matchers: [severity=warning], equal: [target]}
)");
  CHECK(cfg.external_url == "http://exporter:9187");
  CHECK(cfg.resend_delay == 2min);
  CHECK(cfg.outbox_dir == "/var/lib/rbx");
  CHECK(cfg.outbox_capacity == 500);
  CHECK(!cfg.outbox_fsync);
  CHECK(cfg.retry.give_up_after == 2h);
  CHECK(cfg.retry.breaker_failures == 3);
  REQUIRE(cfg.alertmanagers.size() == 1);
  CHECK(cfg.alertmanagers[0].name == "http://am:9093");
  CHECK(cfg.alertmanagers[0].http.timeout == 5s);
  CHECK(cfg.alertmanagers[0].http.insecure_skip_verify);
  CHECK(cfg.alertmanagers[0].http.proxy_url == "http://proxy:3128");
  CHECK(cfg.receivers[0].max_alerts == 10);
  CHECK(!cfg.receivers[0].send_resolved);
  REQUIRE(cfg.route.routes.size() == 1);
  const auto& child = cfg.route.routes[0];
  CHECK(child.receiver == "ops");  // inherited
  CHECK(child.group_by == std::vector<std::string>{"alertname", "target"});
  CHECK(child.group_wait == 5s);
  CHECK(child.group_interval == 1min);
  CHECK(notify::MatchersString(child.matchers) == "{severity=\"critical\",team=~\"db|ops\"}");
  CHECK(cfg.inhibit_rules[0].equal == std::vector<std::string>{"target"});

  struct Case {
    std::string yaml, expect;
  };
  const Case cases[] = {
      {"  recievers: []\n", "t.yml:3:3: alerting.recievers: unknown key"},
      {"  receivers: [{name: a, url: 'http://x', colour: red}]\n  route: {receiver: a}\n",
       "t.yml:3:42: alerting.receivers[0].colour: unknown key"},
      {"  receivers: [{name: a, url: 'ftp://x'}]\n  route: {receiver: a}\n",
       "t.yml:3:30: alerting.receivers[0].url: expected an http:// or https:// URL"},
      {"  receivers: [{name: a, url: 'http://x'}]\n  route: {receiver: b}\n",
       "t.yml:4:21: alerting.route.receiver: no receiver named \"b\""},
      {"  receivers: [{name: a, url: 'http://x'}]\n", "t.yml:3:3: alerting.route: missing"},
      {"  receivers: [{name: a, url: 'http://x'}]\n  route: {receiver: a, routes: [{matchers: "
       "['x=~\"(\"']}]}\n",
       "alerting.route.routes[0].matchers[0]: invalid regular expression"},
      {"  receivers: [{name: a, url: 'http://x', headers: {Idempotency-Key: x}}]\n  route: {receiver: a}\n",
       "alerting.receivers[0].headers.Idempotency-Key: header is set by the exporter itself"},
      {"  outbox: {capacity: 0}\n", "t.yml:3:22: alerting.outbox.capacity: expected an integer between 1"},
      {"  route: {receiver: a, group_wait: soon}\n",
       "alerting.route.group_wait: expected a positive duration"},
  };
  for (const auto& c : cases) {
    auto r = ParseConfig("targets: {}\nalerting:\n" + c.yaml, "t.yml");
    INFO(c.yaml);
    CHECK(!r.config);
    std::string all;
    for (const auto& e : r.errors) all += e + "\n";
    CHECK_MESSAGE(all.find(c.expect) != std::string::npos, all);
  }
}

TEST_CASE("with its own threads the notifier delivers alerts queued concurrently from many threads") {
  auto http = std::make_shared<FakeHttp>(SystemClock());
  NotifierOptions o;
  o.http = http;
  auto n = MakeNotifier(o);
  auto cfg = ParseAlerting(R"(  alertmanagers: [{url: 'http://am1:9093'}, {url: 'http://am2:9093'}]
  receivers: [{name: r, url: "http://hook/r"}]
  route: {receiver: r, group_by: ['...'], group_wait: 1ms, group_interval: 1h}
)");
  REQUIRE(n->Apply(cfg).empty());
  std::vector<std::thread> threads;
  TimestampMs now = SystemClock().NowMs();
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i)
        n->Notify({{{{"alertname", "A"}, {"i", std::to_string(t * 100 + i)}}, {}, now, now + 240000, ""}});
    });
  for (int i = 0; i < 20; ++i) n->Metrics();
  for (auto& t : threads) t.join();
  auto deadline = std::chrono::steady_clock::now() + 10s;
  auto alerts_to = [&](const std::string& url) {
    std::size_t total = 0;
    for (const auto& r : http->To(url)) {
      auto body = json::parse(r.req.body);
      total += body.is_array() ? body.size() : body["alerts"].size();
    }
    return total;
  };
  while (std::chrono::steady_clock::now() < deadline &&
         (n->QueueLength() > 0 || alerts_to("http://hook/r") < 200 ||
          alerts_to("http://am2:9093/api/v2/alerts") < 200))
    std::this_thread::sleep_for(10ms);
  n->Stop();
  CHECK(alerts_to("http://am1:9093/api/v2/alerts") == 200);
  CHECK(alerts_to("http://am2:9093/api/v2/alerts") == 200);
  CHECK(alerts_to("http://hook/r") == 200);
  CHECK(n->QueueLength() == 0);
}

TEST_CASE("a bearer token file is read at every request") {
  fs::path token = fs::temp_directory_path() / ("rbx-token-" + std::to_string(getpid()));
  std::ofstream(token) << "t1\n";
  Rig rig(1'800'000'000'000, "  receivers:\n    - {name: r, url: 'http://hook/r', bearer_token_file: '" +
                                 token.string() + "'}\n  route: {receiver: r}\n");
  rig.n->SendTest("r");
  rig.n->Poll();
  std::ofstream(token) << "t2\n";  // rotated: no reload needed
  rig.n->SendTest("r");
  rig.n->Poll();
  REQUIRE(rig.http->requests.size() == 2);
  CHECK(rig.http->requests[0].Header("Authorization") == "Bearer t1");
  CHECK(rig.http->requests[1].Header("Authorization") == "Bearer t2");
  fs::remove(token);
}

TEST_CASE("a reload keeps the queue of a receiver that stays and drops the one of a removed receiver") {
  TimestampMs t0 = 1'800'000'000'000;
  Rig rig(t0, R"(  receivers: [{name: a, url: "http://hook/a"}, {name: b, url: "http://hook/b"}]
  route: {receiver: a}
)");
  rig.http->script = {{503, "", "", std::nullopt}, {503, "", "", std::nullopt}};
  auto key_a = rig.n->SendTest("a").idempotency_key;
  rig.n->SendTest("b");
  rig.n->Poll();
  CHECK(rig.n->QueueLength() == 2);
  auto next = ParseAlerting(R"(  receivers: [{name: a, url: "http://hook/a2"}]
  route: {receiver: a}
)");
  REQUIRE(rig.n->Apply(next).empty());
  CHECK(rig.n->QueueLength() == 1);
  CHECK(!rig.n->SendTest("b").ok);
  rig.RunUntil(t0 + 10000);
  auto to_a2 = rig.http->To("http://hook/a2");
  REQUIRE(to_a2.size() == 1);  // the new URL, the same notification
  CHECK(to_a2[0].Header("Idempotency-Key") == key_a);
  CHECK(rig.n->QueueLength() == 0);
}

}  // namespace notify_test
