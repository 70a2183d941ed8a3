#include "runbook/series_store.h"

#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <set>

namespace series_store_test {

using namespace runbook;
using promql::Matcher;

namespace {

constexpr TimestampMs kMin = 60'000;

Matcher Eq(std::string name, std::string value) {
  std::string err;
  return *Matcher::Make(Matcher::Op::kEqual, std::move(name), std::move(value), &err);
}

StoreSample S(std::string name, std::string target, double v, Labels extra = {}) {
  Labels l{{"__name__", std::move(name)}, {"target", std::move(target)}};
  l.insert(l.end(), extra.begin(), extra.end());
  return {l, v};
}

// series key (name + target) → points in [mint, maxt]
std::map<std::string, std::vector<promql::Point>> Read(const SeriesStore& store, std::vector<Matcher> m,
                                                       TimestampMs mint, TimestampMs maxt) {
  std::map<std::string, std::vector<promql::Point>> out;
  store.Select(m, mint, maxt, [&](const Labels& metric, std::span<const promql::Point> pts) {
    out[std::string(LabelValue(metric, "__name__")) + "/" + std::string(LabelValue(metric, "target"))] =
        std::vector<promql::Point>(pts.begin(), pts.end());
  });
  return out;
}

}  // namespace

TEST_CASE("series store: a series missing from its target's next collection gets one staleness marker") {
  SeriesStore store;
  store.Ingest("a", 1 * kMin, {S("pg_up", "a", 1), S("pg_x", "a", 5)});
  store.Ingest("b", 1 * kMin, {S("pg_x", "b", 7)});
  store.Ingest("a", 2 * kMin, {S("pg_up", "a", 0)});
  store.Ingest("a", 3 * kMin, {S("pg_up", "a", 0)});

  auto got = Read(store, {Eq("__name__", "pg_x")}, 0, 10 * kMin);
  REQUIRE(got.size() == 2);
  REQUIRE(got["pg_x/a"].size() == 2);
  CHECK(got["pg_x/a"][0].v == 5);
  CHECK(promql::IsStaleMarker(got["pg_x/a"][1].v));
  CHECK(got["pg_x/a"][1].t == 2 * kMin);
  CHECK(got["pg_x/b"].size() == 1);  // another target's collection does not touch it
  CHECK(got["pg_x/b"][0].v == 7);
}

TEST_CASE("series store: without retention a series keeps its newest two points only") {
  SeriesStore store;
  for (int i = 1; i <= 10; ++i) store.Ingest("a", i * kMin, {S("m", "a", i)});
  auto got = Read(store, {Eq("__name__", "m")}, 0, 100 * kMin);
  REQUIRE(got["m/a"].size() == 2);
  CHECK(got["m/a"][0].v == 9);
  CHECK(got["m/a"][1].v == 10);
  CHECK(store.stats().samples == 2);
}

TEST_CASE("series store: retention keeps history back to keep + lookback for matching series only") {
  SeriesStore store;
  store.SetRetention({Retention{{Eq("__name__", "kept")}, 10 * kMin}});
  for (int i = 1; i <= 40; ++i) store.Ingest("a", i * kMin, {S("kept", "a", i), S("other", "a", i)});
  auto kept = Read(store, {Eq("__name__", "kept")}, 0, 100 * kMin)["kept/a"];
  // now = 40 min: points at or after 40 - 10 - 5 = 25 min survive.
  REQUIRE(!kept.empty());
  CHECK(kept.front().t == 25 * kMin);
  CHECK(kept.back().t == 40 * kMin);
  CHECK(kept.size() == 16);
  CHECK(Read(store, {Eq("__name__", "other")}, 0, 100 * kMin)["other/a"].size() == 2);
}

TEST_CASE("series store: SetRetention applies to series that already exist") {
  SeriesStore store;
  store.Ingest("a", 1 * kMin, {S("m", "a", 1)});
  store.SetRetention({Retention{{Eq("target", "a")}, 30 * kMin}});
  for (int i = 2; i <= 6; ++i) store.Ingest("a", i * kMin, {S("m", "a", i)});
  CHECK(Read(store, {Eq("__name__", "m")}, 0, 100 * kMin)["m/a"].size() == 6);
}

TEST_CASE("series store: stale series are dropped once the marker leaves the lookback window") {
  SeriesStore store;
  store.Ingest("a", 1 * kMin, {S("up", "a", 1), S("gone", "a", 1)});
  store.Ingest("a", 2 * kMin, {S("up", "a", 1)});
  CHECK(store.stats().series == 2);
  store.Ingest("a", 7 * kMin, {S("up", "a", 1)});  // marker at 2 min is exactly 5 min old: kept
  CHECK(store.stats().series == 2);
  store.Ingest("a", 8 * kMin, {S("up", "a", 1)});
  CHECK(store.stats().series == 1);
  CHECK(Read(store, {Eq("__name__", "gone")}, 0, 100 * kMin).empty());
}

TEST_CASE("series store: a series that comes back after going stale continues") {
  SeriesStore store;
  store.Ingest("a", 1 * kMin, {S("m", "a", 1)});
  store.Ingest("a", 2 * kMin, {});
  store.Ingest("a", 3 * kMin, {S("m", "a", 3)});
  auto pts = Read(store, {Eq("__name__", "m")}, 0, 100 * kMin)["m/a"];
  REQUIRE(pts.size() == 2);
  CHECK(promql::IsStaleMarker(pts[0].v));
  CHECK(pts[1].v == 3);
}

TEST_CASE("series store: removing a source makes its series stale, others stay") {
  SeriesStore store;
  store.Ingest("a", 1 * kMin, {S("m", "a", 1)});
  store.Ingest("b", 1 * kMin, {S("m", "b", 2)});
  store.RemoveSource("a", 2 * kMin);
  auto got = Read(store, {Eq("__name__", "m")}, 2 * kMin, 2 * kMin);
  REQUIRE(got.size() == 1);
  CHECK(promql::IsStaleMarker(got["m/a"][0].v));
  store.Ingest("b", 9 * kMin, {S("m", "b", 2)});
  store.RemoveSource("a", 9 * kMin);
  CHECK(store.stats().series == 1);
}

TEST_CASE("series store: select honours every matcher and the time window; time never goes backwards") {
  SeriesStore store;
  store.Ingest("a", 1 * kMin, {S("m", "a", 1, {{"db", "x"}}), S("n", "a", 1, {{"db", "x"}})});
  store.Ingest("a", 2 * kMin, {S("m", "a", 2, {{"db", "x"}}), S("n", "a", 1, {{"db", "x"}})});
  store.Ingest("a", 2 * kMin - 1, {S("m", "a", 99, {{"db", "x"}}), S("n", "a", 1, {{"db", "x"}})});
  std::string err;
  auto re = *Matcher::Make(Matcher::Op::kRegexMatch, "__name__", "m|n", &err);
  CHECK(Read(store, {re, Eq("db", "x")}, 0, 100 * kMin).size() == 2);
  CHECK(Read(store, {re, Eq("db", "y")}, 0, 100 * kMin).empty());
  auto m = Read(store, {Eq("__name__", "m")}, 2 * kMin, 2 * kMin)["m/a"];
  REQUIRE(m.size() == 1);
  CHECK(m[0].v == 2);
  CHECK(Read(store, {Eq("__name__", "m")}, 3 * kMin, 4 * kMin).empty());
}

TEST_CASE("series store: stats count series, samples and bytes") {
  SeriesStore store;
  CHECK(store.stats().series == 0);
  CHECK(store.stats().bytes == 0);
  store.Ingest("a", 1 * kMin, {S("m", "a", 1), S("n", "a", 1)});
  auto st = store.stats();
  CHECK(st.series == 2);
  CHECK(st.samples == 2);
  CHECK(st.bytes > 2 * sizeof(promql::Point));
}

TEST_CASE("series store: retention derived from expressions covers ranges, offsets and subqueries") {
  auto need = [](std::string_view q) {
    auto parsed = promql::Parse(q);
    REQUIRE_MESSAGE(parsed.expr, parsed.error.ToString());
    std::map<std::string, TimestampMs> out;
    for (const auto& r : RetentionFor({parsed.expr.get()})) {
      std::string name;
      for (const auto& m : r.matchers)
        if (m.name() == "__name__") name = m.value();
      out[name] = std::max(out[name], r.keep_ms);
    }
    return out;
  };
  CHECK(need("up == 0").empty());
  CHECK(need("rate(a[5m]) > b") == std::map<std::string, TimestampMs>{{"a", 5 * kMin}});
  CHECK(need("a offset 10m - a") ==
        std::map<std::string, TimestampMs>{{"a", 15 * kMin}});  // offset + lookback
  CHECK(need("max_over_time(a[2m] offset 1m)") == std::map<std::string, TimestampMs>{{"a", 3 * kMin}});
  // A 30m subquery reading 5m ranges; a plain selector inside a subquery needs history too.
  CHECK(need("max_over_time(rate(a[5m])[30m:1m])") == std::map<std::string, TimestampMs>{{"a", 35 * kMin}});
  CHECK(need("max_over_time(a[10m:1m])") == std::map<std::string, TimestampMs>{{"a", 15 * kMin}});
  CHECK(need("a @ 1000 + rate(b[1m] @ 2000)").empty());
  CHECK(need("sum by (x) (increase(a{x=\"1\"}[1h]))") ==
        std::map<std::string, TimestampMs>{{"a", 60 * kMin}});
}

TEST_CASE("series store: appended rule output is readable at once and compacted once out of reach") {
  SeriesStore store;
  store.Append({{"__name__", "job:x:sum"}, {"job", "a"}}, 1 * kMin, 3);
  store.Append({{"job", "a"}, {"__name__", "job:x:sum"}}, 1 * kMin, 4);  // same series, same time: ignored
  auto got = Read(store, {Eq("__name__", "job:x:sum")}, 0, 10 * kMin);
  REQUIRE(got.size() == 1);
  REQUIRE(got.begin()->second.size() == 1);
  CHECK(got.begin()->second[0].v == 3);
  store.Ingest("t", 1 * kMin, {S("up", "t", 1)});
  store.Compact(6 * kMin);
  CHECK(store.stats().series == 2);
  store.Compact(6 * kMin + 1);  // nothing newer than 1 min: invisible to any query from now on
  CHECK(store.stats().series == 0);
}

TEST_CASE("series store: empty-valued labels are dropped on ingest and append ({a=\"\"} is no label a)") {
  SeriesStore store;
  store.Ingest("a", 1 * kMin, {S("pg_x", "a", 1, {{"role", ""}})});
  store.Ingest("a", 2 * kMin, {S("pg_x", "a", 2)});
  store.Append({{"__name__", "pg_x"}, {"target", "a"}, {"zone", ""}}, 3 * kMin, 3);
  std::vector<Labels> metrics;
  std::vector<double> values;
  store.Select({Eq("__name__", "pg_x")}, 0, 10 * kMin,
               [&](const Labels& m, std::span<const promql::Point> pts) {
                 metrics.push_back(m);
                 for (const auto& p : pts) values.push_back(p.v);
               });
  REQUIRE(metrics.size() == 1);  // one series: the empty label did not make a second one
  CHECK(metrics[0] == Labels{{"__name__", "pg_x"}, {"target", "a"}});
  CHECK(values.back() == 3);
  CHECK_FALSE(promql::IsStaleMarker(values.back()));
}

TEST_CASE(
    "series store: a collection in another order, or with other labels, still reaches the right series") {
  SeriesStore store;
  store.Ingest("a", 1 * kMin, {S("m", "a", 1), S("n", "a", 2)});
  store.Ingest("a", 2 * kMin, {S("n", "a", 20), S("m", "a", 10)});
  store.Ingest("a", 3 * kMin, {S("o", "a", 300), S("m", "a", 100)});
  auto m = Read(store, {Eq("__name__", "m")}, 0, 10 * kMin)["m/a"];
  REQUIRE(m.size() == 2);
  CHECK(m[0].v == 10);
  CHECK(m[1].v == 100);
  auto n = Read(store, {Eq("__name__", "n")}, 0, 10 * kMin)["n/a"];
  REQUIRE(n.size() == 2);
  CHECK(n[0].v == 20);
  CHECK(promql::IsStaleMarker(n[1].v));
  CHECK(Read(store, {Eq("__name__", "o")}, 0, 10 * kMin)["o/a"].size() == 1);
}

TEST_CASE("series store: dropping and restoring a retention keeps the newest points") {
  SeriesStore store;
  store.SetRetention({Retention{{Eq("__name__", "m")}, 30 * kMin}});
  for (int i = 1; i <= 5; ++i) store.Ingest("a", i * kMin, {S("m", "a", i)});
  store.SetRetention({});
  auto got = Read(store, {Eq("__name__", "m")}, 0, 100 * kMin)["m/a"];
  REQUIRE(got.size() == 2);
  CHECK(got[0].v == 4);
  CHECK(got[1].v == 5);
  store.SetRetention({Retention{{Eq("__name__", "m")}, 30 * kMin}});
  for (int i = 6; i <= 7; ++i) store.Ingest("a", i * kMin, {S("m", "a", i)});
  got = Read(store, {Eq("__name__", "m")}, 0, 100 * kMin)["m/a"];
  REQUIRE(got.size() == 4);
  CHECK(got[0].v == 4);
  CHECK(got[3].v == 7);
}

TEST_CASE("series store: appended rule output is kept as the shared set it was given") {
  SeriesStore store;
  LabelSet out = Labels{{"__name__", "rec"}, {"target", "a"}};
  store.Append(out, 1 * kMin, 1);
  store.Append(Labels{{"__name__", "rec"}, {"target", "a"}}, 2 * kMin, 2);  // equal, not shared: same series
  int seen = 0;
  store.Select({Eq("__name__", "rec")}, 0, 10 * kMin,
               [&](const LabelSet& metric, std::span<const promql::Point> pts) {
                 ++seen;
                 CHECK(metric.SameAs(out));
                 CHECK(pts.size() == 2);
               });
  CHECK(seen == 1);
}

TEST_CASE("series store: an append reference is used only while its slot holds the very same set") {
  SeriesStore store;
  LabelSet a = Labels{{"__name__", "rec_a"}, {"target", "t"}};
  LabelSet b = Labels{{"__name__", "rec_b"}, {"target", "t"}};
  const auto ref = store.AppendRef(0, a, 1 * kMin, 1);
  REQUIRE(ref != 0);
  CHECK(store.AppendRef(ref, a, 2 * kMin, 2) == ref);
  // a ages out and is dropped; b takes its slot. a's old reference must not write into b.
  store.Compact(8 * kMin);
  REQUIRE(store.stats().series == 0);
  REQUIRE(store.AppendRef(0, b, 8 * kMin, 5) == ref);
  const auto ref_a = store.AppendRef(ref, a, 9 * kMin, 7);
  CHECK(ref_a != ref);
  auto got = Read(store, {Eq("target", "t")}, 0, 10 * kMin);
  REQUIRE(got.size() == 2);
  REQUIRE(got["rec_b/t"].size() == 1);
  CHECK(got["rec_b/t"][0].v == 5);
  REQUIRE(got["rec_a/t"].size() == 1);  // a recreated with its new point only
  CHECK(got["rec_a/t"][0].v == 7);
  // A reference with an equal set that is not the stored one (or a wrong one) still finds the series.
  CHECK(store.AppendRef(ref, Labels{{"__name__", "rec_a"}, {"target", "t"}}, 10 * kMin, 8) == ref_a);
  CHECK(store.AppendRef(12345, a, 11 * kMin, 9) == ref_a);
  got = Read(store, {Eq("__name__", "rec_a")}, 0, 20 * kMin);
  REQUIRE(got["rec_a/t"].size() == 2);  // without retention: the newest two
  CHECK(got["rec_a/t"][0].v == 8);
  CHECK(got["rec_a/t"][1].v == 9);
  CHECK(Read(store, {Eq("__name__", "rec_b")}, 0, 20 * kMin)["rec_b/t"].size() == 1);
}

// A series' append reference is its slot + 1: the tests below read the layout from it.
std::uint64_t Ref(SeriesStore& store, const std::string& name, int i, TimestampMs t, double v = 1) {
  return store.AppendRef(0, LabelSet(Labels{{"__name__", name}, {"i", std::to_string(i)}}), t, v);
}

TEST_CASE("series store: the series of one name get neighbouring slots, however their creation interleaves") {
  SeriesStore store;
  std::map<std::string, std::vector<std::uint64_t>> refs;
  // 600 series of "big" spill over several chunks; "small" has 3; both interleave with each other
  // and with 600 series of other names.
  for (int i = 0; i < 600; ++i) {
    refs["big"].push_back(Ref(store, "big", i, 1 * kMin, i));
    if (i % 200 == 0) refs["small"].push_back(Ref(store, "small", i, 1 * kMin, i));
    store.Ingest("t" + std::to_string(i % 7), 1 * kMin + i,
                 {S("other_" + std::to_string(i % 5), "x" + std::to_string(i), i)});
  }
  for (auto& [name, r] : refs) {
    std::set<std::uint64_t> distinct(r.begin(), r.end());
    CHECK(distinct.size() == r.size());
    // Few runs of consecutive slots: a run breaks only where a new chunk starts.
    std::sort(r.begin(), r.end());
    int runs = 1;
    for (std::size_t i = 1; i < r.size(); ++i) runs += r[i] != r[i - 1] + 1;
    CHECK(runs <= 8);
  }
  std::size_t n = 0;
  store.Select({Eq("__name__", "big")}, 0, 10 * kMin,
               [&](const Labels& m, std::span<const promql::Point> pts) {
                 REQUIRE(pts.size() == 1);
                 CHECK(pts[0].v == std::stoi(std::string(LabelValue(m, "i"))));
                 ++n;
               });
  CHECK(n == 600);
  CHECK(Read(store, {Eq("__name__", "small")}, 0, 10 * kMin).size() == 1);  // keyed by name/target
}

TEST_CASE(
    "series store: a slot freed by a dropped series is reused by its name, then by others once the name is "
    "gone") {
  SeriesStore store;
  std::vector<std::uint64_t> first;
  for (int i = 0; i < 5; ++i) first.push_back(Ref(store, "a", i, 1 * kMin));
  const auto b0 = Ref(store, "b", 0, 1 * kMin);
  const auto size = store.stats().bytes;
  // Keep a/0..3 and b alive; a/4 ages out and is dropped.
  for (int i = 0; i < 4; ++i) Ref(store, "a", i, 7 * kMin, 10 + i);
  Ref(store, "b", 0, 7 * kMin);
  store.Compact(7 * kMin);
  CHECK(store.stats().series == 5);
  // A new series of "a" takes a/4's slot; nothing grows.
  const auto a9 = Ref(store, "a", 9, 7 * kMin, 99);
  CHECK(a9 == first[4]);
  CHECK(store.stats().bytes <= size + 64);
  std::map<std::string, double> values;
  store.Select({Eq("__name__", "a")}, 6 * kMin, 8 * kMin,
               [&](const Labels& m, std::span<const promql::Point> pts) {
                 REQUIRE(pts.size() == 1);  // a/9 did not inherit a/4's point
                 values[std::string(LabelValue(m, "i"))] = pts.back().v;
               });
  CHECK(values == std::map<std::string, double>{{"0", 10}, {"1", 11}, {"2", 12}, {"3", 13}, {"9", 99}});
  // Every "a" gone: its chunk serves the next new name, and the old references fall back.
  Ref(store, "b", 0, 13 * kMin);
  store.Compact(13 * kMin);
  REQUIRE(store.stats().series == 1);
  const auto c0 = Ref(store, "c", 0, 13 * kMin, 5);
  CHECK(c0 == first[0]);
  CHECK(Read(store, {Eq("__name__", "a")}, 0, 20 * kMin).empty());
  const LabelSet a0 = Labels{{"__name__", "a"}, {"i", "0"}};
  const auto a0_ref = store.AppendRef(first[0], a0, 14 * kMin, 7);
  CHECK(a0_ref != first[0]);
  CHECK(Read(store, {Eq("__name__", "c")}, 0, 20 * kMin).begin()->second.back().v == 5);
  CHECK(store.AppendRef(b0, LabelSet(Labels{{"__name__", "b"}, {"i", "0"}}), 14 * kMin, 3) == b0);
}

TEST_CASE(
    "series store: references stay valid across compaction; retained history is exact while the buffer drops "
    "lazily") {
  SeriesStore store;
  store.SetRetention({Retention{{Eq("__name__", "h")}, 2 * kMin}});
  const LabelSet h = Labels{{"__name__", "h"}, {"i", "0"}};
  const LabelSet gone = Labels{{"__name__", "h"}, {"i", "1"}};
  auto ref = store.AppendRef(0, h, 0, 0);
  const auto gone_ref = store.AppendRef(0, gone, 0, 0);
  for (int k = 1; k <= 100; ++k) {
    const TimestampMs t = k * 15'000;
    CHECK(store.AppendRef(ref, h, t, k) == ref);
    store.Compact(t);
    // Every point within keep + lookback (7 min) of the newest, nothing older.
    std::vector<promql::Point> pts;
    store.Select({Eq("i", "0")}, 0, t,
                 [&](const Labels&, std::span<const promql::Point> p) { pts.assign(p.begin(), p.end()); });
    REQUIRE(!pts.empty());
    CHECK(pts.back().t == t);
    CHECK(pts.front().t == std::max<TimestampMs>(0, t - 7 * kMin));
    CHECK(pts.size() == static_cast<std::size_t>(std::min(k, 28) + 1));
    CHECK(store.stats().samples == pts.size() + (t <= 7 * kMin ? 1 : 0));
    // A window inside the history: exactly its points.
    std::size_t n = 0;
    store.Select({Eq("i", "0")}, t - 60'000, t - 30'000,
                 [&](const Labels&, std::span<const promql::Point> p) {
                   n = p.size();
                   for (const auto& q : p) CHECK((q.t >= t - 60'000 && q.t <= t - 30'000));
                 });
    CHECK(n == static_cast<std::size_t>(std::clamp(k - 1, 0, 3)));
  }
  // h/1 aged out long ago: its reference falls back and recreates it.
  CHECK(store.stats().series == 1);
  CHECK(store.AppendRef(gone_ref, gone, 101 * 15'000, 1) != 0);
  CHECK(store.stats().series == 2);
}

}  // namespace series_store_test
