#include "notify/payload.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>

namespace runbook {

std::string AlertFingerprint(const Labels& labels) {
  std::uint64_t h = 14695981039346656037ULL;
  auto add = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    h ^= 0xff;
    h *= 1099511628211ULL;
  };
  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  for (const auto& [n, v] : sorted) {
    add(n);
    add(v);
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string LabelMatcher::String() const {
  static const char* kOps[] = {"=", "!=", "=~", "!~"};
  return name + kOps[static_cast<int>(op)] + GoQuote(value);
}

std::optional<LabelMatcher> ParseLabelMatcher(std::string_view text, std::string& error) {
  auto is_name = [](char c, bool first) {
    return c == '_' || std::isalpha(static_cast<unsigned char>(c)) ||
           (!first && std::isdigit(static_cast<unsigned char>(c)));
  };
  std::size_t i = 0;
  while (i < text.size() && text[i] == ' ') ++i;
  std::size_t start = i;
  while (i < text.size() && is_name(text[i], i == start)) ++i;
  LabelMatcher m;
  m.name = std::string(text.substr(start, i - start));
  while (i < text.size() && text[i] == ' ') ++i;
  auto rest = text.substr(i);
  if (m.name.empty()) {
    error = "expected a label name first, like severity=\"critical\"";
    return std::nullopt;
  }
  if (rest.starts_with("=~")) {
    m.op = LabelMatcher::Op::kRe;
    i += 2;
  } else if (rest.starts_with("!~")) {
    m.op = LabelMatcher::Op::kNre;
    i += 2;
  } else if (rest.starts_with("!=")) {
    m.op = LabelMatcher::Op::kNe;
    i += 2;
  } else if (rest.starts_with("=")) {
    m.op = LabelMatcher::Op::kEq;
    i += 1;
  } else {
    error = "expected one of = != =~ !~ after the label name";
    return std::nullopt;
  }
  while (i < text.size() && text[i] == ' ') ++i;
  auto value = text.substr(i);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    std::string v;
    for (std::size_t k = 1; k + 1 < value.size(); ++k) {
      if (value[k] == '\\' && k + 2 < value.size()) {
        char e = value[++k];
        v += e == 'n' ? '\n' : e == 't' ? '\t' : e;
      } else {
        v += value[k];
      }
    }
    m.value = v;
  } else {
    m.value = std::string(value);
  }
  if (m.op == LabelMatcher::Op::kRe || m.op == LabelMatcher::Op::kNre) {
    re2::RE2 re("^(?:" + m.value + ")$", re2::RE2::Quiet);
    if (!re.ok()) {
      error = "invalid regular expression: " + re.error();
      return std::nullopt;
    }
  }
  return m;
}

namespace notify {

namespace {

std::string FormatTime(TimestampMs t, bool trim) {
  std::time_t secs = static_cast<std::time_t>(t >= 0 ? t / 1000 : (t - 999) / 1000);
  int ms = static_cast<int>(t - static_cast<TimestampMs>(secs) * 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03d", ms);
  std::string f = frac;
  if (trim) {
    while (f.size() > 1 && f.back() == '0') f.pop_back();
    if (f == ".") f.clear();
  }
  return out + f + "Z";
}

nlohmann::ordered_json LabelsJson(const Labels& labels) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  for (const auto& [n, v] : sorted) j[n] = v;
  return j;
}

std::string Dump(const nlohmann::ordered_json& j) {
  return GoJsonEscapeHtml(j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

Labels Intersect(const std::vector<const Labels*>& sets) {
  if (sets.empty()) return {};
  Labels out = *sets.front();
  for (std::size_t i = 1; i < sets.size(); ++i) {
    Labels keep;
    for (const auto& p : out)
      if (std::find(sets[i]->begin(), sets[i]->end(), p) != sets[i]->end()) keep.push_back(p);
    out = std::move(keep);
  }
  return out;
}

}  // namespace

std::string FormatTimeMillis(TimestampMs t) {
  return FormatTime(t, false);
}
std::string FormatTimeNano(TimestampMs t) {
  return FormatTime(t, true);
}

std::string LabelSetString(const Labels& labels) {
  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  std::string out = "{";
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i) out += ", ";
    out += sorted[i].first + "=" + GoQuote(sorted[i].second);
  }
  return out + "}";
}

std::string QuoteMeta(std::string_view s) {
  static const std::string_view kSpecial = "\\.+*?()|[]{}^$";
  std::string out;
  for (char c : s) {
    if (kSpecial.find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

bool AlertBefore(const Labels& a, const Labels& b) {
  for (std::string_view key : {"job", "instance"}) {
    auto ia = std::find_if(a.begin(), a.end(), [&](const auto& p) { return p.first == key; });
    auto ib = std::find_if(b.begin(), b.end(), [&](const auto& p) { return p.first == key; });
    bool ha = ia != a.end(), hb = ib != b.end();
    if (!ha && !hb) continue;
    if (!ha) return false;
    if (!hb) return true;
    if (ia->second != ib->second) return ia->second < ib->second;
  }
  // model.LabelSet.Before: fewer labels first, then by the merged sorted names.
  if (a.size() != b.size()) return a.size() < b.size();
  std::map<std::string_view, std::string_view> ma, mb;
  for (const auto& [n, v] : a) ma[n] = v;
  for (const auto& [n, v] : b) mb[n] = v;
  std::set<std::string_view> names;
  for (const auto& [n, v] : ma) names.insert(n);
  for (const auto& [n, v] : mb) names.insert(n);
  for (auto n : names) {
    auto x = ma.find(n), y = mb.find(n);
    if (x == ma.end()) return true;
    if (y == mb.end()) return false;
    if (x->second != y->second) return x->second < y->second;
  }
  return false;
}

CompiledMatcher::CompiledMatcher(LabelMatcher m) : m_(std::move(m)) {
  if (m_.op == LabelMatcher::Op::kRe || m_.op == LabelMatcher::Op::kNre)
    re_ = std::make_shared<re2::RE2>("^(?:" + m_.value + ")$", re2::RE2::Quiet);
}

bool CompiledMatcher::Matches(const Labels& labels) const {
  std::string_view v = LabelValue(labels, m_.name);
  switch (m_.op) {
    case LabelMatcher::Op::kEq: return v == m_.value;
    case LabelMatcher::Op::kNe: return v != m_.value;
    case LabelMatcher::Op::kRe: return re_->ok() && re2::RE2::FullMatch(v, *re_);
    case LabelMatcher::Op::kNre: return !(re_->ok() && re2::RE2::FullMatch(v, *re_));
  }
  return false;
}

bool MatchAll(const std::vector<CompiledMatcher>& ms, const Labels& labels) {
  return std::all_of(ms.begin(), ms.end(), [&](const auto& m) { return m.Matches(labels); });
}

std::string MatchersString(const std::vector<LabelMatcher>& ms) {
  std::string out = "{";
  for (std::size_t i = 0; i < ms.size(); ++i) out += (i ? "," : "") + ms[i].String();
  return out + "}";
}

std::string GoJsonEscapeHtml(std::string json) {
  std::string out;
  out.reserve(json.size());
  for (char c : json) {
    if (c == '<')
      out += "\\u003c";
    else if (c == '>')
      out += "\\u003e";
    else if (c == '&')
      out += "\\u0026";
    else
      out += c;
  }
  return out;
}

std::string AlertmanagerBody(const std::vector<Alert>& alerts) {
  nlohmann::ordered_json arr = nlohmann::ordered_json::array();
  for (const auto& a : alerts) {
    nlohmann::ordered_json j;
    if (!a.annotations.empty()) j["annotations"] = LabelsJson(a.annotations);
    j["endsAt"] = FormatTimeMillis(a.ends_at);
    j["startsAt"] = FormatTimeMillis(a.starts_at);
    if (!a.generator_url.empty()) j["generatorURL"] = a.generator_url;
    j["labels"] = LabelsJson(a.labels);
    arr.push_back(std::move(j));
  }
  return Dump(arr);
}

std::string WebhookBody(WebhookMessage msg) {
  std::stable_sort(msg.alerts.begin(), msg.alerts.end(),
                   [](const Alert& a, const Alert& b) { return AlertBefore(a.labels, b.labels); });
  int truncated = 0;
  if (msg.max_alerts > 0 && msg.alerts.size() > static_cast<std::size_t>(msg.max_alerts)) {
    truncated = static_cast<int>(msg.alerts.size()) - msg.max_alerts;
    msg.alerts.resize(msg.max_alerts);
  }
  bool any_firing = false;
  nlohmann::ordered_json alerts = nlohmann::ordered_json::array();
  std::vector<const Labels*> label_sets, annotation_sets;
  for (auto& a : msg.alerts) {
    Labels labels = a.labels, annotations = a.annotations;
    std::sort(labels.begin(), labels.end());
    std::sort(annotations.begin(), annotations.end());
    a.labels = std::move(labels);
    a.annotations = std::move(annotations);
    bool resolved = a.ends_at != 0 && a.ends_at <= msg.now;
    any_firing |= !resolved;
    nlohmann::ordered_json j;
    j["status"] = resolved ? "resolved" : "firing";
    j["labels"] = LabelsJson(a.labels);
    j["annotations"] = LabelsJson(a.annotations);
    j["startsAt"] = FormatTimeNano(a.starts_at);
    j["endsAt"] = resolved ? FormatTimeNano(a.ends_at) : kZeroTime;
    j["generatorURL"] = a.generator_url;
    j["fingerprint"] = AlertFingerprint(a.labels);
    alerts.push_back(std::move(j));
    label_sets.push_back(&a.labels);
    annotation_sets.push_back(&a.annotations);
  }
  nlohmann::ordered_json j;
  j["receiver"] = QuoteMeta(msg.receiver);
  j["status"] = any_firing ? "firing" : "resolved";
  j["alerts"] = std::move(alerts);
  j["groupLabels"] = LabelsJson(msg.group_labels);
  j["commonLabels"] = LabelsJson(Intersect(label_sets));
  j["commonAnnotations"] = LabelsJson(Intersect(annotation_sets));
  j["externalURL"] = msg.external_url;
  j["version"] = "4";
  j["groupKey"] = msg.group_key;
  j["truncatedAlerts"] = truncated;
  return Dump(j) + "\n";
}

}  // namespace notify
}  // namespace runbook
