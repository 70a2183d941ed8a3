#pragma once
// Scheduler: collects every target on its own interval with a fixed pool of worker threads (not
// a thread per target). Collections are single-flight per target; a slow or frozen server only
// delays its own target, because every collection ends at the target's deadline.
// There is no timer thread: one idle worker waits for the next due time and runs that collection
// itself (one wake-up per collection); the other idle workers sleep until they are needed.
//
// Thread-safety: all public methods may be called from any thread.

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "target_runtime.h"

namespace runbook {

class Scheduler {
 public:
  Scheduler(int workers, ConnectionFactory factory = MakeConnection,
            const std::vector<CollectorInfo>& registry = RegisteredCollectors());
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Called on the worker thread after each collection of a target that is still configured
  // (e.g. to feed the rule engine's series store). Set before the first Apply().
  using CollectedFunc = std::function<void(const TargetRuntime&)>;
  void SetOnCollected(CollectedFunc fn) { on_collected_ = std::move(fn); }

  // Replaces the set of targets. A target whose configuration is unchanged keeps its
  // connection, caches and counters; others are created anew and collected at once.
  void Apply(const std::vector<TargetConfig>& targets);
  // Targets in configuration order.
  std::vector<std::shared_ptr<TargetRuntime>> Targets() const;
  // True once every current target has finished at least one collection.
  bool AllCollectedOnce() const;
  void Stop();

 private:
  struct Entry {
    std::shared_ptr<TargetRuntime> runtime;
    std::chrono::steady_clock::time_point due;
    bool running = false;
    bool collected = false;
  };
  void WorkerLoop();
  // Wakes a worker to watch the clock when none does (after Apply).
  void WakeWatcher();

  ConnectionFactory factory_;
  const std::vector<CollectorInfo>& registry_;
  std::mutex apply_mu_;  // serialises Apply()
  mutable std::mutex mu_;
  // The watcher (at most one idle worker) waits on watch_cv_ until watch_until_, the earliest due
  // time of the targets not being collected; the other idle workers wait on idle_cv_.
  std::condition_variable watch_cv_, idle_cv_;
  bool watching_ = false;
  std::chrono::steady_clock::time_point watch_until_{};
  std::vector<std::string> order_;
  std::map<std::string, Entry> entries_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  CollectedFunc on_collected_;
};

}  // namespace runbook
