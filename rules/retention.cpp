#include "promql/ast.h"
#include "runbook/series_store.h"

namespace runbook {
namespace {

void Walk(const promql::Expr& e, TimestampMs back, std::vector<Retention>& out) {
  using promql::ExprKind;
  switch (e.kind) {
    case ExprKind::kVectorSelector:
      if (e.at == promql::AtMode::kTimestamp) return;
      if (back + e.offset_ms > 0) out.push_back(Retention{e.matchers, back + e.offset_ms});
      return;
    case ExprKind::kMatrixSelector:
      if (e.operand) Walk(*e.operand, back + e.range_ms, out);
      return;
    case ExprKind::kSubquery:
      if (e.at == promql::AtMode::kTimestamp) return;
      // The subquery's first step may start up to one step before its range.
      if (e.operand) Walk(*e.operand, back + e.range_ms + e.offset_ms + e.step_ms, out);
      return;
    default: break;
  }
  for (const auto* child : {e.operand.get(), e.lhs.get(), e.rhs.get(), e.param.get()})
    if (child) Walk(*child, back, out);
  for (const auto& a : e.args)
    if (a) Walk(*a, back, out);
}

}  // namespace

std::vector<Retention> RetentionFor(const std::vector<const promql::Expr*>& exprs) {
  std::vector<Retention> out;
  for (const auto* e : exprs)
    if (e) Walk(*e, 0, out);
  return out;
}

}  // namespace runbook
