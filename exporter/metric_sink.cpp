#include "runbook/metric_sink.h"

#include <algorithm>

namespace runbook {

namespace {

prometheus::MetricType ToPrometheus(MetricKind k) {
  return k == MetricKind::kCounter ? prometheus::MetricType::Counter : prometheus::MetricType::Gauge;
}

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

double& ValueOf(prometheus::ClientMetric& m, prometheus::MetricType t) {
  return t == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
}

}  // namespace

std::string SanitizeUtf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size();) {
    std::size_t n = Utf8SequenceLength(in, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(in.substr(i, n));
      i += n;
    }
  }
  return out;
}

MetricSink::MetricSink(Labels const_labels) : const_labels_(std::move(const_labels)) {}

void MetricSink::Add(const MetricDesc& desc, std::initializer_list<std::string_view> label_values,
                     double value) {
  AddSpan(desc, std::span(label_values.begin(), label_values.size()), value);
}

void MetricSink::Add(const MetricDesc& desc, const std::vector<std::string>& label_values, double value) {
  AddSpan(desc, std::span(label_values), value);
}

template <typename T>
void MetricSink::AddSpan(const MetricDesc& desc, std::span<const T> label_values, double value) {
  if (label_values.size() != desc.labels.size()) {
    errors_.push_back(desc.name + ": " + std::to_string(label_values.size()) + " label values for " +
                      std::to_string(desc.labels.size()) + " labels");
    return;
  }
  auto it = families_.find(desc.name);
  if (it == families_.end()) {
    it = families_.emplace(desc.name, Family{desc.kind, desc.help, desc.labels, {}}).first;
  } else if (it->second.kind != desc.kind || it->second.label_names != desc.labels ||
             it->second.help != desc.help) {
    errors_.push_back(desc.name + ": conflicting definitions of one family");
    return;
  }
  std::vector<std::string> values;
  values.reserve(label_values.size());
  for (const auto& v : label_values) values.push_back(SanitizeUtf8(v));
  if (!it->second.series.emplace(std::move(values), value).second) {
    errors_.push_back(desc.name + ": duplicate series dropped");
    return;
  }
  ++samples_;
}

std::vector<prometheus::MetricFamily> MetricSink::Take() {
  std::vector<prometheus::MetricFamily> out;
  out.reserve(families_.size());
  // Nodes are extracted so that names, help texts and label values move instead of being copied.
  while (!families_.empty()) {
    auto node = families_.extract(families_.begin());
    Family& fam = node.mapped();
    prometheus::MetricFamily& mf = out.emplace_back();
    mf.name = std::move(node.key());
    mf.help = std::move(fam.help);
    mf.type = ToPrometheus(fam.kind);
    mf.metric.reserve(fam.series.size());
    while (!fam.series.empty()) {
      auto series = fam.series.extract(fam.series.begin());
      auto& values = series.key();
      prometheus::ClientMetric& m = mf.metric.emplace_back();
      m.label.reserve(values.size() + const_labels_.size());
      for (std::size_t i = 0; i < values.size(); ++i)
        m.label.push_back({fam.label_names[i], std::move(values[i])});
      for (const auto& [k, v] : const_labels_) m.label.push_back({k, v});
      std::sort(m.label.begin(), m.label.end());
      ValueOf(m, mf.type) = series.mapped();
    }
    std::sort(mf.metric.begin(), mf.metric.end(),
              [](const auto& a, const auto& b) { return a.label < b.label; });
  }
  samples_ = 0;
  return out;
}

std::vector<prometheus::MetricFamily> MergeFamilies(std::vector<std::vector<prometheus::MetricFamily>> parts,
                                                    std::size_t* dropped) {
  std::vector<prometheus::MetricFamily> all;
  std::size_t total = 0;
  for (auto& p : parts) total += p.size();
  all.reserve(total);
  for (auto& p : parts)
    for (auto& f : p) all.push_back(std::move(f));
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  std::vector<prometheus::MetricFamily> out;
  for (auto& f : all) {
    if (!out.empty() && out.back().name == f.name) {
      auto& into = out.back();
      if (into.type != f.type) {
        if (dropped) *dropped += f.metric.size();
        continue;
      }
      for (auto& m : f.metric) into.metric.push_back(std::move(m));
    } else {
      out.push_back(std::move(f));
    }
  }
  return out;
}

}  // namespace runbook
