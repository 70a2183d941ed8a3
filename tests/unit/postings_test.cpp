// The label index behind SeriesStore and MemoryStorage (rules/promql/postings.h): selectors
// must return exactly the series a full scan would, whatever the matchers.
#include <doctest/doctest.h>

#include <set>

#include "promql/postings.h"
#include "runbook/series_store.h"

namespace postings_test {

using namespace runbook;
using promql::Matcher;

namespace {

constexpr TimestampMs kMin = 60'000;

Matcher M(Matcher::Op op, std::string name, std::string value) {
  std::string err;
  auto m = Matcher::Make(op, std::move(name), std::move(value), &err);
  REQUIRE(m);
  return *m;
}
Matcher Eq(std::string n, std::string v) {
  return M(Matcher::Op::kEqual, std::move(n), std::move(v));
}
Matcher Ne(std::string n, std::string v) {
  return M(Matcher::Op::kNotEqual, std::move(n), std::move(v));
}
Matcher Re(std::string n, std::string v) {
  return M(Matcher::Op::kRegexMatch, std::move(n), std::move(v));
}
Matcher Nre(std::string n, std::string v) {
  return M(Matcher::Op::kRegexNoMatch, std::move(n), std::move(v));
}

// "name/target/db" of every selected series, in the order the Queryable returned them.
std::vector<std::string> Names(const promql::Queryable& q, const std::vector<Matcher>& m) {
  std::vector<std::string> out;
  q.Select(m, 0, 100 * kMin, [&](const Labels& l, std::span<const promql::Point>) {
    out.push_back(std::string(LabelValue(l, "__name__")) + "/" + std::string(LabelValue(l, "target")) + "/" +
                  std::string(LabelValue(l, "db")));
  });
  return out;
}
std::set<std::string> Set(const promql::Queryable& q, const std::vector<Matcher>& m) {
  auto v = Names(q, m);
  return {v.begin(), v.end()};
}

// m{a,x} m{a} m{b,y} n{a,x} m{c,db=""}: the empty db of the last one is the same as no db.
const std::vector<Labels> kSeries = {
    {{"__name__", "m"}, {"target", "a"}, {"db", "x"}}, {{"__name__", "m"}, {"target", "a"}},
    {{"__name__", "m"}, {"target", "b"}, {"db", "y"}}, {{"__name__", "n"}, {"target", "a"}, {"db", "x"}},
    {{"__name__", "m"}, {"target", "c"}, {"db", ""}},
};

void CheckMatchers(const promql::Queryable& q) {
  using S = std::set<std::string>;
  CHECK(Set(q, {Eq("__name__", "m"), Eq("db", "x")}) == S{"m/a/x"});
  CHECK(Set(q, {Eq("__name__", "m"), Eq("db", "")}) == S{"m/a/", "m/c/"});
  CHECK(Set(q, {Eq("__name__", "m"), Ne("db", "x")}) == S{"m/a/", "m/b/y", "m/c/"});
  CHECK(Set(q, {Eq("__name__", "m"), Ne("db", "")}) == S{"m/a/x", "m/b/y"});
  CHECK(Set(q, {Eq("__name__", "m"), Re("db", "x|y")}) == S{"m/a/x", "m/b/y"});
  CHECK(Set(q, {Eq("__name__", "m"), Re("db", "x|")}) == S{"m/a/x", "m/a/", "m/c/"});
  CHECK(Set(q, {Eq("__name__", "m"), Nre("db", "x")}) == S{"m/a/", "m/b/y", "m/c/"});
  CHECK(Set(q, {Re("__name__", "m|n"), Eq("db", "x")}) == S{"m/a/x", "n/a/x"});
  CHECK(Set(q, {Re("__name__", "n|zz")}) == S{"n/a/x"});
  CHECK(Set(q, {Re("__name__", ".+"), Eq("target", "a")}) == S{"m/a/x", "m/a/", "n/a/x"});
  CHECK(Set(q, {Re("db", ".+")}) == S{"m/a/x", "m/b/y", "n/a/x"});
  CHECK(Set(q, {Ne("db", "")}) == S{"m/a/x", "m/b/y", "n/a/x"});
  CHECK(Set(q, {Nre("__name__", "m"), Re("target", "a|b")}) == S{"n/a/x"});
  CHECK(Set(q, {Eq("db", "x"), Eq("target", "b")}).empty());
  CHECK(Set(q, {Eq("__name__", "missing")}).empty());
  CHECK(Set(q, {Eq("__name__", "m"), Eq("nolabel", "v")}).empty());
  CHECK(Set(q, {Eq("__name__", "m"), Eq("nolabel", "")}).size() == 4);
}

}  // namespace

TEST_CASE("postings: series store selectors return exactly the matching series for every matcher kind") {
  SeriesStore store;
  std::vector<StoreSample> samples;
  for (const auto& l : kSeries) samples.push_back({l, 1});
  store.Ingest("t", 1 * kMin, samples);
  CheckMatchers(store);
}

// Sorted label sets compare pair by pair: {db="x"} < {db="y"} < {target="a"} < {target="c"}; the
// empty db of m/c/ is not stored (Prometheus' canonical labels), so m/c/ sorts by its target.
TEST_CASE("postings: memory storage selectors match the same series, ordered by labels") {
  promql::MemoryStorage storage;
  for (const auto& l : kSeries) storage.Append(l, 1 * kMin, 1);
  CheckMatchers(storage);
  CHECK(Names(storage, {Re("__name__", "m|n")}) ==
        std::vector<std::string>{"m/a/x", "m/b/y", "m/a/", "m/c/", "n/a/x"});
  CHECK(Names(storage, {Eq("target", "a")}) == std::vector<std::string>{"m/a/x", "m/a/", "n/a/x"});
  storage.Clear();
  CHECK(Names(storage, {Eq("target", "a")}).empty());
  storage.Append({{"__name__", "m"}, {"target", "a"}}, 1 * kMin, 1);
  CHECK(Names(storage, {Eq("target", "a")}) == std::vector<std::string>{"m/a/"});
}

TEST_CASE(
    "postings: an expired series leaves the index, and a series reusing its slot is not found by its "
    "labels") {
  SeriesStore store;
  store.Ingest("t", 1 * kMin, {{{{"__name__", "m"}, {"target", "t"}, {"db", "x"}}, 1}});
  store.Ingest("t", 2 * kMin, {});                                       // stale at 2m
  CHECK(Set(store, {Eq("db", "x")}) == std::set<std::string>{"m/t/x"});  // marker still readable
  store.Compact(2 * kMin + promql::kLookbackDeltaMs + 1);
  CHECK(store.stats().series == 0);
  CHECK(Set(store, {Eq("db", "x")}).empty());
  store.Ingest("u", 10 * kMin, {{{{"__name__", "m"}, {"target", "u"}, {"db", "z"}}, 1}});
  CHECK(Set(store, {Eq("db", "x")}).empty());
  CHECK(Set(store, {Eq("__name__", "m"), Eq("target", "t")}).empty());
  CHECK(Set(store, {Eq("__name__", "m")}) == std::set<std::string>{"m/u/z"});
  CHECK(Set(store, {Re("db", "x|z")}) == std::set<std::string>{"m/u/z"});
}

TEST_CASE("postings: series retired by their source's collections leave the index too") {
  SeriesStore store;
  auto s = [](std::string db) {
    return StoreSample{{{"__name__", "m"}, {"target", "t"}, {"db", std::move(db)}}, 1};
  };
  store.Ingest("t", 1 * kMin, {s("a"), s("b"), s("c"), s("d")});
  store.Ingest("t", 2 * kMin, {s("a"), s("c"), s("d")});  // b goes stale
  // Long enough for b's marker to age out: the next collection of t deletes it.
  store.Ingest("t", 9 * kMin, {s("a"), s("c"), s("d")});
  CHECK(Set(store, {Eq("db", "b")}).empty());
  // A new series takes b's slot, below the ids of c and d: intersections still find them all.
  store.Ingest("t", 10 * kMin, {s("a"), s("c"), s("d"), s("e")});
  CHECK(Set(store, {Eq("__name__", "m"), Eq("target", "t")}) ==
        std::set<std::string>{"m/t/a", "m/t/c", "m/t/d", "m/t/e"});
  CHECK(Set(store, {Eq("target", "t"), Re("db", "c|d|e")}) ==
        std::set<std::string>{"m/t/c", "m/t/d", "m/t/e"});
  CHECK(Set(store, {Eq("db", "e"), Eq("__name__", "m")}) == std::set<std::string>{"m/t/e"});
}

TEST_CASE("postings: the index narrows by non-empty equality and regex matchers, and settles !=") {
  promql::Postings p;
  p.Add(0, {{"__name__", "m"}, {"db", "x"}});
  p.Add(2, {{"__name__", "m"}, {"db", "y"}});
  p.Add(1, {{"__name__", "n"}, {"db", "x"}});
  p.Add(3, {{"__name__", "m"}});
  // db!="y" leaves out db="y" only: a series without db (3) matches it.
  std::vector<Matcher> m = {Eq("__name__", "m"), Ne("db", "y")};
  auto c = p.Select(m);
  REQUIRE(c);
  CHECK(c->ids == std::vector<promql::Postings::Id>{0, 3});
  CHECK(c->unchecked.empty());
  std::vector<Matcher> absent = {Eq("__name__", "m"), Ne("db", "z"), Ne("other", "v")};
  c = p.Select(absent);
  REQUIRE(c);
  CHECK(c->ids == std::vector<promql::Postings::Id>{0, 2, 3});
  CHECK(c->unchecked.empty());
  std::vector<Matcher> not_re = {Eq("__name__", "m"), Nre("db", "y")};
  c = p.Select(not_re);
  REQUIRE(c);
  CHECK(c->ids == std::vector<promql::Postings::Id>{0, 2, 3});
  REQUIRE(c->unchecked.size() == 1);
  CHECK(c->unchecked[0]->name() == "db");
  std::vector<Matcher> only_ne = {Ne("db", "y")};
  CHECK_FALSE(p.Select(only_ne));  // nothing narrows: every series is checked
  std::vector<Matcher> re = {Re("db", "x")};
  c = p.Select(re);
  REQUIRE(c);
  CHECK(c->ids == std::vector<promql::Postings::Id>{0, 1});
  CHECK(c->unchecked.empty());
  std::vector<Matcher> empty = {Eq("db", "")};
  CHECK_FALSE(p.Select(empty));  // matches series without db: no narrowing possible
  p.Remove(0, {{"__name__", "m"}, {"db", "x"}});
  c = p.Select(re);
  REQUIRE(c);
  CHECK(c->ids == std::vector<promql::Postings::Id>{1});
}

}  // namespace postings_test
