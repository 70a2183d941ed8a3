#include "runbook/series_store.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace runbook {
namespace {

struct StoredSeries {
  Labels metric;
  std::vector<promql::Point> points;
  TimestampMs keep_ms = 0;
  std::string source;
};

std::string SeriesKey(const Labels& sorted) {
  std::string key;
  for (const auto& [n, v] : sorted) {
    key.append(n).push_back('\xff');
    key.append(v).push_back('\xff');
  }
  return key;
}

bool MatchesAll(const std::vector<promql::Matcher>& matchers, const Labels& metric) {
  for (const auto& m : matchers) {
    if (!m.Matches(LabelValue(metric, m.name()))) return false;
  }
  return true;
}

}  // namespace

struct SeriesStore::Impl {
  // __name__ → series key → series. Node-based maps keep StoredSeries addresses stable.
  std::unordered_map<std::string, std::unordered_map<std::string, StoredSeries>> by_name;
  std::unordered_map<std::string, std::vector<std::pair<std::string, std::string>>> by_source;
  std::vector<Retention> retention;

  TimestampMs KeepFor(const Labels& metric) const {
    TimestampMs keep = 0;
    for (const auto& r : retention) {
      if (r.keep_ms > keep && MatchesAll(r.matchers, metric)) keep = r.keep_ms;
    }
    return keep;
  }

  static void Trim(StoredSeries& s, TimestampMs now) {
    const TimestampMs oldest = now - s.keep_ms - promql::kLookbackDeltaMs;
    std::size_t drop = 0;
    if (s.keep_ms == 0) {
      drop = s.points.size() > 2 ? s.points.size() - 2 : 0;
    } else {
      while (drop + 1 < s.points.size() && s.points[drop].t < oldest) ++drop;
    }
    s.points.erase(s.points.begin(), s.points.begin() + static_cast<std::ptrdiff_t>(drop));
  }

  static void Append(StoredSeries& s, TimestampMs t, double v) {
    if (!s.points.empty() && s.points.back().t >= t) return;
    s.points.push_back({t, v});
    Trim(s, t);
  }

  static bool Expired(const StoredSeries& s, TimestampMs now) {
    return s.points.empty() || (promql::IsStaleMarker(s.points.back().v) &&
                                s.points.back().t + s.keep_ms + promql::kLookbackDeltaMs < now);
  }

  // Marks every live series of `source` not in `seen` stale at t and forgets expired ones.
  void Retire(const std::string& source, const std::unordered_set<std::string>& seen, TimestampMs t,
              std::vector<std::pair<std::string, std::string>>& kept) {
    for (auto& [name, key] : by_source[source]) {
      if (seen.count(key) != 0) continue;
      auto bucket = by_name.find(name);
      if (bucket == by_name.end()) continue;
      auto it = bucket->second.find(key);
      if (it == bucket->second.end() || it->second.source != source) continue;
      StoredSeries& s = it->second;
      if (!s.points.empty() && !promql::IsStaleMarker(s.points.back().v)) Append(s, t, promql::StaleMarker());
      if (Expired(s, t)) {
        bucket->second.erase(it);
        if (bucket->second.empty()) by_name.erase(bucket);
        continue;
      }
      kept.emplace_back(name, key);
    }
  }
};

SeriesStore::SeriesStore() : impl_(std::make_unique<Impl>()) {}
SeriesStore::~SeriesStore() = default;

void SeriesStore::Ingest(std::string_view source_name, TimestampMs t,
                         const std::vector<StoreSample>& samples) {
  std::unique_lock lock(mu_);
  const std::string source(source_name);
  std::unordered_set<std::string> seen;
  std::vector<std::pair<std::string, std::string>> present;
  present.reserve(samples.size());
  for (const auto& sample : samples) {
    Labels metric = sample.metric;
    CanonicalLabels(metric);
    std::string name(LabelValue(metric, "__name__"));
    std::string key = SeriesKey(metric);
    auto& bucket = impl_->by_name[name];
    auto [it, inserted] = bucket.try_emplace(key);
    StoredSeries& s = it->second;
    if (inserted) {
      s.keep_ms = impl_->KeepFor(metric);
      s.metric = std::move(metric);
    }
    s.source = source;
    Impl::Append(s, t, sample.value);
    if (seen.insert(key).second) present.emplace_back(std::move(name), std::move(key));
  }
  impl_->Retire(source, seen, t, present);
  impl_->by_source[source] = std::move(present);
}

