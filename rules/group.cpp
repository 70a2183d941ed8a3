// Recording and alerting rules and their group, following Prometheus 2.42's rules/alerting.go,
// rules/recording.go and Group.Eval / CopyState / RestoreForState in rules/manager.go.
#include <chrono>
#include <compare>
#include <numeric>
#include <set>

#include "go_text.h"
#include "runbook/rules.h"
#include "template.h"

namespace runbook::rules {

std::string_view AlertStateName(AlertState s) {
  switch (s) {
    case AlertState::kInactive: return "inactive";
    case AlertState::kPending: return "pending";
    case AlertState::kFiring: return "firing";
  }
  return "";
}

namespace {

// labels.Builder.Set: replaces or inserts; an empty value deletes.
void SetLabel(Labels& l, const std::string& name, const std::string& value) {
  auto it = std::find_if(l.begin(), l.end(), [&](const auto& p) { return p.first == name; });
  if (value.empty()) {
    if (it != l.end()) l.erase(it);
    return;
  }
  if (it != l.end()) {
    it->second = value;
    return;
  }
  l.insert(std::upper_bound(l.begin(), l.end(), name,
                            [](const std::string& n, const auto& p) { return n < p.first; }),
           {name, value});
}

struct Output {
  LabelSet metric;
  std::uint64_t hash = 0;  // metric.hash(), kept here so that sorting reads no shared set
  std::uint64_t source_hash = 0;
  std::uint64_t ref = 0;
};

// Indexes of `out` by hash, comparing strings only on equal hashes (meta[k].hash is
// out[k].metric.hash()).
std::vector<std::uint32_t> HashOrder(const promql::Vector& out, const std::vector<Output>& meta) {
  std::vector<std::uint32_t> order(out.size());
  std::iota(order.begin(), order.end(), std::uint32_t(0));
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    if (meta[a].hash != meta[b].hash) return meta[a].hash < meta[b].hash;
    return !out[a].metric.SameAs(out[b].metric) && out[a].metric.get() < out[b].metric.get();
  });
  return order;
}

struct RuleState {
  RuleDef def;
  std::vector<AlertTemplate> label_templates, annotation_templates;  // parsed once, as def's
  std::map<Labels, AlertStatus> active;
  bool restored = false;
  std::string health = "unknown";
  std::string last_error;
  TimestampMs last_evaluation = kNoTime;
  double evaluation_seconds = 0;
  // Last round's output series, HashOrder, unique: with the hash of the query result's label
  // set each came from (0: not from one, as ALERTS) and the appender's reference to it.
  std::vector<Output> prev_series;
  // (source hash, index into prev_series), by source hash: a recording rule's query result whose
  // labels produced an output last round maps to it again without building it anew.
  std::vector<std::pair<std::uint64_t, std::uint32_t>> by_source;
  // A recording rule's query result of last round in its order: each sample's set (shared with
  // the store or the rule's EvalCache) and the index of its output in prev_series. A result that
  // repeats it set for set maps to last round's outputs without reading or comparing labels.
  std::vector<std::pair<LabelSet, std::uint32_t>> last_result;
  std::vector<promql::Sample> alert_series;
  promql::EvalCache cache;  // def.expr's, from one round to the next
};

// HashOrder's order of two sets, given their hashes.
std::weak_ordering Compare(const LabelSet& a, std::uint64_t a_hash, const LabelSet& b, std::uint64_t b_hash) {
  if (a_hash != b_hash) return a_hash <=> b_hash;
  if (a.SameAs(b)) return std::weak_ordering::equivalent;
  return a.get() <=> b.get();
}

// Whether a recording rule turns `source` into `output`: equal but for __name__ and the rule's
// labels, which the rule sets (output was built by this rule, so those are the rule's).
bool RecordsAs(const Labels& source, const Labels& output, const RuleDef& r) {
  auto set_by_rule = [&](const std::string& name) {
    if (name == "__name__") return true;
    for (const auto& l : r.labels)
      if (l.first == name) return true;
    return false;
  };
  auto i = source.begin(), j = output.begin();
  while (true) {
    while (i != source.end() && set_by_rule(i->first)) ++i;
    while (j != output.end() && set_by_rule(j->first)) ++j;
    if (i == source.end() || j == output.end()) return i == source.end() && j == output.end();
    if (*i != *j) return false;
    ++i;
    ++j;
  }
}

