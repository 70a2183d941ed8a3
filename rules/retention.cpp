#include "runbook/series_store.h"

namespace runbook {

std::vector<Retention> RetentionFor(const std::vector<const promql::Expr*>& exprs) {
  std::vector<Retention> out;
  for (const auto* e : exprs) {
    if (!e) continue;
    for (auto& use : promql::Selectors(*e))
      if (use.history && !use.pinned) out.push_back(Retention{std::move(use.matchers), use.lookback_ms});
  }
  return out;
}

}  // namespace runbook
