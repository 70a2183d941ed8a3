#include "notify/notifier.h"

#include <openssl/hmac.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "notify/outbox.h"
#include "notify/payload.h"
#include "runbook/notify.h"

namespace runbook::notify {

std::string HmacSha256Hex(const std::string& key, const std::string& message) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &len);
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex += kHex[out[i] >> 4];
    hex += kHex[out[i] & 15];
  }
  return hex;
}

std::string SignatureHeader(const std::string& secret, long long timestamp, const std::string& body) {
  return "sha256=" + HmacSha256Hex(secret, std::to_string(timestamp) + "." + body);
}

namespace {

using Millis = std::chrono::milliseconds;
constexpr std::size_t kAlertmanagerBatch = 64;
constexpr std::size_t kLatencyWindow = 1024;
constexpr TimestampMs kNoFlush = std::numeric_limits<TimestampMs>::max();
const char* kTestAlertName = "RunbookTestNotification";

bool ReadSecret(const std::string& path, std::string& out, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path;
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return true;
}

std::string Base64(const std::string& in) {
  static const char* kChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kChars[(v >> s) & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kChars[(v >> 18) & 63];
    out += kChars[(v >> 12) & 63];
    out += i + 1 < in.size() ? kChars[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

struct RouteNode {
  NotifyRoute cfg;
  std::vector<CompiledMatcher> matchers;
  std::string key;
  std::vector<RouteNode> children;
};

void BuildRoute(RouteNode& node, const NotifyRoute& cfg, const std::string& parent_key) {
  node.cfg = cfg;
  for (const auto& m : cfg.matchers) node.matchers.emplace_back(m);
  node.key =
      parent_key.empty() ? MatchersString(cfg.matchers) : parent_key + "/" + MatchersString(cfg.matchers);
  node.children.resize(cfg.routes.size());
  for (std::size_t i = 0; i < cfg.routes.size(); ++i) BuildRoute(node.children[i], cfg.routes[i], node.key);
}

// Alertmanager's Route.Match: the deepest matching routes, stopping at the first match unless
// the matching child has `continue`.
void MatchRoutes(const RouteNode& node, const Labels& labels, std::vector<const RouteNode*>& out) {
  if (!MatchAll(node.matchers, labels)) return;
  std::size_t before = out.size();
  for (const auto& child : node.children) {
    std::size_t n = out.size();
    MatchRoutes(child, labels, out);
    if (out.size() > n && !child.cfg.continue_matching) break;
  }
  if (out.size() == before) out.push_back(&node);
}

void IndexRoutes(const RouteNode& node, std::map<std::string, const RouteNode*>& index) {
  index.emplace(node.key, &node);
  for (const auto& c : node.children) IndexRoutes(c, index);
}

struct Sink {
  std::string id;           // "receiver/NAME" or "alertmanager/NAME"
  std::string label_name;   // metrics label: receiver or alertmanager
  std::string label_value;  // receiver name or the Alertmanager's endpoint URL
  std::string name;
  std::string url;
  NotifyHttpConfig http;
  bool webhook = false;
  int max_alerts = 0;
  bool send_resolved = true;

  std::deque<std::uint64_t> queue;
  int attempts = 0;
  TimestampMs next_attempt = 0;
  int consecutive_failures = 0;
  TimestampMs breaker_until = 0;
  bool in_flight = false;

  double sent = 0, errors = 0, dropped = 0;
  std::deque<double> latencies;
  double latency_sum = 0;
  std::uint64_t latency_count = 0;
};

struct Group {
  std::string group_key;
  std::string route_key;
  std::string receiver;
  Labels labels;
  std::map<std::string, Alert> alerts;  // by fingerprint
  TimestampMs next_flush = 0;
  bool flushed = false;
  bool logged = false;  // a notification was recorded (Alertmanager's notification log)
  std::set<std::string> log_firing, log_resolved;
  TimestampMs log_time = 0;
};

struct CompiledInhibit {
  std::vector<CompiledMatcher> source, target;
  std::vector<std::string> equal;
};

class NotifierImpl final : public Notifier {
 public:
  explicit NotifierImpl(NotifierOptions opts) : opts_(std::move(opts)) {
    if (!opts_.http) opts_.http = MakeCurlHttpClient();
    rng_.seed(opts_.seed ? opts_.seed : std::random_device{}());
    if (opts_.start_threads) {
      threads_.emplace_back([this] { DispatchLoop(); });
      for (int i = 0; i < std::max(1, opts_.delivery_threads); ++i)
        threads_.emplace_back([this] { DeliveryLoop(); });
    }
  }
  ~NotifierImpl() override { Stop(); }

  std::vector<std::string> Apply(const NotifierConfig& config) override {
    std::lock_guard lock(mu_);
    std::vector<std::string> errors;
    bool replay = false;
    if (!outbox_ || outbox_->dir() != config.outbox_dir) {
      if (outbox_ && !outbox_->dir().empty())
        spdlog::warn("alerting.outbox.dir changed from {} to {}; it takes effect at the next restart",
                     outbox_->dir(), config.outbox_dir);
      if (!outbox_) {
        std::string error;
        auto box = Outbox::Open(config.outbox_dir, config.outbox_capacity, config.outbox_fsync, error);
        if (!box) return {error};
        if (box->corrupt_records())
          spdlog::warn("outbox {}: skipped a torn or corrupt record at the end of the log",
                       config.outbox_dir);
        outbox_ = std::move(box);
        replay = true;
      }
    }
    outbox_->set_capacity(config.outbox_capacity);
    cfg_ = config;

    std::map<std::string, std::unique_ptr<Sink>> next;
    auto take = [&](const std::string& id) {
      auto it = sinks_.find(id);
      std::unique_ptr<Sink> s = it != sinks_.end() ? std::move(it->second) : std::make_unique<Sink>();
      if (it != sinks_.end()) sinks_.erase(it);
      s->id = id;
      return s;
    };
    for (const auto& am : config.alertmanagers) {
      auto s = take("alertmanager/" + am.name);
      s->name = am.name;
      s->url = am.url + "/api/v2/alerts";
      s->label_name = "alertmanager";
      s->label_value = s->url;
      s->http = am.http;
      s->webhook = false;
      next[s->id] = std::move(s);
    }
    for (const auto& r : config.receivers) {
      auto s = take("receiver/" + r.name);
      s->name = r.name;
      s->url = r.url;
      s->label_name = "receiver";
      s->label_value = r.name;
      s->http = r.http;
      s->webhook = true;
      s->max_alerts = r.max_alerts;
      s->send_resolved = r.send_resolved;
      next[s->id] = std::move(s);
    }
    for (auto& [id, s] : sinks_) {
      if (s->queue.empty()) continue;
      spdlog::warn("notifier: {} is no longer configured; dropping its {} queued notifications", id,
                   s->queue.size());
      std::vector<std::uint64_t> ids(s->queue.begin(), s->queue.end());
      outbox_->Remove(ids);
    }
    sinks_ = std::move(next);
    if (replay) {
      std::vector<std::uint64_t> orphans;
      for (const auto& [id, e] : outbox_->entries()) {
        auto it = sinks_.find(e.sink);
        if (it == sinks_.end())
          orphans.push_back(id);
        else
          it->second->queue.push_back(id);
      }
      if (!orphans.empty()) {
        spdlog::warn("outbox: dropping {} notifications for receivers no longer configured", orphans.size());
        outbox_->Remove(orphans);
      }
      if (outbox_->size())
        spdlog::info("outbox {}: replaying {} notifications", config.outbox_dir, outbox_->size());
    }

    route_ = RouteNode{};
    route_index_.clear();
    if (!config.receivers.empty()) {
      BuildRoute(route_, config.route, "");
      IndexRoutes(route_, route_index_);
    }
    for (auto it = groups_.begin(); it != groups_.end();) {
      auto r = route_index_.find(it->second.route_key);
      if (r == route_index_.end() || r->second->cfg.receiver != it->second.receiver)
        it = groups_.erase(it);
      else
        ++it;
    }
    inhibits_.clear();
    for (const auto& rule : config.inhibit_rules) {
      CompiledInhibit c;
      for (const auto& m : rule.source_matchers) c.source.emplace_back(m);
      for (const auto& m : rule.target_matchers) c.target.emplace_back(m);
      c.equal = rule.equal;
      inhibits_.push_back(std::move(c));
    }
    wake_.notify_all();
    deliver_.notify_all();
    return errors;
  }

  void Notify(const std::vector<Alert>& alerts) override {
    {
      std::lock_guard lock(in_mu_);
      input_.insert(input_.end(), alerts.begin(), alerts.end());
    }
    wake_.notify_all();
  }

  NotifyTestResult SendTest(const std::string& name, bool resolved) override {
    std::unique_lock lock(mu_);
    NotifyTestResult r;
    Sink* sink = nullptr;
    for (auto* prefix : {"receiver/", "alertmanager/"})
      if (auto it = sinks_.find(prefix + name); it != sinks_.end() && !sink) sink = it->second.get();
    if (!sink) {
      r.error = "no receiver or alertmanager named \"" + name + "\" is configured";
      return r;
    }
    TimestampMs now = opts_.clock->NowMs();
    Alert a;
    a.labels = {{"alertname", kTestAlertName}, {"notifier", "runbook_exporter"}};
    a.annotations = {{"summary", "Test notification from runbook_exporter to " + name}};
    a.starts_at = now;
    a.ends_at = resolved ? now : now + 300000;
    OutboxEntry e;
    e.sink = sink->id;
    e.alerts = 1;
    if (sink->webhook) {
      WebhookMessage msg;
      msg.receiver = name;
      msg.alerts = {a};
      msg.group_labels = {{"alertname", kTestAlertName}};
      msg.external_url = cfg_.external_url;
      msg.group_key = "{}/test:" + LabelSetString(msg.group_labels);
      msg.now = now;
      e.body = WebhookBody(std::move(msg));
    } else {
      e.body = AlertmanagerBody({a});
    }
    std::vector<OutboxEntry> batch{std::move(e)};
    if (!Enqueue(batch, now)) {
      r.error = "cannot write the outbox";
      return r;
    }
    r.ok = true;
    r.idempotency_key = batch.front().key;
    lock.unlock();
    deliver_.notify_all();
    return r;
  }

  std::vector<prometheus::MetricFamily> Metrics() const override {
    std::lock_guard lock(mu_);
    using prometheus::MetricFamily;
    using prometheus::MetricType;
    auto family = [](const char* name, const char* help, MetricType type) {
      MetricFamily f;
      f.name = name;
      f.help = help;
      f.type = type;
      return f;
    };
    MetricFamily sent =
        family("prometheus_notifications_sent_total", "Total number of alerts sent.", MetricType::Counter);
    MetricFamily errors = family("prometheus_notifications_errors_total",
                                 "Total number of sent alerts affected by errors.", MetricType::Counter);
    MetricFamily dropped =
        family("prometheus_notifications_dropped_total",
               "Total number of alerts dropped: outbox full, permanent errors, retries given up.",
               MetricType::Counter);
    MetricFamily queue =
        family("prometheus_notifications_queue_length",
               "The number of notifications in the outbox waiting for delivery.", MetricType::Gauge);
    MetricFamily capacity = family("prometheus_notifications_queue_capacity",
                                   "The capacity of the notification outbox.", MetricType::Gauge);
    MetricFamily latency = family("prometheus_notifications_latency_seconds",
                                  "Latency quantiles for sending alert notifications.", MetricType::Summary);
    MetricFamily breaker =
        family("runbook_notifications_circuit_open",
               "1 while the receiver's circuit breaker holds deliveries back.", MetricType::Gauge);
    MetricFamily ams = family("prometheus_notifications_alertmanagers_discovered",
                              "The number of alertmanagers discovered and active.", MetricType::Gauge);
    TimestampMs now = opts_.clock->NowMs();
    double am_count = 0;
    for (const auto& [id, s] : sinks_) {
      am_count += s->webhook ? 0 : 1;
      std::vector<prometheus::ClientMetric::Label> labels{{s->label_name, s->label_value}};
      auto add = [&](MetricFamily& f, double v, bool counter) {
        prometheus::ClientMetric m;
        m.label = labels;
        if (counter)
          m.counter.value = v;
        else
          m.gauge.value = v;
        f.metric.push_back(m);
      };
      add(sent, s->sent, true);
      add(errors, s->errors, true);
      add(dropped, s->dropped, true);
      add(queue, static_cast<double>(s->queue.size()), false);
      add(breaker, s->breaker_until > now ? 1 : 0, false);
      prometheus::ClientMetric m;
      m.label = labels;
      m.summary.sample_count = s->latency_count;
      m.summary.sample_sum = s->latency_sum;
      std::vector<double> sorted(s->latencies.begin(), s->latencies.end());
      std::sort(sorted.begin(), sorted.end());
      for (double q : {0.5, 0.9, 0.99}) {
        double v = sorted.empty()
                       ? std::nan("")
                       : sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(q * sorted.size()))];
        m.summary.quantile.push_back({q, v});
      }
      latency.metric.push_back(m);
    }
    prometheus::ClientMetric c;
    c.gauge.value =
        outbox_ ? static_cast<double>(outbox_->capacity()) : static_cast<double>(cfg_.outbox_capacity);
    capacity.metric.push_back(c);
    prometheus::ClientMetric a;
    a.gauge.value = am_count;
    ams.metric.push_back(a);
    std::vector<MetricFamily> out{ams, dropped, errors, latency, capacity, queue, sent, breaker};
    return out;
  }

  int Poll() override {
    {
      std::lock_guard lock(mu_);
      Dispatch(opts_.clock->NowMs());
    }
    int attempts = 0;
    while (DeliverOne()) ++attempts;
    return attempts;
  }

  std::size_t QueueLength() const override {
    std::lock_guard lock(mu_);
    return outbox_ ? outbox_->size() : 0;
  }

  void Stop() override {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    wake_.notify_all();
    deliver_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::lock_guard lock(mu_);
    if (outbox_) outbox_->Sync();
  }

 private:
  std::string NewKey() {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng_()),
                  static_cast<unsigned long long>(rng_()));
    return buf;
  }

