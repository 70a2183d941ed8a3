#include "runbook/series_store.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <unordered_map>

#include "promql/postings.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace runbook {
namespace {

using Id = promql::Postings::Id;
constexpr Id kNoSource = ~Id(0);

constexpr std::size_t kHugePage = std::size_t(2) << 20;

// The arena carves buffers out of its own blocks, where ASan sees one mapping: the parts not
// handed out are poisoned, so a read past a buffer into free space or of a freed buffer is caught.
void AsanPoison([[maybe_unused]] const void* p, [[maybe_unused]] std::size_t n) {
#if defined(__SANITIZE_ADDRESS__)
  ASAN_POISON_MEMORY_REGION(p, n);
#endif
}
void AsanUnpoison([[maybe_unused]] const void* p, [[maybe_unused]] std::size_t n) {
#if defined(__SANITIZE_ADDRESS__)
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
}

// Memory the kernel is asked to back with huge pages: the store's points and slots (~100 MB
// in the bench) are read in an order unrelated to their addresses, so with 4 KiB pages nearly
// every series costs a TLB miss and a page walk on top of the cache miss. Mapped directly
// (malloc would keep freed blocks in its heap), aligned to a huge page.
std::size_t HugeSize(std::size_t bytes) {
  return (bytes + kHugePage - 1) / kHugePage * kHugePage;
}
void* AllocateHuge(std::size_t bytes) {
  bytes = HugeSize(bytes);
  const std::size_t len = bytes + kHugePage;
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<std::uintptr_t>(p);
  const auto aligned = (start + kHugePage - 1) & ~(kHugePage - 1);
  if (aligned > start) ::munmap(p, aligned - start);
  if (const std::size_t tail = len - (aligned - start) - bytes; tail > 0)
    ::munmap(reinterpret_cast<void*>(aligned + bytes), tail);
  ::madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);  // advice only
  return reinterpret_cast<void*>(aligned);
}
void FreeHuge(void* p, std::size_t bytes) {
  ::munmap(p, HugeSize(bytes));
}

// For the slot vectors: large arrays on huge pages, small ones as usual.
template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}  // NOLINT: rebinding
  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kHugePage) return static_cast<T*>(::operator new(bytes, std::align_val_t(alignof(T))));
    return static_cast<T*>(AllocateHuge(bytes));
  }
  void deallocate(T* p, std::size_t n) {
    if (n * sizeof(T) < kHugePage) {
      ::operator delete(p, std::align_val_t(alignof(T)));
    } else {
      FreeHuge(p, n * sizeof(T));
    }
  }
  bool operator==(const HugePageAllocator&) const = default;
};

// The history buffers: power-of-two capacities carved from huge-page blocks, reused by
// capacity once freed. Blocks are returned when Compact repacks the buffers into a fresh arena,
// and with the store. Not synchronised: the store's exclusive lock covers every change.
class PointArena {
 public:
  PointArena() = default;
  PointArena(const PointArena&) = delete;
  PointArena& operator=(const PointArena&) = delete;
  ~PointArena() {
    for (void* b : blocks_) {
      AsanUnpoison(b, kHugePage);  // the addresses may be mapped again by anyone
      FreeHuge(b, kHugePage);
    }
  }

  // cap: a power of two.
  promql::Point* Allocate(std::uint32_t cap) {
    auto& free = free_[std::countr_zero(cap)];
    const std::size_t bytes = std::size_t(cap) * sizeof(promql::Point);
    if (!free.empty()) {
      promql::Point* p = free.back();
      free.pop_back();
      idle_ -= bytes;
      AsanUnpoison(p, bytes);
      return p;
    }
    if (bytes > kHugePage / 8) {
      void* p = std::malloc(bytes);
      if (!p) throw std::bad_alloc();
      return static_cast<promql::Point*>(p);
    }
    if (blocks_.empty() || used_ + bytes > kHugePage) {
      idle_ += blocks_.empty() ? 0 : kHugePage - used_;
      blocks_.push_back(AllocateHuge(kHugePage));
      AsanPoison(blocks_.back(), kHugePage);
      used_ = 0;
    }
    auto* p = reinterpret_cast<promql::Point*>(static_cast<char*>(blocks_.back()) + used_);
    used_ += bytes;
    AsanUnpoison(p, bytes);
    return p;
  }
  void Free(promql::Point* p, std::uint32_t cap) {
    if (!p) return;
    const std::size_t bytes = std::size_t(cap) * sizeof(promql::Point);
    if (bytes > kHugePage / 8) {
      std::free(p);
      return;
    }
    free_[std::countr_zero(cap)].push_back(p);
    idle_ += bytes;
    AsanPoison(p, bytes);
  }
  // Held but not in use: freed buffers, the unused ends of blocks.
  std::size_t idle_bytes() const { return idle_ + (blocks_.empty() ? 0 : kHugePage - used_); }
  std::size_t block_bytes() const { return blocks_.size() * kHugePage; }
  void swap(PointArena& o) noexcept {
    blocks_.swap(o.blocks_);
    std::swap(used_, o.used_);
    std::swap(idle_, o.idle_);
    for (std::size_t i = 0; i < std::size(free_); ++i) free_[i].swap(o.free_[i]);
  }

