#pragma once
// The PromQL syntax tree produced by Parse() (parser.cpp) and walked by the evaluator (eval.cpp).
// Nodes are built once by the parser and never modified afterwards.

#include <memory>
#include <string>
#include <vector>

#include "runbook/promql.h"

namespace runbook::promql {

enum class ExprKind {
  kNumber,          // number
  kString,          // text
  kVectorSelector,  // name, matchers, offset_ms, at
  kMatrixSelector,  // operand (a kVectorSelector carrying offset and @), range_ms
  kSubquery,        // operand, range_ms, step_ms (0: the default interval), offset_ms, at
  kParen,           // operand
  kUnary,           // op (kAdd or kSub), operand
  kBinary,          // op, lhs, rhs, return_bool, matching
  kCall,            // func, args
  kAggregate,       // agg, operand, param (topk/bottomk/quantile/count_values), grouping
};

enum class BinOp {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kAtan2,
  kEql,
  kNeq,
  kGtr,
  kLss,
  kGte,
  kLte,
  kAnd,
  kOr,
  kUnless
};
bool IsComparison(BinOp op);
bool IsSetOperator(BinOp op);
std::string_view BinOpText(BinOp op);

enum class AggOp {
  kSum,
  kMin,
  kMax,
  kAvg,
  kCount,
  kGroup,
  kStddev,
  kStdvar,
  kTopk,
  kBottomk,
  kQuantile,
  kCountValues
};
std::string_view AggOpText(AggOp op);

// @ modifier: none, a fixed timestamp, or the query's start()/end().
enum class AtMode { kNone, kTimestamp, kStart, kEnd };

struct VectorMatching {
  enum class Card { kOneToOne, kManyToOne, kOneToMany, kManyToMany };
  Card card = Card::kOneToOne;
  bool on = false;                   // on(...) rather than ignoring(...)
  bool explicit_clause = false;      // on/ignoring was written (for Format)
  std::vector<std::string> labels;   // the on/ignoring labels
  std::vector<std::string> include;  // the group_left/group_right labels
};

struct FunctionDef;  // functions.h

class Expr {
 public:
  ExprKind kind = ExprKind::kNumber;
  ValueType type = ValueType::kNone;
  int start = 0;  // byte range in the parsed text
  int end = 0;

  double number = 0;
  std::string text;  // string literal; metric name of a selector (may be empty)
  std::vector<Matcher> matchers;

  TimestampMs offset_ms = 0;
  AtMode at = AtMode::kNone;
  TimestampMs at_ms = 0;
  TimestampMs range_ms = 0;
  TimestampMs step_ms = 0;

  BinOp op = BinOp::kAdd;
  bool return_bool = false;
  bool has_matching = false;  // both sides are instant vectors
  VectorMatching matching;

  AggOp agg = AggOp::kSum;
  bool without = false;
  bool has_grouping = false;  // by/without was written
  std::vector<std::string> grouping;

  const FunctionDef* func = nullptr;

  std::shared_ptr<Expr> operand;
  std::shared_ptr<Expr> lhs;
  std::shared_ptr<Expr> rhs;
  std::shared_ptr<Expr> param;
  std::vector<std::shared_ptr<Expr>> args;
};
using ExprPtr = std::shared_ptr<Expr>;

// The expression inside any number of parentheses.
const Expr& Unparen(const Expr& e);

}  // namespace runbook::promql