  // Writes `entries` to the outbox and queues them on their sinks. mu_ held.
  bool Enqueue(std::vector<OutboxEntry>& entries, TimestampMs now) {
    if (entries.empty()) return true;
    for (auto& e : entries) {
      e.key = NewKey();
      e.created = now;
    }
    bool ok = true;
    auto dropped = outbox_->Put(entries, &ok);
    if (!ok) spdlog::error("outbox {}: write failed; notifications are kept in memory only", outbox_->dir());
    for (auto& e : entries)
      if (outbox_->Find(e.id))
        if (auto it = sinks_.find(e.sink); it != sinks_.end()) it->second->queue.push_back(e.id);
    for (const auto& d : dropped) {
      auto it = sinks_.find(d.sink);
      if (it == sinks_.end()) continue;
      auto& q = it->second->queue;
      if (auto pos = std::find(q.begin(), q.end(), d.id); pos != q.end()) {
        if (pos == q.begin()) it->second->attempts = 0;
        q.erase(pos);
      }
      it->second->dropped += d.alerts;
    }
    if (!dropped.empty())
      spdlog::warn("outbox full ({} notifications): dropped the {} oldest", outbox_->capacity(),
                   dropped.size());
    return ok;
  }

  bool Inhibited(const Alert& target, const std::string& target_fp, TimestampMs now) const {
    for (const auto& rule : inhibits_) {
      if (!MatchAll(rule.target, target.labels)) continue;
      bool two_sided = MatchAll(rule.source, target.labels);
      for (const auto& known : known_) {
        const auto& src = known.second;  // not a structured binding: clang 14 cannot capture those
        if (known.first == target_fp || src.ends_at <= now || !MatchAll(rule.source, src.labels)) continue;
        if (two_sided && MatchAll(rule.target, src.labels)) continue;
        bool equal = std::all_of(rule.equal.begin(), rule.equal.end(), [&](const std::string& n) {
          return LabelValue(src.labels, n) == LabelValue(target.labels, n);
        });
        if (equal) return true;
      }
    }
    return false;
  }

