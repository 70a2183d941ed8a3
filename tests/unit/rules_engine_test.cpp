// Alert state machine, groups and manager on a fake clock: evaluation times are passed in and the
// query is a seam returning scripted vectors (SEMANTICS.md §1.3–1.6 give the expected timings).
#include <doctest/doctest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <utility>

#include "runbook/rules.h"

namespace rules_engine_test {

using namespace runbook;
using namespace runbook::rules;

namespace {

constexpr TimestampMs kSec = 1000, kMin = 60 * kSec;

struct Captured : Appender {
  std::vector<std::tuple<Labels, TimestampMs, double>> samples;
  void Append(const LabelSet& m, TimestampMs t, double v) override { samples.emplace_back(m, t, v); }
};

struct Fixture {
  promql::Vector current;  // what every expression returns at the next evaluation
  std::vector<std::pair<TimestampMs, Alert>> sent;
  TimestampMs now = 0;
  Captured out;
  ManagerOptions opts;

  Fixture() {
    opts.query = [this](const promql::Expr&, TimestampMs) {
      promql::EvalResult r;
      r.value.type = promql::ValueType::kVector;
      r.value.vector = current;
      return r;
    };
    opts.notify = [this](const std::vector<Alert>& alerts) {
      for (const auto& a : alerts) sent.emplace_back(now, a);
    };
    opts.appender = &out;
    opts.external_labels = {{"monitor", "lab"}, {"severity", "ext-loses"}};
    opts.external_url = "http://prom:9090";
    opts.default_interval_ms = 5 * kSec;
  }
  void Set(std::initializer_list<std::pair<std::string, double>> series) {
    current.clear();
    for (const auto& [s, v] : series) current.push_back({{{"__name__", "lab_gauge"}, {"series", s}}, 0, v});
  }
  std::vector<TimestampMs> SentTimes() const {
    std::vector<TimestampMs> t;
    for (const auto& [ts, a] : sent) t.push_back(ts);
    return t;
  }
};

RuleDef Alerting(std::string name, std::string expr, TimestampMs for_ms, TimestampMs keep = 0) {
  RuleDef r;
  r.kind = RuleDef::Kind::kAlerting;
  r.name = std::move(name);
  r.expr_text = std::move(expr);
  r.expr = promql::Parse(r.expr_text).expr;
  REQUIRE(r.expr);
  r.for_ms = for_ms;
  r.keep_firing_for_ms = keep;
  r.labels = {{"severity", "warning"}};
  r.annotations = {
      {"summary", "value={{ $value }} on {{ $labels.series }} ext={{ $externalLabels.monitor }}"}};
  return r;
}

GroupDef Group(std::vector<RuleDef> rules, std::string name = "g") {
  GroupDef g;
  g.file = "lab.yml";
  g.name = std::move(name);
  g.rules = std::move(rules);
  return g;
}

// Evaluates every 5 s from `from` to `to` inclusive.
void Run(RuleGroup& g, Fixture& f, TimestampMs from, TimestampMs to) {
  for (f.now = from; f.now <= to; f.now += 5 * kSec) g.Eval(f.now);
}

}  // namespace

TEST_CASE("rules: pending becomes firing at the first evaluation with ts - activeAt >= for") {
  Fixture f;
  RuleGroup g(Group({Alerting("LabGaugeHigh", "lab_gauge > 10", 30 * kSec)}), &f.opts);
  g.SetRestored();
  f.Set({{"a", 50}});
  Run(g, f, 0, 25 * kSec);
  auto alerts = g.ActiveAlerts("LabGaugeHigh");
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].state == AlertState::kPending);
  CHECK(alerts[0].active_at == 0);
  CHECK(f.sent.empty());  // pending alerts are never sent
  auto series = g.AlertSeries();
  REQUIRE(series.size() == 2);
  CHECK(series[0].metric == Labels{{"__name__", "ALERTS"},
                                   {"alertname", "LabGaugeHigh"},
                                   {"alertstate", "pending"},
                                   {"series", "a"},
                                   {"severity", "warning"}});
  CHECK(series[1].metric == Labels{{"__name__", "ALERTS_FOR_STATE"},
                                   {"alertname", "LabGaugeHigh"},
                                   {"series", "a"},
                                   {"severity", "warning"}});
  CHECK(series[1].v == 0);

  f.now = 30 * kSec;
  g.Eval(f.now);
  alerts = g.ActiveAlerts("LabGaugeHigh");
  CHECK(alerts[0].state == AlertState::kFiring);
  CHECK(alerts[0].fired_at == 30 * kSec);
  REQUIRE(f.sent.size() == 1);
  const Alert& a = f.sent[0].second;
  // External labels are added at send time, only where the alert has no such label.
  CHECK(a.labels ==
        Labels{{"alertname", "LabGaugeHigh"}, {"monitor", "lab"}, {"series", "a"}, {"severity", "warning"}});
  CHECK(a.annotations == Labels{{"summary", "value=50 on a ext=lab"}});
  CHECK(a.starts_at == 30 * kSec);           // firedAt, not activeAt
  CHECK(a.ends_at == 30 * kSec + 4 * kMin);  // validUntil = ts + 4 * max(resend, interval)
  CHECK(a.generator_url == "http://prom:9090/graph?g0.expr=lab_gauge+%3E+10&g0.tab=1");
  CHECK(LabelValue(g.AlertSeries()[0].metric, "alertstate") == "firing");
  CHECK(LabelValue(g.AlertSeries()[0].metric, "monitor").empty());  // not in ALERTS
}

