// Runs Prometheus' PromQL evaluation tests (promql/testdata/*.test, the 2.42 format) against our
// engine, the way Prometheus' own promql/test.go does: `load`, `clear`, `eval instant`,
// `eval_fail instant`, `eval_ordered instant`; every eval is also checked in range mode and
// with @ modifiers added to its selectors.
//
// Usage: promql_conformance [--instant-only] EXPECTED_FAILURES FILE.test...
//        promql_conformance --parse-errors FILE
// --parse-errors checks that each expression of FILE (lines in pairs: expression, then the error
// promtool printed for it) fails to parse with exactly that text.
// --instant-only skips the range-mode and @ re-checks (for expectations captured from
// `promtool test rules`, which evaluates instant queries only).
// Prints PASS/FAIL per case and a summary line per file. Exits non-zero when a case fails that
// EXPECTED_FAILURES does not list, or when a listed case passes.

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "promql/ast.h"
#include "promql/functions.h"
#include "runbook/promql.h"

namespace pq = runbook::promql;
using runbook::Labels;
using runbook::TimestampMs;

namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// Splits off up to n-1 whitespace-separated words; the last element is the rest of the line.
std::vector<std::string> Words(const std::string& line, size_t n) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (out.size() + 1 < n) {
    size_t b = line.find_first_not_of(" \t", pos);
    if (b == std::string::npos) return out;
    size_t e = line.find_first_of(" \t", b);
    if (e == std::string::npos) {
      out.push_back(line.substr(b));
      return out;
    }
    out.push_back(line.substr(b, e - b));
    pos = e;
  }
  size_t b = line.find_first_not_of(" \t", pos);
  if (b != std::string::npos) out.push_back(Trim(line.substr(b)));
  return out;
}

bool AlmostEqual(double a, double b) {
  constexpr double kEpsilon = 0.000001;
  constexpr double kMinNormal = 2.2250738585072014e-308;
  if (std::isnan(a) && std::isnan(b)) return true;
  if (a == b) return true;
  double diff = std::fabs(a - b);
  if (a == 0 || b == 0 || diff < kMinNormal) return diff < kEpsilon * kMinNormal;
  return diff / (std::fabs(a) + std::fabs(b)) < kEpsilon;
}

std::string LabelsText(const Labels& l) {
  std::string out = "{";
  for (size_t i = 0; i < l.size(); ++i) out += (i ? ", " : "") + l[i].first + "=\"" + l[i].second + "\"";
  return out + "}";
}

std::optional<double> ParseNumber(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long long n = std::strtoll(s.c_str(), &end, 0);
  if (errno == 0 && end == s.c_str() + s.size()) return static_cast<double>(n);
  double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return d;
}

struct Expected {
  bool scalar = false;
  double value = 0;
  std::vector<std::pair<Labels, double>> samples;  // in order
};

// Compares one instant result with the expectation; returns an error text or "".
std::string Compare(const pq::Value& v, const Expected& exp, bool ordered) {
  if (v.type == pq::ValueType::kScalar) {
    if (!exp.scalar) return "got a scalar, expected a vector";
    if (!AlmostEqual(exp.value, v.scalar)) {
      return "expected scalar " + std::to_string(exp.value) + " but got " + std::to_string(v.scalar);
    }
    return "";
  }
  if (v.type != pq::ValueType::kVector)
    return "received a " + std::string(pq::ValueTypeName(v.type)) + " result";
  if (exp.scalar) return "got a vector, expected a scalar";
  std::set<size_t> seen;
  for (size_t pos = 0; pos < v.vector.size(); ++pos) {
    const auto& s = v.vector[pos];
    size_t idx = exp.samples.size();
    for (size_t i = 0; i < exp.samples.size(); ++i) {
      if (exp.samples[i].first == s.metric) idx = i;
    }
    if (idx == exp.samples.size()) return "unexpected metric " + LabelsText(s.metric) + " in result";
    if (ordered && idx != pos) {
      return "expected " + LabelsText(s.metric) + " at position " + std::to_string(idx + 1) + " but was at " +
             std::to_string(pos + 1);
    }
    if (!AlmostEqual(exp.samples[idx].second, s.v)) {
      std::ostringstream o;
      o << "expected " << exp.samples[idx].second << " for " << LabelsText(s.metric) << " but got " << s.v;
      return o.str();
    }
    seen.insert(idx);
  }
  for (size_t i = 0; i < exp.samples.size(); ++i) {
    if (!seen.count(i)) return "expected metric " + LabelsText(exp.samples[i].first) + " not found";
  }
  return "";
}