  // Alertmanager's aggregation-group flush with DedupStage.needsUpdate. mu_ held.
  void Flush(Group& g, const RouteNode& route, TimestampMs now, std::vector<OutboxEntry>& out) {
    auto sink_it = sinks_.find("receiver/" + g.receiver);
    std::vector<Alert> alerts;
    std::set<std::string> firing, resolved;
    std::vector<std::string> resolved_now;
    for (const auto& [fp, a] : g.alerts) {
      bool is_resolved = a.ends_at <= now;
      if (is_resolved) resolved_now.push_back(fp);
      if (Inhibited(a, fp, now)) continue;
      (is_resolved ? resolved : firing).insert(fp);
      alerts.push_back(a);
    }
    const bool send_resolved = sink_it != sinks_.end() && sink_it->second->send_resolved;
    auto subset = [](const std::set<std::string>& a, const std::set<std::string>& b) {
      return std::includes(b.begin(), b.end(), a.begin(), a.end());
    };
    bool update;
    if (!g.logged)
      update = !firing.empty();
    else if (!subset(firing, g.log_firing))
      update = true;
    else if (firing.empty())
      update = !g.log_firing.empty();
    else if (send_resolved && !subset(resolved, g.log_resolved))
      update = true;
    else
      update = g.log_time + route.cfg.repeat_interval.count() <= now;
    if (update) {
      if (!send_resolved)
        alerts.erase(
            std::remove_if(alerts.begin(), alerts.end(), [&](const Alert& a) { return a.ends_at <= now; }),
            alerts.end());
      if (!alerts.empty() && sink_it != sinks_.end()) {
        WebhookMessage msg;
        msg.receiver = g.receiver;
        msg.alerts = std::move(alerts);
        msg.group_labels = g.labels;
        msg.external_url = cfg_.external_url;
        msg.group_key = g.group_key;
        msg.max_alerts = sink_it->second->max_alerts;
        msg.now = now;
        OutboxEntry e;
        e.sink = sink_it->first;
        e.alerts = static_cast<int>(std::min<std::size_t>(
            msg.alerts.size(),
            msg.max_alerts > 0 ? static_cast<std::size_t>(msg.max_alerts) : msg.alerts.size()));
        e.body = WebhookBody(std::move(msg));
        out.push_back(std::move(e));
      }
      g.logged = true;
      g.log_firing = firing;
      g.log_resolved = resolved;
      g.log_time = now;
    }
    for (const auto& fp : resolved_now) g.alerts.erase(fp);
  }

