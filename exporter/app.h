#pragma once
// App: the running exporter — current configuration, scheduler, reload state — and what the
// HTTP endpoints serve. Thread-safety: every method may be called from any thread; Reload() calls
// are serialised, and readers never wait on a collection.

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "config.h"
#include "engine.h"
#include "go_text.h"
#include "runbook/notify.h"
#include "scheduler.h"

namespace runbook {

struct ReloadResult {
  bool ok = false;
  std::vector<std::string> errors;
};

class App {
 public:
  // `config_path` empty means the embedded default. `groups` are the rule groups loaded from
  // initial.rules.files (LoadRuleFiles). `listen_address` is where the HTTP server listens
  // (empty: initial.listen_address); alerts' generatorURL points there by default.
  App(std::string config_path, Config initial, std::vector<rules::GroupDef> groups = {},
      std::string listen_address = "", ConnectionFactory factory = MakeConnection);
  ~App();

  // Re-reads the configuration file and its rule files. On error the running configuration
  // and rules stay in place and runbook_exporter_config_last_reload_successful becomes 0.
  ReloadResult Reload();

  std::string RenderMetrics() const;  // Prometheus text format 0.0.4
  // One target's latest collection (Prometheus' multi-target pattern). Never collects on
  // demand: the target is collected on its own schedule, so a probe costs the server nothing and
  // two Prometheus servers probing the same target do not double its load. std::nullopt when no
  // target has that name.
  std::optional<std::string> RenderProbe(std::string_view target) const;
  std::string RenderLandingPage() const;
  bool Ready() const { return scheduler_.AllCollectedOnce(); }
  std::shared_ptr<const Config> config() const;
  Scheduler& scheduler() { return scheduler_; }
  Engine& engine() { return engine_; }
  const Engine& engine() const { return engine_; }

  // Alert delivery. AttachNotifier applies the current `alerting:` section (errors are returned
  // and the notifier keeps running with its previous configuration); later reloads re-apply it.
  // `default_external_url` fills alerting.external_url when the config leaves it empty.
  std::vector<std::string> AttachNotifier(std::shared_ptr<Notifier> notifier,
                                          std::string default_external_url);
  // The seam for the rule engine: alerts handed to it are delivered by the attached notifier
  // (dropped while none is attached). Safe to call from any thread.
  NotifyFunc notify_func();
  NotifyTestResult SendTestNotification(const std::string& name, bool resolved);

 private:
  std::string config_path_;
  mutable std::mutex mu_;
  std::mutex reload_mu_;
  std::shared_ptr<const Config> config_;
  bool last_reload_ok_ = true;
  double last_reload_success_time_ = 0;
  std::vector<std::string> last_reload_errors_;
  std::string listen_address_;
  std::string default_external_url_;    // mu_
  std::shared_ptr<Notifier> notifier_;  // mu_
  Engine engine_;  // before the scheduler: collections feed it until the scheduler has stopped
  Scheduler scheduler_;
  std::shared_ptr<Notifier> Notifier_() const;
  void ApplyEngine(const Config& cfg, std::vector<rules::GroupDef> groups, const std::string& default_url);
  static NotifierConfig WithDefaults(NotifierConfig c, const std::string& default_external_url);
};

// Concatenates pre-rendered families of many sources, one HELP/TYPE header per family name.
std::string ConcatenateRendered(const std::vector<const std::vector<RenderedFamily>*>& sources);

// gzip-compresses `in` (RFC 1952).
std::string Gzip(const std::string& in);

}  // namespace runbook
