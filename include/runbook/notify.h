#pragma once
// Alert delivery: what happens to the alerts the rule engine hands to a NotifyFunc.
//
// Two kinds of sinks, both fed by one Notifier:
//  - Alertmanagers (API v2): every alert is POSTed to /api/v2/alerts of every configured
//    Alertmanager in batches of at most 64, as Prometheus' notifier does. Resending firing alerts
//    every resend delay and computing endsAt is the rule engine's job (alert.h); ValidUntil()
//    below is the formula.
//  - Webhook receivers: the Notifier acts as a small Alertmanager — routes alerts to receivers
//    by label matchers, groups them (group_by, group_wait, group_interval, repeat_interval),
//    applies inhibit rules and POSTs Alertmanager's webhook payload version 4.
//
// Every notification (one HTTP request body) is written to a durable outbox (fsync, batched)
// before it is sent and removed once a 2xx answer acknowledges it; on start the outbox is
// replayed, so nothing is lost across kill -9, receiver outages or restarts. Each sink delivers
// its notifications in order; 429, 5xx and network errors are retried with bounded exponential
// backoff and jitter (at least Retry-After); other 4xx fail permanently; repeated failures open
// a per-sink circuit breaker. Every request carries an Idempotency-Key header that stays the
// same across retries and restarts, and, when a secret is configured, an HMAC-SHA256 signature:
//   X-Runbook-Timestamp: <unix seconds at send time>
//   X-Runbook-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
// A receiver recomputes the HMAC over the timestamp header, a '.', and the raw body, compares it
// in constant time, and rejects timestamps too far from its own clock (replay protection).
//
// Thread-safety: every Notifier method may be called from any thread. Notify() only queues and
// returns at once. HttpClient implementations must be safe for concurrent Post() calls.

#include <prometheus/metric_family.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runbook/alert.h"
#include "runbook/clock.h"
#include "runbook/labels.h"

namespace runbook {

// ---- configuration (parsed by exporter/config.cpp, section `alerting:`) ----------------------

struct NotifyHttpConfig {
  std::chrono::milliseconds timeout{10000};
  std::string bearer_token_file;  // read at every request
  std::string basic_auth_username;
  std::string basic_auth_password_file;  // read at every request
  Labels headers;                        // extra request headers
  std::string ca_file;                   // TLS: custom CA bundle
  std::string cert_file, key_file;       // TLS client certificate
  bool insecure_skip_verify = false;
  std::string proxy_url;
  std::string hmac_secret_file;  // signs requests when set; read at every request

  bool operator==(const NotifyHttpConfig&) const = default;
};

// An Alertmanager matcher: name = "v", != , =~ (RE2, fully anchored), !~.
struct LabelMatcher {
  enum class Op { kEq, kNe, kRe, kNre };
  std::string name;
  Op op = Op::kEq;
  std::string value;

  // Alertmanager's spelling, e.g. alertname=~".+" (used in group keys).
  std::string String() const;
  bool operator==(const LabelMatcher&) const = default;
};
// Parses `name="value"`, `name!=value`, `name=~"re"`, `name!~re`. nullopt and `error` on failure.
std::optional<LabelMatcher> ParseLabelMatcher(std::string_view text, std::string& error);

struct AlertmanagerTarget {
  std::string name;  // for the metrics label and /api/v1/notify/test; defaults to the URL
  std::string url;   // base URL, e.g. http://127.0.0.1:9093; alerts go to <url>/api/v2/alerts
  NotifyHttpConfig http;
  bool operator==(const AlertmanagerTarget&) const = default;
};

struct WebhookReceiver {
  std::string name;
  std::string url;
  NotifyHttpConfig http;
  bool send_resolved = true;
  int max_alerts = 0;  // 0 = all
  bool operator==(const WebhookReceiver&) const = default;
};

struct NotifyRoute {
  std::string receiver;  // inherited from the parent route when empty
  std::vector<LabelMatcher> matchers;
  std::vector<std::string> group_by;
  bool group_by_all = false;  // group_by: ['...']
  std::chrono::milliseconds group_wait{30000}, group_interval{300000}, repeat_interval{4 * 3600000};
  bool continue_matching = false;  // `continue: true`
  std::vector<NotifyRoute> routes;
  bool operator==(const NotifyRoute&) const = default;
};

struct InhibitRule {
  std::vector<LabelMatcher> source_matchers, target_matchers;
  std::vector<std::string> equal;
  bool operator==(const InhibitRule&) const = default;
};

struct NotifyRetryConfig {
  std::chrono::milliseconds initial_backoff{1000}, max_backoff{60000};
  std::chrono::milliseconds give_up_after{24 * 3600000};  // counted as dropped
  int breaker_failures = 5;                               // consecutive failures that open it
  std::chrono::milliseconds breaker_open_for{30000};
  bool operator==(const NotifyRetryConfig&) const = default;
};

struct NotifierConfig {
  std::vector<AlertmanagerTarget> alertmanagers;
  std::vector<WebhookReceiver> receivers;
  NotifyRoute route;  // root route; meaningful when receivers is non-empty
  std::vector<InhibitRule> inhibit_rules;
  std::string external_url;             // webhook "externalURL"; empty: http://<hostname>:<port>
  std::string outbox_dir;               // empty: the outbox lives in memory only (not durable)
  std::size_t outbox_capacity = 10000;  // notifications; beyond it the oldest are dropped
  bool outbox_fsync = true;
  std::chrono::milliseconds resend_delay{60000};  // for the rule engine (Prometheus' default)
  NotifyRetryConfig retry;

