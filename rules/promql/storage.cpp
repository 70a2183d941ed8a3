#include <bit>
#include <cstdint>
#include <map>

#include "runbook/promql.h"

namespace runbook::promql {

namespace {
constexpr std::uint64_t kStaleNaNBits = 0x7ff0000000000002ULL;
}

double StaleMarker() {
  return std::bit_cast<double>(kStaleNaNBits);
}
bool IsStaleMarker(double v) {
  return std::bit_cast<std::uint64_t>(v) == kStaleNaNBits;
}

struct MemoryStorage::Impl {
  std::map<Labels, std::vector<Point>> series;  // ordered by labels, as Prometheus returns series
};

MemoryStorage::MemoryStorage() : impl_(std::make_unique<Impl>()) {}
MemoryStorage::~MemoryStorage() = default;

void MemoryStorage::Append(Labels metric, TimestampMs t, double v) {
  CanonicalLabels(metric);
  auto& points = impl_->series[std::move(metric)];
  if (!points.empty() && points.back().t == t) {
    points.back().v = v;
    return;
  }
  points.push_back(Point{t, v});
}

void MemoryStorage::Clear() {
  impl_->series.clear();
}

void MemoryStorage::Select(const std::vector<Matcher>& matchers, TimestampMs mint, TimestampMs maxt,
                           const std::function<void(const Labels&, std::span<const Point>)>& fn) const {
  for (const auto& [metric, points] : impl_->series) {
    bool ok = true;
    for (const auto& m : matchers) {
      if (!m.Matches(LabelValue(metric, m.name()))) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    auto lo = std::lower_bound(points.begin(), points.end(), mint,
                               [](const Point& p, TimestampMs t) { return p.t < t; });
    auto hi = std::upper_bound(points.begin(), points.end(), maxt,
                               [](TimestampMs t, const Point& p) { return t < p.t; });
    if (lo >= hi) continue;
    fn(metric, std::span<const Point>(&*lo, static_cast<size_t>(hi - lo)));
  }
}

}  // namespace runbook::promql
