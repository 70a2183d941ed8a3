// Alert delivery end to end: the exporter binary (driven through POST /api/v1/notify/test, and by
// its rule engine over the stack), a test receiver in this process that can fail, delay, throttle and
// records idempotency keys, and Debian's prometheus-alertmanager on loopback (also as a
// two-node cluster), run as an unprivileged user on ports chosen at run time.
#include <civetweb.h>
#include <doctest/doctest.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "harness.h"

namespace notify_test {

using namespace itest;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Reply {
  int status = 200;
  int delay_ms = 0;
  int retry_after_s = -1;
};

// A webhook receiver: answers from a script (then `fallback`) and records every request.
class TestReceiver {
 public:
  struct Hit {
    std::string path, key, timestamp, signature, body;
    int answered = 0;
    std::chrono::steady_clock::time_point at;
  };

  TestReceiver() {
    port_ = FreePort();
    std::string ports = "127.0.0.1:" + std::to_string(port_);
    const char* options[] = {"listening_ports", ports.c_str(), "num_threads", "8", nullptr};
    ctx_ = mg_start(nullptr, nullptr, options);
    REQUIRE_MESSAGE(ctx_, "test receiver cannot listen on " << ports);
    mg_set_request_handler(ctx_, "/", Handle, this);
  }
  ~TestReceiver() { mg_stop(ctx_); }

  std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  void Script(std::deque<Reply> replies, Reply fallback = {}) {
    std::lock_guard lock(mu_);
    script_ = std::move(replies);
    fallback_ = fallback;
  }
  std::vector<Hit> Hits() const {
    std::lock_guard lock(mu_);
    return hits_;
  }
  void Clear() {
    std::lock_guard lock(mu_);
    hits_.clear();
  }
  // Waits until `pred(hits)` holds; returns the hits at that point (or at the timeout).
  std::vector<Hit> WaitFor(const std::function<bool(const std::vector<Hit>&)>& pred,
                           std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return pred(hits_); });
    return hits_;
  }

 private:
  static int Handle(mg_connection* conn, void* self_ptr) {
    auto* self = static_cast<TestReceiver*>(self_ptr);
    const mg_request_info* ri = mg_get_request_info(conn);
    Hit hit;
    hit.path = ri->local_uri;
    auto header = [&](const char* n) {
      const char* v = mg_get_header(conn, n);
      return std::string(v ? v : "");
    };
    hit.key = header("Idempotency-Key");
    hit.timestamp = header("X-Runbook-Timestamp");
    hit.signature = header("X-Runbook-Signature");
    char buf[8192];
    int n;
    while ((n = mg_read(conn, buf, sizeof buf)) > 0) hit.body.append(buf, static_cast<std::size_t>(n));
    hit.at = std::chrono::steady_clock::now();
    Reply reply;
    {
      std::lock_guard lock(self->mu_);
      if (!self->script_.empty()) {
        reply = self->script_.front();
        self->script_.pop_front();
      } else {
        reply = self->fallback_;
      }
    }
    if (reply.delay_ms) std::this_thread::sleep_for(std::chrono::milliseconds(reply.delay_ms));
    std::string extra =
        reply.retry_after_s >= 0 ? "Retry-After: " + std::to_string(reply.retry_after_s) + "\r\n" : "";
    mg_printf(conn, "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n%s\r\nok", reply.status,
              extra.c_str());
    hit.answered = reply.status;
    {
      std::lock_guard lock(self->mu_);
      self->hits_.push_back(std::move(hit));
    }
    self->cv_.notify_all();
    return reply.status;
  }

  int port_ = 0;
  mg_context* ctx_ = nullptr;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<Reply> script_;
  Reply fallback_;
  std::vector<Hit> hits_;
};

