#pragma once
// Labels: a set of name/value pairs. Configured constant labels keep the configured order;
// wherever the rule engine or delivery uses a label set it is sorted by name with unique names
// (SortLabels establishes that).

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runbook {

using Labels = std::vector<std::pair<std::string, std::string>>;

inline void SortLabels(Labels& labels) {
  std::stable_sort(labels.begin(), labels.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  labels.erase(std::unique(labels.begin(), labels.end(),
                           [](const auto& a, const auto& b) { return a.first == b.first; }),
               labels.end());
}

// Prometheus' canonical form of a series' labels: SortLabels without empty values (`{a=""}` is
// the absence of `a`). Series notation, MemoryStorage and SeriesStore store labels this way.
inline void CanonicalLabels(Labels& labels) {
  SortLabels(labels);
  std::erase_if(labels, [](const auto& l) { return l.second.empty(); });
}

// The value of `name`, or empty when absent (Prometheus treats both alike).
inline std::string_view LabelValue(const Labels& labels, std::string_view name) {
  for (const auto& [n, v] : labels) {
    if (n == name) return v;
  }
  return {};
}

}  // namespace runbook
