#pragma once
// The evaluator behind EvalInstant/EvalRange, and helpers the function table shares with it.

#include <string>
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
  Vector SelectVector(const Expr& vs, TimestampMs ts);
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
};

}  // namespace runbook::promql