fs::path TempDir(const std::string& name) {
  static int counter = 0;
  auto p = fs::temp_directory_path() /
           ("rbx-notify-" + std::to_string(getpid()) + "-" + std::to_string(++counter) + "-" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// Debian's prometheus-alertmanager, as `nobody` when we are root; killed when destroyed.
// A clustered node waits peer_timeout x its position before it checks the notification log; 1 s
// keeps peer_timeout x (nodes - 1) + webhook latency well under the HA test's group_interval (2 s).
constexpr std::chrono::milliseconds kPeerTimeout{1000};

class Alertmanager {
 public:
  Alertmanager(const std::string& config_yaml, int cluster_port = 0, int peer_port = 0) {
    dir_ = TempDir("am");
    port_ = FreePort();
    std::ofstream(dir_ / "am.yml") << config_yaml;
    fs::create_directories(dir_ / "data");
    if (geteuid() == 0) {
      REQUIRE(chown((dir_ / "data").c_str(), 65534, 65534) == 0);
      fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                fs::perms::others_read | fs::perms::others_exec);
    }
    std::string self = "127.0.0.1:" + std::to_string(port_);
    std::vector<std::string> args;
    if (geteuid() == 0) args = {"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"};
    for (const std::string& a :
         {std::string("/usr/bin/prometheus-alertmanager"), "--config.file=" + (dir_ / "am.yml").string(),
          "--storage.path=" + (dir_ / "data").string(), "--web.listen-address=" + self,
          "--web.external-url=http://" + self, std::string("--log.level=info")})
      args.push_back(a);
    if (cluster_port) {
      args.push_back("--cluster.listen-address=127.0.0.1:" + std::to_string(cluster_port));
      if (peer_port) args.push_back("--cluster.peer=127.0.0.1:" + std::to_string(peer_port));
      // ALERTMANAGER_HA.md: peer_timeout x (nodes - 1) + webhook latency < group_interval.
      args.push_back("--cluster.peer-timeout=" + std::to_string(kPeerTimeout.count()) + "ms");
      args.push_back("--cluster.gossip-interval=50ms");
      args.push_back("--cluster.pushpull-interval=1s");
    } else {
      args.push_back("--cluster.listen-address=");
    }
    process_ = Child(args, dir_ / "am.log");
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Http("GET", url("/-/ready")).status == 200) return;
      std::this_thread::sleep_for(100ms);
    }
    FAIL("alertmanager did not become ready: " << Log());
  }
  ~Alertmanager() {
    process_.Stop(15s);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string Log() const {
    std::ifstream in(dir_ / "am.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  bool ClusterReady(std::size_t peers) const {
    auto r = Http("GET", url("/api/v2/status"));
    if (r.status != 200) return false;
    auto j = json::parse(r.body, nullptr, false);
    return !j.is_discarded() && j["cluster"]["status"] == "ready" && j["cluster"]["peers"].size() == peers;
  }

 private:
  fs::path dir_;
  int port_ = 0;
  Child process_;
};

std::string AmConfig(const std::string& receiver_url, const std::string& timers) {
  return "route:\n  receiver: hook\n  group_by: [alertname]\n" + timers +
         "receivers:\n  - name: hook\n    webhook_configs:\n      - url: '" + receiver_url +
         "'\n        send_resolved: true\n";
}

std::string HmacHex(const std::string& key, const std::string& msg) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len);
  std::string hex;
  char b[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(b, sizeof b, "%02x", out[i]);
    hex += b;
  }
  return hex;
}

std::string SendTest(const Exporter& exp, const std::string& receiver, bool resolved = false) {
  auto r =
      Http("POST", exp.url("/api/v1/notify/test?receiver=" + receiver + (resolved ? "&resolved=true" : "")));
  REQUIRE_MESSAGE(r.status == 202, r.body);
  return json::parse(r.body)["data"]["idempotencyKey"];
}

std::string Receiver(const TestReceiver& rx, const std::string& extra = "") {
  return "    - name: hook\n      url: " + rx.url() + "\n      timeout: 1s\n" + extra;
}

}  // namespace