TEST_CASE("rules: a pending alert that disappears is dropped silently, and for: 0 fires at once") {
  Fixture f;
  RuleGroup g(Group({Alerting("Slow", "lab_gauge > 10", 30 * kSec), Alerting("Now", "lab_gauge > 10", 0)}),
              &f.opts);
  g.SetRestored();
  f.Set({{"c", 50}});
  Run(g, f, 0, 10 * kSec);
  CHECK(g.ActiveAlerts("Now")[0].state == AlertState::kFiring);
  CHECK(g.ActiveAlerts("Now")[0].fired_at == 0);
  f.Set({});
  Run(g, f, 15 * kSec, 15 * kSec);
  CHECK(g.ActiveAlerts("Slow").empty());
  for (const auto& [t, a] : f.sent) CHECK(LabelValue(a.labels, "alertname") == "Now");
}

TEST_CASE("rules: resends every resend delay (65 s at a 5 s interval), resolved kept and resent for 15 min") {
  Fixture f;
  RuleGroup g(Group({Alerting("A", "lab_gauge > 10", 0)}), &f.opts);
  g.SetRestored();
  f.Set({{"a", 50}});
  Run(g, f, 0, 150 * kSec);
  CHECK(f.SentTimes() == std::vector<TimestampMs>{0, 65 * kSec, 130 * kSec});
  f.sent.clear();
  f.Set({});
  Run(g, f, 155 * kSec, 155 * kSec + 16 * kMin);
  // Resolved: sent at once with endsAt = resolvedAt and the last annotations, then every 65 s
  // while the alert is retained (deleted at the first evaluation more than 15 min after).
  REQUIRE(!f.sent.empty());
  CHECK(f.sent[0].first == 155 * kSec);
  CHECK(f.sent[0].second.ends_at == 155 * kSec);
  CHECK(f.sent[0].second.annotations == Labels{{"summary", "value=50 on a ext=lab"}});
  CHECK(f.sent.size() == 14);
  CHECK(f.sent.back().first == 155 * kSec + 13 * 65 * kSec);
  CHECK(g.Status().rules[0].alerts.empty());
  CHECK(g.AlertSeries().empty());
}