  bool enabled() const { return !alertmanagers.empty() || !receivers.empty(); }
  bool operator==(const NotifierConfig&) const = default;
};

// Prometheus' validUntil: endsAt of a firing alert sent at `now`.
inline TimestampMs ValidUntil(TimestampMs now, std::chrono::milliseconds resend_delay,
                              std::chrono::milliseconds eval_interval) {
  return now + 4 * std::max(resend_delay, eval_interval).count();
}

// Alertmanager's fingerprint of a label set (FNV-1a 64 over sorted pairs), as 16 hex digits.
std::string AlertFingerprint(const Labels& labels);

// ---- HTTP seam --------------------------------------------------------------------------------

struct HttpRequest {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  const NotifyHttpConfig* http = nullptr;  // TLS, proxy, timeout
};

struct HttpResponse {
  int status = 0;     // 0: no HTTP answer (connect failure, timeout, TLS error)
  std::string error;  // for status 0
  std::string body;
  std::optional<std::chrono::milliseconds> retry_after;  // parsed Retry-After (seconds or HTTP date)
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  virtual HttpResponse Post(const HttpRequest& request) = 0;
};

// libcurl; keeps connections alive per thread.
std::shared_ptr<HttpClient> MakeCurlHttpClient();

// ---- the Notifier ---------------------------------------------------------------------------

struct NotifierOptions {
  const Clock* clock = &SystemClock();
  std::shared_ptr<HttpClient> http;  // default: MakeCurlHttpClient()
  bool start_threads = true;         // false: the caller drives Poll() (tests with a fake clock)
  int delivery_threads = 4;
  std::uint64_t seed = 0;  // jitter; 0: random
  std::string user_agent = "runbook_exporter";
};

struct NotifyTestResult {
  bool ok = false;
  std::string error;            // unknown receiver, outbox failure
  std::string idempotency_key;  // of the queued test notification
};

class Notifier {
 public:
  virtual ~Notifier() = default;

  // Replaces the configuration. Groups, queued notifications and sink state survive for sinks
  // that keep their name. Returns errors (e.g. the outbox directory cannot be opened); on error
  // the previous configuration stays.
  virtual std::vector<std::string> Apply(const NotifierConfig& config) = 0;

  // The NotifyFunc body: queues the alerts (sorted labels expected), never blocks on the network.
  virtual void Notify(const std::vector<Alert>& alerts) = 0;
  NotifyFunc AsNotifyFunc() {
    return [this](const std::vector<Alert>& alerts) { Notify(alerts); };
  }

  // Queues a test notification for one receiver or alertmanager (by name). With `resolved` the
  // test alert is sent resolved (endsAt = now).
  virtual NotifyTestResult SendTest(const std::string& name, bool resolved = false) = 0;

  // prometheus_notifications_* families (sent, errors, dropped, queue length/capacity, latency).
  virtual std::vector<prometheus::MetricFamily> Metrics() const = 0;

  // Runs everything due at the clock's now: group flushes, outbox writes, deliveries (one
  // attempt per due sink). For start_threads=false; returns the number of HTTP attempts made.
  virtual int Poll() = 0;

  // Notifications waiting in the outbox (all sinks).
  virtual std::size_t QueueLength() const = 0;

  // Stops the threads; queued notifications stay in the outbox for the next start.
  virtual void Stop() = 0;
};

std::unique_ptr<Notifier> MakeNotifier(NotifierOptions options = {});

}  // namespace runbook
