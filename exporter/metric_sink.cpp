#include "runbook/metric_sink.h"

#include <algorithm>
#include <atomic>
#include <cstddef>

namespace runbook {

namespace {

std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  auto b = static_cast<unsigned char>(s[i]);
  std::size_t len;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;  // no UTF-16 surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    auto c = static_cast<unsigned char>(s[i + k]);
    if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return 0;
  }
  return len;
}

// Orders two series of f by their label values in label-name order.
int CompareSeries(const SampleFamily& f, std::size_t a, std::size_t b) {
  for (auto j : f.label_order) {
    if (int c = f.LabelValue(a, j).compare(f.LabelValue(b, j)); c != 0) return c;
  }
  return 0;
}

}  // namespace

void AppendSanitizedUtf8(std::string& out, std::string_view in) {
  std::size_t i = 0;
  while (i < in.size() && static_cast<unsigned char>(in[i]) < 0x80) ++i;
  out.append(in.substr(0, i));  // the common case: all ASCII
  while (i < in.size()) {
    std::size_t n = Utf8SequenceLength(in, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(in.substr(i, n));
      i += n;
    }
  }
}

std::string SanitizeUtf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  AppendSanitizedUtf8(out, in);
  return out;
}

MetricSink::MetricSink(Labels const_labels) : const_labels_(std::move(const_labels)) {}

bool MetricSink::HasConstLabel(std::string_view name) const {
  return std::any_of(const_labels_.begin(), const_labels_.end(),
                     [&](const auto& kv) { return kv.first == name; });
}

bool MetricSink::SameDeclaredLabels(const std::vector<std::string>& declared,
                                    const std::vector<std::string>& names) const {
  for (std::size_t i = 0; i < declared.size(); ++i) {
    std::string_view n = names[i];
    while (n != declared[i] && n.starts_with("exported_")) n.remove_prefix(9);
    if (n != declared[i]) return false;
  }
  return true;
}

void MetricSink::Add(const MetricDesc& desc, std::initializer_list<std::string_view> label_values,
                     double value) {
  if (auto* f = Append(desc, std::span(label_values.begin(), label_values.size()), false))
    f->values.push_back(value);
}

void MetricSink::Add(const MetricDesc& desc, const std::vector<std::string>& label_values, double value) {
  if (auto* f = Append(desc, std::span(label_values), false)) f->values.push_back(value);
}

void MetricSink::AddSummary(const MetricDesc& desc, std::span<const std::string_view> label_values,
                            double sum, SummaryValue summary) {
  if (auto* f = Append(desc, label_values, true)) {
    f->values.push_back(sum);
    f->summaries.push_back(std::move(summary));
  }
}

void MetricSink::Define(SampleFamily& f, const MetricDesc& desc, bool& renamed) const {
  static std::atomic<std::uint64_t> definitions{0};
  f.definition = definitions.fetch_add(1, std::memory_order_relaxed) + 1;
  f.kind = desc.kind;
  f.help = desc.help;
  f.label_names.assign(desc.labels.begin(), desc.labels.end());
  renamed = false;
  for (auto& n : f.label_names) {
    // A label the target also sets (configured labels) is renamed exported_<name>, as
    // Prometheus does with honor_labels: false; the collector's value is kept.
    while (HasConstLabel(n)) {
      n.insert(0, "exported_");
      renamed = true;
    }
  }
  for (const auto& [k, v] : const_labels_) f.label_names.push_back(k);
  f.label_order.clear();
  for (std::size_t j = 0; j < f.label_names.size(); ++j) {  // a stable insertion sort: a few names
    auto pos = f.label_order.end();
    while (pos != f.label_order.begin() && f.label_names[j] < f.label_names[*(pos - 1)]) --pos;
    f.label_order.insert(pos, static_cast<std::uint32_t>(j));
  }
}

