#pragma once
// PromQL with Prometheus 2.42 semantics: parse an expression once, evaluate it at an instant
// (or over a range, for tests) against any Queryable. Implementation: rules/promql/.
//
// This header is the contract between the PromQL implementation, the rule engine (rules/) and
// the exporter's series store. It may grow; existing signatures change only together with all
// callers.
//
// Thread-safety: a parsed Expr is immutable and may be evaluated from several threads at once.
// Evaluation only reads the Queryable; Queryable implementations say what they guarantee.

#include <bit>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "runbook/clock.h"
#include "runbook/labels.h"

namespace runbook::promql {

inline constexpr TimestampMs kLookbackDeltaMs = 5 * 60 * 1000;

// Prometheus' staleness marker: a NaN with a distinguished bit pattern, written when a series
// disappears. Selectors treat a series whose newest point in the lookback window is this marker
// as absent.
// Inline: range functions test every point.
inline constexpr std::uint64_t kStaleNaNBits = 0x7ff0000000000002ULL;
inline double StaleMarker() {
  return std::bit_cast<double>(kStaleNaNBits);
}
inline bool IsStaleMarker(double v) {
  return std::bit_cast<std::uint64_t>(v) == kStaleNaNBits;
}

struct Point {
  TimestampMs t = 0;
  double v = 0;
};

struct Sample {
  LabelSet metric;  // sorted by name; includes __name__ unless a function or operator dropped it
  TimestampMs t = 0;
  double v = 0;
};
using Vector = std::vector<Sample>;

struct Series {
  LabelSet metric;
  std::vector<Point> points;  // ascending t
};
using Matrix = std::vector<Series>;

enum class ValueType { kNone, kScalar, kVector, kMatrix, kString };
std::string_view ValueTypeName(ValueType type);  // "scalar", "vector", "matrix", "string"

struct Value {
  ValueType type = ValueType::kNone;
  double scalar = 0;   // kScalar
  std::string string;  // kString
  Vector vector;       // kVector
  Matrix matrix;       // kMatrix
};

// A parse or evaluation error. line/column are 1-based positions in the expression text when
// the error has one (parse errors), 0 otherwise. ToString() formats it as promtool prints it,
// e.g. `1:8: parse error: unexpected right parenthesis ')'`.
struct Error {
  std::string message;
  int line = 0;
  int column = 0;
  std::string ToString() const;
};

// A label matcher of a selector: =, !=, =~, !~ (RE2 syntax, fully anchored as in Prometheus).
class Matcher {
 public:
  enum class Op { kEqual, kNotEqual, kRegexMatch, kRegexNoMatch };
  // Fails (nullopt, *error set) on an invalid regular expression.
  static std::optional<Matcher> Make(Op op, std::string name, std::string value, std::string* error);
  bool Matches(std::string_view value) const;
  Op op() const { return op_; }
  const std::string& name() const { return name_; }
  const std::string& value() const { return value_; }

 private:
  Matcher() = default;
  Op op_ = Op::kEqual;
  std::string name_;
  std::string value_;
  std::shared_ptr<const void> regex_;  // compiled RE2 for the regex ops
};

// Where selectors read samples from.
class Queryable {
 public:
  virtual ~Queryable() = default;
  // Calls `fn` once for every series that satisfies all matchers and has at least one point in
  // [mint, maxt] (both inclusive), with its points in that window in ascending time order (stale
  // markers included). Instant selectors ask for [t - 5m, t], range selectors for [t - range, t].
  // `metric` is the store's shared label set: keeping a copy of it copies no strings.
  using SelectFunc = std::function<void(const LabelSet& metric, std::span<const Point> points)>;
  virtual void Select(const std::vector<Matcher>& matchers, TimestampMs mint, TimestampMs maxt,
                      const SelectFunc& fn) const = 0;
  // Like Select, but `points` may hold only the newest point in the window: what an instant
  // selector reads. A store can then skip finding where the window starts (in a series with
  // history that is a search through the points of the last 5 minutes and more).
  virtual void SelectLatest(const std::vector<Matcher>& matchers, TimestampMs mint, TimestampMs maxt,
                            const SelectFunc& fn) const {
    Select(matchers, mint, maxt, fn);
  }
};

class Expr;  // the immutable AST (rules/promql/ast.h)

struct ParseResult {
  std::shared_ptr<const Expr> expr;  // null on error
  Error error;
};
ParseResult Parse(std::string_view text);

ValueType TypeOf(const Expr& expr);
std::string Format(const Expr& expr);  // canonical text, as Prometheus' String() prints it

// What an expression reads, for stores that keep history only where needed: each selector's
// matchers and how far before the evaluation time its oldest point may lie — the 5m lookback or
// the range, plus offsets and enclosing subqueries' ranges and offsets. A selector under a fixed
// `@ <time>` (its own or a subquery's) reads around that time instead: `pinned` is set and
// `lookback_ms` counts back from it. Negative offsets (reading after the evaluation time) count
// as zero.
struct SelectorUse {
  std::vector<Matcher> matchers;
  TimestampMs lookback_ms = 0;
  bool pinned = false;
  // Reads more than the newest point in the lookback window: a range, an offset, or inside a
  // subquery. A plain instant selector (false) needs only each series' newest point.
  bool history = false;
};
std::vector<SelectorUse> Selectors(const Expr& expr);

struct EvalResult {
  Value value;
  std::optional<Error> error;
};
// State one caller keeps between evaluations of the same parsed expression, e.g. a rule
// evaluated every interval (each rule owns one):
// - an aggregation group whose labels equal one of the previous evaluation's reuses that
//   group's label set instead of building (allocating) a new one;
// - an aggregation's input series whose label set is the very shared set (LabelSet::SameAs) the
//   previous evaluation had at that place in the input goes to that set's group without its
//   labels being read, hashed or compared (count_values, which groups by value, excepted);
// - a binary operator between vectors whose indexed side (the one side; `or`'s left, `and`'s
//   and `unless`'s right) is, set for set, the previous evaluation's gets each probed series'
//   match as it was then, without signatures — and no new duplicate check, as that side
//   passed it.
// A selector yields the same stored sets in the same order round after round, so the inputs
// are found at a cursor by address; series added, removed or replaced fall back to reading
// labels (and an index by address keeps the rest found). Results are identical with or without
// a cache, whatever it was last used with: reused group sets are compared label by label, the
// memo is keyed by expression node and checked against its grouping or matching, and only sets
// held (referenced) by the cache are recognised by address, so a freed set's address taken by
// another set is no match.
// Holds, per aggregation in the expression, the previous evaluation's group label sets and a
// hash table of them, and its input sets (a reference, 16 B, and a group index: 24 B each);
// per binary operator, its indexed side's sets (16 B each) and its other side's sets with their
// match (24 B each). Everything held is the previous evaluation's: a series that vanished is
// released by the next evaluation (until then the cache keeps its label set alive, outside the
// store's accounting). A reload builds new rules with empty caches; Clear() empties one.
// Copying gives an empty cache.
// Thread-safety: not synchronised; one evaluation at a time per cache. The sets held are
// shared with the store and results and may be released on any thread (LabelSet's contract).
class EvalCache {
 public:
  EvalCache();
  ~EvalCache();
  EvalCache(const EvalCache&);
  EvalCache& operator=(const EvalCache&);
  EvalCache(EvalCache&&) noexcept;
  EvalCache& operator=(EvalCache&&) noexcept;
  void Clear();
  // Group label sets held (each referenced; the strings may be shared with results still in use).
  std::size_t label_sets() const;
  // Input series held: aggregation inputs, indexed sides and probed sides (see above).
  std::size_t inputs() const;

