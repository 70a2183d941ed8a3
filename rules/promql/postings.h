#pragma once
// Postings: an inverted index from label name and value to the ids of the series that carry
// them, so that selectors visit only candidate series instead of every stored one. Shared by
// SeriesStore (rules/series_store.cpp) and MemoryStorage (storage.cpp).
//
// Select() narrows by the matchers that cannot match an empty value (`x="v"`, `x=~"a|b"`,
// `x!=""`): a series lacking such a label cannot match. Matchers that match the empty value
// (`x=""`, `x!="v"`, `x!~"..."`) also match series without the label, so they never narrow;
// callers check those (Candidates::unchecked) on each candidate — except `x!="v"` with a
// non-empty v, settled by leaving out the series with x="v".
//
// Not synchronised: the owner's lock covers it.

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "runbook/promql.h"

namespace runbook::promql {

class Postings {
 public:
  using Id = std::uint32_t;

  void Add(Id id, const Labels& metric);
  void Remove(Id id, const Labels& metric);
  struct Candidates {
    std::vector<Id> ids;                    // ascending
    std::vector<const Matcher*> unchecked;  // the matchers the index did not already guarantee
  };
  // The series that may match, or nullopt when no matcher narrows (every series may match).
  std::optional<Candidates> Select(const std::vector<Matcher>& matchers) const;
  std::size_t bytes() const;

 private:
  // label name → label value → ascending ids
  std::unordered_map<std::string, std::unordered_map<std::string, std::vector<Id>>> index_;
};

}  // namespace runbook::promql