 private:
  std::vector<void*> blocks_;
  std::size_t used_ = 0, idle_ = 0;
  std::vector<promql::Point*> free_[32];
};

// One cache line: what Select reads (labels, retention, points inline or where they lie) and
// the owning source. Series without a retention keep their newest two points inline (a
// separate allocation cost a cache miss per series); with one, a buffer holds the points back
// to keep_ms + the lookback, and a copy of the newest point stays inline: an instant selector
// (SelectLatest) reads nothing else, so it does not touch the buffer.
struct alignas(64) StoredSeries {
  LabelSet metric;  // sorted; empty for a free slot
  TimestampMs keep_ms = 0;

  StoredSeries() = default;
  StoredSeries(const StoredSeries&) = delete;
  StoredSeries& operator=(const StoredSeries&) = delete;
  // The history buffer belongs to the store's PointArena: Release() gives it back; moving
  // hands it over (the target must hold none).
  StoredSeries(StoredSeries&& o) noexcept { *this = std::move(o); }
  StoredSeries& operator=(StoredSeries&& o) noexcept {
    if (this == &o) return *this;
    metric = std::move(o.metric);
    keep_ms = o.keep_ms;
    pts_ = o.pts_;
    n_recent_ = o.n_recent_;
    source = o.source;
    o.keep_ms = 0;  // o no longer owns the buffer
    o.n_recent_ = 0;
    return *this;
  }

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
    return {std::lower_bound(pts.begin(), pts.end(), oldest(),
                             [](const promql::Point& p, TimestampMs t) { return p.t < t; }),
            pts.end()};
  }
  bool empty() const { return keep_ms == 0 ? n_recent_ == 0 : pts_.history.size == 0; }
  // The newest point; with history, its copy in this line (the buffer's end is another line).
  const promql::Point& back() const {
    return keep_ms == 0 ? pts_.recent[n_recent_ - 1] : pts_.history.newest;
  }

  // Ignored unless newer than the newest point.
  void Append(TimestampMs t, double v, PointArena& arena) {
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
      promql::Point* data = arena.Allocate(cap);
      if (h.size) std::memcpy(data, h.data, h.size * sizeof(promql::Point));
      arena.Free(h.data, h.cap);
      h.data = data;
      h.cap = cap;
    }
    h.data[h.size++] = {t, v};
    h.newest = {t, v};
  }

  void SetKeep(TimestampMs keep, PointArena& arena) {
    if ((keep == 0) == (keep_ms == 0)) {
      keep_ms = keep;
      return;
    }
    const auto pts = points();
    if (keep == 0) {
      promql::Point last[2];
      std::uint8_t n = 0;
      for (std::size_t i = pts.size() > 2 ? pts.size() - 2 : 0; i < pts.size(); ++i) last[n++] = pts[i];
      Release(arena);
      pts_.recent[0] = last[0];
      pts_.recent[1] = last[1];
      n_recent_ = n;
    } else {
      History h{nullptr, 0, 0, {}};
      if (!pts.empty()) {
        h.cap = 4;
        h.data = arena.Allocate(h.cap);
        for (const auto& p : pts) h.data[h.size++] = p;
        h.newest = pts.back();
      }
      pts_.history = h;
      n_recent_ = 0;
    }
    keep_ms = keep;
  }

  // Moves the history buffer into `to` (packed there, without the points out of reach).
  void Rehome(PointArena& from, PointArena& to) {
    if (keep_ms == 0 || pts_.history.data == nullptr) return;
    History& h = pts_.history;
    const auto keep = retained();
    promql::Point* data = to.Allocate(h.cap);
    std::memcpy(data, keep.data(), keep.size() * sizeof(promql::Point));
    from.Free(h.data, h.cap);
    h.data = data;
    h.size = static_cast<std::uint32_t>(keep.size());
  }

  void Release(PointArena& arena) {
    if (keep_ms != 0) arena.Free(pts_.history.data, pts_.history.cap);
    keep_ms = 0;
    pts_.history = {nullptr, 0, 0, {}};
  }

  std::size_t heap_bytes() const {
    return (keep_ms != 0 ? pts_.history.cap * sizeof(promql::Point) : 0) + metric.heap_bytes();
  }

 private:
  struct History {
    promql::Point* data;
    std::uint32_t size, cap;
    promql::Point newest;  // data[size - 1] when size > 0
  };
  union Points {
    Points() : history{nullptr, 0, 0, {}} {}
    promql::Point recent[2];  // keep_ms == 0
    History history;          // keep_ms != 0; from the PointArena
  };
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

}  // namespace

