// Rule files in Prometheus' format, validated like Prometheus 2.42's rulefmt.Parse (yaml.v3
// with KnownFields) so that `check rules` gives promtool's verdicts.
#include <fnmatch.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "duration.h"
#include "runbook/rules.h"
#include "template.h"

namespace runbook::rules {

bool GroupDef::SameDefinition(const GroupDef& o) const {
  if (file != o.file || name != o.name || interval_ms != o.interval_ms || limit != o.limit ||
      rules.size() != o.rules.size()) {
    return false;
  }
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (!rules[i].SameDefinition(o.rules[i])) return false;
  }
  return true;
}

namespace {

bool ValidLabelName(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool ValidMetricName(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool ValidUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (n < 0 || i + n >= s.size() + (n == 0 ? 1 : 0)) {
      if (n != 0) return false;
    }
    for (int k = 1; k <= n; ++k) {
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    i += n + 1;
  }
  return true;
}

struct Pos {
  int line = 0, column = 0;
};
Pos PosOf(const YAML::Node& n) {
  if (!n.IsDefined()) return {};
  return {n.Mark().line + 1, n.Mark().column + 1};
}

std::string YamlTag(const YAML::Node& n) {
  if (n.IsMap()) return "!!map";
  if (n.IsSequence()) return "!!seq";
  if (n.IsNull()) return "!!null";
  return "!!str";
}

class Loader {
 public:
  explicit Loader(const std::string& file) : file_(file) {}

  LoadResult Run(std::string_view content) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(content));
    } catch (const YAML::Exception& e) {
      Error("yaml: line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
      return std::move(result_);
    }
    if (root.IsNull() || !root.IsDefined()) return std::move(result_);
    if (!root.IsMap()) {
      Unmarshal(root, "cannot unmarshal " + YamlTag(root) + " into rulefmt.RuleGroups");
      return Finish();
    }
    YAML::Node groups;
    CheckKeys(root, {"groups"}, "rulefmt.RuleGroups",
              [&](const std::string&, const YAML::Node& v) { groups = v; });
    if (groups.IsDefined() && !groups.IsNull()) {
      if (!groups.IsSequence()) {
        Unmarshal(groups, "cannot unmarshal " + YamlTag(groups) + " into []rulefmt.RuleGroup");
      } else {
        for (const auto& g : groups) LoadGroup(g);
      }
    }
    return Finish();
  }

 private:
  LoadResult Finish() {
    if (!unmarshal_errors_.empty()) {
      std::string msg = "yaml: unmarshal errors:";
      for (const auto& e : unmarshal_errors_) msg += "\n  " + e;
      result_.errors.insert(result_.errors.begin(), file_ + ": " + msg);
      result_.groups.clear();
      return std::move(result_);
    }
    if (!decode_errors_.empty()) {
      result_.errors.insert(result_.errors.begin(), decode_errors_.begin(), decode_errors_.end());
      result_.groups.clear();
      return std::move(result_);
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < result_.groups.size(); ++i) {
      const auto& g = result_.groups[i];
      Pos p = group_pos_[i];
      if (g.name.empty()) Error(Loc(p) + ": Groupname must not be empty");
      if (!names.insert(g.name).second)
        Error(Loc(p) + ": groupname: \"" + g.name + "\" is repeated in the same file");
    }
    result_.errors.insert(result_.errors.end(), rule_errors_.begin(), rule_errors_.end());
    if (!result_.errors.empty()) result_.groups.clear();
    return std::move(result_);
  }

  static std::string Loc(Pos p) { return std::to_string(p.line) + ":" + std::to_string(p.column); }
  void Error(const std::string& msg) { result_.errors.push_back(file_ + ": " + msg); }
  void Unmarshal(const YAML::Node& n, const std::string& msg) {
    unmarshal_errors_.push_back("line " + std::to_string(PosOf(n).line) + ": " + msg);
  }

  template <typename Fn>
  void CheckKeys(const YAML::Node& map, std::initializer_list<const char*> known, const char* type, Fn&& fn) {
    std::set<std::string> seen;
    for (const auto& kv : map) {
      std::string key = kv.first.Scalar();
      if (!seen.insert(key).second) {
        Unmarshal(kv.first, "mapping key \"" + key + "\" already defined");
        continue;
      }
      if (std::find_if(known.begin(), known.end(), [&](const char* k) { return key == k; }) == known.end()) {
        Unmarshal(kv.first, "field " + key + " not found in type " + type);
        continue;
      }
      fn(key, kv.second);
    }
  }

  std::string Str(const YAML::Node& n) {
    if (n.IsNull()) return "";
    if (!n.IsScalar()) {
      Unmarshal(n, "cannot unmarshal " + YamlTag(n) + " into string");
      return "";
    }
    return n.Scalar();
  }