TEST_CASE("rules: keep_firing_for holds a firing alert and resets when the condition returns") {
  Fixture f;
  RuleGroup g(Group({Alerting("K", "lab_gauge > 10", 0, 30 * kSec)}), &f.opts);
  g.SetRestored();
  f.Set({{"a", 50}});
  Run(g, f, 0, 10 * kSec);
  f.Set({});
  Run(g, f, 15 * kSec, 35 * kSec);  // keepFiringSince = 15 s; 35 - 15 < 30
  CHECK(g.ActiveAlerts("K")[0].state == AlertState::kFiring);
  f.Set({{"a", 50}});
  Run(g, f, 40 * kSec, 40 * kSec);
  f.Set({});
  Run(g, f, 45 * kSec, 70 * kSec);  // since = 45 s again
  CHECK(g.ActiveAlerts("K")[0].state == AlertState::kFiring);
  Run(g, f, 75 * kSec, 75 * kSec);
  CHECK(g.ActiveAlerts("K").empty());
  CHECK(g.Status().rules[0].alerts[0].resolved_at == 75 * kSec);
}

TEST_CASE("rules: limit and label collisions fail the evaluation as in Prometheus") {
  Fixture f;
  GroupDef def = Group({Alerting("L", "lab_gauge > 10", 0)});
  def.limit = 1;
  RuleGroup g(def, &f.opts);
  g.SetRestored();
  f.Set({{"a", 50}, {"b", 60}});
  g.Eval(0);
  CHECK(g.LastErrors() ==
        std::vector<std::pair<std::string, std::string>>{{"L", "exceeded limit of 1 with 2 alerts"}});
  CHECK(g.Status().rules[0].alerts.empty());

  f.current = {{{{"__name__", "x"}, {"i", "1"}}, 0, 1}, {{{"__name__", "y"}, {"i", "1"}}, 0, 1}};
  RuleGroup g2(Group({Alerting("D", "x", 0)}), &f.opts);
  g2.Eval(0);
  CHECK(g2.LastErrors()[0].second ==
        "vector contains metrics with the same labelset after applying alert labels");
  CHECK(g2.Status().failures == 1);
}

TEST_CASE("rules: recording rules rename and relabel, and mark vanished series stale") {
  Fixture f;
  RuleDef r;
  r.kind = RuleDef::Kind::kRecording;
  r.name = "job:x:sum";
  r.expr_text = "x";
  r.expr = promql::Parse(r.expr_text).expr;
  r.labels = {{"team", "db"}};
  RuleGroup g(Group({r}), &f.opts);
  f.current = {{{{"__name__", "x"}, {"i", "1"}}, 0, 1}, {{{"__name__", "x"}, {"i", "2"}}, 0, 2}};
  g.Eval(0);
  f.current.pop_back();
  g.Eval(5 * kSec);
  REQUIRE(f.out.samples.size() == 4);
  CHECK(std::get<0>(f.out.samples[0]) == Labels{{"__name__", "job:x:sum"}, {"i", "1"}, {"team", "db"}});
  CHECK(std::get<2>(f.out.samples[1]) == 2);
  CHECK(std::get<0>(f.out.samples[3]) == Labels{{"__name__", "job:x:sum"}, {"i", "2"}, {"team", "db"}});
  CHECK(std::get<1>(f.out.samples[3]) == 5 * kSec);
  CHECK(promql::IsStaleMarker(std::get<2>(f.out.samples[3])));
}

namespace {

// Hands out one reference per label set and checks every reference it is given back.
struct RefAppender : Appender {
  std::map<Labels, std::uint64_t> refs;
  std::vector<std::tuple<Labels, std::uint64_t, double>> appended;  // metric, ref passed, value
  int wrong_refs = 0;
  void Append(const LabelSet& m, TimestampMs t, double v) override { AppendRef(0, m, t, v); }
  std::uint64_t AppendRef(std::uint64_t ref, const LabelSet& m, TimestampMs, double v) override {
    auto [it, fresh] = refs.try_emplace(m, refs.size() + 1);
    if (ref != 0 && ref != it->second) ++wrong_refs;
    appended.emplace_back(m, ref, v);
    return it->second;
  }
  std::vector<std::tuple<Labels, std::uint64_t, double>> Take() { return std::exchange(appended, {}); }
};

RuleDef Recording(std::string name, Labels labels) {
  RuleDef r;
  r.kind = RuleDef::Kind::kRecording;
  r.name = std::move(name);
  r.expr_text = "x";
  r.expr = promql::Parse(r.expr_text).expr;
  r.labels = std::move(labels);
  return r;
}

promql::Sample In(Labels l, double v) {
  return {LabelSet(std::move(l)), 0, v};
}

}  // namespace

