#include <nlohmann/json.hpp>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
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
  RuleGroup::SavedState saved;  // from the state file, for groups not restored yet
  TimestampMs saved_at = kNoTime;
  StateFileStats stats;
  bool write_failing = false;
  std::string written_file;  // the file last written successfully ("" after a failure)
  bool written_empty = false;

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

  // Writes the state of pending and firing alerts. Skipped when nothing is active and the file
  // already says so; with active alerts it is rewritten every round because `saved_at` measures
  // the downtime that RestoreForState adds to activeAt.
  void SaveState(TimestampMs now) {
    if (opts.state_file.empty()) return;
    RuleGroup::SavedState state;
    for (const auto& e : groups) {
      e.group->SaveState(state);
      if (!e.needs_restore) continue;
      // Not restored yet: keep what the file had for its rules (and only for rules still loaded).
      for (const auto& r : e.group->def().rules) {
        auto it = saved.find(RuleGroup::RuleKey(e.group->def(), r));
        if (it != saved.end()) state[it->first] = it->second;
      }
    }
    nlohmann::json rules = nlohmann::json::array();
    bool any = false;
    for (const auto& [key, alerts] : state) {
      if (alerts.empty()) continue;
      any = true;
      nlohmann::json r;
      r["key"] = key;
      r["alerts"] = nlohmann::json::array();
      for (const auto& a : alerts) {
        nlohmann::json labels = nlohmann::json::array();
        for (const auto& [k, v] : a.labels) labels.push_back({k, v});
        r["alerts"].push_back({{"labels", labels}, {"active_at", a.active_at}});
      }
      rules.push_back(std::move(r));
    }
    if (!any && written_file == opts.state_file && written_empty) {
      stats.last_success = now;
      return;
    }
    nlohmann::json j;
    j["saved_at"] = now;
    j["rules"] = std::move(rules);
    std::string error = WriteFile(opts.state_file, j.dump());
    if (!error.empty()) {
      ++stats.write_failures;
      written_file.clear();
      if (!write_failing)
        spdlog::error("rule state file {}: {}; alert state will not survive a restart", opts.state_file,
                      error);
      write_failing = true;
      return;
    }
    if (write_failing) spdlog::info("rule state file {}: writing again", opts.state_file);
    write_failing = false;
    written_file = opts.state_file;
    written_empty = !any;
    stats.last_success = now;
  }

  // Atomic replace: a crash leaves the old or the new file, never a torn one.
  static std::string WriteFile(const std::string& path, const std::string& content) {
    std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (!f) return "cannot create " + tmp + ": " + std::strerror(errno);
    bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
    int err = errno;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
      std::remove(tmp.c_str());
      return "cannot write " + tmp + ": " + std::strerror(err ? err : errno);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      err = errno;
      std::remove(tmp.c_str());
      return "cannot rename " + tmp + ": " + std::strerror(err);
    }
    return "";
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
      e.next_eval = old->group->interval_ms() == e.group->interval_ms() ? old->next_eval
                                                                        : impl_->FirstSlot(*e.group, now);
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
        e.needs_restore = false;
      }
      e.next_eval = ts + interval;
      evaluated = true;
    }
    earliest = std::min(earliest, e.next_eval);
  }
  if (evaluated) impl_->SaveState(now);
  if (std::none_of(impl_->groups.begin(), impl_->groups.end(),
                   [](const Impl::Entry& e) { return e.needs_restore; }))
    impl_->saved.clear();
  return earliest;
}

void RuleManager::SetOptions(ManagerOptions options, TimestampMs now) {
  std::lock_guard lock(impl_->mu);
  std::vector<TimestampMs> intervals;
  for (const auto& e : impl_->groups) intervals.push_back(e.group->interval_ms());
  impl_->opts = std::move(options);
  // Groups keep a pointer to opts: they see the new values from their next evaluation on.
  for (std::size_t i = 0; i < impl_->groups.size(); ++i) {
    auto& e = impl_->groups[i];
    if (e.group->interval_ms() != intervals[i]) e.next_eval = impl_->FirstSlot(*e.group, now);
  }
}

RuleManager::StateFileStats RuleManager::StateFile() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stats;
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