  // Ingests queued alerts, flushes due groups, writes the outbox. Returns the next flush time,
  // kNoFlush when no group is waiting.
  TimestampMs Dispatch(TimestampMs now) {
    if (!outbox_) return kNoFlush;
    std::vector<Alert> in;
    {
      std::lock_guard lock(in_mu_);
      in.swap(input_);
    }
    std::vector<OutboxEntry> entries;
    bool have_am = !cfg_.alertmanagers.empty();
    for (auto& a : in) {
      SortLabels(a.labels);
      SortLabels(a.annotations);
      if (have_am) am_pending_.push_back(a);
      if (route_index_.empty()) continue;
      std::string fp = AlertFingerprint(a.labels);
      known_[fp] = a;
      std::vector<const RouteNode*> routes;
      MatchRoutes(route_, a.labels, routes);
      for (const auto* r : routes) {
        Labels gl;
        if (r->cfg.group_by_all) {
          gl = a.labels;
        } else {
          for (const auto& name : r->cfg.group_by)
            if (auto v = LabelValue(a.labels, name); !v.empty()) gl.emplace_back(name, std::string(v));
          SortLabels(gl);
        }
        std::string gkey = r->key + ":" + LabelSetString(gl);
        auto [it, created] = groups_.try_emplace(gkey + '\x00' + r->cfg.receiver);
        Group& g = it->second;
        if (created) {
          g.group_key = gkey;
          g.route_key = r->key;
          g.receiver = r->cfg.receiver;
          g.labels = gl;
          g.next_flush = now + r->cfg.group_wait.count();
        }
        if (!g.flushed && a.starts_at + r->cfg.group_wait.count() < now) g.next_flush = now;
        auto old = g.alerts.find(fp);
        Alert merged = a;
        if (old != g.alerts.end() && old->second.ends_at > now)
          merged.starts_at = std::min(old->second.starts_at, a.starts_at);
        g.alerts[fp] = std::move(merged);
      }
    }
    while (!am_pending_.empty()) {
      std::size_t n = std::min(kAlertmanagerBatch, am_pending_.size());
      std::vector<Alert> batch(am_pending_.begin(), am_pending_.begin() + static_cast<std::ptrdiff_t>(n));
      am_pending_.erase(am_pending_.begin(), am_pending_.begin() + static_cast<std::ptrdiff_t>(n));
      std::string body = AlertmanagerBody(batch);
      for (const auto& [id, s] : sinks_) {
        if (s->webhook) continue;
        OutboxEntry e;
        e.sink = id;
        e.body = body;
        e.alerts = static_cast<int>(n);
        entries.push_back(std::move(e));
      }
    }
    TimestampMs next = kNoFlush;
    for (auto it = groups_.begin(); it != groups_.end();) {
      Group& g = it->second;
      if (g.next_flush <= now) {
        const RouteNode& r = *route_index_.at(g.route_key);
        g.flushed = true;
        g.next_flush = now + r.cfg.group_interval.count();
        Flush(g, r, now, entries);
        if (g.alerts.empty()) {
          it = groups_.erase(it);
          continue;
        }
      }
      next = std::min(next, g.next_flush);
      ++it;
    }
    for (auto it = known_.begin(); it != known_.end();)
      it = it->second.ends_at <= now ? known_.erase(it) : std::next(it);
    Enqueue(entries, now);
    return next;
  }

