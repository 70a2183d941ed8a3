// The direct renderer (exporter/exposition.h) against prometheus::TextSerializer, which /metrics
// used before: byte for byte on tricky values, label escapes and every metric type.
#include <doctest/doctest.h>
#include <prometheus/text_serializer.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>

#include "exposition.h"

namespace exposition_test {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

namespace {

std::string Serialized(const std::vector<MetricFamily>& families) {
  std::ostringstream ss;
  prometheus::TextSerializer().Serialize(ss, families);
  return ss.str();
}

ClientMetric Sample(std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  m.counter.value = value;
  m.untyped.value = value;
  return m;
}

const double kInf = std::numeric_limits<double>::infinity();

const std::vector<double> kTricky = {0,
                                     -0.0,
                                     1,
                                     -1,
                                     0.1 + 0.2,
                                     1.0 / 3,
                                     1e-300,
                                     -1e-300,
                                     5e-324,
                                     2.2250738585072014e-308,
                                     1e15,
                                     1e16,
                                     1e17,
                                     1e21,
                                     1e308,
                                     1.7976931348623157e308,
                                     123456789012345678.0,
                                     9007199254740993.0,
                                     9999999999999998.0,  // the largest whole number below 1e16
                                     -9999999999999998.0,
                                     4503599627370495.5,
                                     12345678901234567.0,
                                     0.000907,
                                     907 * 1e-6,
                                     1.1e-05,
                                     0.0001,
                                     100000,
                                     1234567,
                                     4294967296.0,
                                     -2.5,
                                     std::nan(""),
                                     kInf,
                                     -kInf};

}  // namespace

TEST_CASE("exposition: values are written as TextSerializer writes them") {
  for (auto type : {MetricType::Gauge, MetricType::Counter, MetricType::Untyped}) {
    MetricFamily f{"tricky_values", "Values that format differently under %g, shortest and fixed.", type, {}};
    for (double v : kTricky) f.metric.push_back(Sample({}, v));
    CHECK(runbook::RenderExposition({f}) == Serialized({f}));
  }
}

TEST_CASE("exposition: random doubles are written as TextSerializer writes them") {
  std::mt19937_64 rng(42);
  MetricFamily bits{"random_bits", "Random bit patterns.", MetricType::Gauge, {}};
  MetricFamily decimals{"random_decimals", "Random decimals and integers.", MetricType::Gauge, {}};
  for (int i = 0; i < 20000; ++i) {
    std::uint64_t b = rng();
    double v;
    std::memcpy(&v, &b, sizeof v);
    bits.metric.push_back(Sample({}, v));
    decimals.metric.push_back(Sample({}, static_cast<double>(rng() % 100000000) / 1000));
    decimals.metric.push_back(Sample({}, static_cast<double>(rng() >> (rng() % 64))));
  }
  CHECK(runbook::RenderExposition({bits, decimals}) == Serialized({bits, decimals}));
}

TEST_CASE("exposition: label values escape backslash, quote and line feed as TextSerializer does") {
  MetricFamily f{"labels_escaped", "Label escapes.", MetricType::Gauge, {}};
  f.metric.push_back(Sample({{"a", "back\\slash"}, {"b", "new\nline"}, {"c", "\"quoted\""}}, 1));
  f.metric.push_back(Sample({{"a", "\\\\n\\\""}, {"b", ""}, {"c", "tab\tcr\r ünïcode {}=,"}}, 2));
  f.metric.push_back(Sample({{"target", "x"}}, 3));
  CHECK(runbook::RenderExposition({f}) == Serialized({f}));
  CHECK(runbook::RenderExposition({f}).find(R"(a="back\\slash",b="new\nline",c="\"quoted\"")") !=
        std::string::npos);
}

TEST_CASE("exposition: summaries, histograms, timestamps and families without help") {
  MetricFamily s{"lat", "", MetricType::Summary, {}};
  ClientMetric sm = Sample({{"cmd", "get"}}, 0);
  sm.summary.sample_count = 18446744073709551615ull;
  sm.summary.sample_sum = 0.1 + 0.2;
  sm.summary.quantile = {{0.5, 1e-300}, {0.99, kInf}, {0.999, std::nan("")}};
  s.metric.push_back(sm);
  ClientMetric no_labels;
  no_labels.summary.quantile = {{0.5, 3}};
  no_labels.timestamp_ms = -1234567890123;
  s.metric.push_back(no_labels);

  MetricFamily h{"hist", "Histogram.", MetricType::Histogram, {}};
  ClientMetric hm = Sample({{"le_not", "x"}}, 0);
  hm.histogram.sample_count = 7;
  hm.histogram.sample_sum = -0.0;
  hm.histogram.bucket = {{2, 0.25}, {5, 1e21}};
  hm.timestamp_ms = 1700000000000;
  h.metric.push_back(hm);
  ClientMetric with_inf;
  with_inf.histogram.bucket = {{1, 1}, {3, kInf}};
  h.metric.push_back(with_inf);
  ClientMetric empty;
  h.metric.push_back(empty);

  MetricFamily no_samples{"nothing", "No samples.", MetricType::Counter, {}};
  std::vector<MetricFamily> all{s, h, no_samples};
  CHECK(runbook::RenderExposition(all) == Serialized(all));
}

TEST_CASE("exposition: HELP escapes backslash and line feed, as the text format asks") {
  // The one place where the renderer deliberately differs from TextSerializer, which writes help raw.
  MetricFamily f{"helpful", "a \\ b\nc \"d\"", MetricType::Gauge, {Sample({}, 1)}};
  CHECK(runbook::RenderExposition({f}) ==
        "# HELP helpful a \\\\ b\\nc \"d\"\n# TYPE helpful gauge\nhelpful 1\n");
}

}  // namespace exposition_test
