#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <functional>

#include "runbook/rules.h"

namespace runbook::rules {

namespace {

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

// Prometheus spreads groups over their interval by a hash of the group's name and file.
TimestampMs SlotOffset(const GroupDef& g, TimestampMs interval) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : g.name + ";" + g.file) h = (h ^ c) * 1099511628211ULL;
  return TimestampMs(h % std::uint64_t(interval));
}

}  // namespace

struct RuleManager::Impl {
  ManagerOptions opts;
  mutable std::mutex mu;
  struct Entry {
    std::unique_ptr<RuleGroup> group;
    TimestampMs next_eval = 0;
    bool needs_restore = false;
  };
  std::vector<Entry> groups;
  bool loaded_state = false;
  RuleGroup::SavedState saved;
  TimestampMs saved_at = kNoTime;

  TimestampMs FirstSlot(const RuleGroup& g, TimestampMs now) const {
    TimestampMs interval = g.interval_ms();
    TimestampMs offset = SlotOffset(g.def(), interval);
    TimestampMs slot = FloorDiv(now - offset, interval) * interval + offset;
    return slot < now ? slot + interval : slot;
  }

  void LoadState() {
    loaded_state = true;
    if (opts.state_file.empty()) return;
    std::ifstream in(opts.state_file);
    if (!in) return;
    try {
      auto j = nlohmann::json::parse(in);
      saved_at = j.at("saved_at").get<TimestampMs>();
      for (const auto& r : j.at("rules")) {
        auto& list = saved[r.at("key").get<std::string>()];
        for (const auto& a : r.at("alerts")) {
          RuleGroup::SavedAlert s;
          for (const auto& l : a.at("labels"))
            s.labels.emplace_back(l.at(0).get<std::string>(), l.at(1).get<std::string>());
          SortLabels(s.labels);
          s.active_at = a.at("active_at").get<TimestampMs>();
          list.push_back(std::move(s));
        }
      }
    } catch (const std::exception&) {
      // A damaged state file only costs the `for` progress; start afresh.
      saved.clear();
      saved_at = kNoTime;
    }
  }

  void SaveState(TimestampMs now) {
    if (opts.state_file.empty()) return;
    RuleGroup::SavedState state;
    for (const auto& e : groups) e.group->SaveState(state);
    // Groups not restored yet keep what the file had for them.
    for (const auto& [key, alerts] : saved) state.emplace(key, alerts);
    nlohmann::json j;
    j["saved_at"] = now;
    j["rules"] = nlohmann::json::array();
    for (const auto& [key, alerts] : state) {
      nlohmann::json r;
      r["key"] = key;
      r["alerts"] = nlohmann::json::array();
      for (const auto& a : alerts) {
        nlohmann::json labels = nlohmann::json::array();
        for (const auto& [k, v] : a.labels) labels.push_back({k, v});
        r["alerts"].push_back({{"labels", labels}, {"active_at", a.active_at}});
      }
      j["rules"].push_back(std::move(r));
    }
    std::string tmp = opts.state_file + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << j.dump();
      if (!out) return;
    }
    std::rename(tmp.c_str(), opts.state_file.c_str());
  }
};

RuleManager::RuleManager(ManagerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(options);
}

RuleManager::~RuleManager() = default;

void RuleManager::Update(std::vector<GroupDef> defs, TimestampMs now) {
  std::lock_guard lock(impl_->mu);
  bool initial = !impl_->loaded_state;
  if (initial) impl_->LoadState();
  std::vector<Impl::Entry> next;
  for (auto& def : defs) {
    auto old = std::find_if(impl_->groups.begin(), impl_->groups.end(), [&](const Impl::Entry& e) {
      return e.group && e.group->def().file == def.file && e.group->def().name == def.name;
    });
    if (old != impl_->groups.end() && old->group->def().SameDefinition(def)) {
      next.push_back(std::move(*old));
      continue;
    }
    Impl::Entry e;
    e.group = std::make_unique<RuleGroup>(std::move(def), &impl_->opts);
    if (old != impl_->groups.end()) {
      e.group->CopyState(*old->group);
      e.next_eval = old->next_eval;
    } else {
      e.next_eval = impl_->FirstSlot(*e.group, now);
    }
    e.needs_restore = initial;
    if (!initial) e.group->SetRestored();
    next.push_back(std::move(e));
  }
  impl_->groups = std::move(next);
}

TimestampMs RuleManager::EvalDue(TimestampMs now) {
  std::lock_guard lock(impl_->mu);
  TimestampMs earliest = now + 3600'000;
  bool evaluated = false;
  for (auto& e : impl_->groups) {
    TimestampMs interval = e.group->interval_ms();
    if (e.next_eval <= now) {
      TimestampMs ts = e.next_eval + FloorDiv(now - e.next_eval, interval) * interval;
      e.group->Eval(ts);
      if (e.needs_restore) {
        e.group->RestoreForState(ts, impl_->saved_at, impl_->saved);
        RuleGroup::SavedState mine;
        e.group->SaveState(mine);
        for (const auto& [key, alerts] : mine) impl_->saved.erase(key);
        e.needs_restore = false;
      }
      e.next_eval = ts + interval;
      evaluated = true;
    }
    earliest = std::min(earliest, e.next_eval);
  }
  if (evaluated) impl_->SaveState(now);
  return earliest;
}

std::vector<GroupStatus> RuleManager::Groups() const {
  std::lock_guard lock(impl_->mu);
  std::vector<GroupStatus> out;
  for (const auto& e : impl_->groups) out.push_back(e.group->Status());
  return out;
}

std::vector<promql::Sample> RuleManager::AlertSeries() const {
  std::lock_guard lock(impl_->mu);
  std::vector<promql::Sample> out;
  for (const auto& e : impl_->groups) {
    auto s = e.group->AlertSeries();
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

}  // namespace runbook::rules
