#pragma once
// SeriesStore: the samples the rule engine evaluates — the latest collection of every target
// plus a bounded history for the series that rules read over a range (range selectors,
// subqueries, offset). Implementation: rules/series_store.cpp.
//
// Staleness as in Prometheus: when a source (one target) publishes a collection, every series of
// that source missing from it gets a staleness marker at the collection's time. A failed
// collection publishes only the target's self-metrics, so all its other series go stale.
//
// Memory: a series matching no Retention keeps only its newest two points; a series matching one
// keeps points back to keep_ms + the 5 min lookback (older points leave its buffer when the
// buffer fills, and are never read). Series whose newest point is a staleness marker are dropped
// once that marker and every retained point have aged out. Slots and history buffers lie on
// memory advised as huge pages (selectors read them in no address order: with 4 KiB pages a
// TLB miss per series); freed buffers are reused, and returned only with the store.
//
// Lookup: series live in slots found by a hash of their labels; Select visits only the series a
// label index (rules/promql/postings.h) offers for the selector's non-empty matchers, or every
// series when no matcher narrows.
//
// Thread-safety: every method may be called from any thread. Ingest/SetRetention/RemoveSource
// take an exclusive lock; Select and stats() a shared one.

#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "runbook/promql.h"
#include "runbook/rules.h"

namespace runbook {

// Series selected by `matchers` keep `keep_ms` of history (besides the lookback window).
struct Retention {
  std::vector<promql::Matcher> matchers;
  TimestampMs keep_ms = 0;
};

struct StoreSample {
  Labels metric;  // need not be sorted; must include __name__
  double value = 0;
};

// The retention the given expressions need (promql::Selectors): for every selector, how far back
// from the evaluation time its range, offset and enclosing subqueries read. Plain instant
// selectors need only the newest point and are left out. A fixed `@ <timestamp>` cannot be
// served from a bounded history and is left out too (it sees whatever is still kept).
std::vector<Retention> RetentionFor(const std::vector<const promql::Expr*>& exprs);

class SeriesStore final : public promql::Queryable, public rules::Appender {
 public:
  SeriesStore();
  ~SeriesStore() override;

  // Replaces the samples of `source` with one collection taken at `t`. Points at or before a
  // series' newest point are ignored (time only moves forward per series).
  void Ingest(std::string_view source, TimestampMs t, const std::vector<StoreSample>& samples);
  // Appends one point outside any source's collections (rule output: recording rules, ALERTS);
  // the writer is responsible for its staleness markers. Ignored when not newer than the
  // series' newest point. This makes the store the rule manager's Appender too.
  void Append(const LabelSet& metric, TimestampMs t, double v) override;
  // The reference is the series' slot; it is used only while that slot holds this very shared
  // set (a set kept by the caller cannot be freed and reused), so a series dropped and
  // recreated since, or a slot reused by another series, falls back to the lookup.
  std::uint64_t AppendRef(std::uint64_t ref, const LabelSet& metric, TimestampMs t, double v) override;
  // Drops every series that no query at or after `now` can see any more: its newest point is
  // older than its retention plus the lookback window.
  void Compact(TimestampMs now);
  // The source is gone (target removed from the configuration): its live series go stale at t.
  void RemoveSource(std::string_view source, TimestampMs t);
  // Replaces the retention rules (normally derived from the loaded rule files).
  void SetRetention(std::vector<Retention> retention);

  struct Stats {
    std::size_t series = 0;
    std::size_t samples = 0;
    std::size_t bytes = 0;  // estimate of the heap memory held for labels and points
  };
  Stats stats() const;

  void Select(const std::vector<promql::Matcher>& matchers, TimestampMs mint, TimestampMs maxt,
              const SelectFunc& fn) const override;
  void SelectLatest(const std::vector<promql::Matcher>& matchers, TimestampMs mint, TimestampMs maxt,
                    const SelectFunc& fn) const override;

 private:
  struct Impl;
  // Select (kLatest false) and SelectLatest (true, passing the newest point only).
  template <bool kLatest>
  void Visit(const std::vector<promql::Matcher>& matchers, TimestampMs mint, TimestampMs maxt,
             const SelectFunc& fn) const;

  std::unique_ptr<Impl> impl_;
  mutable std::shared_mutex mu_;
};

}  // namespace runbook