TEST_CASE("rules: a recording rule's output keeps its series and reference while its source maps to it") {
  Fixture f;
  RefAppender app;
  f.opts.appender = &app;
  RuleGroup g(Group({Recording("out", {{"team", "db"}})}), &f.opts);
  const Labels out1{{"__name__", "out"}, {"i", "1"}, {"team", "db"}};
  const Labels out2{{"__name__", "out"}, {"i", "2"}, {"team", "db"}};
  f.current = {In({{"__name__", "x"}, {"i", "1"}, {"team", "a"}}, 1), In({{"__name__", "x"}, {"i", "2"}}, 2)};
  g.Eval(0);
  auto got = app.Take();
  REQUIRE(got.size() == 2);
  CHECK(std::get<1>(got[0]) == 0);  // first round: no references yet
  CHECK(std::get<1>(got[1]) == 0);
  // Other sources with the same output (the rule overrides __name__ and team): the same series,
  // appended with the references returned last round, no staleness marker.
  f.current = {In({{"__name__", "y"}, {"i", "1"}, {"team", "b"}}, 3), In({{"__name__", "x"}, {"i", "2"}}, 4)};
  g.Eval(5 * kSec);
  got = app.Take();
  REQUIRE(got.size() == 2);
  CHECK(std::get<0>(got[0]) == out1);
  CHECK(std::get<1>(got[0]) == app.refs.at(out1));
  CHECK(std::get<2>(got[0]) == 3);
  CHECK(std::get<0>(got[1]) == out2);
  CHECK(std::get<1>(got[1]) == app.refs.at(out2));
  // The source's labels change: a new output series; both old ones go stale (with their refs).
  f.current = {In({{"__name__", "x"}, {"extra", "e"}, {"i", "1"}}, 5)};
  g.Eval(10 * kSec);
  got = app.Take();
  REQUIRE(got.size() == 3);
  CHECK(std::get<0>(got[0]) == Labels{{"__name__", "out"}, {"extra", "e"}, {"i", "1"}, {"team", "db"}});
  CHECK(std::get<1>(got[0]) == 0);
  std::set<Labels> stale;
  for (std::size_t k = 1; k < 3; ++k) {
    CHECK(promql::IsStaleMarker(std::get<2>(got[k])));
    CHECK(std::get<1>(got[k]) != 0);
    stale.insert(std::get<0>(got[k]));
  }
  CHECK(stale == std::set<Labels>{out1, out2});
  // Two sources recording as one series fail the rule, also when last round knew that series.
  f.current = {In({{"__name__", "x"}, {"extra", "e"}, {"i", "1"}}, 6),
               In({{"__name__", "y"}, {"extra", "e"}, {"i", "1"}}, 7)};
  g.Eval(15 * kSec);
  CHECK(g.Status().rules[0].last_error ==
        "vector contains metrics with the same labelset after applying rule labels");
  CHECK(app.wrong_refs == 0);
}

