#include "exposition.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace runbook {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

std::string_view TypeName(MetricType t) {
  switch (t) {
    case MetricType::Counter: return "counter";
    case MetricType::Gauge: return "gauge";
    case MetricType::Summary: return "summary";
    case MetricType::Histogram: return "histogram";
    case MetricType::Untyped: break;
  }
  return "untyped";
}

template <typename Int>
void AppendInteger(std::string& out, Int v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

// Label values escape '\', '"' and line feeds; HELP text escapes '\' and line feeds.
void AppendEscaped(std::string& out, std::string_view s, bool quote) {
  if (s.empty()) return;
  // Text rarely needs an escape: memchr scans are much cheaper than the loop below.
  if (!std::memchr(s.data(), '\\', s.size()) && !std::memchr(s.data(), '\n', s.size()) &&
      (!quote || !std::memchr(s.data(), '"', s.size()))) {
    out.append(s);
    return;
  }
  std::size_t from = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c != '\\' && c != '\n' && !(quote && c == '"')) continue;
    out.append(s.substr(from, i - from));
    out += '\\';
    out += c == '\n' ? 'n' : c;
    from = i + 1;
  }
  out.append(s.substr(from));
}

// Name, suffix and labels (with an optional extra label last), then the separating space.
void AppendHead(std::string& out, const MetricFamily& family, const ClientMetric& metric,
                std::string_view suffix = {}, std::string_view extra_name = {}, double extra_value = 0,
                bool extra_inf = false) {
  out += family.name;
  out += suffix;
  if (!metric.label.empty() || !extra_name.empty()) {
    out += '{';
    bool first = true;
    for (const auto& l : metric.label) {
      if (!first) out += ',';
      first = false;
      out += l.name;
      out += "=\"";
      AppendEscaped(out, l.value, true);
      out += '"';
    }
    if (!extra_name.empty()) {
      if (!first) out += ',';
      out += extra_name;
      out += "=\"";
      if (extra_inf)
        out += "+Inf";
      else
        AppendSampleValue(out, extra_value);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
}

void AppendTail(std::string& out, const ClientMetric& metric) {
  if (metric.timestamp_ms != 0) {
    out += ' ';
    AppendInteger(out, metric.timestamp_ms);
  }
  out += '\n';
}

void AppendSample(std::string& out, const MetricFamily& f, const ClientMetric& m, double value) {
  AppendHead(out, f, m);
  AppendSampleValue(out, value);
  AppendTail(out, m);
}

void AppendHeader(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  if (!help.empty()) {
    out += "# HELP ";
    out += name;
    out += ' ';
    AppendEscaped(out, help, false);
    out += '\n';
  }
  out += "# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

}  // namespace

void AppendSampleValue(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "Nan";
  } else if (std::isinf(value)) {
    out += value < 0 ? "-Inf" : "+Inf";
  } else if (std::fabs(value) < 1e16 && value == std::trunc(value) && !(value == 0 && std::signbit(value))) {
    // Most values are whole numbers, which "%.16g" writes as integers below 1e16; the integer
    // conversion is several times cheaper.
    AppendInteger(out, static_cast<std::int64_t>(value));
  } else {
    char buf[32];
    auto res = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::general, 16);
    out.append(buf, res.ptr);
  }
}

void AppendQuantile(std::string& out, double quantile) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, quantile);
  out.append(buf, res.ptr);
}

void AppendFamilyHeader(std::string& out, const MetricFamily& family) {
  AppendHeader(out, family.name, family.help, TypeName(family.type));
}

void AppendFamilyHeader(std::string& out, const SampleFamily& family) {
  AppendHeader(out, family.name, family.help,
               TypeName(family.kind == MetricKind::kCounter   ? MetricType::Counter
                        : family.kind == MetricKind::kSummary ? MetricType::Summary
                                                              : MetricType::Gauge));
}

