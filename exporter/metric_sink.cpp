#include "runbook/metric_sink.h"

#include <algorithm>
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
  for (const auto& [d, q] : recent_) {
    if (d == &desc && q->family.name == desc.name) p = q;  // the name guards against a reused address
  }
  if (!p) {
    auto it = families_.find(desc.name);
    if (it == families_.end()) {
      it = families_.emplace(desc.name, Pending{}).first;
      SampleFamily& f = it->second.family;
      f.name = desc.name;
      f.kind = desc.kind;
      f.help = desc.help;
      f.label_names = desc.labels;
      for (auto& n : f.label_names) {
        // A label the target also sets (configured labels) is renamed exported_<name>, as
        // Prometheus does with honor_labels: false; the collector's value is kept.
        while (HasConstLabel(n)) {
          n.insert(0, "exported_");
          it->second.renamed = true;
        }
      }
      for (const auto& [k, v] : const_labels_) f.label_names.push_back(k);
      for (std::size_t j = 0; j < f.label_names.size(); ++j) {  // a stable insertion sort: a few names
        auto pos = f.label_order.end();
        while (pos != f.label_order.begin() && f.label_names[j] < f.label_names[*(pos - 1)]) --pos;
        f.label_order.insert(pos, static_cast<std::uint32_t>(j));
      }
    }
    p = &it->second;
    recent_[next_recent_++ % recent_.size()] = {&desc, p};
  }
  SampleFamily& f = p->family;
  if (f.kind != desc.kind || f.help != desc.help ||
      f.label_names.size() != desc.labels.size() + const_labels_.size() ||
      (!p->renamed && !std::equal(desc.labels.begin(), desc.labels.end(), f.label_names.begin())) ||
      (p->renamed && !SameDeclaredLabels(desc.labels, f.label_names))) {
    errors_.push_back(desc.name + ": conflicting definitions of one family");
    return nullptr;
  }
  for (const auto& v : label_values) {
    AppendSanitizedUtf8(f.text, v);
    f.ends.push_back(static_cast<std::uint32_t>(f.text.size()));
  }
  for (const auto& [k, v] : const_labels_) {
    f.text += v;
    f.ends.push_back(static_cast<std::uint32_t>(f.text.size()));
  }
  if (p->sorted && !f.values.empty() && CompareSeries(f, f.values.size() - 1, f.values.size()) >= 0)
    p->sorted = false;
  ++samples_;
  return &f;
}

namespace {

// Sorts the series of f by their label values in label-name order and drops duplicates (the
// first added is kept, as sorting is stable). Returns the number dropped.
std::size_t SortSeries(SampleFamily& f) {
  const std::size_t n = f.label_names.size();
  const std::size_t m = f.size();
  auto compare = [&](std::size_t a, std::size_t b) { return CompareSeries(f, a, b); };
  std::vector<std::uint32_t> idx(m);
  for (std::size_t i = 0; i < m; ++i) idx[i] = static_cast<std::uint32_t>(i);
  std::stable_sort(idx.begin(), idx.end(), [&](auto a, auto b) { return compare(a, b) < 0; });
  SampleFamily out;
  out.text.reserve(f.text.size());
  out.ends.reserve(f.ends.size());
  out.values.reserve(m);
  if (!f.summaries.empty()) out.summaries.reserve(m);
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
  f.text = std::move(out.text);
  f.ends = std::move(out.ends);
  f.values = std::move(out.values);
  f.summaries = std::move(out.summaries);
  return dropped;
}

}  // namespace

void MetricSink::Settle() {
  for (auto& [name, p] : families_) {
    if (p.sorted) continue;
    std::size_t dropped = SortSeries(p.family);
    for (std::size_t i = 0; i < dropped; ++i) errors_.push_back(name + ": duplicate series dropped");
    samples_ -= dropped;
    p.sorted = true;
  }
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
  out.reserve(families_.size());
  Settle();
  for (auto& [name, p] : families_) out.push_back(std::move(p.family));
  families_.clear();
  recent_ = {};
  samples_ = 0;
  return out;
}

std::vector<SampleFamily> MergeFamilies(std::vector<std::vector<SampleFamily>> parts, std::size_t* dropped) {
  std::vector<SampleFamily*> all;  // sorting pointers: a SampleFamily is nine members to move
  std::size_t total = 0;
  for (auto& p : parts) total += p.size();
  all.reserve(total);
  for (auto& p : parts)
    for (auto& f : p) all.push_back(&f);
  std::stable_sort(all.begin(), all.end(), [](const auto* a, const auto* b) { return a->name < b->name; });
  std::vector<SampleFamily> out;
  out.reserve(all.size());
  std::size_t first = 0;  // in out: the first family of the current name
  for (auto* fp : all) {
    SampleFamily& f = *fp;
    if (out.empty() || out[first].name != f.name) {
      first = out.size();
      out.push_back(std::move(f));
      continue;
    }
    if (out[first].kind != f.kind) {
      if (dropped) *dropped += f.size();
      continue;
    }
    auto same = std::find_if(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
                             [&](const SampleFamily& o) { return o.label_names == f.label_names; });
    if (same == out.end()) {
      out.push_back(std::move(f));
      continue;
    }
    const auto base = static_cast<std::uint32_t>(same->text.size());
    same->text += f.text;
    for (auto e : f.ends) same->ends.push_back(base + e);
    same->values.insert(same->values.end(), f.values.begin(), f.values.end());
    for (auto& s : f.summaries) same->summaries.push_back(std::move(s));
  }
  return out;
}

}  // namespace runbook