void SeriesStore::Append(const Labels& metric_in, TimestampMs t, double v) {
  std::unique_lock lock(mu_);
  Labels metric = metric_in;
  CanonicalLabels(metric);
  auto& bucket = impl_->by_name[std::string(LabelValue(metric, "__name__"))];
  auto [it, inserted] = bucket.try_emplace(SeriesKey(metric));
  if (inserted) {
    it->second.keep_ms = impl_->KeepFor(metric);
    it->second.metric = std::move(metric);
  }
  Impl::Append(it->second, t, v);
}

void SeriesStore::Compact(TimestampMs now) {
  std::unique_lock lock(mu_);
  for (auto bucket = impl_->by_name.begin(); bucket != impl_->by_name.end();) {
    for (auto it = bucket->second.begin(); it != bucket->second.end();) {
      const auto& s = it->second;
      bool gone = s.points.empty() || s.points.back().t + s.keep_ms + promql::kLookbackDeltaMs < now;
      it = gone ? bucket->second.erase(it) : std::next(it);
    }
    bucket = bucket->second.empty() ? impl_->by_name.erase(bucket) : std::next(bucket);
  }
}

void SeriesStore::RemoveSource(std::string_view source_name, TimestampMs t) {
  std::unique_lock lock(mu_);
  const std::string source(source_name);
  std::vector<std::pair<std::string, std::string>> kept;
  impl_->Retire(source, {}, t, kept);
  if (kept.empty()) {
    impl_->by_source.erase(source);
  } else {
    impl_->by_source[source] = std::move(kept);
  }
}

void SeriesStore::SetRetention(std::vector<Retention> retention) {
  std::unique_lock lock(mu_);
  impl_->retention = std::move(retention);
  for (auto& [name, bucket] : impl_->by_name) {
    for (auto& [key, s] : bucket) s.keep_ms = impl_->KeepFor(s.metric);
  }
}

SeriesStore::Stats SeriesStore::stats() const {
  std::shared_lock lock(mu_);
  Stats st;
  for (const auto& [name, bucket] : impl_->by_name) {
    for (const auto& [key, s] : bucket) {
      ++st.series;
      st.samples += s.points.size();
      st.bytes += sizeof(StoredSeries) + key.capacity() + s.points.capacity() * sizeof(promql::Point) +
                  s.metric.capacity() * sizeof(Labels::value_type) + s.source.capacity();
      for (const auto& [n, v] : s.metric) st.bytes += n.capacity() + v.capacity();
    }
  }
  return st;
}

void SeriesStore::Select(const std::vector<promql::Matcher>& matchers, TimestampMs mint, TimestampMs maxt,
                         const std::function<void(const Labels&, std::span<const promql::Point>)>& fn) const {
  std::shared_lock lock(mu_);
  auto visit = [&](const StoredSeries& s) {
    if (!MatchesAll(matchers, s.metric)) return;
    auto lo = std::lower_bound(s.points.begin(), s.points.end(), mint,
                               [](const promql::Point& p, TimestampMs t) { return p.t < t; });
    auto hi = std::upper_bound(lo, s.points.end(), maxt,
                               [](TimestampMs t, const promql::Point& p) { return t < p.t; });
    if (lo == hi) return;
    fn(s.metric, std::span<const promql::Point>(&*lo, static_cast<std::size_t>(hi - lo)));
  };
  for (const auto& m : matchers) {
    if (m.name() == "__name__" && m.op() == promql::Matcher::Op::kEqual) {
      auto bucket = impl_->by_name.find(m.value());
      if (bucket == impl_->by_name.end()) return;
      for (const auto& [key, s] : bucket->second) visit(s);
      return;
    }
  }
  for (const auto& [name, bucket] : impl_->by_name) {
    for (const auto& [key, s] : bucket) visit(s);
  }
}

}  // namespace runbook
