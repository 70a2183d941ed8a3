#include "runbook/series_store.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <unordered_map>

#include "promql/postings.h"

namespace runbook {
namespace {

using Id = promql::Postings::Id;
constexpr Id kNoSource = ~Id(0);

// One cache line: what Select reads (labels, retention, points inline or where they lie) and
// the owning source. Series without a retention keep their newest two points inline (a
// separate allocation cost a cache miss per series); with one, a buffer holds the points back
// to keep_ms + the lookback.
struct alignas(64) StoredSeries {
  LabelSet metric;  // sorted; empty for a free slot
  TimestampMs keep_ms = 0;

  StoredSeries() = default;
  StoredSeries(const StoredSeries&) = delete;
  StoredSeries& operator=(const StoredSeries&) = delete;
  StoredSeries(StoredSeries&& o) noexcept { *this = std::move(o); }
  StoredSeries& operator=(StoredSeries&& o) noexcept {
    if (this == &o) return *this;
    FreeHistory();
    metric = std::move(o.metric);
    keep_ms = o.keep_ms;
    pts_ = o.pts_;
    n_recent_ = o.n_recent_;
    source = o.source;
    o.keep_ms = 0;  // o no longer owns the buffer
    o.n_recent_ = 0;
    return *this;
  }
  ~StoredSeries() { FreeHistory(); }

  // Every point held; with history, those before oldest() are out of reach and not to be read.
  std::span<const promql::Point> points() const {
    return keep_ms == 0 ? std::span<const promql::Point>(pts_.recent, n_recent_)
                        : std::span<const promql::Point>(pts_.history.data, pts_.history.size);
  }
  TimestampMs oldest() const {
    return keep_ms == 0 || empty() ? std::numeric_limits<TimestampMs>::min()
                                   : back().t - keep_ms - promql::kLookbackDeltaMs;
  }
  // The points within reach.
  std::span<const promql::Point> retained() const {
    const auto pts = points();
    const TimestampMs o = oldest();
    return {std::lower_bound(pts.begin(), pts.end(), o,
                             [](const promql::Point& p, TimestampMs t) { return p.t < t; }),
            pts.end()};
  }
  bool empty() const { return points().empty(); }
  const promql::Point& back() const { return points().back(); }

  // Ignored unless newer than the newest point; drops what no query can read any more.
  void Append(TimestampMs t, double v) {
    if (!empty() && back().t >= t) return;
    if (keep_ms == 0) {
      if (n_recent_ == 2) pts_.recent[0] = pts_.recent[1];
      pts_.recent[n_recent_ == 2 ? 1 : n_recent_++] = {t, v};
      return;
    }
    // Points out of reach are dropped only when the buffer is full: one move per many appends
    // instead of one per append. Readers skip them (oldest()).
    History& h = pts_.history;
    if (h.size == h.cap) {
      const auto* keep = std::lower_bound(h.data, h.data + h.size, t - keep_ms - promql::kLookbackDeltaMs,
                                          [](const promql::Point& p, TimestampMs o) { return p.t < o; });
      const auto drop = static_cast<std::uint32_t>(keep - h.data);
      if (drop > 0) {
        std::memmove(h.data, h.data + drop, (h.size - drop) * sizeof(promql::Point));
        h.size -= drop;
      }
    }
    if (h.size == h.cap) {
      const std::uint32_t cap = h.cap < 4 ? 4 : h.cap * 2;
      auto* data = static_cast<promql::Point*>(std::realloc(h.data, cap * sizeof(promql::Point)));
      if (!data) throw std::bad_alloc();
      h.data = data;
      h.cap = cap;
    }
    h.data[h.size++] = {t, v};
  }

