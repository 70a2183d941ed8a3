#pragma once
// TargetRuntime: the state of one configured target — its persistent connection, its collector
// instances, the slow-tier cache, reconnect backoff — and the latest published snapshot.
//
// Thread-safety: Collect() is called by one worker at a time (the scheduler is single-flight
// per target). Snapshot() may be called from any thread at any time and never waits on a
// collection: it returns the last published snapshot (an immutable shared_ptr).

#include <prometheus/metric_family.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config.h"
#include "runbook/collector.h"

namespace runbook {

// Opens and holds the connection of one target and binds it to a ScrapeContext.
class TargetConnection {
 public:
  virtual ~TargetConnection() = default;
  virtual Status Connect(Deadline deadline) = 0;  // no-op when connected
  virtual bool connected() const = 0;
  virtual void Disconnect() = 0;
  virtual void Bind(ScrapeContext& ctx) = 0;
};
using ConnectionFactory = std::function<std::unique_ptr<TargetConnection>(const TargetConfig&)>;
std::unique_ptr<TargetConnection> MakeConnection(const TargetConfig& cfg);

// One family of one target, already in text exposition form: `header` holds the HELP and TYPE
// lines, `body` the samples, so /metrics only concatenates.
struct RenderedFamily {
  std::string name;
  std::string header;
  std::string body;
};

struct CollectorReport {
  std::string name;
  bool success = false;
  bool ran = false;       // ran in the latest collection (false: slow tier served from cache)
  double duration_s = 0;  // of its latest run
  std::string error;
};

// The vectors of a snapshot are reused: once the last reader of a snapshot lets it go, its
// `families` and rendered text return to the target, whose next collection overwrites them in
// place (their strings and vectors keep their capacity), so publishing allocates nothing in the
// steady state and dropping an old snapshot frees nothing.
struct TargetSnapshot {
  std::vector<SampleFamily> families;  // samples + self-metrics, sorted by name
  bool up = false;
  Status status;  // why the target is down (or ok)
  std::chrono::system_clock::time_point collected_at{};
  std::chrono::system_clock::time_point last_success{};  // epoch when never
  double duration_s = 0;
  std::vector<CollectorReport> collectors;
  std::vector<std::string> data_errors;  // samples dropped or values unparsable, latest collection

  // `families` as text. Rendered once, by the first reader that asks (any thread; concurrent
  // readers wait for it): a snapshot that nobody scrapes before the next collection replaces it
  // is never rendered.
  const std::vector<RenderedFamily>& Rendered() const;

 private:
  friend class TargetRuntime;
  mutable std::once_flag rendered_once_;
  mutable std::vector<RenderedFamily> rendered_;  // only through Rendered()
};

class TargetRuntime {
 public:
  // `registry` lists the collectors to choose from (tests pass their own).
  TargetRuntime(TargetConfig cfg, const ConnectionFactory& factory,
                const std::vector<CollectorInfo>& registry = RegisteredCollectors());

  // One collection, bounded by cfg.timeout. Publishes a new snapshot.
  void Collect();
  std::shared_ptr<const TargetSnapshot> Snapshot() const;
  const TargetConfig& config() const { return cfg_; }

 private:
  struct CollectorSlot {
    const CollectorInfo* info;
    std::unique_ptr<Collector> collector;
    MetricSink sink;  // kept: the families' definitions and buffers; slow tier: the cached output
    std::chrono::steady_clock::time_point last_run{};
    bool tried = false;  // ran since the target last failed (last_run is meaningful)
    bool cache_valid = false;
    bool due = false;  // runs in the current collection
    CollectorReport report;
  };
  // Buffers of snapshots no reader holds any more (shared with the snapshots' deleters, which may
  // run on any thread and after the runtime is gone).
  struct Recycled {
    std::mutex mu;
    std::vector<std::pair<std::vector<SampleFamily>, std::vector<RenderedFamily>>> free;
  };

  std::shared_ptr<TargetSnapshot> NewSnapshot();
  void Publish(std::shared_ptr<TargetSnapshot> snap);
  void AddSelfMetrics(MetricSink& sink, const TargetSnapshot& snap) const;
  void MergeRun(const std::vector<const SampleFamily*>& run);

  TargetConfig cfg_;
  std::unique_ptr<TargetConnection> conn_;
  std::vector<CollectorSlot> slots_;
  std::map<std::string, double, std::less<>> shared_;  // ScrapeContext::shared; cleared with the caches
  Labels const_labels_;
  Deadline next_connect_{};
  int connect_failures_ = 0;
  Status last_status_;  // to log state changes once, not every cycle
  bool first_ = true;
  double collections_total_ = 0;
  double connect_attempts_total_ = 0;
  std::map<ErrorReason, double> failures_total_;
  double data_errors_total_ = 0;
  std::chrono::system_clock::time_point last_success_{};
  MetricSink self_sink_;
  // The families of one collection, ordered for merging: each collector's families (sorted by
  // name) are merged in as a run, stably, so no sort is needed (MergeRun).
  std::vector<const SampleFamily*> merge_, merge_scratch_;
  std::shared_ptr<Recycled> recycled_ = std::make_shared<Recycled>();

  mutable std::mutex mu_;
  std::shared_ptr<const TargetSnapshot> snapshot_;
};

// Renders families to text, family by family (for RenderedFamily); see exposition.h. Families of
// one name that follow each other (MergeFamilies) become one RenderedFamily.
std::vector<RenderedFamily> RenderFamilies(const std::vector<prometheus::MetricFamily>& families);
std::vector<RenderedFamily> RenderFamilies(const std::vector<SampleFamily>& families);
// The same into `out`, overwriting its elements in place (their strings keep their capacity).
void RenderFamiliesInto(const std::vector<SampleFamily>& families, std::vector<RenderedFamily>& out);

}  // namespace runbook