void AppendFamilySamples(std::string& out, const SampleFamily& f) {
  const bool has_labels = !f.label_names.empty();
  for (std::size_t i = 0; i < f.size(); ++i) {
    // `a="x",b="y"`: written once per series; a summary's other lines copy it from `out`.
    std::size_t labels_at = 0, labels_len = 0;
    bool written = false;
    auto labels = [&] {
      if (written) {
        out.append(out, labels_at, labels_len);
        return;
      }
      labels_at = out.size();
      bool first = true;
      for (auto j : f.label_order) {
        if (!first) out += ',';
        first = false;
        out += f.label_names[j];
        out += "=\"";
        AppendEscaped(out, f.LabelValue(i, j), true);
        out += '"';
      }
      labels_len = out.size() - labels_at;
      written = true;
    };
    auto line = [&](std::string_view suffix, double value) {
      out += f.name;
      out += suffix;
      if (has_labels) {
        out += '{';
        labels();
        out += '}';
      }
      out += ' ';
      AppendSampleValue(out, value);
      out += '\n';
    };
    if (f.kind != MetricKind::kSummary) {
      line({}, f.values[i]);
      continue;
    }
    const SummaryValue& s = f.summaries[i];
    for (const auto& [q, v] : s.quantiles) {
      out += f.name;
      out += '{';
      labels();
      if (has_labels) out += ',';
      out += "quantile=\"";
      AppendQuantile(out, q);
      out += "\"} ";
      AppendSampleValue(out, v);
      out += '\n';
    }
    line("_sum", f.values[i]);
    line("_count", s.count);
  }
}

std::string RenderExposition(const std::vector<SampleFamily>& families) {
  std::string out;
  for (std::size_t k = 0; k < families.size(); ++k) {
    if (k == 0 || families[k - 1].name != families[k].name) AppendFamilyHeader(out, families[k]);
    AppendFamilySamples(out, families[k]);
  }
  return out;
}

void AppendFamilySamples(std::string& out, const MetricFamily& f) {
  for (const auto& m : f.metric) {
    switch (f.type) {
      case MetricType::Counter: AppendSample(out, f, m, m.counter.value); break;
      case MetricType::Gauge: AppendSample(out, f, m, m.gauge.value); break;
      case MetricType::Untyped: AppendSample(out, f, m, m.untyped.value); break;
      case MetricType::Summary:
        AppendHead(out, f, m, "_count");
        AppendInteger(out, m.summary.sample_count);
        AppendTail(out, m);
        AppendHead(out, f, m, "_sum");
        AppendSampleValue(out, m.summary.sample_sum);
        AppendTail(out, m);
        for (const auto& q : m.summary.quantile) {
          AppendHead(out, f, m, {}, "quantile", q.quantile);
          AppendSampleValue(out, q.value);
          AppendTail(out, m);
        }
        break;
      case MetricType::Histogram: {
        AppendHead(out, f, m, "_count");
        AppendInteger(out, m.histogram.sample_count);
        AppendTail(out, m);
        AppendHead(out, f, m, "_sum");
        AppendSampleValue(out, m.histogram.sample_sum);
        AppendTail(out, m);
        bool inf_seen = false;
        for (const auto& b : m.histogram.bucket) {
          AppendHead(out, f, m, "_bucket", "le", b.upper_bound);
          AppendInteger(out, b.cumulative_count);
          AppendTail(out, m);
          inf_seen = std::isinf(b.upper_bound) && b.upper_bound > 0;
        }
        if (!inf_seen) {
          AppendHead(out, f, m, "_bucket", "le", 0, true);
          AppendInteger(out, m.histogram.sample_count);
          AppendTail(out, m);
        }
        break;
      }
    }
  }
}

std::string RenderExposition(const std::vector<MetricFamily>& families) {
  std::string out;
  for (const auto& f : families) {
    AppendFamilyHeader(out, f);
    AppendFamilySamples(out, f);
  }
  return out;
}

}  // namespace runbook