  void SetKeep(TimestampMs keep) {
    if ((keep == 0) == (keep_ms == 0)) {
      keep_ms = keep;
      return;
    }
    const auto pts = points();
    if (keep == 0) {
      promql::Point last[2];
      std::uint8_t n = 0;
      for (std::size_t i = pts.size() > 2 ? pts.size() - 2 : 0; i < pts.size(); ++i) last[n++] = pts[i];
      FreeHistory();
      pts_.recent[0] = last[0];
      pts_.recent[1] = last[1];
      n_recent_ = n;
    } else {
      History h{nullptr, 0, 0};
      if (!pts.empty()) {
        h.cap = 4;
        h.data = static_cast<promql::Point*>(std::malloc(h.cap * sizeof(promql::Point)));
        if (!h.data) throw std::bad_alloc();
        for (const auto& p : pts) h.data[h.size++] = p;
      }
      pts_.history = h;
      n_recent_ = 0;
    }
    keep_ms = keep;
  }

  void Prefetch() const {
    if (keep_ms != 0 && pts_.history.size != 0) __builtin_prefetch(pts_.history.data + pts_.history.size - 1);
  }

  std::size_t heap_bytes() const {
    return (keep_ms != 0 ? pts_.history.cap * sizeof(promql::Point) : 0) + metric.heap_bytes();
  }

 private:
  struct History {
    promql::Point* data;
    std::uint32_t size, cap;
  };
  union Points {
    Points() : history{nullptr, 0, 0} {}
    promql::Point recent[2];  // keep_ms == 0
    History history;          // keep_ms != 0; malloc'ed
  };
  void FreeHistory() {
    if (keep_ms != 0) std::free(pts_.history.data);
    keep_ms = 0;
    pts_.history = {nullptr, 0, 0};
  }
  Points pts_;
  std::uint8_t n_recent_ = 0;

 public:
  Id source = kNoSource;
};
static_assert(sizeof(StoredSeries) == 64);

// Series ids by LabelsHash: open addressing with linear probing (node-based maps cost a cache
// miss per lookup at this size). Equal hashes are told apart by the caller.
class IdTable {
 public:
  template <typename Same>
  std::optional<Id> Find(std::uint64_t hash, Same same) const {
    if (slots_.empty()) return std::nullopt;
    for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id == kEmpty) return std::nullopt;
      if (s.id != kDeleted && s.hash == hash && same(s.id)) return s.id;
    }
  }
  void Insert(std::uint64_t hash, Id id) {
    if ((used_ + 1) * 4 > slots_.size() * 3) Rehash(std::max<std::size_t>(1024, live_ * 4));
    std::size_t i = hash & mask_;
    while (slots_[i].id != kEmpty && slots_[i].id != kDeleted) i = (i + 1) & mask_;
    if (slots_[i].id == kEmpty) ++used_;
    slots_[i] = {hash, id};
    ++live_;
  }
  void Erase(std::uint64_t hash, Id id) {
    for (std::size_t i = hash & mask_; slots_[i].id != kEmpty; i = (i + 1) & mask_) {
      if (slots_[i].id == id) {
        slots_[i].id = kDeleted;
        --live_;
        return;
      }
    }
  }
  std::size_t bytes() const { return slots_.capacity() * sizeof(Slot); }

 private:
  static constexpr Id kEmpty = ~Id(0), kDeleted = ~Id(0) - 1;
  struct Slot {
    std::uint64_t hash = 0;
    Id id = kEmpty;
  };
  void Rehash(std::size_t min_slots) {
    std::size_t n = 1;
    while (n < min_slots) n *= 2;
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(n, Slot{});
    mask_ = n - 1;
    used_ = live_ = 0;
    for (const auto& s : old)
      if (s.id != kEmpty && s.id != kDeleted) Insert(s.hash, s.id);
  }
  std::vector<Slot> slots_;
  std::size_t mask_ = 0, used_ = 0, live_ = 0;
};

bool MatchesAll(const std::vector<promql::Matcher>& matchers, const Labels& metric) {
  for (const auto& m : matchers) {
    if (!m.Matches(LabelValue(metric, m.name()))) return false;
  }
  return true;
}