struct SeriesStore::Impl {
  PointArena arena;                                                   // before the series
  std::vector<StoredSeries, HugePageAllocator<StoredSeries>> series;  // by id
  // by id: the last Ingest/Retire pass that handled the series
  std::vector<std::uint64_t, HugePageAllocator<std::uint64_t>> seen;
  std::vector<Id> free_ids;
  IdTable ids;
  promql::Postings postings;
  std::unordered_map<std::string, Id> source_ids;
  // Per source, the ids of its series at its last collection. Entries may be out of date (the
  // series compacted away, or taken over by another source); users check the series' source.
  std::unordered_map<Id, std::vector<Id>> by_source;
  std::uint64_t pass = 0;
  std::vector<Retention> retention;
  // Indexes into retention: by the metric name a retention's matchers require, and those that
  // require none. A new series is checked against its name's retentions only (there are about as
  // many retentions as range selectors in the rule files).
  std::unordered_map<std::string, std::vector<std::size_t>> retention_by_name;
  std::vector<std::size_t> retention_any_name;

  void IndexRetention() {
    retention_by_name.clear();
    retention_any_name.clear();
    for (std::size_t i = 0; i < retention.size(); ++i) {
      const auto& ms = retention[i].matchers;
      auto name = std::find_if(ms.begin(), ms.end(), [](const promql::Matcher& m) {
        return m.name() == "__name__" && m.op() == promql::Matcher::Op::kEqual;
      });
      if (name != ms.end()) {
        retention_by_name[name->value()].push_back(i);
      } else {
        retention_any_name.push_back(i);
      }
    }
  }

  TimestampMs KeepFor(const Labels& metric) const {
    TimestampMs keep = 0;
    auto check = [&](std::size_t i) {
      const auto& r = retention[i];
      if (r.keep_ms > keep && MatchesAll(r.matchers, metric)) keep = r.keep_ms;
    };
    if (auto it = retention_by_name.find(std::string(LabelValue(metric, "__name__")));
        it != retention_by_name.end())
      for (std::size_t i : it->second) check(i);
    for (std::size_t i : retention_any_name) check(i);
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
    Id id;
    if (free_ids.empty()) {
      id = static_cast<Id>(series.size());
      series.emplace_back();
      seen.push_back(0);
    } else {
      id = free_ids.back();
      free_ids.pop_back();
    }
    ids.Insert(hash, id);
    StoredSeries& s = series[id];
    s.metric = LabelSet(metric);
    s.SetKeep(KeepFor(s.metric), arena);
    postings.Add(id, s.metric);
    *id_out = id;
    return s;
  }

  void Delete(Id id) {
    StoredSeries& s = series[id];
    ids.Erase(LabelsHash(s.metric), id);
    postings.Remove(id, s.metric);
    s.Release(arena);
    s = StoredSeries{};
    seen[id] = 0;
    free_ids.push_back(id);
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
      if (!s.empty() && !promql::IsStaleMarker(s.back().v)) s.Append(t, promql::StaleMarker(), arena);
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
    s.Append(t, sample.value, m.arena);
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
    series[ref - 1].Append(t, v, impl_->arena);
    return ref;
  }
  Id id;
  if (IsCanonical(metric_in)) {
    impl_->FindOrCreate(metric_in, &id).Append(t, v, impl_->arena);
    return std::uint64_t(id) + 1;
  }
  Labels metric = metric_in;
  CanonicalLabels(metric);
  impl_->FindOrCreate(metric, &id).Append(t, v, impl_->arena);
  return std::uint64_t(id) + 1;
}

