// promtool 2.42's `check rules` (cmd/promtool/main.go) and `test rules` (cmd/promtool/unittest.go).
#include "cli.h"

#include <glob.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "duration.h"
#include "runbook/rules.h"
#include "template.h"

namespace runbook::rules {

namespace {

// "embedded:GLOB" stands for the matching files of the built-in pack (the shell cannot expand it);
// a pattern matching nothing stays as given, so loading it reports the unknown name.
std::vector<std::string> ExpandEmbedded(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) {
    auto found = MatchEmbeddedRuleFiles(p);
    if (found.empty()) found.push_back(p);
    for (auto& f : found) out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

int CheckRulesCommand(const std::vector<std::string>& files, std::ostream& out, std::ostream& err) {
  bool has_errors = false;
  for (const auto& f : ExpandEmbedded(files)) {
    out << "Checking " << f << "\n";
    LoadResult r = LoadRuleFile(f);
    std::vector<std::string> errors = r.errors;
    has_errors |= !errors.empty();
    std::size_t n = 0;
    if (errors.empty()) {
      for (const auto& g : r.groups) n += g.rules.size();
      if (auto lint = DuplicateRulesLint(r.groups); !lint.empty()) errors.push_back("lint error " + lint);
    }
    if (!errors.empty()) {
      out.flush();
      err << "  FAILED:\n";
      for (const auto& e : errors) err << e << "\n";
      err.flush();
    } else {
      out << "  SUCCESS: " << n << " rules found\n";
    }
    out << "\n";
  }
  // As promtool 2.42 without --lint-fatal: lint findings are printed but do not fail.
  return has_errors ? 1 : 0;
}

namespace {

struct TestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string LabelsString(const Labels& l) {
  std::string s = "{";
  for (std::size_t i = 0; i < l.size(); ++i) {
    if (i) s += ", ";
    s += l[i].first + "=" + GoQuote(l[i].second);
  }
  return s + "}";
}

std::string IndentLines(const std::string& lines, const std::string& indent) {
  std::string out;
  std::size_t start = 0;
  bool first = true;
  while (true) {
    std::size_t nl = lines.find('\n', start);
    if (!first) out += indent;
    first = false;
    out += lines.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (nl == std::string::npos) break;
    out += '\n';
    start = nl + 1;
  }
  return out;
}

using LabelsAndAnnotations = std::vector<std::pair<Labels, Labels>>;

std::string AlertsString(const LabelsAndAnnotations& la) {
  if (la.empty()) return "[]";
  std::string s = "[";
  for (std::size_t i = 0; i < la.size(); ++i) {
    s += (i ? ",\n" : "\n") + std::to_string(i) + ":" +
         IndentLines("\nLabels:" + LabelsString(la[i].first) + "\nAnnotations:" + LabelsString(la[i].second),
                     "  ");
  }
  return s + "\n]";
}

std::string SamplesString(const std::vector<std::pair<Labels, double>>& s) {
  if (s.empty()) return "nil";
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += LabelsString(s[i].first) + " " + FormatGoFloatE(s[i].second);
  }
  return out;
}

// Strict decoding in the manner of yaml.v2's UnmarshalStrict: unknown fields are errors.
class Decoder {
 public:
  std::vector<std::string> errors;

  template <typename Fn>
  void Map(const YAML::Node& n, const char* type, std::initializer_list<const char*> known, Fn&& fn) {
    if (!n.IsDefined() || n.IsNull()) return;
    if (!n.IsMap()) {
      Error(n, "cannot unmarshal " + Tag(n) + " into " + type);
      return;
    }
    std::set<std::string> seen;
    for (const auto& kv : n) {
      std::string key = kv.first.Scalar();
      if (!seen.insert(key).second) {
        Error(kv.first, "key " + GoQuote(key) + " already set in map");
        continue;
      }
      if (std::find_if(known.begin(), known.end(), [&](const char* k) { return key == k; }) == known.end()) {
        Error(kv.first, "field " + key + " not found in type " + type);
        continue;
      }
      fn(key, kv.second);
    }
  }
  template <typename Fn>
  void Seq(const YAML::Node& n, const char* type, Fn&& fn) {
    if (!n.IsDefined() || n.IsNull()) return;
    if (!n.IsSequence()) {
      Error(n, "cannot unmarshal " + Tag(n) + " into " + type);
      return;
    }
    for (const auto& item : n) fn(item);
  }
  std::string Str(const YAML::Node& n) {
    if (n.IsNull()) return "";
    if (!n.IsScalar()) {
      Error(n, "cannot unmarshal " + Tag(n) + " into string");
      return "";
    }
    return n.Scalar();
  }
  TimestampMs Duration(const YAML::Node& n) {
    std::string s = Str(n);
    if (n.IsNull()) return 0;
    auto d = ParseDuration(s);
    if (!d)
      throw TestError(s.empty() ? "empty duration string" : "not a valid duration string: " + GoQuote(s));
    return *d;
  }
  double Float(const YAML::Node& n) {
    std::string s = Str(n);
    std::string l = s;
    std::transform(l.begin(), l.end(), l.begin(), ::tolower);
    if (l == ".inf" || l == "+.inf") return INFINITY;
    if (l == "-.inf") return -INFINITY;
    if (l == ".nan") return NAN;
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0') {
      Error(n, "cannot unmarshal !!str `" + s + "` into float64");
      return 0;
    }
    return v;
  }
  Labels StringMap(const YAML::Node& n, const char* type) {
    Labels out;
    Map(n, type, {}, [](const std::string&, const YAML::Node&) {});
    errors.erase(
        std::remove_if(errors.begin(), errors.end(),
                       [](const std::string& e) { return e.find("not found in type") != std::string::npos; }),
        errors.end());
    if (n.IsMap()) {
      for (const auto& kv : n) out.emplace_back(kv.first.Scalar(), Str(kv.second));
    }
    SortLabels(out);
    return out;
  }

 private:
  static std::string Tag(const YAML::Node& n) {
    return n.IsMap() ? "!!map" : n.IsSequence() ? "!!seq" : "!!str";
  }
  void Error(const YAML::Node& n, const std::string& msg) {
    errors.push_back("line " + std::to_string(n.Mark().line + 1) + ": " + msg);
  }
};

struct InputSeries {
  std::string series, values;
};
struct ExpAlert {
  Labels labels, annotations;
};
struct AlertTest {
  TimestampMs eval_time = 0;
  std::string alertname;
  std::vector<ExpAlert> exp_alerts;
};
struct ExpSample {
  std::string labels;
  double value = 0;
};
struct ExprTest {
  std::string expr;
  TimestampMs eval_time = 0;
  std::vector<ExpSample> exp_samples;
};
struct TestGroup {
  TimestampMs interval = 0;
  std::vector<InputSeries> input_series;
  std::vector<AlertTest> alert_tests;
  std::vector<ExprTest> expr_tests;
  Labels external_labels;
  std::string external_url;
  std::string name;
};
struct UnitTestFile {
  std::vector<std::string> rule_files;
  TimestampMs evaluation_interval = 0;
  std::vector<std::string> group_eval_order;
  std::vector<TestGroup> tests;
};

UnitTestFile DecodeUnitTestFile(const YAML::Node& root, Decoder& d) {
  UnitTestFile f;
  d.Map(root, "main.unitTestFile", {"rule_files", "evaluation_interval", "group_eval_order", "tests"},
        [&](const std::string& k, const YAML::Node& v) {
          if (k == "rule_files")
            d.Seq(v, "[]string", [&](const YAML::Node& s) { f.rule_files.push_back(d.Str(s)); });
          if (k == "evaluation_interval") f.evaluation_interval = d.Duration(v);
          if (k == "group_eval_order") {
            d.Seq(v, "[]string", [&](const YAML::Node& s) { f.group_eval_order.push_back(d.Str(s)); });
          }
          if (k == "tests") {
            d.Seq(v, "[]main.testGroup", [&](const YAML::Node& t) {
              TestGroup tg;
              d.Map(t, "main.testGroup",
                    {"interval", "input_series", "alert_rule_test", "promql_expr_test", "external_labels",
                     "external_url", "name"},
                    [&](const std::string& k, const YAML::Node& v) {
                      if (k == "interval") tg.interval = d.Duration(v);
                      if (k == "name") tg.name = d.Str(v);
                      if (k == "external_url") tg.external_url = d.Str(v);
                      if (k == "external_labels") tg.external_labels = d.StringMap(v, "labels.Labels");
                      if (k == "input_series") {
                        d.Seq(v, "[]main.series", [&](const YAML::Node& s) {
                          InputSeries is;
                          d.Map(s, "main.series", {"series", "values"},
                                [&](const std::string& k, const YAML::Node& v) {
                                  (k == "series" ? is.series : is.values) = d.Str(v);
                                });
                          tg.input_series.push_back(is);
                        });
                      }
                      if (k == "alert_rule_test") {
                        d.Seq(v, "[]main.alertTestCase", [&](const YAML::Node& a) {
                          AlertTest at;
                          d.Map(a, "main.alertTestCase", {"eval_time", "alertname", "exp_alerts"},
                                [&](const std::string& k, const YAML::Node& v) {
                                  if (k == "eval_time") at.eval_time = d.Duration(v);
                                  if (k == "alertname") at.alertname = d.Str(v);
                                  if (k == "exp_alerts") {
                                    d.Seq(v, "[]main.alert", [&](const YAML::Node& e) {
                                      ExpAlert ea;
                                      d.Map(e, "main.alert", {"exp_labels", "exp_annotations"},
                                            [&](const std::string& k, const YAML::Node& v) {
                                              (k == "exp_labels" ? ea.labels : ea.annotations) =
                                                  d.StringMap(v, "map[string]string");
                                            });
                                      at.exp_alerts.push_back(ea);
                                    });
                                  }
                                });
                          tg.alert_tests.push_back(at);
                        });
                      }
                      if (k == "promql_expr_test") {
                        d.Seq(v, "[]main.promqlTestCase", [&](const YAML::Node& p) {
                          ExprTest et;
                          d.Map(p, "main.promqlTestCase", {"expr", "eval_time", "exp_samples"},
                                [&](const std::string& k, const YAML::Node& v) {
                                  if (k == "expr") et.expr = d.Str(v);
                                  if (k == "eval_time") et.eval_time = d.Duration(v);
                                  if (k == "exp_samples") {
                                    d.Seq(v, "[]main.sample", [&](const YAML::Node& s) {
                                      ExpSample es;
                                      d.Map(s, "main.sample", {"labels", "value"},
                                            [&](const std::string& k, const YAML::Node& v) {
                                              if (k == "labels") es.labels = d.Str(v);
                                              if (k == "value") es.value = d.Float(v);
                                            });
                                      et.exp_samples.push_back(es);
                                    });
                                  }
                                });
                          tg.expr_tests.push_back(et);
                        });
                      }
                    });
              f.tests.push_back(tg);
            });
          }
        });
  return f;
}

// Go's filepath.Join(dir, name) for a relative name.
std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir == ".") return name;
  return dir + "/" + name;
}