  struct Impl;  // rules/promql/eval.cpp

 private:
  friend class Evaluator;
  std::unique_ptr<Impl> impl_;
};

struct EvalOptions {
  // Step of subqueries written without one (`x[5m:]`): Prometheus uses the global evaluation
  // interval (the rule group's interval for rules; 1m in promtool's tests).
  TimestampMs default_step_ms = 60 * 1000;
  // Upper bound on the samples one query may load (selected points plus subquery steps), like
  // Prometheus' --query.max-samples; beyond it evaluation fails with Prometheus' error text.
  long long max_samples = 50'000'000;
  // Optional: reused across evaluations of the same expression (see EvalCache).
  EvalCache* cache = nullptr;
};

// Instant query at t (milliseconds). Scalars and vectors get t as their timestamp.
EvalResult EvalInstant(const Expr& expr, const Queryable& storage, TimestampMs t);
EvalResult EvalInstant(const Expr& expr, const Queryable& storage, TimestampMs t, const EvalOptions& options);
// Range query: a matrix with one point per step from start to end inclusive (scalars become one
// series without labels), as Prometheus' query_range. Only scalar and instant-vector expressions.
EvalResult EvalRange(const Expr& expr, const Queryable& storage, TimestampMs start, TimestampMs end,
                     TimestampMs step);
EvalResult EvalRange(const Expr& expr, const Queryable& storage, TimestampMs start, TimestampMs end,
                     TimestampMs step, const EvalOptions& options);

// A plain in-memory Queryable: every appended point is kept. Used by `test rules` and the
// conformance tests. Not synchronised.
class MemoryStorage final : public Queryable {
 public:
  MemoryStorage();
  ~MemoryStorage() override;
  // Points of one series must be appended in ascending time; `metric` need not be sorted.
  void Append(Labels metric, TimestampMs t, double v);
  void Clear();
  void Select(const std::vector<Matcher>& matchers, TimestampMs mint, TimestampMs maxt,
              const SelectFunc& fn) const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Prometheus' duration syntax (model.ParseDuration): `1h30m`, `5m`, `10s`, `100ms`, `1d`, `2w`,
// `1y`, `0`; units in decreasing order, each at most once; at most ~292 years (Go's
// time.Duration). nullopt when invalid.
std::optional<TimestampMs> ParseDuration(std::string_view text);
// model.Duration's String(): `1h30m`, `5m`, `0s`.
std::string FormatDuration(TimestampMs ms);

// The series notation of promtool's input_series and of PromQL .test files:
// `metric{a="b"} 1+2x3 _ stale 5 -1x2`. `_` is a missing point (nullopt), `_xn` n of them,
// `stale` a staleness marker, `a+bxn` expands to n+1 values a, a+b, ..., `axn` to n+1 copies.
struct SeriesDesc {
  Labels metric;  // sorted, __name__ included
  std::vector<std::optional<double>> values;
};
std::variant<SeriesDesc, Error> ParseSeriesDesc(std::string_view text);
// Only the metric part (`metric{a="b"}` or `{__name__="m"}`), as promtool's exp_alerts labels.
std::variant<Labels, Error> ParseMetric(std::string_view text);

}  // namespace runbook::promql
