#include "postings.h"

#include <algorithm>

namespace runbook::promql {

void Postings::Add(Id id, const Labels& metric) {
  for (const auto& [n, v] : metric) {
    if (v.empty()) continue;
    auto& ids = index_[n][v];
    // Ids mostly grow; a reused id goes in its place.
    if (ids.empty() || ids.back() < id) {
      ids.push_back(id);
    } else {
      auto it = std::lower_bound(ids.begin(), ids.end(), id);
      if (it == ids.end() || *it != id) ids.insert(it, id);
    }
  }
}

void Postings::Remove(Id id, const Labels& metric) {
  for (const auto& [n, v] : metric) {
    auto name = index_.find(n);
    if (name == index_.end()) continue;
    auto value = name->second.find(v);
    if (value == name->second.end()) continue;
    auto& ids = value->second;
    auto it = std::lower_bound(ids.begin(), ids.end(), id);
    if (it != ids.end() && *it == id) ids.erase(it);
    if (ids.empty()) name->second.erase(value);
    if (name->second.empty()) index_.erase(name);
  }
}

std::optional<Postings::Candidates> Postings::Select(const std::vector<Matcher>& matchers) const {
  // Equality matchers give one list each; only without them are the values of a regex or
  // != matcher merged (a merge may be nearly every series of a name).
  Candidates out;
  std::vector<const std::vector<Id>*> lists;
  for (const auto& m : matchers) {
    if (m.op() != Matcher::Op::kEqual || m.value().empty()) {
      out.unchecked.push_back(&m);
      continue;
    }
    auto name = index_.find(m.name());
    if (name == index_.end()) return out;
    auto value = name->second.find(m.value());
    if (value == name->second.end()) return out;
    lists.push_back(&value->second);
  }
  std::vector<std::vector<Id>> merged;
  if (lists.empty()) {
    out.unchecked.clear();
    for (const auto& m : matchers) {
      if (m.Matches("")) {
        out.unchecked.push_back(&m);
        continue;
      }
      auto name = index_.find(m.name());
      if (name == index_.end()) return out;
      std::vector<Id> ids;
      for (const auto& [value, vids] : name->second) {
        if (m.Matches(value)) ids.insert(ids.end(), vids.begin(), vids.end());
      }
      std::sort(ids.begin(), ids.end());
      merged.push_back(std::move(ids));
    }
    for (const auto& ids : merged) lists.push_back(&ids);
  }
  if (lists.empty()) return std::nullopt;
  std::sort(lists.begin(), lists.end(), [](const auto* a, const auto* b) { return a->size() < b->size(); });
  out.ids = *lists.front();
  for (std::size_t i = 1; i < lists.size() && !out.ids.empty(); ++i) {
    std::vector<Id> next;
    std::set_intersection(out.ids.begin(), out.ids.end(), lists[i]->begin(), lists[i]->end(),
                          std::back_inserter(next));
    out.ids = std::move(next);
  }
  // `x!="v"` is every series but those with x="v": subtracting that list settles it.
  std::erase_if(out.unchecked, [&](const Matcher* m) {
    if (m->op() != Matcher::Op::kNotEqual || m->value().empty()) return false;
    auto name = index_.find(m->name());
    if (name == index_.end()) return true;
    auto value = name->second.find(m->value());
    if (value == name->second.end()) return true;
    std::vector<Id> rest;
    rest.reserve(out.ids.size());
    std::set_difference(out.ids.begin(), out.ids.end(), value->second.begin(), value->second.end(),
                        std::back_inserter(rest));
    out.ids = std::move(rest);
    return true;
  });
  return out;
}

std::size_t Postings::bytes() const {
  std::size_t total = 0;
  for (const auto& [n, values] : index_) {
    total += n.capacity() + sizeof(values);
    for (const auto& [v, ids] : values) total += v.capacity() + sizeof(ids) + ids.capacity() * sizeof(Id);
  }
  return total;
}

}  // namespace runbook::promql