TEST_CASE(
    "rules: a recording rule's result repeating last round's sets maps to its outputs, values by labels") {
  Fixture f;
  RefAppender app;
  f.opts.appender = &app;
  RuleGroup g(Group({Recording("out", {})}), &f.opts);
  const LabelSet a = Labels{{"__name__", "x"}, {"i", "1"}}, b = Labels{{"__name__", "x"}, {"i", "2"}},
                 c = Labels{{"__name__", "x"}, {"i", "3"}};
  auto out = [](const char* i) { return Labels{{"__name__", "out"}, {"i", i}}; };
  // (output, value) of the non-stale appends, and the outputs marked stale.
  auto take = [&] {
    std::map<Labels, double> values;
    std::set<Labels> stale;
    for (const auto& [m, ref, v] : app.Take()) {
      if (promql::IsStaleMarker(v)) {
        stale.insert(m);
      } else {
        CHECK(values.emplace(m, v).second);
      }
    }
    return std::make_pair(values, stale);
  };
  f.current = {{a, 0, 1}, {b, 0, 2}};
  g.Eval(0);
  CHECK(take().first == std::map<Labels, double>{{out("1"), 1}, {out("2"), 2}});
  f.current = {{a, 0, 10}, {b, 0, 20}};  // the same sets in the same order
  g.Eval(5 * kSec);
  CHECK(take() ==
        std::make_pair(std::map<Labels, double>{{out("1"), 10}, {out("2"), 20}}, std::set<Labels>{}));
  f.current = {{c, 0, 30}, {b, 0, 21}};  // same size, first set replaced
  g.Eval(10 * kSec);
  CHECK(take() ==
        std::make_pair(std::map<Labels, double>{{out("3"), 30}, {out("2"), 21}}, std::set<Labels>{out("1")}));
  f.current = {{b, 0, 22}, {c, 0, 31}};  // the same sets, swapped
  g.Eval(15 * kSec);
  CHECK(take() ==
        std::make_pair(std::map<Labels, double>{{out("2"), 22}, {out("3"), 31}}, std::set<Labels>{}));
  f.current = {{b, 0, 23}, {c, 0, 32}};
  g.Eval(20 * kSec);
  CHECK(take() ==
        std::make_pair(std::map<Labels, double>{{out("2"), 23}, {out("3"), 32}}, std::set<Labels>{}));
  // Equal sets that are not the same shared ones: the same outputs.
  f.current = {{LabelSet(b.get()), 0, 24}, {LabelSet(c.get()), 0, 33}};
  g.Eval(25 * kSec);
  CHECK(take() ==
        std::make_pair(std::map<Labels, double>{{out("2"), 24}, {out("3"), 33}}, std::set<Labels>{}));
  f.current = {};
  g.Eval(30 * kSec);
  CHECK(take() == std::make_pair(std::map<Labels, double>{}, std::set<Labels>{out("2"), out("3")}));
  CHECK(app.wrong_refs == 0);
}

TEST_CASE("rules: a group's status counts what its rules remember from the last evaluation") {
  promql::MemoryStorage storage;
  for (const char* i : {"1", "2", "3"})
    storage.Append({{"__name__", "x"}, {"g", std::string(i) == "3" ? "b" : "a"}, {"i", i}}, 0, 1);
  storage.Append({{"__name__", "y"}, {"g", "a"}}, 0, 1);
  Fixture f;
  f.opts.query = nullptr;
  f.opts.queryable = &storage;
  RuleDef sum = Recording("by_g", {});
  sum.expr_text = "sum by (g) (x)";
  sum.expr = promql::Parse(sum.expr_text).expr;
  RuleDef alert = Alerting("Over", "x > on(g) group_left() y", 0);
  RuleGroup g(Group({sum, alert}), &f.opts);
  CHECK(g.Status().remembered == 0);
  g.Eval(0);
  // sum: 3 inputs, 2 groups, 2 results; the match: y indexed (1), the x series probed (3).
  CHECK(g.Status().remembered == 3 + 2 + 2 + 1 + 3);
  g.Eval(5 * kSec);
  CHECK(g.Status().remembered == 11);
  storage.Clear();
  g.Eval(10 * kSec);
  CHECK(g.Status().remembered == 0);
}

