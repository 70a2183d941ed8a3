// EvalCache (label sets of aggregation groups reused from one evaluation to the next) and the
// binary operators' reuse of the many side's label set: results must equal the uncached
// evaluation's whatever the cache held, and the sets are shared only where labels are equal.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "runbook/promql.h"
#include "runbook/rules.h"

namespace promql_eval_cache_test {

using namespace runbook;
namespace pq = runbook::promql;

namespace {

void Load(pq::MemoryStorage& storage, std::initializer_list<const char*> lines) {
  for (const char* line : lines) {
    auto desc = pq::ParseSeriesDesc(line);
    REQUIRE(std::holds_alternative<pq::SeriesDesc>(desc));
    const auto& d = std::get<pq::SeriesDesc>(desc);
    for (size_t i = 0; i < d.values.size(); ++i)
      if (d.values[i]) storage.Append(d.metric, static_cast<TimestampMs>(i) * 60000, *d.values[i]);
  }
}

pq::Vector Eval(const pq::Expr& expr, const pq::Queryable& storage, pq::EvalCache* cache) {
  pq::EvalOptions options;
  options.cache = cache;
  auto r = pq::EvalInstant(expr, storage, 2 * 60000, options);
  REQUIRE_MESSAGE(!r.error, r.error->ToString());
  REQUIRE(r.value.type == pq::ValueType::kVector);
  return r.value.vector;
}

std::shared_ptr<const pq::Expr> Parse(const std::string& text) {
  auto p = pq::Parse(text);
  REQUIRE_MESSAGE(p.expr, text << ": " << p.error.ToString());
  return p.expr;
}

const pq::Sample* With(const pq::Vector& v, const Labels& metric) {
  for (const auto& s : v)
    if (s.metric == metric) return &s;
  return nullptr;
}

// Labels → value (NaN as a string, so that equal NaNs compare equal). Checks each set's hash.
std::map<Labels, std::string> Contents(const pq::Vector& v) {
  std::map<Labels, std::string> out;
  for (const auto& s : v) {
    CHECK(out.count(s.metric) == 0);
    CHECK(s.metric.hash() == LabelsHash(Labels(s.metric.get())));
    out[s.metric] = std::isnan(s.v) ? "NaN" : std::to_string(s.v);
  }
  return out;
}

}  // namespace

TEST_CASE("promql cache: a group with last evaluation's labels reuses its set, others are built, none leak") {
  pq::MemoryStorage first, second;
  Load(first, {"x{a=\"1\", b=\"p\"} 1x3", "x{a=\"1\", b=\"q\"} 2x3", "x{a=\"2\", b=\"p\"} 4x3"});
  Load(second, {"x{a=\"1\", b=\"p\"} 10x3", "x{a=\"3\", b=\"q\"} 20x3"});
  auto expr = Parse("sum by (a) (x)");
  pq::EvalCache cache;
  const pq::Vector r1 = Eval(*expr, first, &cache);
  REQUIRE(r1.size() == 2);
  CHECK(cache.label_sets() == 2);
  const pq::Sample* one = With(r1, {{"a", "1"}});
  REQUIRE(one);
  CHECK(one->v == 3);

  const pq::Vector r2 = Eval(*expr, first, &cache);
  CHECK(Contents(r2) == Contents(r1));
  for (const auto& s : r2) CHECK(s.metric.SameAs(With(r1, s.metric)->metric));
  // Without the cache every evaluation builds its own sets (what the checks above tell apart).
  const pq::Vector uncached = Eval(*expr, first, nullptr);
  CHECK(Contents(uncached) == Contents(r1));
  CHECK_FALSE(With(uncached, {{"a", "1"}})->metric.SameAs(one->metric));

  // Other series: {a="1"} is reused, {a="3"} is new, last round's {a="2"} is not in the result.
  const pq::Vector r3 = Eval(*expr, second, &cache);
  CHECK(Contents(r3) == std::map<Labels, std::string>{{{{"a", "1"}}, std::to_string(10.0)},
                                                      {{{"a", "3"}}, std::to_string(20.0)}});
  CHECK(With(r3, {{"a", "1"}})->metric.SameAs(one->metric));
  CHECK(With(r3, {{"a", "3"}})->metric.hash() == LabelSet(Labels{{"a", "3"}}).hash());
  CHECK(cache.label_sets() == 2);
  // The cache now holds only the last evaluation's groups: {a="2"} comes back as a new set.
  const pq::Vector r4 = Eval(*expr, first, &cache);
  CHECK(Contents(r4) == Contents(r1));
  CHECK_FALSE(With(r4, {{"a", "2"}})->metric.SameAs(With(r2, {{"a", "2"}})->metric));
  CHECK(With(r4, {{"a", "1"}})->metric.SameAs(one->metric));
}

TEST_CASE("promql cache: results equal the uncached evaluation's for every aggregation and shared caches") {
  pq::MemoryStorage a, b;
  Load(a, {"x{job=\"api\", instance=\"0\", group=\"canary\"} 1 2 3", "x{job=\"api\", instance=\"1\"} 4 5 6",
           "x{job=\"web\", instance=\"0\", group=\"canary\"} 7 8 NaN", "y{job=\"api\", instance=\"0\"} 1 1 1",
           "y{job=\"web\", instance=\"0\"} 2 2 2"});
  Load(b, {"x{job=\"api\", instance=\"0\"} 3 3 3", "x{job=\"db\", instance=\"2\", group=\"canary\"} 9 9 9",
           "y{job=\"db\", instance=\"2\"} 5 5 5", "y{job=\"api\", instance=\"0\", group=\"canary\"} 1 1 1"});
  const char* kExprs[] = {
      "sum by (job) (x)",
      "avg without (instance) (x)",
      "max by (group) (x)",
      "count(x)",
      "sum(sum by (job, instance) (x))",
      "count_values(\"value\", x)",
      "topk by (job) (1, x)",
      "quantile by (job) (0.5, x)",
      "stddev without () (x)",
      "sum by (job) (x) / on(job) sum by (job) (y)",
      "sum by (job) (rate(x[5m]))",
      "max_over_time(sum by (job) (x)[2m:1m])",
      "sum by (job) (x) > 1 or sum by (instance) (y)",
  };
  // One cache for all expressions, and another per expression, alternating the data.
  pq::EvalCache shared;
  for (const char* text : kExprs) {
    CAPTURE(text);
    auto expr = Parse(text);
    pq::EvalCache own;
    for (const pq::MemoryStorage* storage : {&a, &b, &b, &a, &a}) {
      const auto want = Contents(Eval(*expr, *storage, nullptr));
      CHECK(Contents(Eval(*expr, *storage, &own)) == want);
      CHECK(Contents(Eval(*expr, *storage, &shared)) == want);
    }
  }
  // A copy starts empty (and still evaluates correctly); a moved-from cache can be reused.
  pq::EvalCache copy = shared;
  CHECK(shared.label_sets() > 0);
  CHECK(copy.label_sets() == 0);
  pq::EvalCache moved = std::move(shared);
  CHECK(moved.label_sets() > 0);
  shared = pq::EvalCache();
  auto expr = Parse("sum by (job) (x)");
  CHECK(Contents(Eval(*expr, a, &shared)) == Contents(Eval(*expr, a, nullptr)));
  moved.Clear();
  CHECK(moved.label_sets() == 0);
}

TEST_CASE(
    "promql aggregations over a selector or a function of one (streamed) equal those over any expression") {
  pq::MemoryStorage s;
  Load(s, {"x{job=\"api\", instance=\"0\"} 1 3 6", "x{job=\"api\", instance=\"1\"} 4 5 9",
           "x{job=\"web\", instance=\"0\"} 7 8 NaN", "y{job=\"api\", instance=\"0\"} 1 1 4",
           "y{job=\"web\", instance=\"1\"} 2 2 2"});
  // sort() is a whole-vector function: its argument is evaluated to a vector first.
  const std::pair<const char*, const char*> kSame[] = {
      {"sum by (__name__, job) (x)", "sum by (__name__, job) (sort(x))"},
      {"count by (__name__) ({__name__=~\"x|y\"})", "count by (__name__) (sort({__name__=~\"x|y\"}))"},
      {"sum by (__name__, job) (rate(x[5m]))", "sum by (__name__, job) (sort(rate(x[5m])))"},
      {"max without (instance) (max_over_time(x[5m]))",
       "max without (instance) (sort(max_over_time(x[5m])))"},
      {"count by (__name__) (last_over_time({__name__=~\"x|y\"}[5m]))",
       "count by (__name__) (sort(last_over_time({__name__=~\"x|y\"}[5m])))"},
      {"avg by (instance) (quantile_over_time(0.5, x[5m]))",
       "avg by (instance) (sort(quantile_over_time(0.5, x[5m])))"},
      {"group by (__name__, instance) (changes({__name__=~\"x|y\", job=\"web\"}[5m]))",
       "group by (__name__, instance) (sort(changes({__name__=~\"x|y\", job=\"web\"}[5m])))"},
      {"stddev((x))", "stddev(sort(x))"},
      // Comparisons with a number filter streamed samples too.
      {"x > 4", "sort(x) > 4"},
      {"(5 <= ((x)))", "5 <= sort(x)"},
      {"rate(x[5m]) > 0.01", "sort(rate(x[5m])) > 0.01"},
      {"0.01 < rate(x[5m])", "0.01 < sort(rate(x[5m]))"},
      {"last_over_time({__name__=~\"x|y\"}[5m]) != 2", "sort(last_over_time({__name__=~\"x|y\"}[5m])) != 2"},
      {"last_over_time(x[5m]) == 9", "sort(last_over_time(x[5m])) == 9"},
      {"x > bool 4", "sort(x) > bool 4"},
  };
  pq::EvalCache cache;
  for (const auto& [streamed, whole] : kSame) {
    CAPTURE(streamed);
    const auto want = Contents(Eval(*Parse(whole), s, nullptr));
    CHECK_FALSE(want.empty());
    CHECK(Contents(Eval(*Parse(streamed), s, nullptr)) == want);
    CHECK(Contents(Eval(*Parse(streamed), s, &cache)) == want);
  }
  // Names dropped from several metrics collide: the error, as without the aggregation.
  for (const char* text : {"sum(rate({__name__=~\"x|y\"}[5m]))", "rate({__name__=~\"x|y\"}[5m])",
                           "rate({__name__=~\"x|y\"}[5m]) > 0"}) {
    CAPTURE(text);
    auto r = pq::EvalInstant(*Parse(text), s, 2 * 60000);
    REQUIRE(r.error);
    CHECK(r.error->message == "vector cannot contain metrics with the same labelset");
  }
  // Streamed samples count toward max_samples.
  pq::EvalOptions few;
  few.max_samples = 2;
  for (const char* text : {"sum(x)", "sum(rate(x[5m]))", "x > 100", "rate(x[5m]) > 100"}) {
    CAPTURE(text);
    auto r = pq::EvalInstant(*Parse(text), s, 2 * 60000, few);
    REQUIRE(r.error);
    CHECK(r.error->message == "query processing would load too many samples into memory in query execution");
  }
}

TEST_CASE("promql binary operators keep the many side's label set when they keep its labels") {
  pq::MemoryStorage s;
  Load(s, {"x{a=\"1\", b=\"p\"} 5x3", "x{a=\"2\", b=\"q\"} 1x3", "y{a=\"1\", b=\"p\"} 2x3",
           "y{a=\"2\", b=\"q\"} 2x3", "t{a=\"1\"} 3x3", "t{a=\"2\"} 3x3"});
  const pq::Vector x = Eval(*Parse("x"), s, nullptr);
  const pq::Vector y = Eval(*Parse("y"), s, nullptr);
  REQUIRE(x.size() == 2);
  const LabelSet& x1 = With(x, {{"__name__", "x"}, {"a", "1"}, {"b", "p"}})->metric;
  const LabelSet& x2 = With(x, {{"__name__", "x"}, {"a", "2"}, {"b", "q"}})->metric;
  const LabelSet& y1 = With(y, {{"__name__", "y"}, {"a", "1"}, {"b", "p"}})->metric;

  auto only = [&](const char* text) {
    CAPTURE(text);
    const pq::Vector v = Eval(*Parse(text), s, nullptr);
    REQUIRE(v.size() == 1);
    return v.front();
  };
  // Comparisons keep the name: the selected set itself.
  CHECK(only("x > y").metric.SameAs(x1));
  CHECK(only("x > on(a) group_left() t").metric.SameAs(x1));
  CHECK(only("y < x").metric.SameAs(y1));
  // Arithmetic drops it: the selected set's cached set without __name__.
  CHECK(only("x / y > 2").metric.SameAs(x1.WithoutName()));
  CHECK(only("x * on(a) group_left t > 10").metric.SameAs(x1.WithoutName()));
  CHECK(only("t * on(a) group_right x < 7").metric.SameAs(x2.WithoutName()));
  // ignoring(b) with b present, on(...), group_left(b): labels change, a new set with the result.
  const pq::Sample ign = only("x / ignoring(b) y > 2");
  CHECK(ign.metric == Labels{{"a", "1"}});
  const pq::Sample on = only("x > on(a, b) y");
  CHECK(on.metric == Labels{{"a", "1"}, {"b", "p"}});
  CHECK_FALSE(on.metric.SameAs(x1));
  CHECK(only("t * on(a) group_left(b) x > 10").metric == Labels{{"a", "1"}, {"b", "p"}});
  // ignoring a label the sample does not have keeps the set.
  CHECK(only("x / ignoring(zzz) y > 2").metric.SameAs(x1.WithoutName()));
}

TEST_CASE(
    "rules: recording and alerting rules over aggregations stay right round after round and across a "
    "reload") {
  pq::MemoryStorage s;
  rules::ManagerOptions opts;
  opts.queryable = &s;
  struct Captured : rules::Appender {
    std::vector<std::tuple<Labels, TimestampMs, double>> samples;
    void Append(const LabelSet& m, TimestampMs t, double v) override { samples.emplace_back(m, t, v); }
  } out;
  opts.appender = &out;
  opts.default_interval_ms = 60000;
  auto rule = [](rules::RuleDef::Kind kind, std::string name, std::string expr) {
    rules::RuleDef r;
    r.kind = kind;
    r.name = std::move(name);
    r.expr_text = std::move(expr);
    r.expr = pq::Parse(r.expr_text).expr;
    REQUIRE(r.expr);
    return r;
  };
  auto group = [&](std::string expr) {
    rules::GroupDef g;
    g.file = "cache.yml";
    g.name = "g";
    g.rules = {rule(rules::RuleDef::Kind::kRecording, "job:x:sum", expr),
               rule(rules::RuleDef::Kind::kAlerting, "Big", expr + " > 5")};
    return g;
  };
  // Per round: the job each instance belongs to.
  const std::vector<std::vector<std::pair<std::string, std::string>>> rounds = {
      {{"0", "api"}, {"1", "api"}, {"2", "web"}},
      {{"0", "api"}, {"1", "web"}, {"2", "web"}},
      {{"0", "db"}, {"1", "web"}},
  };
  auto load = [&](std::size_t round) {
    s.Clear();
    for (const auto& [instance, job] : rounds[round])
      s.Append({{"__name__", "x"}, {"instance", instance}, {"job", job}}, TimestampMs(round) * 60000,
               double(std::stoi(instance) + 2));
  };
  auto recorded = [&](TimestampMs ts) {
    std::map<Labels, double> got;
    for (const auto& [m, t, v] : out.samples)
      if (t == ts && LabelValue(m, "__name__") == "job:x:sum" && !pq::IsStaleMarker(v)) got[m] = v;
    return got;
  };
  auto alerts = [](const rules::RuleGroup& g) {
    std::set<Labels> labels;
    const rules::GroupStatus status = g.Status();
    for (const auto& a : status.rules[1].alerts)
      if (a.state != rules::AlertState::kInactive) labels.insert(a.labels);
    return labels;
  };
  auto old = std::make_unique<rules::RuleGroup>(group("sum by (job) (x)"), &opts);
  load(0);
  old->Eval(0);
  CHECK(recorded(0) == std::map<Labels, double>{{{{"__name__", "job:x:sum"}, {"job", "api"}}, 5},
                                                {{{"__name__", "job:x:sum"}, {"job", "web"}}, 4}});
  load(1);
  old->Eval(60000);
  CHECK(recorded(60000) == std::map<Labels, double>{{{{"__name__", "job:x:sum"}, {"job", "api"}}, 2},
                                                    {{{"__name__", "job:x:sum"}, {"job", "web"}}, 7}});
  CHECK(alerts(*old) == std::set<Labels>{Labels{{"alertname", "Big"}, {"job", "web"}}});
  // Reload with another grouping: the new rule's groups, nothing of the old expression's.
  auto fresh = std::make_unique<rules::RuleGroup>(group("sum by (job, instance) (x)"), &opts);
  fresh->CopyState(*old);
  old.reset();
  fresh->Eval(60000 + 30000);
  CHECK(recorded(90000) ==
        std::map<Labels, double>{{{{"__name__", "job:x:sum"}, {"instance", "0"}, {"job", "api"}}, 2},
                                 {{{"__name__", "job:x:sum"}, {"instance", "1"}, {"job", "web"}}, 3},
                                 {{{"__name__", "job:x:sum"}, {"instance", "2"}, {"job", "web"}}, 4}});
  CHECK(alerts(*fresh).empty());
  load(2);
  fresh->Eval(120000);
  CHECK(recorded(120000) ==
        std::map<Labels, double>{{{{"__name__", "job:x:sum"}, {"instance", "0"}, {"job", "db"}}, 2},
                                 {{{"__name__", "job:x:sum"}, {"instance", "1"}, {"job", "web"}}, 3}});
}

}  // namespace promql_eval_cache_test
