#pragma once
// Labels: a set of name/value pairs. Configured constant labels keep the configured order;
// wherever the rule engine or delivery uses a label set it is sorted by name with unique names
// (SortLabels establishes that).

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runbook {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Sorted by name with unique names: what SortLabels establishes.
inline bool IsSorted(const Labels& labels) {
  return std::adjacent_find(labels.begin(), labels.end(),
                            [](const auto& a, const auto& b) { return a.first >= b.first; }) == labels.end();
}

inline void SortLabels(Labels& labels) {
  if (IsSorted(labels)) return;  // most label sets arrive sorted (rule output, stored series)
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

// Whether `labels` already is in that form (no copy needed).
inline bool IsCanonical(const Labels& labels) {
  return IsSorted(labels) &&
         std::none_of(labels.begin(), labels.end(), [](const auto& l) { return l.second.empty(); });
}

// A hash of names and values: equal label sets hash alike. Users that need identity still
// compare the labels on equal hashes.
inline std::uint64_t LabelsHash(const Labels& labels) {
  std::uint64_t h = 0x9e3779b97f4a7c15ULL;
  for (const auto& [n, v] : labels) {
    for (const auto* s : {&n, &v}) {
      h ^= std::hash<std::string_view>{}(*s) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    }
  }
  return h;
}

// The value of `name`, or empty when absent (Prometheus treats both alike).
inline std::string_view LabelValue(const Labels& labels, std::string_view name) {
  for (const auto& [n, v] : labels) {
    if (n == name) return v;
  }
  return {};
}

}  // namespace runbook