std::string NameAndLabels(const RuleDef& r) {
  std::string s = r.name;
  for (const auto& [k, v] : r.labels) s += "\x1f" + k + "\x1e" + v;
  return s;
}

}  // namespace

struct RuleGroup::Impl {
  GroupDef def;
  const ManagerOptions* opts;
  std::vector<RuleState> rules;
  std::vector<LabelSet> stale_series;
  TimestampMs last_evaluation = kNoTime;
  double evaluation_seconds = 0;
  std::uint64_t evaluations = 0, failures = 0;

  TimestampMs Interval() const { return def.interval_ms > 0 ? def.interval_ms : opts->default_interval_ms; }

  std::variant<promql::Vector, std::string> Query(const promql::Expr& expr, TimestampMs ts,
                                                  promql::EvalCache* cache = nullptr) const {
    promql::EvalOptions eval_options;
    eval_options.default_step_ms = opts->default_interval_ms;
    eval_options.cache = cache;
    promql::EvalResult r =
        opts->query ? opts->query(expr, ts) : promql::EvalInstant(expr, *opts->queryable, ts, eval_options);
    if (r.error) return r.error->ToString();
    if (r.value.type == promql::ValueType::kVector) return std::move(r.value.vector);
    if (r.value.type == promql::ValueType::kScalar) return promql::Vector{{{}, ts, r.value.scalar}};
    return std::string("rule result is not a vector or scalar");
  }

  TemplateQueryFunc TemplateQuery(TimestampMs ts) const {
    return [this, ts](std::string_view text) -> std::variant<std::vector<TemplateSample>, std::string> {
      auto parsed = promql::Parse(text);
      if (!parsed.expr) return parsed.error.ToString();
      auto res = Query(*parsed.expr, ts);
      if (auto* e = std::get_if<std::string>(&res)) return *e;
      std::vector<TemplateSample> out;
      for (auto& s : std::get<promql::Vector>(res)) out.push_back({std::move(s.metric), s.v});
      return out;
    };
  }

