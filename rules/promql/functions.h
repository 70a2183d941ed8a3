#pragma once
// The PromQL function table (functions.cpp): every function is one row of kFunctions there,
// with its argument types and implementation.

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "promql/ast.h"

namespace runbook::promql {

// An evaluation error (thrown inside the evaluator, returned as Error by EvalInstant/EvalRange).
struct EvalError {
  std::string message;
};

// What a function implementation sees.
struct FunctionCall {
  const Expr& expr;  // the kCall node
  TimestampMs ts;    // evaluation time
  // Evaluated arguments, in order (the range-vector argument of a per-series function is left
  // empty; see `points`).
  std::vector<Value> args;
  // Per-series (range-vector) functions: the points of one series in the window
  // [range_start, range_end] (stale markers removed) and the selector's range.
  std::span<const Point> points;
  TimestampMs range_start = 0;
  TimestampMs range_end = 0;
  TimestampMs range_ms = 0;
};

struct FunctionDef {
  std::string_view name;
  std::vector<ValueType> arg_types;
  // 0: exactly arg_types; n > 0: the last n... of arg_types' tail is optional (at most
  // arg_types.size() - 1 + n arguments); -1: the last type repeats without limit.
  int variadic = 0;
  ValueType return_type = ValueType::kVector;
  // Exactly one is set. series_fn runs once per series of the range-vector argument and returns
  // that series' value (the evaluator attaches the labels); vector_fn computes the whole result.
  std::optional<double> (*series_fn)(const FunctionCall&) = nullptr;
  Vector (*vector_fn)(FunctionCall&) = nullptr;
  bool keeps_metric_name = false;  // series_fn only: last_over_time keeps __name__
};

const FunctionDef* FindFunction(std::string_view name);

// Go's strconv.FormatFloat(v, 'f', -1, 64) (count_values) and 'g'-style for labels.
std::string FormatFloatShortest(double v);

}  // namespace runbook::promql
