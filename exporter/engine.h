#pragma once
// Engine: the embedded rule engine wired into the exporter. Every collection of every target is
// ingested into a SeriesStore (only while rule files are configured); a thread evaluates the rule
// groups when due; alerts leave through the NotifyFunc; /metrics gets ALERTS, ALERTS_FOR_STATE,
// Prometheus' rule-group metrics and the store's size; /api/v1/{rules,alerts,query} and the rules
// page read the current state.
//
// Thread-safety: every method may be called from any thread. OnCollected is called on the
// collection workers and only takes the store's lock; Apply is serialised by the caller (App's
// reload lock).

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config.h"
#include "runbook/alert.h"
#include "runbook/clock.h"
#include "runbook/rules.h"
#include "runbook/series_store.h"
#include "target_runtime.h"

namespace runbook {

// Loads and validates every rule file of `cfg`. Errors are "file: message" lines as promtool
// prints them; on any error `groups` is left unspecified.
std::vector<std::string> LoadRuleFiles(const RulesConfig& cfg, std::vector<rules::GroupDef>& groups);

// http://<host>:<port> of a listen address, with this machine's host name when it listens on all
// interfaces.
std::string DefaultExternalUrl(const std::string& listen_address);

class Engine {
 public:
  explicit Engine(const Clock& clock = SystemClock());
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Installs the rules section and its loaded groups and the current target names (series of
  // removed targets go stale). Unchanged rules keep their alert state (pending `for` progress,
  // firing and resolved alerts) whatever else changed: external labels, URL, intervals, resend
  // delay, state file. The state file is read only at the first Apply.
  // `external_url` is the exporter's URL for templates' $externalURL and alerts' generatorURL;
  // `resend_delay_ms` how often firing alerts are sent again.
  void Apply(const RulesConfig& cfg, std::vector<rules::GroupDef> groups,
             const std::vector<std::string>& targets, const std::string& external_url,
             TimestampMs resend_delay_ms);
  // Where alerts go (delivery); may be set or replaced at any time.
  void SetNotify(NotifyFunc notify);

  void OnCollected(const TargetRuntime& target);

  // Families for /metrics (sorted by name), already rendered.
  std::vector<RenderedFamily> RenderMetrics() const;
  std::string RulesJson() const;   // GET /api/v1/rules
  std::string AlertsJson() const;  // GET /api/v1/alerts
  // GET /api/v1/query: `time` in Unix seconds (empty: now). *status gets the HTTP status.
  std::string QueryJson(std::string_view query, std::string_view time, int* status) const;
  std::string RulesPage() const;                       // HTML: groups, rules, alerts
  std::string GraphPage(std::string_view expr) const;  // HTML: one instant query (generatorURL)
  bool active() const;                                 // rule files are configured

 private:
  void Loop();

  const Clock& clock_;
  SeriesStore store_;

  mutable std::mutex targets_mu_;  // held while ingesting, so a removed target cannot come back
  bool active_ = false;
  std::set<std::string> targets_;

  std::mutex notify_mu_;
  NotifyFunc notify_;

  mutable std::mutex mu_;  // guards the rest
  std::condition_variable cv_;
  bool stopping_ = false;
  std::uint64_t generation_ = 0;  // bumped by Apply to wake the evaluation loop
  std::shared_ptr<rules::RuleManager> manager_;
  std::thread thread_;  // last: starts after every member above exists
};

}  // namespace runbook