TEST_CASE("a test notification reaches a webhook receiver signed, and shows in the metrics") {
  TestReceiver rx;
  auto dir = TempDir("sign");
  std::ofstream(dir / "secret") << "topsecret\n";
  Exporter exp("targets: {}\nalerting:\n  outbox: {dir: " + (dir / "outbox").string() + "}\n  receivers:\n" +
               Receiver(rx, "      hmac_secret_file: " + (dir / "secret").string() + "\n") +
               "  route: {receiver: hook}\n");
  auto key = SendTest(exp, "hook");
  auto hits = rx.WaitFor([](const auto& h) { return !h.empty(); }, 10s);
  REQUIRE(hits.size() == 1);
  CHECK(hits[0].key == key);
  CHECK(hits[0].signature == "sha256=" + HmacHex("topsecret", hits[0].timestamp + "." + hits[0].body));
  auto body = json::parse(hits[0].body);
  CHECK(body["version"] == "4");
  CHECK(body["receiver"] == "hook");
  CHECK(body["alerts"][0]["labels"]["alertname"] == "RunbookTestNotification");
  CHECK(body["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z");
  CHECK(body["externalURL"].get<std::string>().starts_with("http://"));
  auto m = exp.WaitFor(
      [](const Scrape& s) {
        return s.Value("prometheus_notifications_sent_total", {{"receiver", "hook"}}) == 1;
      },
      5s);
  CHECK(m.Value("prometheus_notifications_sent_total", {{"receiver", "hook"}}) == 1);
  CHECK(m.Value("prometheus_notifications_queue_length", {{"receiver", "hook"}}) == 0);
  CHECK(m.Value("prometheus_notifications_queue_capacity") == 10000);
  CHECK(m.Has("prometheus_notifications_latency_seconds_count", {{"receiver", "hook"}}));

  auto unknown = Http("POST", exp.url("/api/v1/notify/test?receiver=nope"));
  CHECK(unknown.status == 404);
  CHECK(unknown.body.find("no receiver or alertmanager named") != std::string::npos);
  CHECK(Http("GET", exp.url("/api/v1/notify/test?receiver=hook")).status == 405);
  fs::remove_all(dir);
}

// tests/tools/http_receiver.py: a receiver in another process, for what CivetWeb cannot serve here
// (TLS: Debian's CivetWeb with OpenSSL 3 crashes, TOOLCHAIN.md) and to see request lines as sent.
class PyReceiver {
 public:
  // With `tls`, it serves dir/srv.pem and dir/srv.key.
  PyReceiver(const fs::path& dir, const std::string& name, bool tls = false) {
    log_ = dir / (name + ".jsonl");
    auto port_file = dir / (name + ".port");
    std::vector<std::string> args{"/usr/bin/python3", RUNBOOK_SOURCE_DIR "/tests/tools/http_receiver.py",
                                  log_.string(), port_file.string()};
    if (tls) {
      args.push_back("--cert");
      args.push_back((dir / "srv.pem").string());
      args.push_back("--key");
      args.push_back((dir / "srv.key").string());
    }
    process_ = Child(args, dir / (name + ".out"));
    for (int i = 0; i < 200 && !fs::exists(port_file); ++i) std::this_thread::sleep_for(25ms);
    REQUIRE_MESSAGE(fs::exists(port_file), "receiver did not start");
    std::ifstream(port_file) >> port_;
  }
  int port() const { return port_; }
  std::vector<json> Requests() const {
    std::vector<json> out;
    std::ifstream in(log_);
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
    return out;
  }
  std::vector<json> WaitFor(std::size_t n, std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto r = Requests();
    while (r.size() < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
      r = Requests();
    }
    return r;
  }

 private:
  fs::path log_;
  int port_ = 0;
  Child process_;
};

TEST_CASE("webhooks over TLS with a custom CA, and through an HTTP proxy") {
  auto dir = TempDir("tls");
  const std::string d = dir.string();
  for (const std::string& cmd :
       {"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "
        "/CN=itest-ca "
        "-keyout " +
            d + "/ca.key -out " + d + "/ca.pem",
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 -keyout " +
            d + "/srv.key -out " + d + "/srv.csr",
        "printf 'subjectAltName=IP:127.0.0.1\n' > " + d + "/ext.cnf",
        "openssl x509 -req -in " + d + "/srv.csr -CA " + d + "/ca.pem -CAkey " + d +
            "/ca.key -CAcreateserial -days 1 " + "-extfile " + d + "/ext.cnf -out " + d + "/srv.pem"}) {
    auto [rc, out] = Run(cmd);
    REQUIRE_MESSAGE(rc == 0, cmd << "\n" << out);
  }
  PyReceiver tls(dir, "tls", true);
  PyReceiver proxy(dir, "proxy");
  const std::string https = "https://127.0.0.1:" + std::to_string(tls.port()) + "/hook";
  // 192.0.2.1 (TEST-NET-1) is never reachable: only the proxy can deliver there.
  Exporter exp(
      "targets: {}\nalerting:\n  outbox: {dir: " + d + "/outbox}\n  receivers:\n" +
      "    - {name: trusted, url: '" + https + "', timeout: 2s, tls: {ca_file: " + d + "/ca.pem}}\n" +
      "    - {name: untrusted, url: '" + https + "', timeout: 2s}\n" +
      "    - {name: proxied, url: 'http://192.0.2.1:9/hook', timeout: 2s, proxy_url: 'http://127.0.0.1:" +
      std::to_string(proxy.port()) + "'}\n" + "  route: {receiver: trusted}\n");

  auto untrusted_key = SendTest(exp, "untrusted");
  auto m = exp.WaitFor(
      [](const Scrape& s) {
        return s.Value("prometheus_notifications_errors_total", {{"receiver", "untrusted"}}) >= 1;
      },
      10s);
  CHECK(m.Value("prometheus_notifications_errors_total", {{"receiver", "untrusted"}}) >= 1);
  CHECK(m.Value("prometheus_notifications_sent_total", {{"receiver", "untrusted"}}) == 0);

  auto key = SendTest(exp, "trusted");
  auto got = tls.WaitFor(1, 10s);
  REQUIRE(got.size() == 1);  // the untrusted one never got past the handshake
  CHECK(got[0]["target"] == "/hook");
  CHECK(got[0]["headers"]["Idempotency-Key"] == key);
  CHECK(json::parse(got[0]["body"].get<std::string>())["receiver"] == "trusted");

  auto proxied_key = SendTest(exp, "proxied");
  auto via = proxy.WaitFor(1, 10s);
  REQUIRE(via.size() == 1);
  CHECK(via[0]["method"] == "POST");
  CHECK(via[0]["target"] == "http://192.0.2.1:9/hook");  // absolute form: a proxy request
  CHECK(via[0]["headers"]["Idempotency-Key"] == proxied_key);
  CHECK(tls.Requests().size() == 1);
  CHECK(untrusted_key != key);
  fs::remove_all(dir);
}

TEST_CASE("a failing receiver: 500 and 429 are retried with the same key after Retry-After, 400 is not") {
  TestReceiver rx;
  rx.Script({{500}, {429, 0, 2}, {200}});
  Exporter exp(
      "targets: {}\nalerting:\n  retry: {initial_backoff: 100ms, max_backoff: 400ms}\n  receivers:\n" +
      Receiver(rx) + "  route: {receiver: hook}\n");
  auto key = SendTest(exp, "hook");
  auto hits = rx.WaitFor([](const auto& h) { return h.size() >= 3; }, 15s);
  REQUIRE(hits.size() == 3);
  for (const auto& h : hits) CHECK(h.key == key);
  CHECK(hits[2].at - hits[1].at >= 1900ms);  // Retry-After: 2 beats the 400 ms backoff cap
  CHECK(hits[1].at - hits[0].at < 1500ms);

  rx.Clear();
  rx.Script({{400}});
  SendTest(exp, "hook");
  rx.WaitFor([](const auto& h) { return !h.empty(); }, 10s);
  std::this_thread::sleep_for(1500ms);
  CHECK(rx.Hits().size() == 1);
  auto m = exp.Metrics();
  CHECK(m.Value("prometheus_notifications_dropped_total", {{"receiver", "hook"}}) == 1);
  CHECK(m.Value("prometheus_notifications_errors_total", {{"receiver", "hook"}}) == 3);
  CHECK(exp.Log().find("rejected notification") != std::string::npos);

  // A receiver slower than the timeout: the attempt fails and is retried; it gets there.
  rx.Clear();
  rx.Script({{200, 2500}});
  auto slow_key = SendTest(exp, "hook");
  hits = rx.WaitFor([](const auto& h) { return h.size() >= 2; }, 15s);
  REQUIRE(hits.size() >= 2);
  CHECK(hits[0].key == slow_key);
  CHECK(hits[1].key == slow_key);
}

TEST_CASE("kill -9 during a receiver outage, then restart: every notification delivered, each key once") {
  TestReceiver rx;
  rx.Script({}, {503});
  auto dir = TempDir("outbox");
  std::string cfg = "targets: {}\nalerting:\n  outbox: {dir: " + (dir / "outbox").string() +
                    "}\n  retry: {initial_backoff: 200ms, max_backoff: 1s}\n  receivers:\n" + Receiver(rx) +
                    "  route: {receiver: hook}\n";
  std::set<std::string> keys;
  {
    Exporter exp(cfg);
    for (int i = 0; i < 20; ++i) keys.insert(SendTest(exp, "hook"));
    rx.WaitFor([](const auto& h) { return h.size() >= 3; }, 10s);
    exp.Kill9();
  }
  REQUIRE(keys.size() == 20);
  CHECK(!rx.Hits().empty());
  for (const auto& h : rx.Hits()) CHECK(h.answered == 503);
  rx.Clear();
  rx.Script({}, {200});
  Exporter again(cfg);
  auto hits = rx.WaitFor([](const auto& h) { return h.size() >= 20; }, 20s);
  std::this_thread::sleep_for(1s);  // anything extra would arrive now
  hits = rx.Hits();
  std::map<std::string, int> seen;
  for (const auto& h : hits) seen[h.key]++;
  CHECK(hits.size() == 20);
  for (const auto& k : keys) CHECK_MESSAGE(seen[k] == 1, k);
  CHECK(again.Metrics().Value("prometheus_notifications_queue_length", {{"receiver", "hook"}}) == 0);
  fs::remove_all(dir);
}

TEST_CASE("a real Alertmanager takes our pushes (amtool sees them) and forwards them to a webhook") {
  TestReceiver rx;
  Alertmanager am(
      AmConfig(rx.url("/from-am"), "  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\n"));
  Exporter exp("targets: {}\nalerting:\n  alertmanagers:\n    - {name: am, url: '" + am.url() + "'}\n");
  SendTest(exp, "am");
  auto hits = rx.WaitFor([](const auto& h) { return !h.empty(); }, 15s);
  REQUIRE_MESSAGE(hits.size() == 1, am.Log());
  auto body = json::parse(hits[0].body);
  CHECK(body["status"] == "firing");
  CHECK(body["alerts"][0]["labels"]["alertname"] == "RunbookTestNotification");
  CHECK(body["groupKey"] == "{}:{alertname=\"RunbookTestNotification\"}");
  auto [rc, out] = Run("amtool alert query --alertmanager.url=" + am.url() + " -o json");
  CHECK(rc == 0);
  CHECK_MESSAGE(out.find("RunbookTestNotification") != std::string::npos, out);
  auto m = exp.Metrics();
  CHECK(m.Value("prometheus_notifications_sent_total", {{"alertmanager", am.url() + "/api/v2/alerts"}}) == 1);
  CHECK(m.Value("prometheus_notifications_alertmanagers_discovered") == 1);

  SendTest(exp, "am", true);
  hits = rx.WaitFor([](const auto& h) { return h.size() >= 2; }, 15s);
  REQUIRE(hits.size() == 2);
  CHECK(json::parse(hits[1].body)["status"] == "resolved");
}

TEST_CASE("HA: two exporters feeding a two-node Alertmanager cluster deliver one webhook per group") {
  TestReceiver rx;
  const std::string cfg =
      AmConfig(rx.url("/ha"), "  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\n");
  constexpr auto group_wait = 1s, group_interval = 2s;
  int c1 = FreePort(), c2 = FreePort();
  Alertmanager am1(cfg, c1, c2);
  Alertmanager am2(cfg, c2, c1);
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!(am1.ClusterReady(2) && am2.ClusterReady(2)) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(200ms);
  REQUIRE_MESSAGE(am1.ClusterReady(2), am1.Log());
  REQUIRE(am2.ClusterReady(2));
  std::string ecfg = "targets: {}\nalerting:\n  alertmanagers:\n    - {name: am1, url: '" + am1.url() +
                     "'}\n    - {name: am2, url: '" + am2.url() + "'}\n";
  Exporter a(ecfg), b(ecfg);
  auto post_all = [&](bool resolved) {
    for (const Exporter* e : {&a, &b})
      for (const char* am : {"am1", "am2"}) SendTest(*e, am, resolved);
  };
  post_all(false);
  std::this_thread::sleep_for(group_wait + group_interval / 4);  // before the next group_interval tick
  post_all(false);
  auto hits = rx.WaitFor([](const auto& h) { return !h.empty(); }, 15s);
  REQUIRE(!hits.empty());
  std::this_thread::sleep_for(kPeerTimeout + 500ms);  // past the second node's peer_timeout
  post_all(true);
  // The resolved notice goes out on the next group_interval tick; then wait out any duplicate:
  // group_interval + peer_timeout + margin.
  rx.WaitFor([](const auto& h) { return h.size() >= 2; }, 25s);
  std::this_thread::sleep_for(group_interval + kPeerTimeout + 2s);
  hits = rx.Hits();
  int firing = 0, resolved = 0;
  for (const auto& h : hits) {
    auto status = json::parse(h.body)["status"];
    (status == "firing" ? firing : resolved)++;
  }
  CHECK(firing == 1);
  CHECK(resolved == 1);
  REQUIRE(hits.size() >= 2);
  CHECK(json::parse(hits.back().body)["status"] == "resolved");
}

TEST_CASE(
    "an alert of the embedded rule engine on the stack reaches a webhook receiver, firing then resolved") {
  TestReceiver rx;
  auto dir = TempDir("rules");
  std::ofstream(dir / "stack.rules.yml")
      << "groups:\n  - name: stack\n    interval: 1s\n    rules:\n"
         "      - alert: PrimaryUp\n        expr: pg_up{target=\"primary\"} == 1\n"
         "        labels: {severity: info}\n"
         "        annotations: {summary: '{{ $labels.target }} is up'}\n";
  auto config = [&](bool with_target) {
    return "global: {interval: 1s, timeout: 800ms}\nrules:\n  files: [" + (dir / "stack.rules.yml").string() +
           "]\n  external_labels: {site: lab}\nalerting:\n  outbox: {dir: " + (dir / "outbox").string() +
           "}\n  receivers:\n" + Receiver(rx) +
           "  route: {receiver: hook, group_by: [alertname], group_wait: 1s, group_interval: "
           "1s}\ntargets:\n" +
           (with_target ? "  postgres:\n" + PgTarget("primary", Stack::Get().Port("PG_PRIMARY_PORT"))
                        : std::string("  postgres: []\n"));
  };
  Exporter exp(config(true));
  auto has = [](const std::vector<TestReceiver::Hit>& hits, const std::string& status) {
    for (const auto& h : hits)
      if (json::parse(h.body)["status"] == status) return true;
    return false;
  };
  auto hits = rx.WaitFor([&](const auto& h) { return has(h, "firing"); }, 20s);
  REQUIRE_MESSAGE(has(hits, "firing"), exp.Log());
  auto body = json::parse(hits.back().body);
  const auto& alert = body["alerts"][0];
  CHECK(alert["labels"]["alertname"] == "PrimaryUp");
  CHECK(alert["labels"]["target"] == "primary");
  CHECK(alert["labels"]["site"] == "lab");  // external labels are added at send time
  CHECK(alert["annotations"]["summary"] == "primary is up");
  CHECK(alert["generatorURL"].get<std::string>().find("/graph?g0.expr=") != std::string::npos);

  exp.WriteConfig(config(false));
  REQUIRE(Http("POST", exp.url("/-/reload")).status == 200);
  hits = rx.WaitFor([&](const auto& h) { return has(h, "resolved"); }, 20s);
  REQUIRE_MESSAGE(has(hits, "resolved"), exp.Log());
  fs::remove_all(dir);
}

TEST_CASE("a reload changing the external labels keeps a firing alert: its resolution is still notified") {
  TestReceiver rx;
  auto dir = TempDir("rules-reload");
  std::ofstream(dir / "stack.rules.yml")
      << "groups:\n  - name: stack\n    interval: 1s\n    rules:\n"
         "      - alert: PrimaryUp\n        expr: pg_up{target=\"primary\"} == 1\n";
  auto config = [&](const std::string& site, bool with_target) {
    return "global: {interval: 1s, timeout: 800ms}\nrules:\n  files: [" + (dir / "stack.rules.yml").string() +
           "]\n  external_labels: {site: " + site +
           "}\nalerting:\n  outbox: {dir: " + (dir / "outbox").string() + "}\n  receivers:\n" + Receiver(rx) +
           "  route: {receiver: hook, group_by: [alertname], group_wait: 1s, group_interval: "
           "1s}\ntargets:\n" +
           (with_target ? "  postgres:\n" + PgTarget("primary", Stack::Get().Port("PG_PRIMARY_PORT"))
                        : std::string("  postgres: []\n"));
  };
  Exporter exp(config("lab", true));
  // The alert with the new external labels is another alert for the receiver's group, which
  // still holds the old one as firing: the resolution comes in a "firing" group message.
  auto has = [](const std::vector<TestReceiver::Hit>& hits, const std::string& status) {
    for (const auto& h : hits) {
      auto body = json::parse(h.body);
      for (const auto& a : body["alerts"])
        if (a["status"] == status && a["labels"]["alertname"] == "PrimaryUp") return true;
    }
    return false;
  };
  auto hits = rx.WaitFor([&](const auto& h) { return has(h, "firing"); }, 20s);
  REQUIRE_MESSAGE(has(hits, "firing"), exp.Log());
  // One reload changes the external labels and removes the target: the alert resolves at the next
  // evaluation, which must still know it was firing.
  exp.WriteConfig(config("lab2", false));
  REQUIRE(Http("POST", exp.url("/-/reload")).status == 200);
  hits = rx.WaitFor([&](const auto& h) { return has(h, "resolved"); }, 20s);
  REQUIRE_MESSAGE(has(hits, "resolved"), exp.Log());
  for (const auto& h : hits) {
    auto body = json::parse(h.body);
    for (const auto& a : body["alerts"])
      if (a["status"] == "resolved") CHECK(a["labels"]["site"] == "lab2");
  }
  fs::remove_all(dir);
}

}  // namespace notify_test