  HttpRequest BuildRequest(const Sink& s, const OutboxEntry& e, std::string& error) {
    HttpRequest req;
    req.url = s.url;
    req.body = e.body;
    req.http = &s.http;
    req.headers = {
        {"Content-Type", "application/json"}, {"User-Agent", opts_.user_agent}, {"Idempotency-Key", e.key}};
    std::string secret;
    if (!s.http.bearer_token_file.empty() && ReadSecret(s.http.bearer_token_file, secret, error))
      req.headers.emplace_back("Authorization", "Bearer " + secret);
    if (!s.http.basic_auth_username.empty()) {
      std::string password;
      if (s.http.basic_auth_password_file.empty() ||
          ReadSecret(s.http.basic_auth_password_file, password, error))
        req.headers.emplace_back("Authorization",
                                 "Basic " + Base64(s.http.basic_auth_username + ":" + password));
    }
    for (const auto& [n, v] : s.http.headers) req.headers.emplace_back(n, v);
    if (!s.http.hmac_secret_file.empty() && ReadSecret(s.http.hmac_secret_file, secret, error)) {
      long long ts = opts_.clock->NowMs() / 1000;
      req.headers.emplace_back("X-Runbook-Timestamp", std::to_string(ts));
      req.headers.emplace_back("X-Runbook-Signature", SignatureHeader(secret, ts, e.body));
    }
    return req;
  }