class StorageAppender final : public Appender {
 public:
  explicit StorageAppender(promql::MemoryStorage& s) : storage_(s) {}
  void Append(const LabelSet& metric, TimestampMs t, double v) override { storage_.Append(metric, t, v); }

 private:
  promql::MemoryStorage& storage_;
};

std::vector<std::string> RunTestGroup(const TestGroup& tg, TimestampMs eval_interval,
                                      const std::map<std::string, int>& order,
                                      const std::vector<std::string>& files) {
  // Input series, loaded lazily step by step as promtool's lazy loader does.
  struct Point {
    TimestampMs t;
    Labels metric;
    double v;
  };
  std::vector<Point> points;
  for (const auto& is : tg.input_series) {
    auto parsed = promql::ParseSeriesDesc(is.series + " " + is.values);
    if (auto* e = std::get_if<promql::Error>(&parsed)) return {e->ToString()};
    auto desc = std::get<promql::SeriesDesc>(std::move(parsed));
    for (std::size_t i = 0; i < desc.values.size(); ++i) {
      if (desc.values[i]) points.push_back({TimestampMs(i) * tg.interval, desc.metric, *desc.values[i]});
    }
  }
  std::stable_sort(points.begin(), points.end(), [](const Point& a, const Point& b) { return a.t < b.t; });

  std::vector<GroupDef> defs;
  for (const auto& f : files) {
    LoadResult r = LoadRuleFile(f);
    if (!r.ok()) return r.errors;
    for (auto& g : r.groups) defs.push_back(std::move(g));
  }
  if (!order.empty()) {
    for (const auto& g : defs) {
      if (!order.count(g.name)) return {"group " + GoQuote(g.name) + " not found in group evaluation order"};
    }
  }
  std::stable_sort(defs.begin(), defs.end(), [&](const GroupDef& a, const GroupDef& b) {
    auto ia = order.find(a.name), ib = order.find(b.name);
    return (ia == order.end() ? 0 : ia->second) < (ib == order.end() ? 0 : ib->second);
  });

  promql::MemoryStorage storage;
  StorageAppender appender(storage);
  ManagerOptions opts;
  opts.queryable = &storage;
  opts.appender = &appender;
  opts.external_labels = tg.external_labels;
  opts.external_url = tg.external_url;
  opts.default_interval_ms = eval_interval;
  std::vector<std::unique_ptr<RuleGroup>> groups;
  for (auto& d : defs) {
    if (d.interval_ms == 0) d.interval_ms = tg.interval;
    groups.push_back(std::make_unique<RuleGroup>(d, &opts));
    groups.back()->SetRestored();
  }

  std::vector<std::string> errs;
  for (const auto& at : tg.alert_tests) {
    if (at.alertname.empty()) {
      std::string where = tg.name.empty() ? "" : " (in TestGroup " + tg.name + ")";
      return {"an item under alert_rule_test misses required attribute alertname at eval_time " +
              FormatDuration(at.eval_time) + where};
    }
  }
  std::map<TimestampMs, std::vector<const AlertTest*>> alert_tests;
  for (const auto& at : tg.alert_tests) alert_tests[at.eval_time].push_back(&at);
  TimestampMs maxt = 0;
  for (const auto& at : tg.alert_tests) maxt = std::max(maxt, at.eval_time);
  for (const auto& et : tg.expr_tests) maxt = std::max(maxt, et.eval_time);

  std::size_t next_point = 0;
  auto next_alert_test = alert_tests.begin();
  for (TimestampMs ts = 0; ts <= maxt; ts += eval_interval) {
    for (; next_point < points.size() && points[next_point].t <= ts; ++next_point) {
      storage.Append(points[next_point].metric, points[next_point].t, points[next_point].v);
    }
    std::vector<std::string> eval_errs;
    for (auto& g : groups) {
      g->Eval(ts);
      for (const auto& [rule, e] : g->LastErrors()) {
        eval_errs.push_back("    rule: " + rule + ", time: " + FormatGoDuration(ts) + ", err: " + e);
      }
    }
    if (!eval_errs.empty()) {
      errs.insert(errs.end(), eval_errs.begin(), eval_errs.end());
      return errs;
    }
    for (; next_alert_test != alert_tests.end() && next_alert_test->first >= ts &&
           next_alert_test->first < ts + eval_interval;
         ++next_alert_test) {
      for (const AlertTest* at : next_alert_test->second) {
        LabelsAndAnnotations got, exp;
        for (const auto& g : groups) {
          for (const auto& a : g->ActiveAlerts(at->alertname)) {
            if (a.state == AlertState::kFiring) got.emplace_back(a.labels, a.annotations);
          }
        }
        for (const auto& e : at->exp_alerts) {
          Labels l = e.labels;
          l.insert(l.begin(), {"alertname", at->alertname});
          l.erase(
              std::remove_if(l.begin() + 1, l.end(), [](const auto& p) { return p.first == "alertname"; }),
              l.end());
          SortLabels(l);
          exp.emplace_back(l, e.annotations);
        }
        std::sort(got.begin(), got.end());
        std::sort(exp.begin(), exp.end());
        if (got != exp) {
          std::string name = tg.name.empty() ? "" : "    name: " + tg.name + ",\n";
          errs.push_back(name + "    alertname: " + at->alertname +
                         ", time: " + FormatDuration(at->eval_time) +
                         ", \n        exp:" + IndentLines(AlertsString(exp), "            ") +
                         ", \n        got:" + IndentLines(AlertsString(got), "            "));
        }
      }
    }
  }
  // A test group without tests still loads its series and evaluates once at 0 above; the
  // expression tests see the samples loaded by the last step.
  for (const auto& et : tg.expr_tests) {
    std::string where = "    expr: " + GoQuote(et.expr) + ", time: " + FormatDuration(et.eval_time);
    auto parsed = promql::Parse(et.expr);
    if (!parsed.expr) {
      errs.push_back(where + ", err: " + parsed.error.ToString());
      continue;
    }
    promql::EvalOptions eo;
    eo.default_step_ms = eval_interval;
    auto res = promql::EvalInstant(*parsed.expr, storage, et.eval_time, eo);
    if (res.error) {
      errs.push_back(where + ", err: " + res.error->ToString());
      continue;
    }
    std::vector<std::pair<Labels, double>> got, exp;
    if (res.value.type == promql::ValueType::kVector) {
      for (auto& s : res.value.vector) {
        Labels metric = s.metric;
        SortLabels(metric);
        got.emplace_back(std::move(metric), s.v);
      }
    } else if (res.value.type == promql::ValueType::kScalar) {
      got.emplace_back(Labels{}, res.value.scalar);
    } else {
      errs.push_back(where + ", err: rule result is not a vector or scalar");
      continue;
    }
    bool bad = false;
    for (const auto& s : et.exp_samples) {
      Labels l;
      if (!s.labels.empty()) {
        auto m = promql::ParseMetric(s.labels);
        if (auto* e = std::get_if<promql::Error>(&m)) {
          errs.push_back(where + ", err: labels " + GoQuote(s.labels) + ": " + e->ToString());
          bad = true;
          break;
        }
        l = std::get<Labels>(m);
        SortLabels(l);
      }
      exp.emplace_back(l, s.value);
    }
    if (bad) continue;
    auto by_labels = [](const auto& a, const auto& b) { return a.first < b.first; };
    std::stable_sort(got.begin(), got.end(), by_labels);
    std::stable_sort(exp.begin(), exp.end(), by_labels);
    if (got != exp) {
      errs.push_back(where + ",\n        exp: " + SamplesString(exp) +
                     "\n        got: " + SamplesString(got));
    }
  }
  return errs;
}

