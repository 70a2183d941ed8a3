#pragma once
// The evaluator behind EvalInstant/EvalRange, and helpers the function table shares with it.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "promql/ast.h"

namespace runbook::promql {

std::string LabelsKey(const Labels& labels);  // an unambiguous map key for a label set
Labels DropMetricName(Labels labels);
LabelSet DropMetricName(const LabelSet& labels);  // the same set when it has no __name__
// `labels` with `name` set to `value` (removed when empty), sorted.
LabelSet WithLabel(const LabelSet& labels, const std::string& name, std::string value);
std::string FormatLabels(const Labels& labels);  // {a="b", c="d"}
// Throws EvalError when two samples share a label set.
void CheckUniqueLabelsets(const Vector& v);
// Prometheus' quantile with linear interpolation (quantile, quantile_over_time).
double Quantile(double q, std::vector<double> values);

// Vector matching compares signatures: the on(...) labels, or all labels but the ignoring(...)
// ones and __name__. A hash of them finds candidates, SameSignature decides.
std::uint64_t SignatureHash(const Labels& metric, const VectorMatching& m);
bool SameSignature(const Labels& a, const Labels& b, const VectorMatching& m);

// The samples of one side of a binary operation by signature. Points into `v`, which must
// outlive it unchanged. `hash` is replaceable for tests (collisions).
class SignatureIndex {
 public:
  using HashFunc = std::uint64_t (*)(const Labels&, const VectorMatching&);
  SignatureIndex(const Vector& v, const VectorMatching& m, HashFunc hash = SignatureHash);
  // The sample with the signature of `metric`, if any.
  const Sample* Find(const Labels& metric) const;
  // The first sample (in input order) whose signature an earlier one has, and that earlier one.
  std::optional<std::pair<const Sample*, const Sample*>> Duplicate() const;

 private:
  struct Entry {
    std::uint64_t hash;
    const Sample* sample;
  };
  const VectorMatching& m_;
  HashFunc hash_;
  std::vector<Entry> entries_;
};

class Evaluator {
 public:
  // start/end are the query's (what @ start() and @ end() refer to); default_step_ms is the
  // step of subqueries that give none.
  Evaluator(const Queryable& storage, TimestampMs start, TimestampMs end, const EvalOptions& options);

  // Throws EvalError. Samples of vector selectors keep their own timestamps; everything else
  // carries ts.
  Value Eval(const Expr& e, TimestampMs ts);

 private:
  struct Window {
    TimestampMs start = 0;
    TimestampMs end = 0;
    TimestampMs range = 0;
  };
  TimestampMs RefTime(const Expr& carrier, TimestampMs ts) const;
  // Calls sink(metric, point) for every series of an instant selector with a sample at ts.
  template <class Sink>
  void ForEachInstant(const Expr& vs, TimestampMs ts, Sink&& sink);
  Vector SelectVector(const Expr& vs, TimestampMs ts);
  // The range-vector argument of a per-series function call when it is a plain matrix selector
  // (null otherwise), and its index.
  static const Expr* RangeSelectorArg(const Expr& call, size_t* matrix_arg);
  // Calls sink(metric, value) with the function's value for every selected series (metric is the
  // stored series' set, __name__ included).
  template <class Sink>
  void ForEachRangeResult(const Expr& call, const Expr& range_arg, size_t matrix_arg, TimestampMs ts,
                          Sink&& sink);
  // When `e` is a selector or a per-series function of one, calls sink(metric, value, drop_name)
  // for each sample of its result without building the vector (drop_name: the result has no
  // __name__ though metric has one) and returns true; false when `e` is anything else.
  template <class Sink>
  bool Stream(const Expr& e, TimestampMs ts, Sink&& sink);
  Matrix SelectMatrix(const Expr& ms, TimestampMs ts, Window* window);
  Matrix EvalSubquery(const Expr& sq, TimestampMs ts, Window* window);
  Matrix EvalRangeArg(const Expr& arg, TimestampMs ts, Window* window);
  Value EvalBinary(const Expr& e, TimestampMs ts);
  Value EvalCall(const Expr& e, TimestampMs ts);
  Value EvalAggregate(const Expr& e, TimestampMs ts);
  static std::string Format(const Labels& metric, const VectorMatching& m);
  void Count(size_t samples);

  const Queryable& storage_;
  TimestampMs start_;
  TimestampMs end_;
  TimestampMs default_step_;
  long long max_samples_;
  long long samples_ = 0;
  EvalCache* cache_;  // optional
};

}  // namespace runbook::promql
