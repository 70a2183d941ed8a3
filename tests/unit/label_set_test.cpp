// Shared label sets (include/runbook/labels.h) and the hash-keyed structures of the evaluator
// (rules/promql/eval.h): sharing must never leak a change from one holder to another, and equal
// hashes must never make different label sets equal.
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "promql/eval.h"
#include "runbook/labels.h"
#include "runbook/promql.h"

namespace label_set_test {

using namespace runbook;

namespace {

std::uint64_t SameHash(const Labels&, const promql::VectorMatching&) {
  return 42;  // every signature collides
}

promql::Vector Samples(std::initializer_list<Labels> sets) {
  promql::Vector v;
  double x = 0;
  for (const auto& l : sets) v.push_back({l, 0, ++x});
  return v;
}

}  // namespace

TEST_CASE("label set: copies share one set; a changed copy is a new set and the others keep theirs") {
  LabelSet a = Labels{{"__name__", "m"}, {"job", "x"}};
  LabelSet b = a;
  CHECK(b.SameAs(a));
  CHECK(b == a);
  Labels changed = b;
  changed.pop_back();
  changed.emplace_back("job", "y");
  b = changed;
  CHECK_FALSE(b.SameAs(a));
  CHECK(LabelValue(a, "job") == "x");
  CHECK(LabelValue(b, "job") == "y");
  CHECK(a != b);

  LabelSet c = Labels{{"__name__", "m"}, {"job", "x"}};  // built separately: equal, not shared
  CHECK_FALSE(c.SameAs(a));
  CHECK(c == a);
  CHECK(c.hash() == LabelsHash(Labels{{"__name__", "m"}, {"job", "x"}}));
  CHECK(LabelSet().empty());
  CHECK(LabelSet() == LabelSet(Labels{}));
}

TEST_CASE("label set: WithoutName drops __name__ once per set and leaves the original whole") {
  LabelSet a = Labels{{"__name__", "m"}, {"job", "x"}};
  LabelSet w = a.WithoutName();
  CHECK(w == Labels{{"job", "x"}});
  CHECK(a == Labels{{"__name__", "m"}, {"job", "x"}});
  CHECK(a.WithoutName().SameAs(w));  // cached with the set
  LabelSet unnamed = Labels{{"job", "x"}};
  CHECK(unnamed.WithoutName().SameAs(unnamed));
  CHECK(LabelSet(Labels{{"__name__", "m"}}).WithoutName().empty());
  // A label sorting before __name__ stays.
  LabelSet upper = Labels{{"A", "1"}, {"__name__", "m"}, {"b", "2"}};
  CHECK(upper.WithoutName() == Labels{{"A", "1"}, {"b", "2"}});
}

TEST_CASE("signature index: colliding hashes still match by labels, and only true duplicates are reported") {
  promql::VectorMatching on;
  on.on = true;
  on.labels = {"target"};
  auto v = Samples({{{"__name__", "a"}, {"target", "t1"}},
                    {{"__name__", "a"}, {"target", "t2"}},
                    {{"__name__", "a"}, {"target", "t3"}}});
  promql::SignatureIndex index(v, on, SameHash);
  REQUIRE(index.Find(Labels{{"__name__", "b"}, {"target", "t2"}}) != nullptr);
  CHECK(index.Find(Labels{{"__name__", "b"}, {"target", "t2"}})->v == 2);
  CHECK(index.Find(Labels{{"__name__", "b"}, {"target", "t3"}})->v == 3);
  CHECK(index.Find(Labels{{"__name__", "b"}, {"target", "t4"}}) == nullptr);
  CHECK_FALSE(index.Duplicate());

  promql::VectorMatching ignoring;  // all labels but __name__
  auto dup = Samples({{{"__name__", "a"}, {"target", "t1"}},
                      {{"__name__", "a"}, {"target", "t2"}},
                      {{"__name__", "b"}, {"target", "t2"}},
                      {{"__name__", "c"}, {"target", "t1"}}});
  promql::SignatureIndex with_dup(dup, ignoring, SameHash);
  auto found = with_dup.Duplicate();
  REQUIRE(found);
  // The first sample whose signature came before (the third), with the earlier one (the second).
  CHECK(found->first->v == 2);
  CHECK(found->second->v == 3);
  CHECK(with_dup.Find(Labels{{"target", "t1"}})->v == 1);
}

TEST_CASE("label set: threads sharing a set may ask for its hash and WithoutName at once") {
  LabelSet a = Labels{{"__name__", "m"}, {"job", "x"}};
  std::vector<LabelSet> got(4);
  std::vector<std::uint64_t> hashes(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      LabelSet mine = a;
      hashes[i] = mine.hash();
      got[i] = mine.WithoutName();
    });
  }
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(hashes[i] == LabelsHash(Labels{{"__name__", "m"}, {"job", "x"}}));
    CHECK(got[i] == Labels{{"job", "x"}});
  }
}

}  // namespace label_set_test