  // One delivery attempt for the first due sink. Returns false when none is due.
  bool DeliverOne() {
    std::unique_lock lock(mu_);
    if (!outbox_ || stopping_) return false;
    TimestampMs now = opts_.clock->NowMs();
    Sink* sink = nullptr;
    for (auto& [id, s] : sinks_) {
      if (s->in_flight || s->queue.empty() || s->next_attempt > now || s->breaker_until > now) continue;
      if (!sink || s->next_attempt < sink->next_attempt) sink = s.get();
    }
    if (!sink) return false;
    const OutboxEntry* entry = outbox_->Find(sink->queue.front());
    if (!entry) {
      sink->queue.pop_front();
      return true;
    }
    OutboxEntry e = *entry;
    std::string error;
    HttpRequest req = BuildRequest(*sink, e, error);
    std::string sink_id = sink->id;
    sink->in_flight = true;
    lock.unlock();
    HttpResponse resp;
    auto t0 = std::chrono::steady_clock::now();
    if (error.empty()) {
      resp = opts_.http->Post(req);
    } else {
      resp.error = error;
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    lock.lock();
    now = opts_.clock->NowMs();
    auto it = sinks_.find(sink_id);
    if (it == sinks_.end()) return true;
    Sink& s = *it->second;
    s.in_flight = false;
    if (s.queue.empty() || s.queue.front() != e.id) return true;  // dropped meanwhile
    s.latencies.push_back(seconds);
    if (s.latencies.size() > kLatencyWindow) s.latencies.pop_front();
    s.latency_sum += seconds;
    s.latency_count++;
    auto finish = [&] {
      outbox_->Remove({e.id});
      wake_.notify_all();
      s.queue.pop_front();
      s.attempts = 0;
      s.next_attempt = now;
    };
    if (resp.status >= 200 && resp.status < 300) {
      s.sent += e.alerts;
      s.consecutive_failures = 0;
      if (s.breaker_until) spdlog::info("notifier: {} recovered; circuit breaker closed", s.id);
      s.breaker_until = 0;
      finish();
    } else if (resp.status != 0 && resp.status != 429 && resp.status < 500) {
      s.errors += e.alerts;
      s.dropped += e.alerts;
      s.consecutive_failures = 0;
      spdlog::error("notifier: {} rejected notification {} with HTTP {} (not retried): {}", s.id, e.key,
                    resp.status, resp.body.substr(0, 512));
      finish();
    } else {
      s.errors += e.alerts;
      s.attempts++;
      s.consecutive_failures++;
      std::string what = resp.status ? "HTTP " + std::to_string(resp.status) : resp.error;
      if (now - e.created >= cfg_.retry.give_up_after.count()) {
        s.dropped += e.alerts;
        spdlog::error("notifier: {}: giving up notification {} after {} attempts: {}", s.id, e.key,
                      s.attempts, what);
        finish();
        return true;
      }
      long long base = cfg_.retry.initial_backoff.count();
      for (int i = 1; i < s.attempts && base < cfg_.retry.max_backoff.count(); ++i) base *= 2;
      base = std::min(base, static_cast<long long>(cfg_.retry.max_backoff.count()));
      long long delay =
          base / 2 + static_cast<long long>(rng_() % static_cast<unsigned long long>(base / 2 + 1));
      if (resp.retry_after) delay = std::max(delay, std::min<long long>(resp.retry_after->count(), 3600000));
      s.next_attempt = now + delay;
      if (s.attempts == 1 || s.attempts % 10 == 0)
        spdlog::warn("notifier: {}: delivery of {} failed ({}), attempt {}, retrying in {} ms", s.id, e.key,
                     what, s.attempts, delay);
      if (s.consecutive_failures >= cfg_.retry.breaker_failures && s.breaker_until <= now) {
        s.breaker_until = now + cfg_.retry.breaker_open_for.count();
        s.next_attempt = std::max(s.next_attempt, s.breaker_until);
        spdlog::warn("notifier: {}: {} consecutive failures; circuit breaker open for {} ms", s.id,
                     s.consecutive_failures, cfg_.retry.breaker_open_for.count());
      }
    }
    return true;
  }

  void DispatchLoop() {
    std::unique_lock lock(mu_);
    auto last_sync = std::chrono::steady_clock::now();
    auto input_waiting = [this] {
      std::lock_guard in_lock(in_mu_);
      return !input_.empty();
    };
    while (!stopping_) {
      TimestampMs now = opts_.clock->NowMs();
      TimestampMs next = Dispatch(now);
      // Removals are written unsynced; they are fsynced at most a second later.
      if (outbox_ && outbox_->dirty()) {
        auto since = std::chrono::steady_clock::now() - last_sync;
        if (since >= std::chrono::seconds(1)) {
          outbox_->Sync();
          last_sync = std::chrono::steady_clock::now();
        } else {
          next = std::min<TimestampMs>(
              next, now + 1 + std::chrono::duration_cast<Millis>(std::chrono::seconds(1) - since).count());
        }
      }
      if (std::any_of(sinks_.begin(), sinks_.end(), [](const auto& s) { return !s.second->queue.empty(); }))
        deliver_.notify_all();
      // Idle (no group waiting, nothing to sync): sleep until alerts arrive, a reload or a delivery
      // that leaves the outbox to sync; a 1 s tick cost an idle exporter a wake-up every second.
      if (next == kNoFlush) {
        wake_.wait(lock, [&] { return stopping_ || input_waiting() || (outbox_ && outbox_->dirty()); });
        continue;
      }
      wake_.wait_for(lock, Millis(std::clamp<TimestampMs>(next - now, 1, 1000)),
                     [&] { return stopping_ || input_waiting(); });
    }
  }

  void DeliveryLoop() {
    while (true) {
      if (DeliverOne()) continue;
      std::unique_lock lock(mu_);
      if (stopping_) return;
      TimestampMs now = opts_.clock->NowMs(), next = now + 1000;
      bool queued = false;
      for (const auto& [id, s] : sinks_)
        if (!s->queue.empty() && !s->in_flight) {
          queued = true;
          next = std::min(next, std::max(s->next_attempt, s->breaker_until));
        }
      // Idle delivery threads sleep until the dispatcher queues something: a timed wait here
      // woke every thread every second for nothing.
      if (!queued) {
        deliver_.wait(lock);
        continue;
      }
      deliver_.wait_for(lock, Millis(std::clamp<TimestampMs>(next - now, 1, 1000)));
    }
  }

  NotifierOptions opts_;
  mutable std::mutex mu_;
  std::mutex in_mu_;
  std::condition_variable_any wake_;
  std::condition_variable deliver_;
  std::vector<Alert> input_;  // in_mu_
  bool stopping_ = false;
  NotifierConfig cfg_;
  std::unique_ptr<Outbox> outbox_;
  std::map<std::string, std::unique_ptr<Sink>> sinks_;
  RouteNode route_;
  std::map<std::string, const RouteNode*> route_index_;
  std::map<std::string, Group> groups_;
  std::map<std::string, Alert> known_;  // every alert seen, by fingerprint, for inhibition
  std::vector<CompiledInhibit> inhibits_;
  std::vector<Alert> am_pending_;
  std::mt19937_64 rng_;
  std::vector<std::thread> threads_;
};

}  // namespace

}  // namespace runbook::notify

namespace runbook {

std::unique_ptr<Notifier> MakeNotifier(NotifierOptions options) {
  return std::make_unique<notify::NotifierImpl>(std::move(options));
}

}  // namespace runbook