std::vector<std::string> RuleUnitTest(const std::string& filename, std::ostream& err) {
  std::ifstream in(filename, std::ios::binary);
  if (!in) return {"open " + filename + ": no such file or directory"};
  std::stringstream ss;
  ss << in.rdbuf();
  YAML::Node root;
  try {
    root = YAML::Load(ss.str());
  } catch (const YAML::Exception& e) {
    return {"yaml: line " + std::to_string(e.mark.line + 1) + ": " + e.msg};
  }
  Decoder d;
  UnitTestFile f;
  try {
    f = DecodeUnitTestFile(root, d);
  } catch (const TestError& e) {
    return {e.what()};
  }
  if (!d.errors.empty()) {
    std::string msg = "yaml: unmarshal errors:";
    for (const auto& e : d.errors) msg += "\n  " + e;
    return {msg};
  }
  std::string dir = filename.find('/') == std::string::npos ? "." : filename.substr(0, filename.rfind('/'));
  std::vector<std::string> files;
  for (const auto& rf : f.rule_files) {
    if (rf.starts_with(kEmbeddedRulePrefix)) {
      auto found = ExpandEmbedded({rf});
      files.insert(files.end(), found.begin(), found.end());
      continue;
    }
    std::string pattern = (!rf.empty() && rf[0] != '/') ? JoinPath(dir, rf) : rf;
    glob_t g{};
    int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
    if (rc != 0 || g.gl_pathc == 0) err << "  WARNING: no file match pattern " << pattern << "\n";
    for (std::size_t i = 0; rc == 0 && i < g.gl_pathc; ++i) files.push_back(g.gl_pathv[i]);
    globfree(&g);
  }
  if (f.evaluation_interval == 0) f.evaluation_interval = 60'000;
  std::map<std::string, int> order;
  for (std::size_t i = 0; i < f.group_eval_order.size(); ++i) {
    if (!order.emplace(f.group_eval_order[i], int(i)).second) {
      return {"group name repeated in evaluation order: " + f.group_eval_order[i]};
    }
  }
  std::vector<std::string> errs;
  for (auto& t : f.tests) {
    if (t.interval == 0) t.interval = f.evaluation_interval;
    auto e = RunTestGroup(t, f.evaluation_interval, order, files);
    errs.insert(errs.end(), e.begin(), e.end());
  }
  return errs;
}

}  // namespace

int TestRulesCommand(const std::vector<std::string>& files, std::ostream& out, std::ostream& err) {
  bool failed = false;
  for (const auto& f : files) {
    out << "Unit Testing:  " << f << "\n";
    auto errs = RuleUnitTest(f, err);
    out.flush();
    if (!errs.empty()) {
      err << "  FAILED:\n";
      for (const auto& e : errs) {
        err << e << "\n";
        err.flush();
        out << "\n";
      }
      failed = true;
    } else {
      out << "  SUCCESS\n";
    }
    out << "\n";
    out.flush();
  }
  return failed ? 1 : 0;
}

int RunRulesCommand(int argc, char** argv) {
  if (argc < 3) return -1;
  std::string cmd = argv[1], what = argv[2];
  if ((cmd != "check" && cmd != "test") || what != "rules") return -1;
  std::vector<std::string> files(argv + 3, argv + argc);
  if (files.empty()) {
    std::cerr << "runbook_exporter " << cmd << " rules: at least one rule file is required\n";
    return 1;
  }
  return cmd == "check" ? CheckRulesCommand(files, std::cout, std::cerr)
                        : TestRulesCommand(files, std::cout, std::cerr);
}

}  // namespace runbook::rules
