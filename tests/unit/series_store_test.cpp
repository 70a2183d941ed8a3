#include "runbook/series_store.h"

#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <thread>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

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

TEST_CASE("series store: a new series gets the longest keep of every retention it matches, by name or not") {
  SeriesStore store;
  std::string err;
  const Matcher re = *Matcher::Make(Matcher::Op::kRegexMatch, "__name__", "r.*", &err);
  store.SetRetention({Retention{{Eq("__name__", "a")}, 2 * kMin},
                      Retention{{Eq("__name__", "a"), Eq("target", "t2")}, 20 * kMin},
                      Retention{{Eq("__name__", "b")}, 4 * kMin}, Retention{{re}, 6 * kMin},
                      Retention{{Eq("target", "t3")}, 8 * kMin}});
  for (int i = 1; i <= 40; ++i) {
    store.Ingest("s", i * kMin,
                 {S("a", "t1", i), S("a", "t2", i), S("a", "t3", i), S("b", "t1", i), S("rx", "t1", i),
                  S("c", "t1", i), S("c", "t3", i)});
  }
  // now = 40 min: a series keeping k minutes holds the points of the last k + 5 minutes.
  auto held = [&](const char* name, const char* target) {
    return Read(store, {Eq("__name__", name), Eq("target", target)}, 0,
                100 * kMin)[std::string(name) + "/" + target]
        .size();
  };
  CHECK(held("a", "t1") == 8);   // 2 min
  CHECK(held("a", "t2") == 26);  // 20 min: the name's other retention
  CHECK(held("a", "t3") == 14);  // 8 min: a retention without a name beats the name's 2 min
  CHECK(held("b", "t1") == 10);
  CHECK(held("rx", "t1") == 12);  // a regex on the name
  CHECK(held("c", "t1") == 2);    // none: the newest two points
  CHECK(held("c", "t3") == 14);
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

TEST_CASE(
    "series store: history buffers of dropped series are reused; a recreated series holds only its own "
    "points") {
  SeriesStore store;
  store.SetRetention({Retention{{Eq("__name__", "h")}, 10 * kMin}});
  auto collect = [&](const std::string& source, int from, int to, TimestampMs t, double base) {
    std::vector<StoreSample> samples;
    for (int i = from; i < to; ++i) samples.push_back(S("h", "t" + std::to_string(i), base + i));
    store.Ingest(source, t, samples);
  };
  // 300 series with 20 points of history each, from two sources.
  for (int k = 1; k <= 20; ++k) {
    collect("a", 0, 150, k * kMin, 1000 * k);
    collect("b", 150, 300, k * kMin, 1000 * k);
  }
  const auto full = store.stats();
  REQUIRE(full.series == 300);
  CHECK(full.samples == 300 * 16);  // 1..20 min, back to 20 - 10 - 5 = 5 min
  // b's series go stale and age out; new series (other targets) take their buffers.
  for (int k = 21; k <= 40; ++k) collect("a", 0, 150, k * kMin, 1000 * k);
  store.Compact(40 * kMin);
  REQUIRE(store.stats().series == 150);
  for (int k = 41; k <= 60; ++k) {
    collect("a", 0, 150, k * kMin, 1000 * k);
    collect("c", 300, 450, k * kMin, 7);
  }
  const auto again = store.stats();
  REQUIRE(again.series == 300);
  CHECK(again.samples == 300 * 16);
  CHECK(again.bytes <= full.bytes + full.bytes / 10);
  std::size_t seen = 0;
  store.Select({Eq("__name__", "h")}, 0, 100 * kMin,
               [&](const Labels& m, std::span<const promql::Point> pts) {
                 const int i = std::stoi(std::string(LabelValue(m, "target")).substr(1));
                 REQUIRE(pts.size() == 16);
                 CHECK(pts.front().t == 45 * kMin);
                 for (const auto& p : pts) CHECK(p.v == (i >= 300 ? 7 + i : 1000 * (p.t / kMin) + i));
                 ++seen;
               });
  CHECK(seen == 300);
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

TEST_CASE(
    "series store: SelectLatest passes each series' newest point of the window, the last point Select "
    "passes") {
  SeriesStore store;
  store.SetRetention({Retention{{Eq("__name__", "h")}, 10 * kMin}});
  // h keeps history, x only its newest points; h's points out of reach (older than keep +
  // lookback) stay in its buffer until it fills, and must not be passed.
  for (int k = 1; k <= 120; ++k) {
    const TimestampMs t = k * 15'000;
    std::vector<StoreSample> samples{S("h", "a", k), S("x", "a", 1000 + k)};
    if (k % 7 != 0) samples.push_back(S("h", "b", 2000 + k));  // gaps
    if (k == 60) samples.push_back(S("h", "c", 3000 + k));     // one point, then stale at 61
    store.Ingest("a", t, samples);
  }
  const std::vector<Matcher> all{Eq("target", "a"), Eq("target", "b"), Eq("target", "c")};
  std::size_t compared = 0, empty_windows = 0;
  for (TimestampMs maxt = 0; maxt <= 121 * 15'000; maxt += 5'000) {
    for (TimestampMs width : {TimestampMs(0), TimestampMs(10'000), 5 * kMin, 20 * kMin, 40 * kMin}) {
      const TimestampMs mint = maxt - width;
      for (const auto& m : all) {
        std::map<std::string, promql::Point> want, got;
        store.Select({m}, mint, maxt, [&](const Labels& metric, std::span<const promql::Point> pts) {
          want[std::string(LabelValue(metric, "__name__")) + "/" +
               std::string(LabelValue(metric, "target"))] = pts.back();
        });
        store.SelectLatest({m}, mint, maxt, [&](const Labels& metric, std::span<const promql::Point> pts) {
          REQUIRE(!pts.empty());
          CHECK(pts.back().t >= mint);
          CHECK(pts.back().t <= maxt);
          got[std::string(LabelValue(metric, "__name__")) + "/" + std::string(LabelValue(metric, "target"))] =
              pts.back();
        });
        REQUIRE(got.size() == want.size());
        for (const auto& [key, p] : want) {
          REQUIRE(got.count(key) == 1);
          CHECK(got[key].t == p.t);
          CHECK((got[key].v == p.v || (std::isnan(got[key].v) && std::isnan(p.v))));
          ++compared;
        }
        empty_windows += want.empty();
      }
    }
  }
  CHECK(compared > 1000);
  CHECK(empty_windows > 100);  // windows before the first point and past the reach of history
}

TEST_CASE("series store: selects run concurrently with ingestion, appends and compaction") {
  SeriesStore store;
  store.SetRetention({Retention{{Eq("__name__", "h")}, 2 * kMin}});
  std::atomic<bool> done{false};
  std::thread writer([&] {
    const LabelSet out = Labels{{"__name__", "rec"}, {"target", "x"}};
    std::uint64_t ref = 0;
    for (int k = 1; k <= 300; ++k) {
      std::vector<StoreSample> samples;
      for (int i = 0; i < 50; ++i)
        samples.push_back(S(i % 2 ? "h" : "g", "t" + std::to_string(i + k % 7), k));
      store.Ingest("a", k * 15'000, samples);
      ref = store.AppendRef(ref, out, k * 15'000, k);
      store.Compact(k * 15'000);
    }
    done = true;
  });
  while (!done) {
    store.Select({Eq("__name__", "h")}, 0, 1'000 * kMin,
                 [&](const Labels&, std::span<const promql::Point> pts) {
                   for (std::size_t i = 1; i < pts.size(); ++i) CHECK(pts[i - 1].t < pts[i].t);
                 });
    (void)store.stats();
  }
  writer.join();
  CHECK(store.stats().series > 0);
}

TEST_CASE(
    "series store: compaction repacks history buffers left idle by growth, keeping every retained point") {
  SeriesStore store;
  store.SetRetention({Retention{{Eq("__name__", "h")}, 10 * kMin}});
  constexpr int kSeries = 20'000;
  auto collect = [&](int k) {
    std::vector<StoreSample> samples;
    samples.reserve(kSeries);
    for (int i = 0; i < kSeries; ++i) samples.push_back(S("h", "t" + std::to_string(i), k * 100'000.0 + i));
    store.Ingest("a", k * 15'000, samples);
  };
  auto check = [&](int newest) {
    std::size_t n = 0;
    store.Select({Eq("__name__", "h")}, 0, 1'000 * kMin,
                 [&](const Labels& m, std::span<const promql::Point> pts) {
                   const int i = std::stoi(std::string(LabelValue(m, "target")).substr(1));
                   REQUIRE(pts.size() == static_cast<std::size_t>(newest));
                   for (std::size_t j = 0; j < pts.size(); ++j) {
                     CHECK(pts[j].t == static_cast<TimestampMs>(j + 1) * 15'000);
                     CHECK(pts[j].v == (j + 1) * 100'000.0 + i);
                   }
                   ++n;
                 });
    CHECK(n == kSeries);
  };
  // 30 points each: buffers grew 4 → 8 → 16 → 32, leaving 28 points per series idle.
  for (int k = 1; k <= 30; ++k) collect(k);
  const auto grown = store.stats();
  store.Compact(30 * 15'000);
  const auto packed = store.stats();
  CHECK(packed.series == grown.series);
  CHECK(packed.samples == grown.samples);
  CHECK(grown.bytes - packed.bytes > std::size_t(kSeries) * 300);
  check(30);
  for (int k = 31; k <= 34; ++k) collect(k);  // and the packed buffers take appends and grow
  check(34);
}

#if defined(__SANITIZE_ADDRESS__)
// The history buffers come from the store's own blocks, which ASan sees as one allocation: the
// arena poisons what it has not handed out, so a dropped series' buffer is caught if read.
TEST_CASE("series store (ASan): a dropped series' history buffer and the arena's free space are poisoned") {
  SeriesStore store;
  store.SetRetention({Retention{{Eq("__name__", "h")}, 10 * kMin}});
  for (int k = 1; k <= 5; ++k) store.Ingest("a", k * kMin, {S("h", "gone", k)});
  const promql::Point* buffer = nullptr;
  std::size_t held = 0;
  store.Select({Eq("__name__", "h")}, 0, 100 * kMin, [&](const Labels&, std::span<const promql::Point> pts) {
    buffer = pts.data();
    held = pts.size();
  });
  REQUIRE(held == 5);
  CHECK(__asan_region_is_poisoned(const_cast<promql::Point*>(buffer), held * sizeof(promql::Point)) ==
        nullptr);
  CHECK(__asan_address_is_poisoned(buffer + 8));  // past the buffer: never handed out
  store.Ingest("a", 6 * kMin, {});                // stale
  store.Compact(60 * kMin);
  REQUIRE(store.stats().series == 0);
  CHECK(__asan_address_is_poisoned(buffer));
}
#endif

}  // namespace series_store_test