TEST_CASE("rules: a reload keeps a recording rule's outputs only while its name and labels stay") {
  Fixture f;
  RefAppender app;
  f.opts.appender = &app;
  f.current = {In({{"__name__", "x"}, {"i", "1"}}, 1)};
  RuleGroup old(Group({Recording("out", {{"team", "db"}})}), &f.opts);
  old.Eval(0);
  app.Take();
  // Unchanged rule: the same series and reference, nothing stale.
  RuleGroup same(Group({Recording("out", {{"team", "db"}})}), &f.opts);
  same.CopyState(old);
  same.Eval(5 * kSec);
  auto got = app.Take();
  REQUIRE(got.size() == 1);
  CHECK(std::get<0>(got[0]) == Labels{{"__name__", "out"}, {"i", "1"}, {"team", "db"}});
  CHECK(std::get<1>(got[0]) != 0);
  // Changed labels: the new output carries them; the old series goes stale.
  RuleGroup changed(Group({Recording("out", {{"team", "web"}})}), &f.opts);
  changed.CopyState(same);
  changed.Eval(10 * kSec);
  got = app.Take();
  REQUIRE(got.size() == 2);
  CHECK(std::get<0>(got[0]) == Labels{{"__name__", "out"}, {"i", "1"}, {"team", "web"}});
  CHECK(std::get<2>(got[0]) == 1);
  CHECK(std::get<0>(got[1]) == Labels{{"__name__", "out"}, {"i", "1"}, {"team", "db"}});
  CHECK(promql::IsStaleMarker(std::get<2>(got[1])));
  changed.Eval(15 * kSec);
  got = app.Take();
  REQUIRE(got.size() == 1);
  CHECK(std::get<0>(got[0]) == Labels{{"__name__", "out"}, {"i", "1"}, {"team", "web"}});
  CHECK(std::get<1>(got[0]) == app.refs.at(std::get<0>(got[0])));
  CHECK(app.wrong_refs == 0);
}

TEST_CASE("rules: a restart restores activeAt from the state file (RestoreForState)") {
  auto path =
      std::filesystem::temp_directory_path() / ("rules_state_" + std::to_string(::getpid()) + ".json");
  std::filesystem::remove(path);
  Fixture f;
  f.opts.state_file = path.string();
  f.opts.for_grace_period_ms = 10 * kMin;
  auto defs = [] {
    GroupDef g = Group({Alerting("Long", "lab_gauge > 10", 15 * kMin)});
    g.interval_ms = kMin;
    return std::vector<GroupDef>{g};
  };
  f.Set({{"a", 50}});
  TimestampMs first_eval = 0;
  {
    RuleManager m(f.opts);
    m.Update(defs(), 0);
    for (TimestampMs t = 0; t <= 6 * kMin; t += 10 * kSec) {
      TimestampMs next = m.EvalDue(t);
      CHECK(next > t);
    }
    auto groups = m.Groups();
    first_eval = groups[0].rules[0].alerts.at(0).active_at;
    CHECK(groups[0].rules[0].alerts[0].state == AlertState::kPending);
  }
  REQUIRE(std::filesystem::exists(path));
  // Down for 2 minutes; pending for about 5–6 minutes before that.
  RuleManager m(f.opts);
  m.Update(defs(), 8 * kMin);
  TimestampMs t = 8 * kMin;
  while (m.Groups()[0].evaluations == 0) m.EvalDue(t += kSec);
  TimestampMs restart_eval = m.Groups()[0].last_evaluation;
  TimestampMs active = m.Groups()[0].rules[0].alerts.at(0).active_at;
  CHECK(active > first_eval);      // shifted by the downtime...
  CHECK(active < restart_eval);    // ...but the time spent pending before it still counts
  CHECK(m.AlertSeries().empty());  // nothing is written before the restore has run
  while (m.Groups()[0].rules[0].alerts.at(0).state != AlertState::kFiring) m.EvalDue(t += kSec);
  TimestampMs fired = m.Groups()[0].rules[0].alerts[0].fired_at;
  CHECK(fired >= active + 15 * kMin);
  CHECK(fired < active + 15 * kMin + kMin);
  CHECK(fired < restart_eval + 15 * kMin);  // `for` did not start over
  std::filesystem::remove(path);
}