bool IsAtUnsafe(std::string_view name) {
  static const std::set<std::string_view> kUnsafe = {
      "days_in_month", "day_of_month", "day_of_week",    "day_of_year", "hour",     "minute",
      "month",         "year",         "predict_linear", "time",        "timestamp"};
  return kUnsafe.count(name) > 0;
}

// A copy of `e` with `@ ts` on every selector and subquery that has none, except inside
// subqueries that have one (Prometheus' atModifierTestCases). Sets *unsafe when the expression
// calls a function whose result depends on the evaluation time.
pq::ExprPtr WithAt(const pq::Expr& e, TimestampMs ts, bool frozen, bool* unsafe) {
  auto c = std::make_shared<pq::Expr>(e);
  if (e.kind == pq::ExprKind::kCall && IsAtUnsafe(e.func->name)) *unsafe = true;
  if (!frozen) {
    if ((e.kind == pq::ExprKind::kVectorSelector || e.kind == pq::ExprKind::kSubquery) &&
        e.at == pq::AtMode::kNone) {
      c->at = pq::AtMode::kTimestamp;
      c->at_ms = ts;
    }
  }
  bool child_frozen = frozen || (e.kind == pq::ExprKind::kSubquery);
  if (c->operand) c->operand = WithAt(*e.operand, ts, child_frozen, unsafe);
  if (c->lhs) c->lhs = WithAt(*e.lhs, ts, child_frozen, unsafe);
  if (c->rhs) c->rhs = WithAt(*e.rhs, ts, child_frozen, unsafe);
  if (c->param) c->param = WithAt(*e.param, ts, child_frozen, unsafe);
  for (auto& a : c->args) a = WithAt(*a, ts, child_frozen, unsafe);
  return c;
}

struct Case {
  int line = 0;
  std::string expr;
  TimestampMs at = 0;
  bool fail = false;
  bool ordered = false;
  Expected expected;
};

bool g_instant_only = false;

// Runs one eval command; returns "" on success or why it failed.
std::string RunCase(const Case& c, const pq::MemoryStorage& storage) {
  auto parsed = pq::Parse(c.expr);
  if (!parsed.expr) return "parse error: " + parsed.error.ToString();
  std::vector<std::pair<std::string, TimestampMs>> queries = {{c.expr, c.at}};
  bool unsafe = g_instant_only;
  auto with_at = WithAt(*parsed.expr, c.at, false, &unsafe);
  if (!unsafe) {
    std::string text = pq::Format(*with_at);
    std::vector<TimestampMs> times = {-10 * c.at, 0, c.at / 5, c.at, 10 * c.at};
    if (c.at == 0) times = {-1000, 0, 1000};
    for (TimestampMs t : times) queries.emplace_back(text, t);
  }
  for (const auto& [text, t] : queries) {
    auto p = pq::Parse(text);
    if (!p.expr) return "parse error in " + text + ": " + p.error.ToString();
    auto res = pq::EvalInstant(*p.expr, storage, t);
    if (res.error) {
      if (c.fail) continue;
      return "error evaluating " + text + " at " + std::to_string(t) + ": " + res.error->ToString();
    }
    if (c.fail) return "expected an error evaluating " + text + " but got none";
    std::string diff = Compare(res.value, c.expected, c.ordered);
    if (!diff.empty()) return text + " at " + std::to_string(t) + ": " + diff;
    if (g_instant_only) continue;

    // With an EvalCache, as rules evaluate: each step starts from the previous step's memo of
    // input series (series come and go between steps), and so does an instant query at t after
    // the range query.
    pq::EvalCache cache;
    pq::EvalOptions cached;
    cached.cache = &cache;
    auto range = pq::EvalRange(*p.expr, storage, t - 60000, t + 60000, 60000, cached);
    if (range.error) return "error evaluating " + text + " in range mode: " + range.error->ToString();
    auto again = pq::EvalInstant(*p.expr, storage, t, cached);
    if (again.error) return "error evaluating " + text + " with a cache: " + again.error->ToString();
    diff = Compare(again.value, c.expected, c.ordered);
    if (!diff.empty()) return text + " at " + std::to_string(t) + " (with a cache): " + diff;
    if (c.ordered) continue;
    pq::Value vec;
    vec.type = pq::ValueType::kVector;
    for (const auto& s : range.value.matrix) {
      for (const auto& pt : s.points) {
        if (pt.t == t) {
          vec.vector.push_back(pq::Sample{s.metric, pt.t, pt.v});
          break;
        }
      }
    }
    if (res.value.type == pq::ValueType::kScalar) {
      vec.type = pq::ValueType::kScalar;
      vec.scalar = vec.vector.empty() ? NAN : vec.vector[0].v;
    }
    diff = Compare(vec, c.expected, false);
    if (!diff.empty()) return text + " at " + std::to_string(t) + " (range mode): " + diff;
  }
  return "";
}