  // meta gets each output's hash, source hash and, for one produced last round, its reference;
  // order the outputs' HashOrder.
  // sources gets the query result's sets. *repeated: the result is last round's set for set
  // (r.last_result), so its outputs are r.prev_series through r.last_result's indexes, and order
  // is left empty.
  std::optional<std::string> EvalRecording(RuleState& r, TimestampMs ts, promql::Vector& out,
                                           std::vector<Output>& meta, std::vector<std::uint32_t>& order,
                                           std::vector<LabelSet>& sources, bool* repeated) {
    auto res = Query(*r.def.expr, ts, &r.cache);
    if (auto* e = std::get_if<std::string>(&res)) return *e;
    out = std::get<promql::Vector>(std::move(res));
    meta.assign(out.size(), Output{});
    sources.clear();
    sources.reserve(out.size());
    *repeated = out.size() == r.last_result.size() && out.size() == r.prev_series.size();
    for (std::size_t k = 0; k < out.size(); ++k) {
      auto& s = out[k];
      sources.push_back(s.metric);
      if (*repeated && s.metric.SameAs(r.last_result[k].first)) {
        const Output& prev = r.prev_series[r.last_result[k].second];
        s.metric = prev.metric;
        s.t = ts;
        meta[k].hash = prev.hash;
        meta[k].source_hash = prev.source_hash;
        meta[k].ref = prev.ref;
        continue;
      }
      *repeated = false;
      const std::uint64_t h = s.metric.hash();
      meta[k].source_hash = h;
      bool known = false;
      auto it = std::lower_bound(r.by_source.begin(), r.by_source.end(), std::make_pair(h, std::uint32_t(0)));
      for (; !known && it != r.by_source.end() && it->first == h; ++it) {
        const Output& prev = r.prev_series[it->second];
        if (RecordsAs(s.metric, prev.metric, r.def)) {
          s.metric = prev.metric;
          meta[k].ref = prev.ref;
          known = true;
        }
      }
      if (!known) {
        Labels metric = s.metric;
        SetLabel(metric, "__name__", r.def.name);
        for (const auto& [name, v] : r.def.labels) SetLabel(metric, name, v);
        s.metric = std::move(metric);
      }
      s.t = ts;
      meta[k].hash = s.metric.hash();
    }
    if (*repeated) return std::nullopt;  // last round's outputs passed both checks below
    order = HashOrder(out, meta);
    if (std::adjacent_find(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
          return meta[a].hash == meta[b].hash && out[a].metric == out[b].metric;
        }) != order.end()) {
      return std::string("vector contains metrics with the same labelset after applying rule labels");
    }
    if (def.limit > 0 && int(out.size()) > def.limit) {
      return "exceeded limit " + std::to_string(def.limit) + " with " + std::to_string(out.size()) +
             " series";
    }
    return std::nullopt;
  }

  std::optional<std::string> EvalAlerting(RuleState& r, TimestampMs ts, promql::Vector& out) {
    auto res = Query(*r.def.expr, ts, &r.cache);
    if (auto* e = std::get_if<std::string>(&res)) return *e;
    std::map<Labels, AlertStatus> fresh;
    TemplateData data;  // one for the rule's alerts: only labels and value change
    data.external_labels = opts->external_labels;
    data.external_url = opts->external_url;
    data.query = TemplateQuery(ts);
    for (const auto& s : std::get<promql::Vector>(res)) {
      data.labels = s.metric;
      data.value = s.v;
      Labels labels = s.metric;
      SetLabel(labels, "__name__", "");
      for (std::size_t i = 0; i < r.def.labels.size(); ++i)
        SetLabel(labels, r.def.labels[i].first, r.label_templates[i].Expand(data));
      SetLabel(labels, "alertname", r.def.name);
      AlertStatus a;
      for (std::size_t i = 0; i < r.def.annotations.size(); ++i)
        a.annotations.emplace_back(r.def.annotations[i].first, r.annotation_templates[i].Expand(data));
      a.labels = labels;
      a.state = AlertState::kPending;
      a.active_at = ts;
      a.value = s.v;
      if (!fresh.emplace(labels, std::move(a)).second) {
        return std::string("vector contains metrics with the same labelset after applying alert labels");
      }
    }
    for (auto& [labels, a] : fresh) {
      auto it = r.active.find(labels);
      if (it != r.active.end() && it->second.state != AlertState::kInactive) {
        it->second.value = a.value;
        it->second.annotations = std::move(a.annotations);
        continue;
      }
      r.active[labels] = std::move(a);
    }
    int active_pending = 0;
    for (auto it = r.active.begin(); it != r.active.end();) {
      AlertStatus& a = it->second;
      if (!fresh.count(it->first)) {
        bool keep = false;
        if (a.state == AlertState::kFiring && r.def.keep_firing_for_ms > 0) {
          if (a.keep_firing_since == kNoTime) a.keep_firing_since = ts;
          keep = ts - a.keep_firing_since < r.def.keep_firing_for_ms;
        }
        if (a.state == AlertState::kPending ||
            (a.resolved_at != kNoTime && ts - a.resolved_at > opts->resolved_retention_ms)) {
          it = r.active.erase(it);
          continue;
        }
        if (a.state != AlertState::kInactive && !keep) {
          a.state = AlertState::kInactive;
          a.resolved_at = ts;
        }
        if (!keep) {
          ++it;
          continue;
        }
      } else {
        a.keep_firing_since = kNoTime;
      }
      ++active_pending;
      if (a.state == AlertState::kPending && ts - a.active_at >= r.def.for_ms) {
        a.state = AlertState::kFiring;
        a.fired_at = ts;
      }
      if (r.restored) {
        Labels alerts = r.def.labels;
        for (const auto& [k, v] : a.labels) SetLabel(alerts, k, v);
        SetLabel(alerts, "__name__", "ALERTS");
        SetLabel(alerts, "alertname", r.def.name);
        Labels for_state = alerts;
        SetLabel(for_state, "__name__", "ALERTS_FOR_STATE");
        SetLabel(alerts, "alertstate", std::string(AlertStateName(a.state)));
        out.push_back({std::move(alerts), ts, 1});
        out.push_back({std::move(for_state), ts, double(promql_floor_div(a.active_at, 1000))});
      }
      ++it;
    }
    if (def.limit > 0 && active_pending > def.limit) {
      r.active.clear();
      out.clear();
      return "exceeded limit of " + std::to_string(def.limit) + " with " + std::to_string(active_pending) +
             " alerts";
    }
    return std::nullopt;
  }

  static std::int64_t promql_floor_div(std::int64_t a, std::int64_t b) {
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
  }

  void SendAlerts(RuleState& r, TimestampMs ts) {
    std::vector<Alert> alerts;
    std::string generator_url;  // the same for each alert of the rule: built once
    TimestampMs delta = std::max(opts->resend_delay_ms, Interval());
    for (auto& [labels, a] : r.active) {
      if (a.state == AlertState::kPending) continue;
      bool needs = a.resolved_at > a.last_sent_at || a.last_sent_at + opts->resend_delay_ms < ts;
      if (!needs) continue;
      a.last_sent_at = ts;
      a.valid_until = ts + 4 * delta;
      Alert out;
      out.labels = a.labels;
      for (const auto& [k, v] : opts->external_labels) {
        if (LabelValue(out.labels, k).empty()) SetLabel(out.labels, k, v);
      }
      out.annotations = a.annotations;
      out.starts_at = a.fired_at;
      out.ends_at = a.resolved_at != kNoTime ? a.resolved_at : a.valid_until;
      if (generator_url.empty())
        generator_url = opts->external_url + "/graph?g0.expr=" +
                        QueryEscape(r.def.expr ? promql::Format(*r.def.expr) : r.def.expr_text) + "&g0.tab=1";
      out.generator_url = generator_url;
      alerts.push_back(std::move(out));
    }
    if (!alerts.empty() && opts->notify) opts->notify(alerts);
  }
};