bool MatchesAll(const std::vector<const promql::Matcher*>& matchers, const Labels& metric) {
  for (const auto* m : matchers) {
    if (!m->Matches(LabelValue(metric, m->name()))) return false;
  }
  return true;
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// The slots of one metric name: whole chunks of consecutive ids, so that a selector's
// candidates (its name's postings, ascending) lie side by side and the hardware prefetcher
// streams them. Chunks double from kMinChunk to kMaxChunk slots as the name grows; a name's
// chunks go back to a shared pool when its last series is deleted.
struct NameSlots {
  std::vector<Id> free;                              // ids in this name's chunks, unused
  std::vector<std::pair<Id, std::uint32_t>> chunks;  // first id, size
  std::uint32_t capacity = 0, live = 0;
};
constexpr std::uint32_t kMinChunkLog = 3, kMaxChunkLog = 8;

}  // namespace

struct SeriesStore::Impl {
  std::vector<StoredSeries> series;  // by id
  std::vector<std::uint64_t> seen;   // by id: the last Ingest/Retire pass that handled the series
  std::unordered_map<std::string, NameSlots, StringHash, std::equal_to<>> names;
  std::vector<Id> chunk_pool[kMaxChunkLog + 1];  // first ids of unused chunks, by log2(size)
  IdTable ids;
  promql::Postings postings;
  std::unordered_map<std::string, Id> source_ids;
  // Per source, the ids of its series at its last collection. Entries may be out of date (the
  // series compacted away, or taken over by another source); users check the series' source.
  std::unordered_map<Id, std::vector<Id>> by_source;
  std::uint64_t pass = 0;
  std::vector<Retention> retention;

  TimestampMs KeepFor(const Labels& metric) const {
    TimestampMs keep = 0;
    for (const auto& r : retention) {
      if (r.keep_ms > keep && MatchesAll(r.matchers, metric)) keep = r.keep_ms;
    }
    return keep;
  }

  Id SourceId(std::string_view name) {
    auto [it, inserted] = source_ids.try_emplace(std::string(name), static_cast<Id>(source_ids.size()));
    return it->second;
  }

  // The series with these (sorted) labels, created if new: sharing `metric` when it is a
  // LabelSet, with a copy of a Labels.
  template <typename L>
  StoredSeries& FindOrCreate(const L& metric, Id* id_out) {
    const std::uint64_t hash = LabelsHash(metric);
    if (auto found = ids.Find(hash, [&](Id id) { return series[id].metric == metric; })) {
      *id_out = *found;
      return series[*found];
    }
    const Id id = AllocateSlot(LabelValue(metric, "__name__"));
    ids.Insert(hash, id);
    StoredSeries& s = series[id];
    s.metric = LabelSet(metric);
    s.SetKeep(KeepFor(s.metric));
    postings.Add(id, s.metric);
    *id_out = id;
    return s;
  }

  Id AllocateSlot(std::string_view name) {
    auto it = names.find(name);
    if (it == names.end()) it = names.emplace(std::string(name), NameSlots{}).first;
    NameSlots& n = it->second;
    if (n.free.empty()) {
      const std::uint32_t log =
          std::clamp<std::uint32_t>(std::bit_width(n.capacity), kMinChunkLog, kMaxChunkLog);
      const std::uint32_t size = 1u << log;
      Id first;
      if (!chunk_pool[log].empty()) {
        first = chunk_pool[log].back();
        chunk_pool[log].pop_back();
      } else {
        first = static_cast<Id>(series.size());
        series.resize(series.size() + size);
        seen.resize(series.size(), 0);
      }
      n.chunks.emplace_back(first, size);
      n.capacity += size;
      for (Id id = first + size; id-- > first;) n.free.push_back(id);
    }
    const Id id = n.free.back();
    n.free.pop_back();
    ++n.live;
    return id;
  }

  void Delete(Id id) {
    StoredSeries& s = series[id];
    ids.Erase(LabelsHash(s.metric), id);
    postings.Remove(id, s.metric);
    auto it = names.find(LabelValue(s.metric, "__name__"));
    s = StoredSeries{};
    seen[id] = 0;
    NameSlots& n = it->second;
    n.free.push_back(id);
    if (--n.live == 0) {
      for (const auto& [first, size] : n.chunks) chunk_pool[std::countr_zero(size)].push_back(first);
      names.erase(it);
    }
  }

  static bool Expired(const StoredSeries& s, TimestampMs now) {
    return s.empty() ||
           (promql::IsStaleMarker(s.back().v) && s.back().t + s.keep_ms + promql::kLookbackDeltaMs < now);
  }

