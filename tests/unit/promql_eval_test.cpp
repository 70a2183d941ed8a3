// PromQL evaluation through the public API: error texts as promtool prints them, range queries,
// staleness, lookback, options. (Semantics at large: tests/conformance/.)

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <span>
#include <string>
#include <variant>

#include "runbook/promql.h"

namespace promql_eval_test {

namespace pq = runbook::promql;

namespace {

void Load(pq::MemoryStorage& storage, const char* line, runbook::TimestampMs step = 60000) {
  auto desc = pq::ParseSeriesDesc(line);
  REQUIRE(std::holds_alternative<pq::SeriesDesc>(desc));
  const auto& d = std::get<pq::SeriesDesc>(desc);
  for (size_t i = 0; i < d.values.size(); ++i) {
    if (d.values[i]) storage.Append(d.metric, static_cast<runbook::TimestampMs>(i) * step, *d.values[i]);
  }
}

pq::EvalResult Eval(const pq::Queryable& storage, const std::string& text, runbook::TimestampMs t,
                    const pq::EvalOptions& options = {}) {
  auto p = pq::Parse(text);
  REQUIRE_MESSAGE(p.expr, text << ": " << p.error.ToString());
  return pq::EvalInstant(*p.expr, storage, t, options);
}

}  // namespace

TEST_CASE("promql evaluation errors read as promtool's") {
  pq::MemoryStorage s;
  Load(s, "http_requests{job=\"api\", instance=\"0\", group=\"a\"} 0+10x20");
  Load(s, "http_requests{job=\"api\", instance=\"1\", group=\"b\"} 5+3x20");
  Load(s, "http_requests{job=\"web\", instance=\"0\", group=\"a\"} 1+1x20");
  Load(s, "info{job=\"api\", version=\"v1\"} 1x20");
  Load(s, "info{job=\"api\", version=\"v2\"} 1x20");
  Load(s, "other_requests{job=\"api\", instance=\"0\", group=\"a\"} 0+10x20");
  // Captured from `promtool test rules` (2.42) on the same series at 10m.
  const std::pair<const char*, const char*> kCases[] = {
      {"http_requests * on(job) info",
       "found duplicate series for the match group {job=\"api\"} on the right hand-side of the operation: "
       "[{__name__=\"info\", job=\"api\", version=\"v2\"}, {__name__=\"info\", job=\"api\", version=\"v1\"}];"
       "many-to-many matching not allowed: matching labels must be unique on one side"},
      {"info * on(job) group_right http_requests",
       "found duplicate series for the match group {job=\"api\"} on the left hand-side of the operation: "
       "[{__name__=\"info\", job=\"api\", version=\"v2\"}, {__name__=\"info\", job=\"api\", version=\"v1\"}];"
       "many-to-many matching not allowed: matching labels must be unique on one side"},
      {"label_replace(http_requests, \"a\", \"x\", \"job\", \"(\")",
       "invalid regular expression in label_replace(): ("},
      {"label_replace(http_requests, \"1a\", \"x\", \"job\", \"(.*)\")",
       "invalid destination label name in label_replace(): 1a"},
      {"label_join(http_requests, \"1a\", \",\", \"job\")",
       "invalid destination label name in label_join(): 1a"},
      {"label_join(http_requests, \"a\", \",\", \"1job\")",
       "invalid source label name in label_join(): 1job"},
      {"holt_winters(http_requests[5m], 2, 0.5)",
       "invalid smoothing factor. Expected: 0 < sf < 1, got: 2.000000"},
      {"holt_winters(http_requests[5m], 0.5, 0)",
       "invalid trend factor. Expected: 0 < tf < 1, got: 0.000000"},
      {"count_values(\"1x\", http_requests)", "invalid label name \"1x\""},
      {"{__name__=~\"http_requests|other_requests\"} + 1",
       "vector cannot contain metrics with the same labelset"},
      {"abs({__name__=~\"http_requests|other_requests\"})",
       "vector cannot contain metrics with the same labelset"},
      {"rate({__name__=~\"http_requests|other_requests\"}[5m])",
       "vector cannot contain metrics with the same labelset"},
  };
  for (const auto& [expr, want] : kCases) {
    CAPTURE(std::string(expr));
    auto r = Eval(s, expr, 600000);
    REQUIRE(r.error);
    CHECK(r.error->ToString() == want);
  }
  // One side empty: nothing matches, so duplicates on the other side are no error.
  CHECK(!Eval(s, "http_requests * on(job) nonexistent", 600000).error);
}

TEST_CASE("promql instant selectors look back 5 minutes and honour staleness markers") {
  pq::MemoryStorage s;
  Load(s, "a 1 _ _ _ _ _ _ _ _ _", 60000);
  Load(s, "b 1 2 stale", 60000);
  CHECK(Eval(s, "a", 300000).value.vector.size() == 1);  // exactly 5m old: still selected
  CHECK(Eval(s, "a", 300001).value.vector.empty());
  CHECK(Eval(s, "b", 60000).value.vector.size() == 1);
  CHECK(Eval(s, "b", 120000).value.vector.empty());  // the stale marker hides it at once
  auto at = Eval(s, "a", 240000);
  REQUIRE(at.value.vector.size() == 1);
  CHECK(at.value.vector[0].t == 240000);  // result timestamps are the evaluation time
  CHECK(Eval(s, "timestamp(a)", 240000).value.vector[0].v == 0);
}

TEST_CASE("promql range queries return one point per step; scalars become an unlabelled series") {
  pq::MemoryStorage s;
  Load(s, "m{x=\"1\"} 0+1x10");
  auto p = pq::Parse("m * 2");
  auto r = pq::EvalRange(*p.expr, s, 60000, 180000, 60000);
  REQUIRE(!r.error);
  REQUIRE(r.value.matrix.size() == 1);
  CHECK(r.value.matrix[0].metric == runbook::Labels{{"x", "1"}});
  REQUIRE(r.value.matrix[0].points.size() == 3);
  CHECK(r.value.matrix[0].points[2].t == 180000);
  CHECK(r.value.matrix[0].points[2].v == 6);
  auto scalar = pq::EvalRange(*pq::Parse("time()").expr, s, 0, 120000, 60000);
  REQUIRE(scalar.value.matrix.size() == 1);
  CHECK(scalar.value.matrix[0].metric.empty());
  CHECK(scalar.value.matrix[0].points[1].v == 60);
  auto matrix = pq::EvalRange(*pq::Parse("m[5m]").expr, s, 0, 120000, 60000);
  REQUIRE(matrix.error);
  CHECK(matrix.error->ToString() ==
        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector");
}

TEST_CASE("promql subqueries without a step use EvalOptions::default_step_ms") {
  pq::MemoryStorage s;
  Load(s, "m 0+1x20");
  pq::EvalOptions options;
  options.default_step_ms = 120000;
  CHECK(Eval(s, "count_over_time(m[10m:])", 600000).value.vector[0].v == 11);          // 0, 1m, ... 10m
  CHECK(Eval(s, "count_over_time(m[10m:])", 600000, options).value.vector[0].v == 6);  // 0, 2m, ... 10m
}

TEST_CASE("promql evaluation stops at EvalOptions::max_samples") {
  pq::MemoryStorage s;
  Load(s, "m 0+1x100");
  pq::EvalOptions options;
  options.max_samples = 50;
  auto r = Eval(s, "sum_over_time(m[100m])", 6000000, options);
  REQUIRE(r.error);
  CHECK(r.error->message == "query processing would load too many samples into memory in query execution");
  CHECK(!Eval(s, "sum_over_time(m[10m])", 6000000, options).error);
}

TEST_CASE("promql staleness marker is Prometheus' NaN bit pattern") {
  CHECK(std::isnan(pq::StaleMarker()));
  CHECK(pq::IsStaleMarker(pq::StaleMarker()));
  CHECK(!pq::IsStaleMarker(std::nan("")));
  CHECK(!pq::IsStaleMarker(1.0));
}

TEST_CASE("promql regression and _over_time arithmetic match Prometheus to the last bit") {
  pq::MemoryStorage s;
  Load(s, "big 1e15+0.3x40 1e15+0.7x40", 15000);
  Load(s, "small 0.1+0.7x40 3.3-0.11x40", 15000);
  // Captured from `promtool test rules` (2.42) at 10m; these differ without compensated sums.
  const std::pair<const char*, double> kCases[] = {
      {"deriv(big[10m])", 1.7443283004258615E-02},
      {"predict_linear(big[10m], 3600)", 1.0000000000000731E+15},
      {"deriv(small[10m])", 4.666666666666664E-02},
      {"predict_linear(small[7m], 3600)", 1.961E+02},
      {"avg_over_time(small[10m])", 1.4099999999999998E+01},
      {"sum_over_time(big[10m])", 4.100000000000021E+16},
      {"stddev_over_time(small[10m])", 8.282511696339457E+00},
  };
  for (const auto& [expr, want] : kCases) {
    CAPTURE(std::string(expr));
    auto r = Eval(s, expr, 600000);
    REQUIRE(r.value.vector.size() == 1);
    CHECK(r.value.vector[0].v == want);
  }
}

namespace {

// A store that ignores the window and hands over every point.
class SloppyStore final : public pq::Queryable {
 public:
  void Select(const std::vector<pq::Matcher>&, runbook::TimestampMs, runbook::TimestampMs,
              const SelectFunc& fn) const override {
    static const pq::Point kPoints[] = {{0, 1}, {60000, 2}, {120000, 3}, {600000, 4}};
    fn({{"__name__", "m"}}, kPoints);
  }
};

}  // namespace

TEST_CASE("promql selectors use only the points in their window, whatever the store passes") {
  SloppyStore store;
  CHECK(Eval(store, "m", 130000).value.vector[0].v == 3);
  CHECK(Eval(store, "m", 500000).value.vector.empty());  // newest point in range is 5m+ old
  CHECK(Eval(store, "count_over_time(m[1m])", 120000).value.vector[0].v == 2);
}

TEST_CASE("promql Selectors reports how far back each selector reads") {
  auto uses = pq::Selectors(
      *pq::Parse("rate(a[10m] offset 1h) / b + max_over_time(c[30m:1m] offset 5m) + d @ 100 + e offset -10m")
           .expr);
  REQUIRE(uses.size() == 5);
  CHECK(uses[0].matchers.back().value() == "a");
  CHECK(uses[0].lookback_ms == 70 * 60000);  // 10m range + 1h offset
  CHECK(uses[1].lookback_ms == 5 * 60000);   // instant: the lookback
  CHECK(uses[2].lookback_ms == 40 * 60000);  // 30m subquery + 5m offset + 5m lookback
  CHECK(!uses[2].pinned);
  CHECK(uses[3].pinned);
  CHECK(uses[3].lookback_ms == 5 * 60000);
  CHECK(uses[4].lookback_ms == 0);  // reads after the evaluation time only
}

}  // namespace promql_eval_test