struct FileResult {
  int passed = 0;
  int failed = 0;
  int expected_failed = 0;
  int unexpected = 0;  // failures not listed + listed cases that passed
};

FileResult RunFile(const std::string& path, const std::string& name,
                   const std::map<std::string, std::string>& xfail, std::set<std::string>* listed_seen) {
  FileResult r;
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) {
    l = Trim(l);
    if (!l.empty() && l[0] == '#') l.clear();
    lines.push_back(l);
  }
  pq::MemoryStorage storage;
  auto report_error = [&](int line, const std::string& msg) {
    std::cout << "ERROR " << name << ":" << line << ": " << msg << "\n";
    ++r.failed;
    ++r.unexpected;
  };
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    if (l.empty()) continue;
    if (l == "clear") {
      storage.Clear();
      continue;
    }
    std::vector<std::string> words = Words(l, 4);
    if (words.size() == 2 && words[0] == "load") {
      auto gap = pq::ParseDuration(words[1]);
      if (!gap) {
        report_error(static_cast<int>(i + 1), "bad load interval");
        continue;
      }
      while (i + 1 < lines.size() && !lines[i + 1].empty()) {
        ++i;
        auto desc = pq::ParseSeriesDesc(lines[i]);
        if (auto* err = std::get_if<pq::Error>(&desc)) {
          report_error(static_cast<int>(i + 1), err->ToString());
          continue;
        }
        const auto& sd = std::get<pq::SeriesDesc>(desc);
        for (size_t k = 0; k < sd.values.size(); ++k) {
          if (sd.values[k]) storage.Append(sd.metric, static_cast<TimestampMs>(k) * *gap, *sd.values[k]);
        }
      }
      continue;
    }
    // eval[_fail|_ordered] instant at <time> <expr>
    if (words.size() == 4 && (words[0] == "eval" || words[0] == "eval_fail" || words[0] == "eval_ordered") &&
        words[1] == "instant" && words[2] == "at") {
      std::vector<std::string> rest = Words(words[3], 2);
      Case c;
      c.line = static_cast<int>(i + 1);
      c.fail = words[0] == "eval_fail";
      c.ordered = words[0] == "eval_ordered";
      auto at = pq::ParseDuration(rest[0]);
      if (!at || rest.size() != 2) {
        report_error(c.line, "bad eval time");
        continue;
      }
      c.at = *at;
      c.expr = rest[1];
      std::string setup_error;
      while (i + 1 < lines.size() && !lines[i + 1].empty()) {
        ++i;
        if (auto num = ParseNumber(lines[i])) {
          c.expected.scalar = true;
          c.expected.value = *num;
          continue;
        }
        auto desc = pq::ParseSeriesDesc(lines[i]);
        if (auto* err = std::get_if<pq::Error>(&desc)) {
          setup_error = "line " + std::to_string(i + 1) + ": " + err->ToString();
          continue;
        }
        const auto& sd = std::get<pq::SeriesDesc>(desc);
        if (sd.values.size() != 1 || !sd.values[0]) {
          setup_error = "line " + std::to_string(i + 1) + ": expected exactly one value";
          continue;
        }
        c.expected.samples.emplace_back(sd.metric, *sd.values[0]);
      }
      std::string id = name + ":" + std::to_string(c.line);
      std::string why = setup_error.empty() ? RunCase(c, storage) : setup_error;
      bool listed = xfail.count(id) > 0;
      if (listed) listed_seen->insert(id);
      if (why.empty() && !listed) {
        ++r.passed;
        std::cout << "PASS  " << id << "\n";
      } else if (why.empty()) {
        ++r.passed;
        ++r.unexpected;
        std::cout << "XPASS " << id << " (listed as expected failure: " << xfail.at(id) << ")\n";
      } else if (listed) {
        ++r.failed;
        ++r.expected_failed;
        std::cout << "XFAIL " << id << ": " << why << "\n";
      } else {
        ++r.failed;
        ++r.unexpected;
        std::cout << "FAIL  " << id << ": " << c.expr << "\n      " << why << "\n";
      }
      continue;
    }
    report_error(static_cast<int>(i + 1), "unknown command: " + l);
  }
  return r;
}

}  // namespace