  // Marks every live series of `source` not handled in this pass stale at t and forgets
  // expired ones; the survivors join `kept`.
  void Retire(Id source, TimestampMs t, std::vector<Id>& kept) {
    auto it = by_source.find(source);
    if (it == by_source.end()) return;
    for (Id id : it->second) {
      StoredSeries& s = series[id];
      if (s.metric.empty() || s.source != source || seen[id] == pass) continue;
      seen[id] = pass;
      if (!s.empty() && !promql::IsStaleMarker(s.back().v)) s.Append(t, promql::StaleMarker());
      if (Expired(s, t)) {
        Delete(id);
        continue;
      }
      kept.push_back(id);
    }
  }
};

SeriesStore::SeriesStore() : impl_(std::make_unique<Impl>()) {}
SeriesStore::~SeriesStore() = default;

void SeriesStore::Ingest(std::string_view source_name, TimestampMs t,
                         const std::vector<StoreSample>& samples) {
  std::unique_lock lock(mu_);
  Impl& m = *impl_;
  const Id source = m.SourceId(source_name);
  const std::uint64_t pass = ++m.pass;
  std::vector<Id> present;
  present.reserve(samples.size());
  // A collection mostly repeats the previous one in the same order: the series at the same
  // position is tried first, without hashing. A stored series equals the sample's labels only
  // if those are canonical.
  auto prev_it = m.by_source.find(source);
  const std::vector<Id>* prev = prev_it == m.by_source.end() ? nullptr : &prev_it->second;
  Labels sorted;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const auto& sample = samples[i];
    Id id = prev && i < prev->size() ? (*prev)[i] : kNoSource;
    StoredSeries* hit = id != kNoSource ? &m.series[id] : nullptr;
    if (!hit || hit->source != source || !(hit->metric == sample.metric)) {
      const Labels* metric = &sample.metric;
      if (!IsCanonical(*metric)) {
        sorted = *metric;
        CanonicalLabels(sorted);
        metric = &sorted;
      }
      hit = &m.FindOrCreate(*metric, &id);
    }
    StoredSeries& s = *hit;
    s.source = source;
    s.Append(t, sample.value);
    if (m.seen[id] != pass) {
      m.seen[id] = pass;
      present.push_back(id);
    }
  }
  m.Retire(source, t, present);
  m.by_source[source] = std::move(present);
}

void SeriesStore::Append(const LabelSet& metric, TimestampMs t, double v) {
  AppendRef(0, metric, t, v);
}

std::uint64_t SeriesStore::AppendRef(std::uint64_t ref, const LabelSet& metric_in, TimestampMs t, double v) {
  std::unique_lock lock(mu_);
  auto& series = impl_->series;
  if (ref != 0 && ref <= series.size() && series[ref - 1].metric.SameAs(metric_in) && !metric_in.empty()) {
    series[ref - 1].Append(t, v);
    return ref;
  }
  Id id;
  if (IsCanonical(metric_in)) {
    impl_->FindOrCreate(metric_in, &id).Append(t, v);
    return std::uint64_t(id) + 1;
  }
  Labels metric = metric_in;
  CanonicalLabels(metric);
  impl_->FindOrCreate(metric, &id).Append(t, v);
  return std::uint64_t(id) + 1;
}

void SeriesStore::Compact(TimestampMs now) {
  std::unique_lock lock(mu_);
  for (Id id = 0; id < impl_->series.size(); ++id) {
    const auto& s = impl_->series[id];
    if (s.metric.empty()) continue;
    if (s.empty() || s.back().t + s.keep_ms + promql::kLookbackDeltaMs < now) impl_->Delete(id);
  }
}

void SeriesStore::RemoveSource(std::string_view source_name, TimestampMs t) {
  std::unique_lock lock(mu_);
  const Id source = impl_->SourceId(source_name);
  ++impl_->pass;
  std::vector<Id> kept;
  impl_->Retire(source, t, kept);
  if (kept.empty()) {
    impl_->by_source.erase(source);
  } else {
    impl_->by_source[source] = std::move(kept);
  }
}

