// EvalCache's memo of input series: an aggregation remembers which group each input set went
// to, a binary operator where each probed set matched. The same shared set at the same place
// skips reading labels; every other change (a set replaced, added, removed, its address reused,
// another expression at the same address) must give exactly the uncached evaluation's result.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runbook/promql.h"

namespace promql_input_memo_test {

using namespace runbook;
namespace pq = runbook::promql;

namespace {

constexpr TimestampMs kT = 10 * 60 * 1000;

// Yields its series in list order, one point each at kT: the test decides which shared sets
// come back, where, and with which value.
struct FakeStore final : pq::Queryable {
  std::vector<std::pair<LabelSet, double>> series;
  void Select(const std::vector<pq::Matcher>& matchers, TimestampMs, TimestampMs,
              const SelectFunc& fn) const override {
    for (const auto& [metric, v] : series) {
      bool ok = true;
      for (const auto& m : matchers) ok = ok && m.Matches(LabelValue(metric, m.name()));
      if (!ok) continue;
      const pq::Point p{kT, v};
      fn(metric, std::span<const pq::Point>(&p, 1));
    }
  }
};

LabelSet Set(Labels labels) {
  CanonicalLabels(labels);
  return LabelSet(std::move(labels));
}

std::shared_ptr<const pq::Expr> Parse(const std::string& text) {
  auto p = pq::Parse(text);
  REQUIRE_MESSAGE(p.expr, text << ": " << p.error.ToString());
  return p.expr;
}

// Labels → value, or the error text under the key {error="..."}.
std::map<Labels, double> Eval(const pq::Expr& expr, const pq::Queryable& store, pq::EvalCache* cache) {
  pq::EvalOptions options;
  options.cache = cache;
  auto r = pq::EvalInstant(expr, store, kT, options);
  if (r.error) return {{Labels{{"error", r.error->message}}, 0}};
  std::map<Labels, double> out;
  for (const auto& s : r.value.vector) {
    CHECK(out.count(s.metric) == 0);
    out[s.metric] = std::isnan(s.v) ? -12345 : s.v;
  }
  return out;
}

// Evaluates with the cache and without; both must agree. Returns the result.
std::map<Labels, double> Both(const pq::Expr& expr, const pq::Queryable& store, pq::EvalCache& cache) {
  const auto want = Eval(expr, store, nullptr);
  const auto got = Eval(expr, store, &cache);
  CHECK(got == want);
  return got;
}

}  // namespace

TEST_CASE("promql memo: a set replaced at the same place, added or removed anywhere regroups correctly") {
  FakeStore store;
  const LabelSet a = Set({{"__name__", "x"}, {"job", "a"}, {"i", "1"}});
  const LabelSet b = Set({{"__name__", "x"}, {"job", "b"}, {"i", "2"}});
  const LabelSet c = Set({{"__name__", "x"}, {"job", "b"}, {"i", "3"}});
  const LabelSet d = Set({{"__name__", "x"}, {"job", "c"}, {"i", "4"}});
  const LabelSet e = Set({{"__name__", "x"}, {"job", "c"}, {"i", "5"}});
  auto expr = Parse("sum by (job) (x)");
  pq::EvalCache cache;
  using R = std::map<Labels, double>;

  store.series = {{a, 1}, {b, 2}, {c, 4}, {d, 8}, {e, 16}};
  CHECK(Both(*expr, store, cache) == R{{{{"job", "a"}}, 1}, {{{"job", "b"}}, 6}, {{{"job", "c"}}, 24}});
  CHECK(cache.inputs() == 5);
  // The same sets again, new values: every input found by address.
  store.series = {{a, 10}, {b, 20}, {c, 40}, {d, 80}, {e, 160}};
  CHECK(Both(*expr, store, cache) == R{{{{"job", "a"}}, 10}, {{{"job", "b"}}, 60}, {{{"job", "c"}}, 240}});

  // b's place now holds another set of another group: its labels decide, not its place.
  const LabelSet b2 = Set({{"__name__", "x"}, {"job", "c"}, {"i", "2"}});
  store.series = {{a, 1}, {b2, 2}, {c, 4}, {d, 8}, {e, 16}};
  CHECK(Both(*expr, store, cache) == R{{{{"job", "a"}}, 1}, {{{"job", "b"}}, 4}, {{{"job", "c"}}, 26}});
  // One removed in the middle, then a block of them, then one added in the middle and one at
  // the front; the groups change with them.
  store.series = {{a, 1}, {c, 4}, {d, 8}, {e, 16}};
  CHECK(Both(*expr, store, cache) == R{{{{"job", "a"}}, 1}, {{{"job", "b"}}, 4}, {{{"job", "c"}}, 24}});
  store.series = {{a, 1}, {e, 16}};
  CHECK(Both(*expr, store, cache) == R{{{{"job", "a"}}, 1}, {{{"job", "c"}}, 16}});
  CHECK(cache.inputs() == 2);  // vanished series are not held past the next evaluation
  const LabelSet f = Set({{"__name__", "x"}, {"job", "d"}, {"i", "6"}});
  store.series = {{f, 32}, {a, 1}, {b, 2}, {e, 16}};
  CHECK(Both(*expr, store, cache) ==
        R{{{{"job", "a"}}, 1}, {{{"job", "b"}}, 2}, {{{"job", "c"}}, 16}, {{{"job", "d"}}, 32}});
  // Another order altogether.
  store.series = {{e, 16}, {d, 8}, {c, 4}, {b, 2}, {a, 1}, {f, 32}};
  CHECK(Both(*expr, store, cache) ==
        R{{{{"job", "a"}}, 1}, {{{"job", "b"}}, 6}, {{{"job", "c"}}, 24}, {{{"job", "d"}}, 32}});
  store.series.clear();
  CHECK(Both(*expr, store, cache).empty());
  CHECK(cache.inputs() == 0);
  store.series = {{a, 1}, {b, 2}};
  CHECK(Both(*expr, store, cache) == R{{{{"job", "a"}}, 1}, {{{"job", "b"}}, 2}});
}

TEST_CASE("promql memo: a freed set's address taken by another set is not mistaken for it") {
  using R = std::map<Labels, double>;
  // Whether this allocator hands a freed set's block to the next set (what a memo of bare
  // addresses would fall for).
  {
    auto first = std::make_optional(Set({{"__name__", "x"}, {"job", "a"}, {"i", "1"}}));
    const void* was = first->identity();
    first.reset();
    const LabelSet second = Set({{"__name__", "x"}, {"job", "b"}, {"i", "1"}});
    if (second.identity() != was) MESSAGE("the allocator did not reuse the address: weaker test");
  }
  FakeStore store;
  auto expr = Parse("sum by (job) (x)");
  auto cmp = Parse("x > on(i) group_left() t");
  pq::EvalCache cache, cmp_cache;
  const LabelSet t = Set({{"__name__", "t"}, {"i", "1"}});
  store.series = {{Set({{"__name__", "x"}, {"job", "a"}, {"i", "1"}}), 1}, {t, 0}};
  CHECK(Both(*expr, store, cache) == R{{{{"job", "a"}}, 1}});
  CHECK(Both(*cmp, store, cmp_cache) == R{{{{"__name__", "x"}, {"i", "1"}, {"job", "a"}}, 1}});
  store.series.erase(store.series.begin());  // the store lets go of it; the caches still hold it
  store.series.insert(store.series.begin(), {Set({{"__name__", "x"}, {"job", "b"}, {"i", "2"}}), 2});
  CHECK(Both(*expr, store, cache) == R{{{{"job", "b"}}, 2}});
  CHECK(Both(*cmp, store, cmp_cache).empty());
}

TEST_CASE("promql memo: without, __name__ dropped or kept, and the aggregations that group by value") {
  using R = std::map<Labels, double>;
  FakeStore store;
  const LabelSet a = Set({{"__name__", "x"}, {"job", "a"}, {"i", "1"}});
  const LabelSet b = Set({{"__name__", "x"}, {"job", "a"}, {"i", "2"}});
  const LabelSet c = Set({{"__name__", "y"}, {"job", "b"}, {"i", "1"}});
  pq::EvalCache cache;
  auto without = Parse("sum without (i) (x)");
  auto by_name = Parse("count by (__name__) ({job=~\".+\"})");
  auto by_name_dropped = Parse("count by (__name__) (max_over_time(x[5m]))");
  auto values = Parse("count_values(\"v\", x)");
  auto top = Parse("topk by (job) (1, x)");
  auto quantile = Parse("quantile by (job) (0.5, x)");
  // Values change, sets stay: count_values regroups by value, topk picks another sample.
  store.series = {{a, 1}, {b, 1}, {c, 5}};
  CHECK(Both(*without, store, cache) == R{{{{"job", "a"}}, 2}});
  CHECK(Both(*by_name, store, cache) == R{{{{"__name__", "x"}}, 2}, {{{"__name__", "y"}}, 1}});
  CHECK(Both(*by_name_dropped, store, cache) == R{{{}, 2}});
  CHECK(Both(*values, store, cache) == R{{{{"v", "1"}}, 2}});
  CHECK(Both(*top, store, cache).size() == 1);
  CHECK(Both(*quantile, store, cache) == R{{{{"job", "a"}}, 1}});
  store.series = {{a, 1}, {b, 3}, {c, 5}};
  CHECK(Both(*without, store, cache) == R{{{{"job", "a"}}, 4}});
  CHECK(Both(*values, store, cache) == R{{{{"v", "1"}}, 1}, {{{"v", "3"}}, 1}});
  CHECK(Both(*top, store, cache) == R{{{{"__name__", "x"}, {"i", "2"}, {"job", "a"}}, 3}});
  CHECK(Both(*quantile, store, cache) == R{{{{"job", "a"}}, 2}});
  store.series = {{a, 7}, {b, 3}};
  CHECK(Both(*top, store, cache) == R{{{{"__name__", "x"}, {"i", "1"}, {"job", "a"}}, 7}});
  CHECK(Both(*by_name, store, cache) == R{{{{"__name__", "x"}}, 2}});
  CHECK(Both(*by_name_dropped, store, cache) == R{{{}, 2}});
}

TEST_CASE("promql memo: a cache shared by expressions that reuse one another's addresses stays right") {
  FakeStore store;
  store.series = {{Set({{"__name__", "x"}, {"job", "a"}, {"i", "1"}}), 1},
                  {Set({{"__name__", "x"}, {"job", "b"}, {"i", "1"}}), 2},
                  {Set({{"__name__", "x"}, {"job", "b"}, {"i", "2"}}), 4},
                  {Set({{"__name__", "t"}, {"job", "b"}}), 3},
                  {Set({{"__name__", "t"}, {"i", "1"}}), 1},
                  {Set({{"__name__", "u"}, {"job", "a"}, {"i", "1"}}), 0}};
  // Pairs alike in shape that group or match differently: parsed anew each time, one may land
  // where the other was, with the other's memo in the shared cache.
  const char* kExprs[] = {
      "sum by (job) (x)",
      "sum by (i) (x)",
      "sum without (job) (x)",
      "sum by (__name__) (x)",
      "sum by (__name__) (max_over_time(x[5m]))",
      "count_values(\"job\", x)",
      "sum(x)",
      "count_values(\"v\", x)",
      "group(x)",
      "count_values(\"v\", x)",
      "x > on(job) group_left() t",
      "x > on(i) group_left() t",
      "x + on(job) group_left() t",
      "x + on(i) group_left() t",
      "x > ignoring(i) u",
      "x > u",
      "x and on(job) t",
      "x unless on(job) t",
      "x or on(i) t",
      "t + on(job) group_right() x",
      "t + on(job) x",
  };
  pq::EvalCache shared;
  int reused = 0;
  std::vector<const void*> seen;
  for (int round = 0; round < 4; ++round) {
    for (const char* text : kExprs) {
      CAPTURE(text);
      auto expr = Parse(text);
      for (const void* p : seen) reused += p == expr.get();
      seen.push_back(expr.get());
      Both(*expr, store, shared);
      Both(*expr, store, shared);
    }
  }
  MESSAGE("expressions parsed at a freed expression's address: " << reused);
}

TEST_CASE("promql memo: vector matching follows changes on either side, and errors stay errors") {
  using R = std::map<Labels, double>;
  FakeStore store;
  const LabelSet x1 = Set({{"__name__", "x"}, {"target", "p1"}, {"db", "a"}});
  const LabelSet x2 = Set({{"__name__", "x"}, {"target", "p1"}, {"db", "b"}});
  const LabelSet x3 = Set({{"__name__", "x"}, {"target", "p2"}, {"db", "a"}});
  const LabelSet t1 = Set({{"__name__", "t"}, {"target", "p1"}});
  const LabelSet t2 = Set({{"__name__", "t"}, {"target", "p2"}});
  const LabelSet y1 = Set({{"__name__", "y"}, {"target", "p1"}, {"db", "a"}});
  const LabelSet y3 = Set({{"__name__", "y"}, {"target", "p2"}, {"db", "a"}});
  auto many = Parse("x > on(target) group_left() t");
  auto one = Parse("x > y");
  auto ored = Parse("t{target=\"p1\"} * 0 + 1 or t * 0 + 5");
  pq::EvalCache c_many, c_one, c_or;

  store.series = {{x1, 1}, {x2, 5}, {x3, 5}, {t1, 2}, {t2, 4}, {y1, 0}, {y3, 9}};
  CHECK(Both(*many, store, c_many) == R{{x2.get(), 5}, {x3.get(), 5}});
  CHECK(Both(*one, store, c_one) == R{{x1.get(), 1}});
  CHECK(Both(*ored, store, c_or) == R{{{{"target", "p1"}}, 1}, {{{"target", "p2"}}, 5}});
  CHECK(c_many.inputs() > 0);
  store.series = {{x1, 3}, {x2, 5}, {x3, 5}, {t1, 2}, {t2, 4}, {y1, 0}, {y3, 9}};
  CHECK(Both(*many, store, c_many) == R{{x1.get(), 3}, {x2.get(), 5}, {x3.get(), 5}});
  CHECK(Both(*one, store, c_one) == R{{x1.get(), 3}});
  // The one side's set for p2 replaced at its place by one for p3: x3 has no match any more.
  const LabelSet t3 = Set({{"__name__", "t"}, {"target", "p3"}});
  store.series = {{x1, 3}, {x2, 5}, {x3, 5}, {t1, 2}, {t3, 4}, {y1, 0}, {y3, 1}};
  CHECK(Both(*many, store, c_many) == R{{x1.get(), 3}, {x2.get(), 5}});
  CHECK(Both(*one, store, c_one) == R{{x1.get(), 3}, {x3.get(), 5}});
  CHECK(Both(*ored, store, c_or) == R{{{{"target", "p1"}}, 1}, {{{"target", "p3"}}, 5}});
  // The many side's set replaced at its place: x3's place now holds one for p1.
  const LabelSet x4 = Set({{"__name__", "x"}, {"target", "p1"}, {"db", "c"}});
  store.series = {{x1, 3}, {x2, 5}, {x4, 5}, {t1, 2}, {t3, 4}, {y1, 0}, {y3, 1}};
  CHECK(Both(*many, store, c_many) == R{{x1.get(), 3}, {x2.get(), 5}, {x4.get(), 5}});
  CHECK(Both(*one, store, c_one) == R{{x1.get(), 3}});
  // A duplicate on the one side fails every evaluation, though the sets repeat.
  const LabelSet t1b = Set({{"__name__", "t"}, {"target", "p1"}, {"zone", "z"}});
  store.series = {{x1, 3}, {x2, 5}, {t1, 2}, {t1b, 2}};
  for (int i = 0; i < 3; ++i) {
    const R r = Both(*many, store, c_many);
    REQUIRE(r.size() == 1);
    CHECK(LabelValue(r.begin()->first, "error").find("found duplicate series for the match group") == 0);
  }
  store.series = {{x1, 3}, {x2, 5}, {t1, 2}};
  CHECK(Both(*many, store, c_many) == R{{x1.get(), 3}, {x2.get(), 5}});
  // Two many-side series matching one one-side series one-to-one fail every time too.
  auto one_on = Parse("x > on(target) t");
  pq::EvalCache c_one_on;
  for (int i = 0; i < 3; ++i) {
    const R r = Both(*one_on, store, c_one_on);
    REQUIRE(r.size() == 1);
    CHECK(LabelValue(r.begin()->first, "error").find("multiple matches for labels") == 0);
  }
  store.series = {{x1, 3}, {t1, 2}};
  CHECK(Both(*one_on, store, c_one_on) == R{{{{"target", "p1"}}, 3}});
}

}  // namespace promql_input_memo_test
