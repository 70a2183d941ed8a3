#include <doctest/doctest.h>

#include "pg_fixture.h"
#include "runbook/metric_sink.h"

using runbook::MetricDesc;
using runbook::MetricKind;
using runbook::MetricSink;

namespace {
const MetricDesc kUp{"pg_up", MetricKind::kGauge, "Whether the server answered.", {}};
const MetricDesc kCount{"pg_x_total", MetricKind::kCounter, "X.", {"datname", "state"}};
}  // namespace

TEST_CASE("sink adds const labels and sorts families and series") {
  MetricSink sink(runbook::Labels{{"target", "primary"}});
  sink.Add(kCount, {"b", "idle"}, 2);
  sink.Add(kCount, {"a", "active"}, 1);
  sink.Add(kUp, {}, 1);
  auto fams = sink.Take();
  REQUIRE(fams.size() == 2);
  CHECK(fams[0].name == "pg_up");
  CHECK(fams[1].name == "pg_x_total");
  CHECK(runbook::testing::Exposition(fams) ==
        "# HELP pg_up Whether the server answered.\n# TYPE pg_up gauge\npg_up{target=\"primary\"} 1\n"
        "# HELP pg_x_total X.\n# TYPE pg_x_total counter\n"
        "pg_x_total{datname=\"a\",state=\"active\",target=\"primary\"} 1\n"
        "pg_x_total{datname=\"b\",state=\"idle\",target=\"primary\"} 2\n");
  CHECK(sink.size() == 0);
}

TEST_CASE("sink rejects wrong arity and duplicates and conflicting families") {
  MetricSink sink;
  sink.Add(kCount, {"a"}, 1);
  sink.Add(kCount, {"a", "b"}, 1);
  sink.Add(kCount, {"a", "b"}, 2);
  MetricDesc other = kCount;
  other.kind = MetricKind::kGauge;
  sink.Add(other, {"c", "d"}, 1);
  CHECK(sink.errors().size() == 3);
  auto fams = sink.Take();
  REQUIRE(fams.size() == 1);
  REQUIRE(fams[0].metric.size() == 1);
  CHECK(fams[0].metric[0].counter.value == 1);
}

TEST_CASE("invalid UTF-8 in label values is replaced") {
  CHECK(runbook::SanitizeUtf8("ok\xC3\xA9") == "ok\xC3\xA9");
  CHECK(runbook::SanitizeUtf8("a\xFF"
                              "b") ==
        "a\xEF\xBF\xBD"
        "b");
  CHECK(runbook::SanitizeUtf8("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(runbook::SanitizeUtf8("\xE2\x82") == "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("merge joins families of several targets under one name") {
  MetricSink a(runbook::Labels{{"target", "a"}}), b(runbook::Labels{{"target", "b"}});
  a.Add(kUp, {}, 1);
  b.Add(kUp, {}, 0);
  b.Add(kCount, {"x", "y"}, 3);
  auto merged = runbook::MergeFamilies({a.Take(), b.Take()});
  REQUIRE(merged.size() == 2);
  CHECK(merged[0].name == "pg_up");
  CHECK(merged[0].metric.size() == 2);
}

TEST_CASE("merge keeps the first type of a family and counts the samples of another type") {
  MetricSink a(runbook::Labels{{"target", "a"}}), b(runbook::Labels{{"target", "b"}});
  a.Add(kUp, {}, 1);
  MetricDesc as_counter = kUp;
  as_counter.kind = MetricKind::kCounter;
  b.Add(as_counter, {}, 5);
  std::size_t dropped = 0;
  auto merged = runbook::MergeFamilies({a.Take(), b.Take()}, &dropped);
  REQUIRE(merged.size() == 1);
  CHECK(merged[0].type == prometheus::MetricType::Gauge);
  CHECK(merged[0].metric.size() == 1);
  CHECK(dropped == 1);
}