void SeriesStore::SetRetention(std::vector<Retention> retention) {
  std::unique_lock lock(mu_);
  impl_->retention = std::move(retention);
  for (auto& s : impl_->series) {
    if (!s.metric.empty()) s.SetKeep(impl_->KeepFor(s.metric));
  }
}

SeriesStore::Stats SeriesStore::stats() const {
  std::shared_lock lock(mu_);
  Stats st;
  for (const auto& s : impl_->series) {
    if (s.metric.empty()) continue;
    ++st.series;
    st.samples += s.retained().size();
    st.bytes += sizeof(StoredSeries) + sizeof(std::uint64_t) + s.heap_bytes();  // with its `seen`
  }
  if (st.series) st.bytes += impl_->postings.bytes() + impl_->ids.bytes();
  // Unused slots of the names' chunks and of the pool, with their `seen`.
  st.bytes += (impl_->series.size() - st.series) * (sizeof(StoredSeries) + sizeof(std::uint64_t));
  return st;
}

void SeriesStore::Select(const std::vector<promql::Matcher>& matchers, TimestampMs mint, TimestampMs maxt,
                         const SelectFunc& fn) const {
  std::shared_lock lock(mu_);
  auto candidates = impl_->postings.Select(matchers);
  std::vector<const promql::Matcher*> all;
  if (!candidates)
    for (const auto& m : matchers) all.push_back(&m);
  const auto& check = candidates ? candidates->unchecked : all;
  auto visit = [&](const StoredSeries& s) {
    if (s.metric.empty() || !MatchesAll(check, s.metric)) return;
    const auto pts = s.points();
    if (pts.empty() || pts.back().t < mint) return;
    const TimestampMs from = std::max(mint, s.oldest());
    // Mostly the window ends at or just before the newest point (a group evaluates at its slot,
    // before the next collection) and holds the newest few dozen points: searching back from the
    // newest point reads the lines the caller reads next anyway, where a binary search over the
    // buffer would touch lines the window does not cover.
    auto hi = pts.end();
    for (int back = 0; back < 3 && hi != pts.begin() && std::prev(hi)->t > maxt; ++back) --hi;
    if (hi != pts.begin() && std::prev(hi)->t > maxt)
      hi = std::upper_bound(pts.begin(), hi, maxt,
                            [](TimestampMs t, const promql::Point& p) { return t < p.t; });
    if (hi == pts.begin()) return;
    // The window's first point: guessed from the spacing of the two newest (collections are
    // regular), then corrected by a few steps; the guess touches only lines the caller reads.
    auto lo = hi;
    if (const auto held = hi - pts.begin(); held >= 2) {
      const TimestampMs step = std::prev(hi)->t - std::prev(hi, 2)->t;
      const TimestampMs span = std::prev(hi)->t - from;
      lo = span < 0 ? hi : hi - std::min<std::ptrdiff_t>(held, span / step + 1);
    } else if (std::prev(hi)->t >= from) {
      lo = std::prev(hi);
    }
    int steps = 0;
    for (; steps < 4 && lo != pts.begin() && std::prev(lo)->t >= from; ++steps) --lo;
    for (; steps < 4 && lo != hi && lo->t < from; ++steps) ++lo;
    if (steps == 4) {
      auto less = [](const promql::Point& p, TimestampMs t) { return p.t < t; };
      lo = lo != hi && lo->t < from ? std::lower_bound(lo, hi, from, less)
                                    : std::lower_bound(pts.begin(), lo, from, less);
    }
    if (lo == hi) return;
    fn(s.metric, std::span<const promql::Point>(lo, hi));
  };
  if (candidates) {
    // The points of a series with history lie in their own buffer: a miss each, unless asked
    // for a few candidates ahead.
    const auto& ids = candidates->ids;
    constexpr std::size_t kAhead = 6;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (i + kAhead < ids.size()) impl_->series[ids[i + kAhead]].Prefetch();
      visit(impl_->series[ids[i]]);
    }
  } else {
    for (const auto& s : impl_->series) visit(s);
  }
}

}  // namespace runbook