  TimestampMs Duration(const YAML::Node& n) {
    if (n.IsNull()) return 0;
    if (!n.IsScalar()) {
      Unmarshal(n, "cannot unmarshal " + YamlTag(n) + " into string");
      return 0;
    }
    auto d = ParseDuration(n.Scalar());
    if (!d) {
      decode_errors_.push_back(file_ + ": " +
                               (n.Scalar().empty() ? std::string("empty duration string")
                                                   : "not a valid duration string: " + GoQuote(n.Scalar())));
      return 0;
    }
    return *d;
  }

  Labels StringMap(const YAML::Node& n) {
    Labels out;
    if (n.IsNull()) return out;
    if (!n.IsMap()) {
      Unmarshal(n, "cannot unmarshal " + YamlTag(n) + " into map[string]string");
      return out;
    }
    std::set<std::string> seen;
    for (const auto& kv : n) {
      std::string key = kv.first.Scalar();
      if (!seen.insert(key).second) {
        Unmarshal(kv.first, "mapping key \"" + key + "\" already defined");
        continue;
      }
      out.emplace_back(key, Str(kv.second));
    }
    SortLabels(out);
    return out;
  }

  void LoadGroup(const YAML::Node& g) {
    GroupDef def;
    def.file = file_;
    group_pos_.push_back(PosOf(g));
    if (!g.IsMap()) {
      if (!g.IsNull()) Unmarshal(g, "cannot unmarshal " + YamlTag(g) + " into rulefmt.RuleGroup");
      result_.groups.push_back(std::move(def));
      return;
    }
    YAML::Node rules;
    CheckKeys(g, {"name", "interval", "limit", "rules"}, "rulefmt.RuleGroup",
              [&](const std::string& k, const YAML::Node& v) {
                if (k == "name") def.name = Str(v);
                if (k == "interval") def.interval_ms = Duration(v);
                if (k == "rules") rules = v;
                if (k == "limit" && !v.IsNull()) {
                  try {
                    def.limit = v.as<int>();
                  } catch (const YAML::Exception&) {
                    Unmarshal(v, "cannot unmarshal " + YamlTag(v) + " `" + (v.IsScalar() ? v.Scalar() : "") +
                                     "` into int");
                  }
                }
              });
    result_.groups.push_back(std::move(def));
    std::size_t gi = result_.groups.size() - 1;
    if (rules.IsDefined() && !rules.IsNull()) {
      if (!rules.IsSequence()) {
        Unmarshal(rules, "cannot unmarshal " + YamlTag(rules) + " into []rulefmt.RuleNode");
      } else {
        int index = 0;
        for (const auto& r : rules) LoadRule(gi, r, ++index);
      }
    }
  }

