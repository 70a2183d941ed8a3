#pragma once
// MetricSink: where collectors write samples. It validates (label arity, UTF-8, duplicates,
// conflicting family definitions), adds the target's constant labels and yields the families
// sorted, as compact SampleFamily values (rendered by exporter/exposition.h, fed to the rule
// engine). A sample costs no allocation of its own: label values go into one buffer per family.
// A sink kept from one collection to the next (Reset, Families) keeps each family's definition
// and buffers, so a collection that publishes the families of the previous one allocates nothing.
//
// Thread-safety: a MetricSink is used by one collection at a time (not synchronised).
// MergeFamilies is a pure function; a SampleFamily is a plain value.

#include <cstdint>
#include <initializer_list>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runbook/labels.h"

namespace runbook {

enum class MetricKind { kGauge, kCounter, kSummary };

// Static description of one metric family. Collectors keep these in constant tables.
struct MetricDesc {
  std::string name;
  MetricKind kind = MetricKind::kGauge;
  std::string help;
  std::vector<std::string> labels;  // label names, in the order values are passed to Add()
};

// One series of a summary beyond its sum: the count and the quantiles (rendered in this order,
// each with a `quantile` label after the other labels).
struct SummaryValue {
  double count = 0;
  std::vector<std::pair<double, double>> quantiles;  // (quantile, value)
};

// The samples of one family. Series are sorted by their label values taken in label-name order
// (the exposition's order); the label values of all series lie back to back in `text`.
struct SampleFamily {
  std::string name;
  MetricKind kind = MetricKind::kGauge;
  std::string help;
  std::vector<std::string> label_names;    // the description's labels, then the constant labels
  std::vector<std::uint32_t> label_order;  // indexes into label_names, sorted by name
  std::string text;                        // label values of every series, back to back
  std::vector<std::uint32_t> ends;         // end in `text` of value j of series i: [i * labels + j]
  std::vector<double> values;              // one per series (a summary's sum)
  std::vector<SummaryValue> summaries;     // kSummary only: one per series
  // Identifies name, kind, help, label_names and label_order: MetricSink gives each definition
  // of a family a new number, so two families with one nonzero number are defined alike and
  // MergeOrderedInto need not copy those fields. Code that changes them must set it to 0.
  std::uint64_t definition = 0;

  std::size_t size() const { return values.size(); }
  std::string_view LabelValue(std::size_t series, std::size_t label) const {
    const std::size_t k = series * label_names.size() + label;
    const std::size_t begin = k == 0 ? 0 : ends[k - 1];
    return std::string_view(text).substr(begin, ends[k] - begin);
  }
};

class MetricSink {
 public:
  // const_labels are appended to every sample (target name and the target's configured labels).
  // A collector label with the name of a constant label is published as exported_<name> (again
  // prefixed while that is taken too), as Prometheus renames scraped labels that clash with
  // target labels, so neither value is lost and no series has one label twice.
  explicit MetricSink(Labels const_labels = {});

  // Adds one sample. A wrong number of label values, a duplicate series, or a family whose type
  // or help differs from an earlier one with the same name is dropped and recorded in errors().
  // Invalid UTF-8 in label values is replaced by U+FFFD (the sample is kept).
  void Add(const MetricDesc& desc, const std::vector<std::string>& label_values, double value);
  void Add(const MetricDesc& desc, std::initializer_list<std::string_view> label_values, double value);
  // Adds one series of a summary family (desc.kind == kSummary; plain Add refuses those).
  void AddSummary(const MetricDesc& desc, std::span<const std::string_view> label_values, double sum,
                  SummaryValue summary);

  // Families sorted by name, series sorted by label values; leaves the sink empty.
  std::vector<SampleFamily> Take();

  // Starts a new collection on a sink that is kept: drops the samples and errors but keeps the
  // families (name, help, labels and their buffers). A family that got no sample since the
  // previous Reset is forgotten; one whose description changed (help, type, labels) is redefined
  // on its first sample, not reported as a conflict.
  void Reset();
  // The families with samples since the last Reset (or Take), as Take() would return them; the
  // pointers are valid until the next Add, Reset or Take.
  const std::vector<const SampleFamily*>& Families();

  // Records a problem with the data a collector received (e.g. a value that is not a number);
  // the collection still succeeds, the error is counted and shown on the landing page.
  void RecordError(std::string message) { errors_.push_back(std::move(message)); }
  // Duplicates are found when the series are sorted, which these two do first.
  const std::vector<std::string>& errors();
  std::size_t size();

 private:
  struct Pending {
    SampleFamily family;
    bool sorted = true;
    bool active = false;   // has samples since the last Reset
    bool renamed = false;  // a collector label was renamed exported_<name>
  };
  bool HasConstLabel(std::string_view name) const;
  bool SameDeclaredLabels(const std::vector<std::string>& declared,
                          const std::vector<std::string>& names) const;
  template <typename T>  // std::string or std::string_view
  SampleFamily* Append(const MetricDesc& desc, std::span<const T> label_values, bool summary);
  void Settle();
  void Define(SampleFamily& f, const MetricDesc& desc, bool& renamed) const;

  Labels const_labels_;
  std::map<std::string, Pending, std::less<>> families_;
  // The family of each description seen (collectors keep theirs in constant tables), so an Add
  // skips the lookup by name; checked against the name in case an address is reused.
  std::unordered_map<const MetricDesc*, Pending*> by_desc_;
  // The family of each Add of the previous collection, in call order (a collector adds in the
  // same order every time): an Add whose description is the one at trail_pos_ skips by_desc_.
  std::vector<std::pair<const MetricDesc*, Pending*>> trail_;
  std::size_t trail_pos_ = 0;
  std::vector<Pending*> active_;    // the families with samples since the last Reset
  std::vector<Pending*> unsorted_;  // those of them whose series are out of order
  std::vector<std::string> errors_;
  std::size_t samples_ = 0;
  std::vector<const SampleFamily*> view_;  // Families()
  SampleFamily scratch_;                   // buffers for sorting series, swapped with a family's
  std::vector<std::uint32_t> order_;
};

// Merges family lists (each sorted by name, as Take() returns them) into one list sorted by name.
// Families of one name and one label set are joined (series of the later ones after the earlier);
// a family with another label set stays a separate entry right after it. A family of another type
// than the first of its name is dropped (its sample count is added to *dropped if given).
std::vector<SampleFamily> MergeFamilies(std::vector<std::vector<SampleFamily>> parts,
                                        std::size_t* dropped = nullptr);
// The same in two steps, for callers that merge into buffers they keep. OrderForMerge sorts the
// families by name (stably: for one name, the order given) and removes those MergeFamilies drops,
// returning their sample count. MergeOrderedInto writes the merge of such a list into `out`,
// overwriting its elements in place (reusing their buffers) and resizing it.
std::size_t OrderForMerge(std::vector<const SampleFamily*>& families);
// The same for a list whose first `ordered` entries OrderForMerge has ordered and whose other
// entries are sorted by name (one sink's Families()): the two runs are merged in place, stably.
std::size_t OrderForMerge(std::vector<const SampleFamily*>& families, std::size_t ordered);
void MergeOrderedInto(std::span<const SampleFamily* const> families, std::vector<SampleFamily>& out);

// Replaces invalid UTF-8 sequences with U+FFFD.
std::string SanitizeUtf8(std::string_view in);
// The same, appended to `out`.
void AppendSanitizedUtf8(std::string& out, std::string_view in);

}  // namespace runbook