template <typename T>
SampleFamily* MetricSink::Append(const MetricDesc& desc, std::span<const T> label_values, bool summary) {
  if (label_values.size() != desc.labels.size()) {
    errors_.push_back(desc.name + ": " + std::to_string(label_values.size()) + " label values for " +
                      std::to_string(desc.labels.size()) + " labels");
    return nullptr;
  }
  if ((desc.kind == MetricKind::kSummary) != summary) {
    errors_.push_back(desc.name + (summary ? ": not a summary" : ": a summary needs AddSummary"));
    return nullptr;
  }
  Pending* p = nullptr;
  if (trail_pos_ < trail_.size() && trail_[trail_pos_].first == &desc &&
      trail_[trail_pos_].second->family.name == desc.name)
    p = trail_[trail_pos_].second;
  else if (auto d = by_desc_.find(&desc); d != by_desc_.end() && d->second->family.name == desc.name)
    p = d->second;
  if (!p) {
    auto it = families_.find(desc.name);
    if (it == families_.end()) {
      it = families_.emplace(desc.name, Pending{}).first;
      it->second.family.name = desc.name;
      Define(it->second.family, desc, it->second.renamed);
    }
    p = &it->second;
    by_desc_[&desc] = p;
  }
  if (trail_pos_ == trail_.size())
    trail_.emplace_back(&desc, p);
  else
    trail_[trail_pos_] = {&desc, p};
  ++trail_pos_;
  SampleFamily& f = p->family;
  if (f.kind != desc.kind || f.help != desc.help ||
      f.label_names.size() != desc.labels.size() + const_labels_.size() ||
      (!p->renamed && !std::equal(desc.labels.begin(), desc.labels.end(), f.label_names.begin())) ||
      (p->renamed && !SameDeclaredLabels(desc.labels, f.label_names))) {
    if (p->active) {
      errors_.push_back(desc.name + ": conflicting definitions of one family");
      return nullptr;
    }
    Define(f, desc, p->renamed);  // kept from an earlier collection, with a description since changed
  }
  for (const auto& v : label_values) {
    AppendSanitizedUtf8(f.text, v);
    f.ends.push_back(static_cast<std::uint32_t>(f.text.size()));
  }
  for (const auto& [k, v] : const_labels_) {
    f.text += v;
    f.ends.push_back(static_cast<std::uint32_t>(f.text.size()));
  }
  if (!p->active) {
    p->active = true;
    active_.push_back(p);
  }
  if (p->sorted && !f.values.empty() && CompareSeries(f, f.values.size() - 1, f.values.size()) >= 0) {
    p->sorted = false;
    unsorted_.push_back(p);
  }
  ++samples_;
  return &f;
}

namespace {

// Sorts the series of f by their label values in label-name order and drops duplicates (the
// first added is kept, as sorting is stable). Returns the number dropped. `out` and `idx` are
// scratch buffers; out's buffers are swapped with f's.
std::size_t SortSeries(SampleFamily& f, SampleFamily& out, std::vector<std::uint32_t>& idx) {
  const std::size_t n = f.label_names.size();
  const std::size_t m = f.size();
  auto compare = [&](std::size_t a, std::size_t b) { return CompareSeries(f, a, b); };
  idx.resize(m);
  for (std::size_t i = 0; i < m; ++i) idx[i] = static_cast<std::uint32_t>(i);
  std::stable_sort(idx.begin(), idx.end(), [&](auto a, auto b) { return compare(a, b) < 0; });
  out.text.clear();
  out.ends.clear();
  out.values.clear();
  out.summaries.clear();
  std::size_t dropped = 0;
  for (std::size_t k = 0; k < m; ++k) {
    const std::size_t i = idx[k];
    if (k > 0 && compare(idx[k - 1], i) == 0) {
      ++dropped;
      continue;
    }
    for (std::size_t j = 0; j < n; ++j) {
      out.text += f.LabelValue(i, j);
      out.ends.push_back(static_cast<std::uint32_t>(out.text.size()));
    }
    out.values.push_back(f.values[i]);
    if (!f.summaries.empty()) out.summaries.push_back(std::move(f.summaries[i]));
  }
  f.text.swap(out.text);
  f.ends.swap(out.ends);
  f.values.swap(out.values);
  f.summaries.swap(out.summaries);
  return dropped;
}

}  // namespace

void MetricSink::Settle() {
  for (Pending* p : unsorted_) {
    std::size_t dropped = SortSeries(p->family, scratch_, order_);
    for (std::size_t i = 0; i < dropped; ++i)
      errors_.push_back(p->family.name + ": duplicate series dropped");
    samples_ -= dropped;
    p->sorted = true;
  }
  unsorted_.clear();
}

const std::vector<std::string>& MetricSink::errors() {
  Settle();
  return errors_;
}

std::size_t MetricSink::size() {
  Settle();
  return samples_;
}

std::vector<SampleFamily> MetricSink::Take() {
  std::vector<SampleFamily> out;
  out.reserve(active_.size());
  Settle();
  for (auto& [name, p] : families_)
    if (p.active) out.push_back(std::move(p.family));
  families_.clear();
  by_desc_.clear();
  trail_.clear();
  trail_pos_ = 0;
  active_.clear();
  samples_ = 0;
  return out;
}