  void LoadRule(std::size_t gi, const YAML::Node& r, int index) {
    RuleDef def;
    def.line = PosOf(r).line;
    if (!r.IsMap()) {
      Unmarshal(r, "cannot unmarshal " + YamlTag(r) + " into rulefmt.RuleNode");
      return;
    }
    YAML::Node record_node, alert_node, expr_node;
    std::string record, alert;
    bool has_annotations = false;
    CheckKeys(r, {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"},
              "rulefmt.RuleNode", [&](const std::string& k, const YAML::Node& v) {
                if (k == "record") record = Str(record_node = v);
                if (k == "alert") alert = Str(alert_node = v);
                if (k == "expr") def.expr_text = Str(expr_node = v);
                if (k == "for") def.for_ms = Duration(v);
                if (k == "keep_firing_for") def.keep_firing_for_ms = Duration(v);
                if (k == "labels") def.labels = StringMap(v);
                if (k == "annotations") {
                  def.annotations = StringMap(v);
                  has_annotations = !def.annotations.empty();
                }
              });
    const std::string& group = result_.groups[gi].name;
    std::string rule_name = !alert.empty() ? alert : record;
    auto err = [&](std::optional<Pos> node, std::optional<Pos> alt, const std::string& msg) {
      std::string prefix;
      if (node) prefix += Loc(*node) + ": ";
      if (alt && alt->line != 0) prefix += Loc(*alt) + ": ";
      rule_errors_.push_back(file_ + ": " + prefix + "group " + GoQuote(group) + ", rule " +
                             std::to_string(index) + ", " + GoQuote(rule_name) + ": " + msg);
    };
    if (!record.empty() && !alert.empty()) {
      err(PosOf(record_node), PosOf(alert_node), "only one of 'record' and 'alert' must be set");
    }
    if (record.empty() && alert.empty()) {
      err(PosOf(record_node), PosOf(alert_node), "one of 'record' or 'alert' must be set");
    }
    if (def.expr_text.empty()) {
      err(PosOf(expr_node), std::nullopt, "field 'expr' must be set in rule");
    } else {
      auto parsed = promql::Parse(def.expr_text);
      if (!parsed.expr) {
        err(PosOf(expr_node), std::nullopt, "could not parse expression: " + parsed.error.ToString());
      }
      def.expr = parsed.expr;
    }
    if (!record.empty()) {
      if (has_annotations)
        err(PosOf(record_node), std::nullopt, "invalid field 'annotations' in recording rule");
      if (def.for_ms != 0) err(PosOf(record_node), std::nullopt, "invalid field 'for' in recording rule");
      if (def.keep_firing_for_ms != 0) {
        err(PosOf(record_node), std::nullopt, "invalid field 'keep_firing_for' in recording rule");
      }
      if (!ValidMetricName(record))
        err(PosOf(record_node), std::nullopt, "invalid recording rule name: " + record);
    }
    for (const auto& [k, v] : def.labels) {
      if (!ValidLabelName(k) || k == "__name__") err(std::nullopt, std::nullopt, "invalid label name: " + k);
      if (!ValidUtf8(v)) err(std::nullopt, std::nullopt, "invalid label value: " + v);
    }
    for (const auto& [k, v] : def.annotations) {
      if (!ValidLabelName(k)) err(std::nullopt, std::nullopt, "invalid annotation name: " + k);
    }
    if (!alert.empty()) {
      for (const auto& [k, v] : def.labels) {
        if (auto e = CheckAlertTemplate(alert, v))
          err(std::nullopt, std::nullopt, "label " + GoQuote(k) + ": " + *e);
      }
      for (const auto& [k, v] : def.annotations) {
        if (auto e = CheckAlertTemplate(alert, v)) {
          err(std::nullopt, std::nullopt, "annotation " + GoQuote(k) + ": " + *e);
        }
      }
    }
    def.kind = alert.empty() ? RuleDef::Kind::kRecording : RuleDef::Kind::kAlerting;
    def.name = rule_name;
    result_.groups[gi].rules.push_back(std::move(def));
  }

  std::string file_;
  LoadResult result_;
  std::vector<Pos> group_pos_;
  std::vector<std::string> unmarshal_errors_, decode_errors_, rule_errors_;
};

}  // namespace

LoadResult ParseRuleFile(std::string_view content, const std::string& file) {
  return Loader(file).Run(content);
}

std::vector<std::string> MatchEmbeddedRuleFiles(std::string_view pattern) {
  std::vector<std::string> out;
  if (!pattern.starts_with(kEmbeddedRulePrefix)) return out;
  const std::string glob(pattern.substr(kEmbeddedRulePrefix.size()));
  for (const auto& f : EmbeddedRuleFiles())
    if (fnmatch(glob.c_str(), std::string(f.name).c_str(), 0) == 0)
      out.push_back(std::string(kEmbeddedRulePrefix) + std::string(f.name));
  std::sort(out.begin(), out.end());
  return out;
}

std::string EmbeddedRuleFileNames() {
  std::string names;
  for (const auto& f : EmbeddedRuleFiles()) names += (names.empty() ? "" : ", ") + std::string(f.name);
  return names;
}

LoadResult LoadRuleFile(const std::string& path) {
  if (path.starts_with(kEmbeddedRulePrefix)) {
    const auto name = std::string_view(path).substr(kEmbeddedRulePrefix.size());
    for (const auto& f : EmbeddedRuleFiles())
      if (f.name == name) return ParseRuleFile(f.content, path);
    LoadResult r;
    r.errors.push_back(path + ": no embedded rule file named \"" + std::string(name) +
                       "\" (embedded: " + EmbeddedRuleFileNames() + ")");
    return r;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult r;
    r.errors.push_back(path + ": open " + path + ": no such file or directory");
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseRuleFile(ss.str(), path);
}

std::string DuplicateRulesLint(const std::vector<GroupDef>& groups) {
  std::vector<std::pair<std::string, Labels>> rules;
  for (const auto& g : groups) {
    for (const auto& r : g.rules) rules.emplace_back(r.name, r.labels);
  }
  std::sort(rules.begin(), rules.end());
  std::vector<std::pair<std::string, Labels>> dups;
  for (std::size_t i = 1; i < rules.size(); ++i) {
    if (rules[i] == rules[i - 1] && (dups.empty() || dups.back() != rules[i])) dups.push_back(rules[i]);
  }
  if (dups.empty()) return "";
  std::string out = std::to_string(dups.size()) + " duplicate rule(s) found.\n";
  for (const auto& [name, labels] : dups) {
    out += "Metric: " + name + "\nLabel(s):\n";
    for (const auto& [k, v] : labels) out += "\t" + k + ": " + v + "\n";
  }
  out += "Might cause inconsistency while recording expressions";
  return out;
}

}  // namespace runbook::rules
