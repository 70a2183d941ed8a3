#include "scheduler.h"

namespace runbook {

using SteadyClock = std::chrono::steady_clock;

Scheduler::Scheduler(int workers, ConnectionFactory factory, const std::vector<CollectorInfo>& registry)
    : factory_(std::move(factory)), registry_(registry) {
  threads_.emplace_back([this] { TimerLoop(); });
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
  timer_cv_.notify_all();
  work_cv_.notify_all();
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
  timer_cv_.notify_all();
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

void Scheduler::TimerLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto now = SteadyClock::now();
    auto next_wake = now + std::chrono::hours(1);
    for (auto& [name, e] : entries_) {
      if (!e.running && e.due > now) {
        next_wake = std::min(next_wake, e.due);
        continue;
      }
      if (!e.running) {
        e.running = true;
        queue_.push_back(e.runtime);
        work_cv_.notify_one();
      }
      // Plan for the due time that follows a collection finishing in time, so the worker need
      // not wake this thread when it finishes (after an overrun it does: WorkerLoop).
      const auto following = e.due + e.runtime->config().interval;
      if (following > now) next_wake = std::min(next_wake, following);
    }
    timer_wake_ = next_wake;
    timer_cv_.wait_until(lock, next_wake);
  }
}

void Scheduler::WorkerLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    auto runtime = std::move(queue_.front());
    queue_.pop_front();
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
    auto now = SteadyClock::now();
    if (e.due <= now) e.due = now + interval;
    if (e.due < timer_wake_) timer_cv_.notify_all();
  }
}

}  // namespace runbook
