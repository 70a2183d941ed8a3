#pragma once
// Labels: a set of name/value pairs. Configured constant labels keep the configured order;
// wherever the rule engine or delivery uses a label set it is sorted by name with unique names
// (SortLabels establishes that).

#include <algorithm>
#include <atomic>
#include <compare>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runbook {

using Labels = std::vector<std::pair<std::string, std::string>>;

// One step of LabelsHash: folds a name or value into h. HashMixHashed takes the string's
// std::hash, for callers that fold the same name many times.
inline std::uint64_t HashMixHashed(std::uint64_t h, std::size_t string_hash) {
  return h ^ (string_hash + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}
inline std::uint64_t HashMix(std::uint64_t h, std::string_view s) {
  return HashMixHashed(h, std::hash<std::string_view>{}(s));
}

// A hash of names and values, never 0: equal label sets hash alike. Users that need identity
// still compare the labels on equal hashes.
inline std::uint64_t LabelsHash(const Labels& labels) {
  std::uint64_t h = 0x9e3779b97f4a7c15ULL;
  for (const auto& [n, v] : labels) h = HashMix(HashMix(h, n), v);
  return h ? h : 1;
}

// An immutable label set shared by reference, for the rule engine's hot paths: copying one costs
// a reference count, not strings, so a series selected from a store and the samples derived from
// it share one set of strings. It reads like a `const Labels` (and converts to one); changing it
// means building a new one from a Labels. An empty set holds no allocation. Its LabelsHash is
// computed once, when first asked for.
// Thread-safety: like std::shared_ptr — copies may be read and destroyed on any thread.
class LabelSet {
 public:
  LabelSet() = default;
  LabelSet(Labels labels)  // NOLINT: implicit, as a Labels is what callers have
      : p_(labels.empty() ? nullptr : std::make_shared<const Rep>(std::move(labels))) {}
  LabelSet(std::initializer_list<Labels::value_type> labels) : LabelSet(Labels(labels)) {}
  // With its hash already known: `hash` must be LabelsHash(labels).
  LabelSet(Labels labels, std::uint64_t hash) : LabelSet(std::move(labels)) {
    if (p_) p_->hash.store(hash, std::memory_order_relaxed);
  }

  const Labels& get() const { return p_ ? p_->labels : Empty(); }
  operator const Labels&() const { return get(); }  // NOLINT: reads like a Labels
  Labels::const_iterator begin() const { return get().begin(); }
  Labels::const_iterator end() const { return get().end(); }
  std::size_t size() const { return p_ ? p_->labels.size() : 0; }
  bool empty() const { return !p_; }
  const Labels::value_type& operator[](std::size_t i) const { return p_->labels[i]; }
  std::uint64_t hash() const {
    if (!p_) return LabelsHash(Empty());
    // Racing readers compute the same value: relaxed is enough.
    std::uint64_t h = p_->hash.load(std::memory_order_relaxed);
    if (h == 0) {
      h = LabelsHash(p_->labels);
      p_->hash.store(h, std::memory_order_relaxed);
    }
    return h;
  }
  // This set without __name__: itself when it has none; otherwise built once per shared set and
  // kept with it, as evaluation drops the name of the same stored series round after round.
  LabelSet WithoutName() const {
    if (!p_) return {};
    const Rep* w = p_->without_name.load(std::memory_order_acquire);
    if (!w) {
      auto name = std::find_if(p_->labels.begin(), p_->labels.end(),
                               [](const auto& l) { return l.first == "__name__"; });
      if (name == p_->labels.end()) return *this;
      if (p_->labels.size() == 1) return {};
      Labels rest;
      rest.reserve(p_->labels.size() - 1);
      rest.insert(rest.end(), p_->labels.begin(), name);
      rest.insert(rest.end(), name + 1, p_->labels.end());
      auto fresh = std::make_unique<const Rep>(std::move(rest));
      const Rep* expected = nullptr;
      if (p_->without_name.compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel,
                                                   std::memory_order_acquire)) {
        w = fresh.release();
      } else {
        w = expected;  // a racing builder won; its set is equal
      }
    }
    // The cached set is owned by this one: the result shares this set's ownership (aliasing).
    LabelSet out;
    out.p_ = std::shared_ptr<const Rep>(p_, w);
    return out;
  }
  // Heap bytes held: the shared block, the labels' strings, the cached WithoutName set.
  std::size_t heap_bytes() const {
    if (!p_) return 0;
    auto strings = [](const Labels& l) {
      std::size_t n = l.capacity() * sizeof(Labels::value_type);
      for (const auto& [k, v] : l)
        n += (k.capacity() > 15 ? k.capacity() + 1 : 0) + (v.capacity() > 15 ? v.capacity() + 1 : 0);
      return n;
    };
    std::size_t n = sizeof(Rep) + 16 + strings(p_->labels);
    if (auto w = p_->without_name.load(std::memory_order_acquire)) n += sizeof(Rep) + 16 + strings(w->labels);
    return n;
  }
  // Whether both refer to the same shared set (then they are equal without comparing strings).
  bool SameAs(const LabelSet& other) const { return p_ == other.p_; }
  // The shared set's address (null when empty): SameAs compares it. Only meaningful while a
  // copy of the set is held — a freed set's address may be reused by another.
  const void* identity() const { return p_.get(); }

  friend bool operator==(const LabelSet& a, const LabelSet& b) {
    return a.p_ == b.p_ || (a.hash() == b.hash() && a.get() == b.get());
  }
  friend bool operator==(const LabelSet& a, const Labels& b) { return a.get() == b; }
  friend auto operator<=>(const LabelSet& a, const LabelSet& b) { return a.get() <=> b.get(); }
  friend auto operator<=>(const LabelSet& a, const Labels& b) { return a.get() <=> b; }

 private:
  static const Labels& Empty() {
    static const Labels empty;
    return empty;
  }
  struct Rep {
    explicit Rep(Labels l) : labels(std::move(l)) {}
    Rep(const Rep&) = delete;
    Rep& operator=(const Rep&) = delete;
    ~Rep() { delete without_name.load(std::memory_order_acquire); }
    Labels labels;
    mutable std::atomic<std::uint64_t> hash{0};  // 0: not computed yet
    // WithoutName's set, owned here. A plain atomic pointer: libstdc++ 12's
    // atomic<shared_ptr> unlocks with relaxed order, which TSan reports as a race.
    mutable std::atomic<const Rep*> without_name{nullptr};
  };
  std::shared_ptr<const Rep> p_;
};

inline std::uint64_t LabelsHash(const LabelSet& labels) {
  return labels.hash();
}

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

// The value of `name`, or empty when absent (Prometheus treats both alike).
inline std::string_view LabelValue(const Labels& labels, std::string_view name) {
  for (const auto& [n, v] : labels) {
    if (n == name) return v;
  }
  return {};
}

}  // namespace runbook
