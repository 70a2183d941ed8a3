#pragma once
// MetricSink: where collectors write samples. It validates (label arity, UTF-8, duplicates,
// conflicting family definitions), adds the target's constant labels, merges samples of one
// family and yields sorted prometheus::MetricFamily values (rendered by exporter/exposition.h).
//
// Thread-safety: a MetricSink is used by one collection at a time (not synchronised).
// MergeFamilies is a pure function.

#include <prometheus/metric_family.h>

#include "runbook/labels.h"

#include <initializer_list>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runbook {

enum class MetricKind { kGauge, kCounter };

// Static description of one metric family. Collectors keep these in constant tables.
struct MetricDesc {
  std::string name;
  MetricKind kind = MetricKind::kGauge;
  std::string help;
  std::vector<std::string> labels;  // label names, in the order values are passed to Add()
};

class MetricSink {
 public:
  // const_labels are appended to every sample (target name and the target's configured labels).
  explicit MetricSink(Labels const_labels = {});

  // Adds one sample. A wrong number of label values, a duplicate series, or a family whose type
  // or help differs from an earlier one with the same name is dropped and recorded in errors().
  // Invalid UTF-8 in label values is replaced by U+FFFD (the sample is kept).
  void Add(const MetricDesc& desc, const std::vector<std::string>& label_values, double value);
  void Add(const MetricDesc& desc, std::initializer_list<std::string_view> label_values, double value);

  // Families sorted by name, samples sorted by label values; leaves the sink empty.
  std::vector<prometheus::MetricFamily> Take();

  // Records a problem with the data a collector received (e.g. a value that is not a number);
  // the collection still succeeds, the error is counted and shown on the landing page.
  void RecordError(std::string message) { errors_.push_back(std::move(message)); }
  const std::vector<std::string>& errors() const { return errors_; }
  std::size_t size() const { return samples_; }

 private:
  template <typename T>  // std::string or std::string_view
  void AddSpan(const MetricDesc& desc, std::span<const T> label_values, double value);

  struct Family {
    MetricKind kind;
    std::string help;
    std::vector<std::string> label_names;
    std::map<std::vector<std::string>, double> series;
  };
  Labels const_labels_;
  std::map<std::string, Family, std::less<>> families_;
  std::vector<std::string> errors_;
  std::size_t samples_ = 0;
};

// Merges family lists (each sorted by name, as Take() returns them) into one sorted list where
// each name appears once. Families with the same name but another type keep the first type;
// samples of the others are dropped (their count is added to *dropped if given).
std::vector<prometheus::MetricFamily> MergeFamilies(std::vector<std::vector<prometheus::MetricFamily>> parts,
                                                    std::size_t* dropped = nullptr);

// Replaces invalid UTF-8 sequences with U+FFFD.
std::string SanitizeUtf8(std::string_view in);

}  // namespace runbook
