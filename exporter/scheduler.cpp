#include "scheduler.h"

namespace runbook {

using SteadyClock = std::chrono::steady_clock;

Scheduler::Scheduler(int workers, ConnectionFactory factory, const std::vector<CollectorInfo>& registry)
    : factory_(std::move(factory)), registry_(registry) {
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { WorkerLoop(); });
}

Scheduler::~Scheduler() {
  Stop();
}

void Scheduler::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  watch_cv_.notify_all();
  idle_cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Scheduler::Apply(const std::vector<TargetConfig>& targets) {
  std::lock_guard apply_lock(apply_mu_);
  // Which targets need a new runtime is decided under the lock; building runtimes (collector
  // factories) happens outside it; the swap takes the entries as they are at that moment, so a
  // collection that finished meanwhile keeps its schedule.
  std::vector<const TargetConfig*> to_build;
  {
    std::lock_guard lock(mu_);
    for (const auto& cfg : targets) {
      auto it = entries_.find(cfg.name);
      if (it == entries_.end() || !(it->second.runtime->config() == cfg)) to_build.push_back(&cfg);
    }
  }
  std::map<std::string, std::shared_ptr<TargetRuntime>> built;
  for (const auto* cfg : to_build)
    built[cfg->name] = std::make_shared<TargetRuntime>(*cfg, factory_, registry_);

  std::lock_guard lock(mu_);
  std::map<std::string, Entry> next;
  std::vector<std::string> order;
  for (const auto& cfg : targets) {
    order.push_back(cfg.name);
    if (auto b = built.find(cfg.name); b != built.end()) {
      next.emplace(cfg.name, Entry{b->second, SteadyClock::now(), false, false});
    } else {
      next.emplace(cfg.name, std::move(entries_.at(cfg.name)));
    }
  }
  // A removed or replaced target that is being collected finishes on its worker; its result
  // is dropped with the last reference.
  entries_ = std::move(next);
  order_ = std::move(order);
  WakeWatcher();
}

void Scheduler::WakeWatcher() {
  if (watching_)
    watch_cv_.notify_one();
  else
    idle_cv_.notify_one();
}

std::vector<std::shared_ptr<TargetRuntime>> Scheduler::Targets() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<TargetRuntime>> out;
  for (const auto& name : order_) out.push_back(entries_.at(name).runtime);
  return out;
}

bool Scheduler::AllCollectedOnce() const {
  std::lock_guard lock(mu_);
  for (const auto& [name, e] : entries_)
    if (!e.collected) return false;
  return true;
}

void Scheduler::WorkerLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    // The target not being collected that is due first (earliest due time).
    Entry* next = nullptr;
    bool others = false;  // more targets not being collected, for the next watcher
    for (auto& [name, e] : entries_) {
      if (e.running) continue;
      if (next) others = true;
      if (!next || e.due < next->due) next = &e;
    }
    const auto now = SteadyClock::now();
    if (!next || next->due > now) {
      if (watching_) {
        idle_cv_.wait(lock);
        continue;
      }
      watching_ = true;
      watch_until_ = next ? next->due : SteadyClock::time_point::max();
      if (next)
        watch_cv_.wait_until(lock, watch_until_);
      else
        watch_cv_.wait(lock);
      watching_ = false;
      continue;
    }
    next->running = true;
    auto runtime = next->runtime;
    // The other targets need a watcher while this worker collects.
    if (others && !watching_) idle_cv_.notify_one();
    lock.unlock();
    runtime->Collect();
    if (on_collected_) on_collected_(*runtime);
    lock.lock();
    auto it = entries_.find(runtime->config().name);
    if (it == entries_.end() || it->second.runtime != runtime) continue;  // removed by a reload
    auto& e = it->second;
    e.running = false;
    e.collected = true;
    const auto interval = runtime->config().interval;
    // Keep the schedule drift-free; after an overrun (collection longer than the interval),
    // start again from now rather than firing a burst of catch-up collections.
    e.due += interval;
    const auto end = SteadyClock::now();
    if (e.due <= end) e.due = end + interval;
    // Without a watcher this worker becomes it; a watcher planning to wake later must re-plan.
    if (watching_ && e.due < watch_until_) watch_cv_.notify_one();
  }
}

}  // namespace runbook
