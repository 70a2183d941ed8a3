#include <doctest/doctest.h>

#include <map>

#include "pg_fixture.h"
#include "runbook/metric_sink.h"

namespace metric_sink_test {

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

TEST_CASE("a collector label that a target label also names becomes exported_<name>") {
  MetricSink sink(runbook::Labels{
      {"datname", "from-config"}, {"exported_state", "x"}, {"state", "y"}, {"target", "primary"}});
  sink.Add(kCount, {"appdb", "idle"}, 2);
  sink.Add(kCount, {"appdb", "active"}, 1);
  sink.Add(kCount, {"appdb", "active"}, 3);  // still a duplicate after the renaming
  CHECK(sink.errors().size() == 1);
  auto fams = sink.Take();
  REQUIRE(fams.size() == 1);
  CHECK(runbook::testing::Exposition(fams) ==
        "# HELP pg_x_total X.\n# TYPE pg_x_total counter\n"
        "pg_x_total{datname=\"from-config\",exported_datname=\"appdb\",exported_exported_state=\"active\","
        "exported_state=\"x\",state=\"y\",target=\"primary\"} 1\n"
        "pg_x_total{datname=\"from-config\",exported_datname=\"appdb\",exported_exported_state=\"idle\","
        "exported_state=\"x\",state=\"y\",target=\"primary\"} 2\n");
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
  CHECK(sink.size() == 1);
  auto fams = sink.Take();
  REQUIRE(fams.size() == 1);
  REQUIRE(fams[0].size() == 1);
  CHECK(fams[0].values[0] == 1);  // the first of the duplicates
}

TEST_CASE("sink sorts series added out of order by label name order and finds duplicates among them") {
  const MetricDesc desc{"x", MetricKind::kGauge, "X.", {"z", "a"}};  // exposition order: a, target, z
  MetricSink sink(runbook::Labels{{"target", "t"}});
  sink.Add(desc, {"1", "b"}, 1);
  sink.Add(desc, {"2", "a"}, 2);
  sink.Add(desc, {"0", "b"}, 3);
  sink.Add(desc, {"2", "a"}, 4);  // duplicate, not adjacent to the first in insertion order
  sink.Add(desc, {"1", "b\xFF"}, 5);
  CHECK(sink.errors() == std::vector<std::string>{"x: duplicate series dropped"});
  CHECK(runbook::testing::Exposition(sink.Take()) ==
        "# HELP x X.\n# TYPE x gauge\n"
        "x{a=\"a\",target=\"t\",z=\"2\"} 2\n"
        "x{a=\"b\",target=\"t\",z=\"0\"} 3\n"
        "x{a=\"b\",target=\"t\",z=\"1\"} 1\n"
        "x{a=\"b\xEF\xBF\xBD\",target=\"t\",z=\"1\"} 5\n");
}

TEST_CASE("sink writes summaries as client_golang does and refuses mixing them with plain samples") {
  const MetricDesc desc{"lat_usec", MetricKind::kSummary, "Latency.", {"cmd"}};
  MetricSink sink(runbook::Labels{{"target", "t"}});
  sink.AddSummary(desc, std::vector<std::string_view>{"set"}, 30, {3, {{50, 1.5}, {99.9, 20}}});
  sink.AddSummary(desc, std::vector<std::string_view>{"get"}, 10, {5, {{50, 1}}});
  sink.Add(desc, {"del"}, 1);
  sink.AddSummary(kUp, std::vector<std::string_view>{}, 1, {});
  CHECK(sink.errors().size() == 2);
  CHECK(runbook::testing::Exposition(sink.Take()) ==
        "# HELP lat_usec Latency.\n# TYPE lat_usec summary\n"
        "lat_usec{cmd=\"get\",target=\"t\",quantile=\"50\"} 1\n"
        "lat_usec_sum{cmd=\"get\",target=\"t\"} 10\n"
        "lat_usec_count{cmd=\"get\",target=\"t\"} 5\n"
        "lat_usec{cmd=\"set\",target=\"t\",quantile=\"50\"} 1.5\n"
        "lat_usec{cmd=\"set\",target=\"t\",quantile=\"99.9\"} 20\n"
        "lat_usec_sum{cmd=\"set\",target=\"t\"} 30\n"
        "lat_usec_count{cmd=\"set\",target=\"t\"} 3\n");
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
  MetricSink c;  // another label set: a separate entry under the same header
  c.Add(kUp, {}, 7);
  auto merged = runbook::MergeFamilies({a.Take(), b.Take(), c.Take()});
  REQUIRE(merged.size() == 3);
  CHECK(merged[0].name == "pg_up");
  CHECK(merged[0].size() == 2);
  CHECK(runbook::testing::Exposition(merged) ==
        "# HELP pg_up Whether the server answered.\n# TYPE pg_up gauge\n"
        "pg_up{target=\"a\"} 1\npg_up{target=\"b\"} 0\npg_up 7\n"
        "# HELP pg_x_total X.\n# TYPE pg_x_total counter\n"
        "pg_x_total{datname=\"x\",state=\"y\",target=\"b\"} 3\n");
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
  CHECK(merged[0].kind == MetricKind::kGauge);
  CHECK(merged[0].size() == 1);
  CHECK(dropped == 1);
}

namespace {
// What a kept sink offers after Families(), as text.
std::string View(MetricSink& sink) {
  std::vector<runbook::SampleFamily> copy;
  for (const auto* f : sink.Families()) copy.push_back(*f);
  return runbook::testing::Exposition(copy);
}
}  // namespace

TEST_CASE("a kept sink publishes each collection's families only, and redefines a changed description") {
  MetricSink sink(runbook::Labels{{"target", "t"}});
  sink.Add(kUp, {}, 1);
  sink.Add(kCount, {"a", "idle"}, 2);
  CHECK(View(sink) ==
        "# HELP pg_up Whether the server answered.\n# TYPE pg_up gauge\npg_up{target=\"t\"} 1\n"
        "# HELP pg_x_total X.\n# TYPE pg_x_total "
        "counter\npg_x_total{datname=\"a\",state=\"idle\",target=\"t\"} 2\n");

  // Second collection: pg_up is gone; pg_x_total comes with other help, type and labels.
  sink.Reset();
  CHECK(sink.size() == 0);
  CHECK(sink.Families().empty());
  const MetricDesc changed{"pg_x_total", MetricKind::kGauge, "Y.", {"state"}};
  sink.Add(changed, {"busy"}, 3);
  CHECK(sink.errors().empty());
  CHECK(View(sink) ==
        "# HELP pg_x_total Y.\n# TYPE pg_x_total gauge\npg_x_total{state=\"busy\",target=\"t\"} 3\n");
  // Within one collection a second definition is still a conflict.
  sink.Add(kCount, {"a", "idle"}, 2);
  CHECK(sink.errors() == std::vector<std::string>{"pg_x_total: conflicting definitions of one family"});

  // Third collection: pg_up is back (it was forgotten: its definition comes afresh), the errors of
  // the previous collection are gone, and duplicates are still found.
  sink.Reset();
  CHECK(sink.errors().empty());
  sink.Add(kUp, {}, 0);
  sink.Add(kCount, {"b", "idle"}, 5);
  sink.Add(kCount, {"a", "idle"}, 4);
  sink.Add(kCount, {"b", "idle"}, 6);
  CHECK(sink.errors() == std::vector<std::string>{"pg_x_total: duplicate series dropped"});
  CHECK(sink.size() == 3);
  CHECK(View(sink) ==
        "# HELP pg_up Whether the server answered.\n# TYPE pg_up gauge\npg_up{target=\"t\"} 0\n"
        "# HELP pg_x_total X.\n# TYPE pg_x_total counter\n"
        "pg_x_total{datname=\"a\",state=\"idle\",target=\"t\"} 4\n"
        "pg_x_total{datname=\"b\",state=\"idle\",target=\"t\"} 5\n");
  // Take() gives the same families and empties the sink.
  auto taken = sink.Take();
  CHECK(runbook::testing::Exposition(taken) ==
        "# HELP pg_up Whether the server answered.\n# TYPE pg_up gauge\npg_up{target=\"t\"} 0\n"
        "# HELP pg_x_total X.\n# TYPE pg_x_total counter\n"
        "pg_x_total{datname=\"a\",state=\"idle\",target=\"t\"} 4\n"
        "pg_x_total{datname=\"b\",state=\"idle\",target=\"t\"} 5\n");
  CHECK(sink.Families().empty());
}

TEST_CASE("a kept sink tells apart descriptions that reuse one address") {
  MetricSink sink;
  for (int round = 0; round < 2; ++round) {
    sink.Reset();
    for (const char* name : {"a_first", "b_second"}) {
      const MetricDesc desc{name, MetricKind::kGauge, std::string("Help of ") + name, {"k"}};
      sink.Add(desc, {"v"}, round);
    }
    CHECK(sink.errors().empty());
    CHECK(View(sink) == "# HELP a_first Help of a_first\n# TYPE a_first gauge\na_first{k=\"v\"} " +
                            std::to_string(round) +
                            "\n# HELP b_second Help of b_second\n# TYPE b_second gauge\n" +
                            "b_second{k=\"v\"} " + std::to_string(round) + "\n");
  }
}

TEST_CASE("a kept sink follows Adds that come in another order than in the previous collection") {
  // The sink remembers the previous collection's sequence of descriptions; a different sequence
  // must still put every sample into its own family.
  const MetricDesc a{"a_gauge", MetricKind::kGauge, "A.", {"k"}};
  const MetricDesc b{"b_gauge", MetricKind::kGauge, "B.", {"k"}};
  const MetricDesc c{"c_total", MetricKind::kCounter, "C.", {}};
  MetricSink sink;
  const std::vector<std::vector<const MetricDesc*>> rounds{
      {&a, &b, &c}, {&c, &b, &a, &b}, {&a, &c}, {&a, &b, &c}};
  for (std::size_t r = 0; r < rounds.size(); ++r) {
    CAPTURE(r);
    sink.Reset();
    std::map<std::string, int> expected;
    int i = 0;
    for (const auto* d : rounds[r]) {
      ++i;
      if (d->labels.empty())
        sink.Add(*d, {}, i);
      else
        sink.Add(*d, {"v" + std::to_string(i)}, i);
      expected[d->name] += 1;
    }
    CHECK(sink.errors().empty());
    std::map<std::string, int> got;
    for (const auto* f : sink.Families()) {
      got[f->name] = static_cast<int>(f->size());
      for (std::size_t s = 0; s < f->size(); ++s)
        if (!f->label_names.empty())
          CHECK(f->LabelValue(s, 0) == "v" + std::to_string(static_cast<int>(f->values[s])));
    }
    CHECK(got == expected);
  }
}

TEST_CASE("merging into a list in use overwrites it as a fresh merge would write it") {
  MetricSink a(runbook::Labels{{"target", "a"}}), b(runbook::Labels{{"target", "b"}});
  a.Add(kUp, {}, 1);
  a.Add(kCount, {"x", "y"}, 2);
  b.Add(kUp, {}, 0);
  MetricDesc as_counter = kUp;
  as_counter.kind = MetricKind::kCounter;
  MetricSink c;
  c.Add(as_counter, {}, 9);
  c.Add(kUp, {}, 9);
  (void)c.errors();
  auto a_fams = a.Take(), b_fams = b.Take(), c_fams = c.Take();

  std::vector<const runbook::SampleFamily*> order;
  for (const auto* part : {&c_fams, &a_fams, &b_fams})
    for (const auto& f : *part) order.push_back(&f);
  // c's pg_up (a counter) comes first: it sets the type, a's and b's gauges are dropped.
  CHECK(runbook::OrderForMerge(order) == 2);
  std::vector<const runbook::SampleFamily*> ab;
  for (const auto* part : {&a_fams, &b_fams})
    for (const auto& f : *part) ab.push_back(&f);
  CHECK(runbook::OrderForMerge(ab) == 0);

  // `out` holds more families than the merge needs, with other names, series and summaries.
  MetricSink old;
  const MetricDesc summary{"a_summary", MetricKind::kSummary, "S.", {"q"}};
  old.AddSummary(summary, std::vector<std::string_view>{"x"}, 1, {2, {{0.5, 3}}});
  old.Add(kCount, {"p", "q"}, 1);
  old.Add(kCount, {"r", "s"}, 1);
  old.Add({"zz", MetricKind::kGauge, "Z.", {}}, {}, 1);
  auto out = old.Take();
  out.push_back(out.back());
  runbook::MergeOrderedInto(ab, out);
  CHECK(runbook::testing::Exposition(out) ==
        runbook::testing::Exposition(runbook::MergeFamilies({std::move(a_fams), std::move(b_fams)})));
  REQUIRE(out.size() == 2);
  CHECK(out[0].size() == 2);
}

TEST_CASE("merging into a list in use copies a family's definition whenever it is not the same one") {
  // MergeOrderedInto skips name, help and labels when `out` holds the same definition already.
  MetricSink sink(runbook::Labels{{"target", "t"}});
  std::vector<runbook::SampleFamily> out;
  auto merge = [&] {
    std::vector<const runbook::SampleFamily*> fams(sink.Families().begin(), sink.Families().end());
    runbook::MergeOrderedInto(fams, out);
    return runbook::testing::Exposition(out);
  };
  const MetricDesc first{"x_gauge", MetricKind::kGauge, "First.", {"k"}};
  const MetricDesc second{"x_gauge", MetricKind::kGauge, "Second.", {"label"}};
  sink.Add(first, {"a"}, 1);
  CHECK(merge() == "# HELP x_gauge First.\n# TYPE x_gauge gauge\nx_gauge{k=\"a\",target=\"t\"} 1\n");
  sink.Reset();
  sink.Add(first, {"b"}, 2);  // the same definition: only the series change
  CHECK(merge() == "# HELP x_gauge First.\n# TYPE x_gauge gauge\nx_gauge{k=\"b\",target=\"t\"} 2\n");
  sink.Reset();
  sink.Add(second, {"c"}, 3);  // redefined in the kept sink
  CHECK(merge() == "# HELP x_gauge Second.\n# TYPE x_gauge gauge\nx_gauge{label=\"c\",target=\"t\"} 3\n");
  // A family built by hand (definition 0) is always copied whole.
  runbook::SampleFamily manual = out[0];
  manual.definition = 0;
  manual.help = "Manual.";
  std::vector<const runbook::SampleFamily*> one{&manual};
  runbook::MergeOrderedInto(one, out);
  CHECK(out[0].help == "Manual.");
}

TEST_CASE("merging a sorted run into an ordered list equals ordering the whole list") {
  // The collectors' families, ordered; then a target's own families (a sorted run) of which one
  // shares a name and type with a collector's (kept, after it) and one a name with another type
  // (dropped).
  MetricSink collectors(runbook::Labels{{"target", "t"}}), self(runbook::Labels{{"target", "t"}});
  collectors.Add({"b_mid", MetricKind::kGauge, "B.", {}}, {}, 1);
  collectors.Add({"d_last", MetricKind::kGauge, "D.", {}}, {}, 1);
  collectors.Add(kUp, {}, 1);
  MetricDesc up_counter = kUp;
  up_counter.kind = MetricKind::kCounter;
  self.Add({"a_first", MetricKind::kGauge, "A.", {}}, {}, 2);
  self.Add({"b_mid", MetricKind::kGauge, "B.", {"k"}}, {"v"}, 2);
  self.Add({"c_between", MetricKind::kGauge, "C.", {}}, {}, 2);
  self.Add(up_counter, {}, 2);
  self.Add({"zz_after", MetricKind::kGauge, "Z.", {}}, {}, 2);
  auto c = collectors.Take(), s = self.Take();
  std::vector<const runbook::SampleFamily*> merged, whole;
  for (const auto& f : c) merged.push_back(&f);
  CHECK(runbook::OrderForMerge(merged) == 0);
  const std::size_t ordered = merged.size();
  for (const auto& f : s) merged.push_back(&f);
  whole = merged;
  CHECK(runbook::OrderForMerge(merged, ordered) == 1);
  CHECK(runbook::OrderForMerge(whole) == 1);
  CHECK(merged == whole);
  std::vector<std::string> names;
  for (const auto* f : merged) names.push_back(f->name + (f->label_names.size() > 1 ? "{k}" : ""));
  CHECK(names ==
        std::vector<std::string>{"a_first", "b_mid", "b_mid{k}", "c_between", "d_last", "pg_up", "zz_after"});
}

}  // namespace metric_sink_test