void SeriesStore::Compact(TimestampMs now) {
  std::unique_lock lock(mu_);
  for (Id id = 0; id < impl_->series.size(); ++id) {
    const auto& s = impl_->series[id];
    if (s.metric.empty()) continue;
    if (s.empty() || s.back().t + s.keep_ms + promql::kLookbackDeltaMs < now) impl_->Delete(id);
  }
  // Buffers that grew leave their smaller predecessors idle, a class new series seldom ask for:
  // past a quarter of the arena, the buffers are copied into fresh blocks.
  PointArena& arena = impl_->arena;
  if (arena.idle_bytes() > kHugePage && arena.idle_bytes() * 4 > arena.block_bytes()) {
    PointArena fresh;
    for (auto& s : impl_->series) s.Rehome(arena, fresh);
    arena.swap(fresh);
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
  impl_->IndexRetention();
  for (auto& s : impl_->series) {
    if (!s.metric.empty()) s.SetKeep(impl_->KeepFor(s.metric), impl_->arena);
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
  if (st.series) st.bytes += impl_->postings.bytes() + impl_->ids.bytes() + impl_->arena.idle_bytes();
  return st;
}

void SeriesStore::Select(const std::vector<promql::Matcher>& matchers, TimestampMs mint, TimestampMs maxt,
                         const SelectFunc& fn) const {
  Visit<false>(matchers, mint, maxt, fn);
}

void SeriesStore::SelectLatest(const std::vector<promql::Matcher>& matchers, TimestampMs mint,
                               TimestampMs maxt, const SelectFunc& fn) const {
  Visit<true>(matchers, mint, maxt, fn);
}

template <bool kLatest>
void SeriesStore::Visit(const std::vector<promql::Matcher>& matchers, TimestampMs mint, TimestampMs maxt,
                        const SelectFunc& fn) const {
  std::shared_lock lock(mu_);
  auto candidates = impl_->postings.Select(matchers);
  std::vector<const promql::Matcher*> all;
  if (!candidates)
    for (const auto& m : matchers) all.push_back(&m);
  const auto& check = candidates ? candidates->unchecked : all;
  auto visit = [&](const StoredSeries& s) {
    if (s.metric.empty() || !MatchesAll(check, s.metric)) return;
    if (s.empty() || s.back().t < mint) return;
    if constexpr (kLatest) {
      if (s.back().t <= maxt) {
        fn(s.metric, std::span<const promql::Point>(&s.back(), 1));
        return;
      }
    }
    const auto pts = s.points();
    const TimestampMs from = std::max(mint, s.oldest());
    // Mostly the window ends at or just before the newest point (a group evaluates at its slot,
    // before the next collection): a few steps back read the cache line already loaded, where a
    // binary search would touch a new line per probe.
    auto hi = pts.end();
    for (int back = 0; back < 3 && hi != pts.begin() && std::prev(hi)->t > maxt; ++back) --hi;
    if (hi != pts.begin() && std::prev(hi)->t > maxt)
      hi = std::upper_bound(pts.begin(), hi, maxt,
                            [](TimestampMs t, const promql::Point& p) { return t < p.t; });
    if constexpr (kLatest) {
      if (hi == pts.begin() || std::prev(hi)->t < from) return;
      fn(s.metric, std::span<const promql::Point>(std::prev(hi), hi));
    } else {
      auto lo = pts.front().t >= from
                    ? pts.begin()
                    : std::lower_bound(pts.begin(), hi, from,
                                       [](const promql::Point& p, TimestampMs t) { return p.t < t; });
      if (lo == hi) return;
      fn(s.metric, std::span<const promql::Point>(lo, hi));
    }
  };
  if (candidates) {
    for (Id id : candidates->ids) visit(impl_->series[id]);
  } else {
    for (const auto& s : impl_->series) visit(s);
  }
}

}  // namespace runbook