int CheckParseErrors(const char* path) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "cannot read " << path << "\n";
    return 2;
  }
  int passed = 0, failed = 0;
  for (std::string expr, want; std::getline(in, expr) && std::getline(in, want);) {
    auto r = pq::Parse(expr);
    std::string got = r.expr ? "(parsed)" : r.error.ToString();
    if (got == want) {
      ++passed;
      continue;
    }
    ++failed;
    std::cout << "FAIL  " << expr << "\n      promtool: " << want << "\n      ours:     " << got << "\n";
  }
  std::cout << "== parse errors: " << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--parse-errors") return CheckParseErrors(argv[2]);
  if (argc > 1 && std::string(argv[1]) == "--instant-only") {
    g_instant_only = true;
    --argc;
    ++argv;
  }
  if (argc < 3) {
    std::cerr << "usage: promql_conformance [--instant-only] EXPECTED_FAILURES FILE.test...\n";
    return 2;
  }
  // Expected failures: `file.test:LINE reason`, # comments.
  std::map<std::string, std::string> xfail;
  {
    std::ifstream in(argv[1]);
    if (!in) {
      std::cerr << "cannot read " << argv[1] << "\n";
      return 2;
    }
    for (std::string l; std::getline(in, l);) {
      l = Trim(l);
      if (l.empty() || l[0] == '#') continue;
      size_t sp = l.find_first_of(" \t");
      std::string id = l.substr(0, sp);
      std::string reason = sp == std::string::npos ? "" : Trim(l.substr(sp));
      if (reason.empty()) {
        std::cerr << argv[1] << ": " << id << " has no reason\n";
        return 2;
      }
      xfail[id] = reason;
    }
  }
  std::set<std::string> listed_seen;
  int total_pass = 0, total_fail = 0, total_xfail = 0, unexpected = 0;
  for (int i = 2; i < argc; ++i) {
    std::string path = argv[i];
    std::string name = path.substr(path.find_last_of('/') + 1);
    FileResult r = RunFile(path, name, xfail, &listed_seen);
    std::cout << "== " << name << ": " << r.passed << " passed, " << r.failed << " failed ("
              << r.expected_failed << " expected), " << r.unexpected << " unexpected\n";
    total_pass += r.passed;
    total_fail += r.failed;
    total_xfail += r.expected_failed;
    unexpected += r.unexpected;
  }
  for (const auto& [id, reason] : xfail) {
    if (!listed_seen.count(id)) {
      std::cout << "STALE " << id << ": listed as expected failure but no such case\n";
      ++unexpected;
    }
  }
  std::cout << "== total: " << total_pass << " passed, " << total_fail << " failed (" << total_xfail
            << " expected), " << unexpected << " unexpected\n";
  return unexpected == 0 ? 0 : 1;
}