RuleGroup::RuleGroup(GroupDef def, const ManagerOptions* options) : impl_(std::make_unique<Impl>()) {
  impl_->opts = options;
  for (auto& r : def.rules) {
    RuleState st;
    st.def = r;
    if (r.kind == RuleDef::Kind::kAlerting) {
      for (const auto& [k, v] : r.labels) st.label_templates.emplace_back(r.name, v);
      for (const auto& [k, v] : r.annotations) st.annotation_templates.emplace_back(r.name, v);
    }
    impl_->rules.push_back(std::move(st));
  }
  impl_->def = std::move(def);
}

RuleGroup::~RuleGroup() = default;

const GroupDef& RuleGroup::def() const {
  return impl_->def;
}
TimestampMs RuleGroup::interval_ms() const {
  return impl_->Interval();
}

void RuleGroup::Eval(TimestampMs ts) {
  Impl& g = *impl_;
  auto group_start = std::chrono::steady_clock::now();
  for (auto& r : g.rules) {
    auto start = std::chrono::steady_clock::now();
    promql::Vector out;
    std::vector<Output> meta;
    std::vector<std::uint32_t> order;
    std::optional<std::string> error;
    std::vector<LabelSet> sources;
    bool repeated = false;
    if (!r.def.expr) {
      error = "rule has no parsed expression";
    } else if (r.def.kind == RuleDef::Kind::kRecording) {
      error = g.EvalRecording(r, ts, out, meta, order, sources, &repeated);
    } else {
      error = g.EvalAlerting(r, ts, out);
    }
    r.last_evaluation = ts;
    r.evaluation_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (error) {
      r.health = "err";
      r.last_error = *error;
      ++g.failures;
      continue;
    }
    r.health = "ok";
    r.last_error.clear();
    if (r.def.kind == RuleDef::Kind::kAlerting) {
      g.SendAlerts(r, ts);
      r.alert_series = out;
    }
    if (repeated) {
      if (g.opts->appender) {
        for (std::size_t k = 0; k < out.size(); ++k) {
          Output& prev = r.prev_series[r.last_result[k].second];
          prev.ref = g.opts->appender->AppendRef(prev.ref, prev.metric, ts, out[k].v);
        }
      }
      continue;
    }
    if (meta.size() != out.size()) {
      meta.assign(out.size(), Output{});
      for (std::size_t k = 0; k < out.size(); ++k) meta[k].hash = out[k].metric.hash();
      order = HashOrder(out, meta);
    }
    // The output in HashOrder, merged with last round's: series gone since get a staleness
    // marker, and a set equal to last round's is replaced by that one, which the store already
    // holds (its lookup then compares pointers, not strings), and keeps its reference.
    std::vector<const Output*> gone;
    std::size_t i = 0;
    bool matched = false;
    for (std::size_t j = 0; i < r.prev_series.size();) {
      const Output& prev = r.prev_series[i];
      const auto c = j < order.size()
                         ? Compare(prev.metric, prev.hash, out[order[j]].metric, meta[order[j]].hash)
                         : std::weak_ordering::less;
      if (c == 0) {
        out[order[j]].metric = r.prev_series[i].metric;
        meta[order[j++]].ref = r.prev_series[i].ref;
        matched = true;
      } else if (c > 0) {
        ++j;
      } else {
        if (!matched) gone.push_back(&r.prev_series[i]);
        matched = false;
        ++i;
      }
    }
    if (g.opts->appender) {
      for (std::size_t k = 0; k < out.size(); ++k)
        meta[k].ref = g.opts->appender->AppendRef(meta[k].ref, out[k].metric, ts, out[k].v);
      for (const auto* prev : gone)
        g.opts->appender->AppendRef(prev->ref, prev->metric, ts, promql::StaleMarker());
    }
    std::vector<Output> returned;
    returned.reserve(out.size());
    std::vector<std::uint32_t> at(out.size());  // out[k]'s index in returned
    for (std::uint32_t k : order) {
      if (returned.empty() ||
          Compare(returned.back().metric, returned.back().hash, out[k].metric, meta[k].hash) != 0)
        returned.push_back({std::move(out[k].metric), meta[k].hash, meta[k].source_hash, meta[k].ref});
      at[k] = std::uint32_t(returned.size() - 1);
    }
    r.prev_series = std::move(returned);
    r.last_result.clear();
    if (r.def.kind == RuleDef::Kind::kRecording)
      for (std::size_t k = 0; k < out.size(); ++k) r.last_result.emplace_back(std::move(sources[k]), at[k]);
    r.by_source.clear();
    for (std::size_t k = 0; k < r.prev_series.size(); ++k)
      if (r.prev_series[k].source_hash != 0)
        r.by_source.emplace_back(r.prev_series[k].source_hash, std::uint32_t(k));
    std::sort(r.by_source.begin(), r.by_source.end());
  }
  for (const auto& s : g.stale_series) {
    if (g.opts->appender) g.opts->appender->Append(s, ts, promql::StaleMarker());
  }
  g.stale_series.clear();
  ++g.evaluations;
  g.last_evaluation = ts;
  g.evaluation_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - group_start).count();
}