TEST_CASE("rules: a reload keeps the alert state of unchanged rules") {
  Fixture f;
  f.Set({{"a", 50}});
  RuleManager m(f.opts);
  GroupDef g = Group({Alerting("A", "lab_gauge > 10", 10 * kMin)});
  m.Update({g}, 0);
  TimestampMs t = 0;
  for (; t <= kMin; t += kSec) m.EvalDue(t);
  TimestampMs active = m.Groups()[0].rules[0].alerts.at(0).active_at;
  // Same group with an added rule: the old rule keeps its alerts, the new one starts empty.
  GroupDef changed = g;
  changed.rules.push_back(Alerting("B", "lab_gauge > 100", 0));
  m.Update({changed}, t);
  auto groups = m.Groups();
  REQUIRE(groups[0].rules.size() == 2);
  CHECK(groups[0].rules[0].alerts.at(0).active_at == active);
  CHECK(groups[0].rules[1].alerts.empty());
  // ALERTS are written right away after a reload (no restore pending).
  for (TimestampMs end = t + 10 * kSec; t <= end; t += kSec) m.EvalDue(t);
  CHECK(!m.AlertSeries().empty());
  // Removing the group drops its state.
  m.Update({}, t);
  CHECK(m.Groups().empty());
}

TEST_CASE("rules: with the default grace period a restart resumes `for` and re-fires a firing alert") {
  auto path =
      std::filesystem::temp_directory_path() / ("rules_state0_" + std::to_string(::getpid()) + ".json");
  std::filesystem::remove(path);
  Fixture f;
  f.opts.state_file = path.string();
  GroupDef g =
      Group({Alerting("Short", "lab_gauge > 10", 2 * kMin), Alerting("Firing", "lab_gauge > 10", 0)});
  g.interval_ms = 10 * kSec;
  f.Set({{"a", 50}});
  TimestampMs t = 0;
  {
    RuleManager m(f.opts);
    m.Update({g}, 0);
    for (; t <= 90 * kSec; t += kSec) m.EvalDue(t);
  }
  // Down for 30 s; "Short" had pended about 80 s of its 2 minutes.
  t += 30 * kSec;
  RuleManager m(f.opts);
  m.Update({g}, t);
  auto state = [&](int rule) { return m.Groups()[0].rules[rule].alerts.at(0); };
  while (m.Groups()[0].evaluations < 2) m.EvalDue(t += kSec);
  CHECK(state(1).state == AlertState::kFiring);
  CHECK(state(0).state == AlertState::kPending);
  TimestampMs restarted = m.Groups()[0].last_evaluation;
  while (state(0).state != AlertState::kFiring) m.EvalDue(t += kSec);
  CHECK(state(0).fired_at - restarted <= 50 * kSec);  // about 40 s left, not 2 minutes
  std::filesystem::remove(path);
}

TEST_CASE("rules: new options (external labels, interval) keep pending activeAt and resolved notifications") {
  Fixture f;
  f.Set({{"a", 50}});
  RuleManager m(f.opts);
  GroupDef g = Group({Alerting("Pend", "lab_gauge > 10", 10 * kMin), Alerting("Fire", "lab_gauge > 10", 0)});
  m.Update({g}, 0);
  TimestampMs t = 0;
  for (; t <= kMin; t += kSec) m.EvalDue(f.now = t);
  auto rule = [&](int i) { return m.Groups().at(0).rules.at(i); };
  TimestampMs pending_since = rule(0).alerts.at(0).active_at;
  REQUIRE(rule(1).alerts.at(0).state == AlertState::kFiring);
  // A reload: external labels, URL and the default interval change, the rules do not.
  ManagerOptions next = f.opts;
  next.external_labels = {{"monitor", "lab2"}};
  next.external_url = "http://prom2:9090";
  next.default_interval_ms = 2 * kSec;
  m.SetOptions(next, t);
  m.Update({g}, t);
  CHECK(rule(0).alerts.at(0).active_at == pending_since);
  CHECK(rule(0).alerts.at(0).state == AlertState::kPending);
  CHECK(rule(1).alerts.at(0).state == AlertState::kFiring);
  CHECK(m.Groups()[0].interval_ms == 2 * kSec);
  TimestampMs reloaded = t;
  auto evaluations = m.Groups()[0].evaluations;
  for (; t < reloaded + 10 * kSec; t += kSec) m.EvalDue(f.now = t);
  CHECK(m.Groups()[0].evaluations - evaluations == 5);  // rescheduled on the new 2 s interval
  CHECK(rule(0).alerts.at(0).active_at == pending_since);
  // The condition goes away: the alert that fired before the reload is sent resolved.
  f.sent.clear();
  f.Set({});
  for (TimestampMs end = t + 5 * kSec; t <= end; t += kSec) m.EvalDue(f.now = t);
  REQUIRE(f.sent.size() == 1);
  const Alert& resolved = f.sent[0].second;
  CHECK(LabelValue(resolved.labels, "alertname") == "Fire");
  CHECK(LabelValue(resolved.labels, "monitor") == "lab2");
  CHECK(resolved.ends_at <= f.sent[0].first);
  CHECK(resolved.generator_url.rfind("http://prom2:9090/graph", 0) == 0);
  CHECK(rule(0).alerts.empty());
}