void MetricSink::Reset() {
  errors_.clear();
  samples_ = 0;
  unsorted_.clear();
  trail_.resize(trail_pos_);
  trail_pos_ = 0;
  if (active_.size() != families_.size()) {
    std::erase_if(families_, [](const auto& kv) { return !kv.second.active; });
    by_desc_.clear();
    trail_.clear();
  }
  // Descriptions built afresh for each collection would each leave an entry.
  if (by_desc_.size() > 2 * families_.size() + 64) by_desc_.clear();
  for (Pending* p : active_) {
    SampleFamily& f = p->family;
    f.text.clear();
    f.ends.clear();
    f.values.clear();
    f.summaries.clear();
    p->sorted = true;
    p->active = false;
  }
  active_.clear();
}

const std::vector<const SampleFamily*>& MetricSink::Families() {
  Settle();
  view_.clear();
  for (const auto& [name, p] : families_)
    if (p.active) view_.push_back(&p.family);
  return view_;
}

namespace {

bool ByName(const SampleFamily* a, const SampleFamily* b) {
  return a->name < b->name;
}

// Removes from a list ordered by name the families MergeFamilies drops; returns their samples.
std::size_t DropConflicting(std::vector<const SampleFamily*>& families) {
  std::size_t dropped = 0;
  std::size_t kept = 0;
  const SampleFamily* first = nullptr;  // the first family of the current name
  for (std::size_t i = 0; i < families.size(); ++i) {
    const SampleFamily* f = families[i];
    if (!first || first->name != f->name) {
      first = f;
    } else if (f->kind != first->kind) {
      dropped += f->size();
      continue;
    }
    families[kept++] = f;
  }
  families.resize(kept);
  return dropped;
}

}  // namespace

std::size_t OrderForMerge(std::vector<const SampleFamily*>& families) {
  std::stable_sort(families.begin(), families.end(), ByName);
  return DropConflicting(families);
}

std::size_t OrderForMerge(std::vector<const SampleFamily*>& families, std::size_t ordered) {
  const auto mid = families.begin() + static_cast<std::ptrdiff_t>(std::min(ordered, families.size()));
  std::inplace_merge(families.begin(), mid, families.end(), ByName);
  return DropConflicting(families);
}

namespace {

// dst = src, keeping dst's buffers; the definition only when it is not the same already.
void AssignFamily(SampleFamily& dst, const SampleFamily& src) {
  if (src.definition == 0 || dst.definition != src.definition) {
    dst.name = src.name;
    dst.kind = src.kind;
    dst.help = src.help;
    dst.label_names = src.label_names;
    dst.label_order = src.label_order;
    dst.definition = src.definition;
  }
  dst.text = src.text;
  dst.ends = src.ends;
  dst.values = src.values;
  dst.summaries = src.summaries;
}

}  // namespace

void MergeOrderedInto(std::span<const SampleFamily* const> families, std::vector<SampleFamily>& out) {
  std::size_t used = 0;
  std::size_t first = 0;  // in out: the first family of the current name
  auto append = [&](const SampleFamily& f) {
    if (used < out.size())
      AssignFamily(out[used], f);
    else
      out.push_back(f);
    return used++;
  };
  for (const SampleFamily* fp : families) {
    const SampleFamily& f = *fp;
    if (used == 0 || out[first].name != f.name) {
      first = append(f);
      continue;
    }
    const auto end = out.begin() + static_cast<std::ptrdiff_t>(used);
    auto same = std::find_if(out.begin() + static_cast<std::ptrdiff_t>(first), end,
                             [&](const SampleFamily& o) { return o.label_names == f.label_names; });
    if (same == end) {
      append(f);
      continue;
    }
    const auto base = static_cast<std::uint32_t>(same->text.size());
    same->text += f.text;
    for (auto e : f.ends) same->ends.push_back(base + e);
    same->values.insert(same->values.end(), f.values.begin(), f.values.end());
    same->summaries.insert(same->summaries.end(), f.summaries.begin(), f.summaries.end());
  }
  out.erase(out.begin() + static_cast<std::ptrdiff_t>(used), out.end());
}

std::vector<SampleFamily> MergeFamilies(std::vector<std::vector<SampleFamily>> parts, std::size_t* dropped) {
  std::vector<const SampleFamily*> all;
  for (const auto& p : parts)
    for (const auto& f : p) all.push_back(&f);
  const std::size_t d = OrderForMerge(all);
  if (dropped) *dropped += d;
  std::vector<SampleFamily> out;
  out.reserve(all.size());
  MergeOrderedInto(all, out);
  return out;
}

}  // namespace runbook