void RuleGroup::CopyState(RuleGroup& old) {
  Impl& g = *impl_;
  Impl& from = *old.impl_;
  g.last_evaluation = from.last_evaluation;
  g.evaluation_seconds = from.evaluation_seconds;
  std::map<std::string, std::vector<std::size_t>> by_name;
  for (std::size_t i = 0; i < from.rules.size(); ++i) by_name[NameAndLabels(from.rules[i].def)].push_back(i);
  for (auto& r : g.rules) {
    auto& indexes = by_name[NameAndLabels(r.def)];
    if (indexes.empty()) continue;
    RuleState& f = from.rules[indexes.front()];
    indexes.erase(indexes.begin());
    // Same name and labels: the same source labels record as the same output series.
    r.prev_series = f.prev_series;
    r.by_source = f.by_source;
    if (r.def.kind == RuleDef::Kind::kAlerting && f.def.kind == RuleDef::Kind::kAlerting) {
      r.active = f.active;
      r.alert_series = f.alert_series;
    }
  }
  g.stale_series = from.stale_series;
  for (const auto& [name, indexes] : by_name) {
    for (std::size_t i : indexes) {
      for (const auto& s : from.rules[i].prev_series) g.stale_series.push_back(s.metric);
    }
  }
}

void RuleGroup::SetRestored() {
  for (auto& r : impl_->rules) r.restored = true;
}

