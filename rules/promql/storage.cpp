#include <algorithm>
#include <bit>
#include <cstdint>
#include <map>

#include "promql/postings.h"
#include "runbook/promql.h"

namespace runbook::promql {

namespace {

const Matcher& Deref(const Matcher& m) {
  return m;
}
const Matcher& Deref(const Matcher* m) {
  return *m;
}
}  // namespace

struct MemoryStorage::Impl {
  // Ordered by labels, as Prometheus returns series.
  using Map = std::map<LabelSet, std::vector<Point>, std::less<>>;
  Map series;
  std::vector<Map::iterator> by_id;
  Postings postings;
};

MemoryStorage::MemoryStorage() : impl_(std::make_unique<Impl>()) {}
MemoryStorage::~MemoryStorage() = default;

void MemoryStorage::Append(Labels metric, TimestampMs t, double v) {
  CanonicalLabels(metric);
  auto it = impl_->series.find(metric);
  if (it == impl_->series.end()) {
    it = impl_->series.try_emplace(LabelSet(std::move(metric))).first;
    impl_->postings.Add(static_cast<Postings::Id>(impl_->by_id.size()), it->first);
    impl_->by_id.push_back(it);
  }
  auto& points = it->second;
  if (!points.empty() && points.back().t == t) {
    points.back().v = v;
    return;
  }
  points.push_back(Point{t, v});
}

void MemoryStorage::Clear() {
  impl_->series.clear();
  impl_->by_id.clear();
  impl_->postings = Postings();
}

void MemoryStorage::Select(const std::vector<Matcher>& matchers, TimestampMs mint, TimestampMs maxt,
                           const SelectFunc& fn) const {
  auto visit = [&](const LabelSet& metric, const std::vector<Point>& points) {
    auto lo = std::lower_bound(points.begin(), points.end(), mint,
                               [](const Point& p, TimestampMs t) { return p.t < t; });
    auto hi = std::upper_bound(points.begin(), points.end(), maxt,
                               [](TimestampMs t, const Point& p) { return t < p.t; });
    if (lo >= hi) return;
    fn(metric, std::span<const Point>(&*lo, static_cast<size_t>(hi - lo)));
  };
  auto matches = [](const auto& list, const Labels& metric) {
    for (const auto& m : list) {
      if (!Deref(m).Matches(LabelValue(metric, Deref(m).name()))) return false;
    }
    return true;
  };
  auto candidates = impl_->postings.Select(matchers);
  if (!candidates) {
    for (const auto& [metric, points] : impl_->series)
      if (matches(matchers, metric)) visit(metric, points);
    return;
  }
  std::vector<Impl::Map::iterator> hits;
  for (Postings::Id id : candidates->ids) {
    auto it = impl_->by_id[id];
    if (matches(candidates->unchecked, it->first)) hits.push_back(it);
  }
  std::sort(hits.begin(), hits.end(), [](const auto& a, const auto& b) { return a->first < b->first; });
  for (const auto& it : hits) visit(it->first, it->second);
}

}  // namespace runbook::promql