namespace {

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("rules: state file write failures are counted, logged once, and recovery is logged once") {
  auto dir = std::filesystem::temp_directory_path() / ("rules_state_ro_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
  Fixture f;
  f.Set({{"a", 50}});
  f.opts.state_file = (dir / "missing" / "state.json").string();
  RuleManager m(f.opts);
  GroupDef g = Group({Alerting("A", "lab_gauge > 10", 10 * kMin)});
  g.interval_ms = 10 * kSec;
  m.Update({g}, 0);
  TimestampMs t = 0;
  for (; t <= kMin; t += kSec) m.EvalDue(t);
  auto stats = m.StateFile();
  CHECK(stats.write_failures >= 6);
  CHECK(stats.last_success == kNoTime);
  // The directory appears: the next round writes and says so.
  std::filesystem::create_directories(dir / "missing");
  for (TimestampMs end = t + 10 * kSec; t <= end; t += kSec) m.EvalDue(t);
  spdlog::set_default_logger(previous);
  CHECK(m.StateFile().write_failures == stats.write_failures);
  CHECK(m.StateFile().last_success > kMin);
  CHECK(std::filesystem::exists(dir / "missing" / "state.json"));
  auto text = log.str();
  auto count = [&](const std::string& needle) {
    int n = 0;
    for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
    return n;
  };
  CHECK_MESSAGE(count("cannot create " + f.opts.state_file + ".tmp") == 1, text);
  CHECK_MESSAGE(count("writing again") == 1, text);
  std::filesystem::remove_all(dir);
}

TEST_CASE("rules: the state file drops rules no longer loaded and is not rewritten while nothing is active") {
  auto path =
      std::filesystem::temp_directory_path() / ("rules_state_drop_" + std::to_string(::getpid()) + ".json");
  std::filesystem::remove(path);
  Fixture f;
  f.opts.state_file = path.string();
  f.Set({{"a", 50}});
  GroupDef both =
      Group({Alerting("Kept", "lab_gauge > 10", 10 * kMin), Alerting("Gone", "lab_gauge > 10", 10 * kMin)});
  both.interval_ms = 10 * kSec;
  TimestampMs t = 0;
  {
    RuleManager m(f.opts);
    m.Update({both}, 0);
    for (; t <= kMin; t += kSec) m.EvalDue(t);
  }
  REQUIRE(ReadAll(path).find("Gone") != std::string::npos);
  // Restarted with one rule of the two: once restored, the other's saved state is dropped.
  GroupDef one = both;
  one.rules.pop_back();
  RuleManager m(f.opts);
  m.Update({one}, t);
  for (TimestampMs end = t + 30 * kSec; t <= end; t += kSec) m.EvalDue(t);
  auto text = ReadAll(path);
  CHECK(text.find("Kept") != std::string::npos);
  CHECK(text.find("Gone") == std::string::npos);
  // Nothing active: written once with no alerts, then left alone.
  f.Set({});
  for (TimestampMs end = t + 20 * kSec; t <= end; t += kSec) m.EvalDue(t);
  auto empty = nlohmann::json::parse(ReadAll(path));
  CHECK(empty["rules"].empty());
  for (TimestampMs end = t + kMin; t <= end; t += kSec) m.EvalDue(t);
  CHECK(nlohmann::json::parse(ReadAll(path))["saved_at"] == empty["saved_at"]);
  CHECK(m.StateFile().last_success >= t - 10 * kSec);
  std::filesystem::remove(path);
}

}  // namespace rules_engine_test