std::string RuleGroup::RuleKey(const GroupDef& g, const RuleDef& r) {
  return g.file + "\x1f" + g.name + "\x1f" + NameAndLabels(r);
}

void RuleGroup::RestoreForState(TimestampMs ts, TimestampMs saved_at, const SavedState& saved) {
  Impl& g = *impl_;
  for (auto& r : g.rules) {
    if (r.def.kind != RuleDef::Kind::kAlerting) continue;
    if (r.def.for_ms < g.opts->for_grace_period_ms || saved_at < ts - g.opts->for_outage_tolerance_ms) {
      r.restored = true;
      continue;
    }
    auto it = saved.find(RuleKey(g.def, r.def));
    for (auto& [labels, a] : r.active) {
      if (it == saved.end()) break;
      for (const auto& s : it->second) {
        if (s.labels != labels) continue;
        TimestampMs restored = s.active_at;
        TimestampMs remaining = r.def.for_ms - (saved_at - s.active_at);
        if (remaining <= 0) {
          // It was firing when we went down; it fires again at the next evaluation.
        } else if (remaining < g.opts->for_grace_period_ms) {
          restored = ts + g.opts->for_grace_period_ms - r.def.for_ms;
        } else {
          restored = s.active_at + (ts - saved_at);
        }
        a.active_at = restored;
      }
    }
    r.restored = true;
  }
}

void RuleGroup::SaveState(SavedState& out) const {
  for (const auto& r : impl_->rules) {
    if (r.def.kind != RuleDef::Kind::kAlerting) continue;
    auto& list = out[RuleKey(impl_->def, r.def)];
    for (const auto& [labels, a] : r.active) {
      if (a.state != AlertState::kInactive) list.push_back({labels, a.active_at});
    }
  }
}

GroupStatus RuleGroup::Status() const {
  const Impl& g = *impl_;
  GroupStatus s;
  s.file = g.def.file;
  s.name = g.def.name;
  s.interval_ms = g.Interval();
  s.limit = g.def.limit;
  s.last_evaluation = g.last_evaluation;
  s.evaluation_seconds = g.evaluation_seconds;
  s.evaluations = g.evaluations;
  s.failures = g.failures;
  for (const auto& r : g.rules) {
    RuleStatus rs;
    rs.def = r.def;
    rs.health = r.health;
    rs.last_error = r.last_error;
    rs.last_evaluation = r.last_evaluation;
    rs.evaluation_seconds = r.evaluation_seconds;
    for (const auto& [labels, a] : r.active) rs.alerts.push_back(a);
    s.rules.push_back(std::move(rs));
    s.remembered += r.cache.label_sets() + r.cache.inputs() + r.last_result.size();
  }
  return s;
}

std::vector<AlertStatus> RuleGroup::ActiveAlerts(std::string_view alertname) const {
  std::vector<AlertStatus> out;
  for (const auto& r : impl_->rules) {
    if (r.def.kind != RuleDef::Kind::kAlerting || r.def.name != alertname) continue;
    for (const auto& [labels, a] : r.active) {
      if (a.state != AlertState::kInactive) out.push_back(a);
    }
  }
  return out;
}

std::vector<promql::Sample> RuleGroup::AlertSeries() const {
  std::vector<promql::Sample> out;
  for (const auto& r : impl_->rules) out.insert(out.end(), r.alert_series.begin(), r.alert_series.end());
  return out;
}

std::vector<std::pair<std::string, std::string>> RuleGroup::LastErrors() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : impl_->rules) {
    if (r.health == "err") out.emplace_back(r.def.name, r.last_error);
  }
  return out;
}

}  // namespace runbook::rules
