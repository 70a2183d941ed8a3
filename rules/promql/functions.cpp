// Every PromQL function: implementations, then the table kFunctions (at the end of this file)
// that registers each one by name with its argument types.

#include "promql/functions.h"

#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <map>
#include <numbers>

#include "promql/eval.h"

namespace runbook::promql {

std::string FormatFloatShortest(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[512];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, res.ptr);
}

namespace {

// Go's math.Min/math.Max: NaN wins.
double GoMin(double a, double b) {
  return (std::isnan(a) || std::isnan(b)) ? NAN : std::min(a, b);
}
double GoMax(double a, double b) {
  return (std::isnan(a) || std::isnan(b)) ? NAN : std::max(a, b);
}

void KahanInc(double inc, double& sum, double& c) {
  double t = sum + inc;
  if (std::fabs(sum) >= std::fabs(inc)) {
    c += (sum - t) + inc;
  } else {
    c += (inc - t) + sum;
  }
  sum = t;
}

bool ValidLabelName(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9'))) {
      return false;
    }
  }
  return true;
}

// ---- range-vector functions, one series at a time ----

std::optional<double> ExtrapolatedRate(const FunctionCall& c, bool counter, bool rate) {
  auto pts = c.points;
  if (pts.size() < 2) return std::nullopt;
  double result = pts.back().v - pts.front().v;
  if (counter) {
    double last = 0;
    for (const auto& p : pts) {
      if (p.v < last) result += last;
      last = p.v;
    }
  }
  double to_start = static_cast<double>(pts.front().t - c.range_start) / 1000;
  double to_end = static_cast<double>(c.range_end - pts.back().t) / 1000;
  double sampled = static_cast<double>(pts.back().t - pts.front().t) / 1000;
  double avg_step = sampled / static_cast<double>(pts.size() - 1);
  if (counter && result > 0 && pts.front().v >= 0) {
    double to_zero = sampled * (pts.front().v / result);
    if (to_zero < to_start) to_start = to_zero;
  }
  double threshold = avg_step * 1.1;
  double interval = sampled;
  interval += to_start < threshold ? to_start : avg_step / 2;
  interval += to_end < threshold ? to_end : avg_step / 2;
  // One factor, divided by the range first, as Prometheus 2.42 rounds: rate(x[5m]) over an
  // increase of 4500 is 15.000000000000002 there, not 15.
  double factor = interval / sampled;
  if (rate) factor /= static_cast<double>(c.range_ms) / 1000;
  return result * factor;
}

std::optional<double> Rate(const FunctionCall& c) {
  return ExtrapolatedRate(c, true, true);
}
std::optional<double> Increase(const FunctionCall& c) {
  return ExtrapolatedRate(c, true, false);
}
std::optional<double> Delta(const FunctionCall& c) {
  return ExtrapolatedRate(c, false, false);
}

std::optional<double> InstantValue(const FunctionCall& c, bool rate) {
  auto pts = c.points;
  if (pts.size() < 2) return std::nullopt;
  const Point& last = pts[pts.size() - 1];
  const Point& prev = pts[pts.size() - 2];
  double result = (rate && last.v < prev.v) ? last.v : last.v - prev.v;
  TimestampMs interval = last.t - prev.t;
  if (interval == 0) return std::nullopt;
  if (rate) result /= static_cast<double>(interval) / 1000;
  return result;
}

std::optional<double> Irate(const FunctionCall& c) {
  return InstantValue(c, true);
}
std::optional<double> Idelta(const FunctionCall& c) {
  return InstantValue(c, false);
}

std::optional<double> Changes(const FunctionCall& c) {
  double n = 0;
  for (size_t i = 1; i < c.points.size(); ++i) {
    double a = c.points[i - 1].v, b = c.points[i].v;
    if (a != b && !(std::isnan(a) && std::isnan(b))) ++n;
  }
  return n;
}

std::optional<double> Resets(const FunctionCall& c) {
  double n = 0;
  for (size_t i = 1; i < c.points.size(); ++i) {
    if (c.points[i].v < c.points[i - 1].v) ++n;
  }
  return n;
}

// Least squares fit; x in seconds relative to intercept_time.
void LinearRegression(std::span<const Point> pts, TimestampMs intercept_time, double* slope,
                      double* intercept) {
  double n = 0, sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
  double init = pts.front().v;
  bool constant = true;
  for (size_t i = 0; i < pts.size(); ++i) {
    if (constant && i > 0 && pts[i].v != init) constant = false;
    n += 1;
    double x = static_cast<double>(pts[i].t - intercept_time) / 1e3;
    KahanInc(x, sx, cx);
    KahanInc(pts[i].v, sy, cy);
    KahanInc(x * pts[i].v, sxy, cxy);
    KahanInc(x * x, sx2, cx2);
  }
  if (constant) {
    if (std::isinf(init)) {
      *slope = NAN;
      *intercept = NAN;
    } else {
      *slope = 0;
      *intercept = init;
    }
    return;
  }
  sx += cx;
  sy += cy;
  sxy += cxy;
  sx2 += cx2;
  double cov = sxy - sx * sy / n;
  double var = sx2 - sx * sx / n;
  *slope = cov / var;
  *intercept = sy / n - *slope * sx / n;
}

std::optional<double> Deriv(const FunctionCall& c) {
  if (c.points.size() < 2) return std::nullopt;
  double slope = 0, intercept = 0;
  LinearRegression(c.points, c.points.front().t, &slope, &intercept);
  return slope;
}

std::optional<double> PredictLinear(const FunctionCall& c) {
  if (c.points.size() < 2) return std::nullopt;
  double slope = 0, intercept = 0;
  LinearRegression(c.points, c.ts, &slope, &intercept);
  return slope * c.args[1].scalar + intercept;
}

std::optional<double> HoltWinters(const FunctionCall& c) {
  double sf = c.args[1].scalar;
  double tf = c.args[2].scalar;
  char buf[128];
  if (!(sf > 0 && sf < 1)) {
    std::snprintf(buf, sizeof buf, "invalid smoothing factor. Expected: 0 < sf < 1, got: %f", sf);
    throw EvalError{buf};
  }
  if (!(tf > 0 && tf < 1)) {
    std::snprintf(buf, sizeof buf, "invalid trend factor. Expected: 0 < tf < 1, got: %f", tf);
    throw EvalError{buf};
  }
  auto pts = c.points;
  if (pts.size() < 2) return std::nullopt;
  double s0 = 0, s1 = pts[0].v, b = pts[1].v - pts[0].v;
  for (size_t i = 1; i < pts.size(); ++i) {
    double x = sf * pts[i].v;
    if (i > 1) b = tf * (s1 - s0) + (1 - tf) * b;
    double y = (1 - sf) * (s1 + b);
    s0 = s1;
    s1 = x + y;
  }
  return s1;
}

std::optional<double> AvgOverTime(const FunctionCall& c) {
  double mean = 0, comp = 0, count = 0;
  for (const auto& p : c.points) {
    count += 1;
    if (std::isinf(mean)) {
      if (std::isinf(p.v) && (mean > 0) == (p.v > 0)) continue;
      if (!std::isinf(p.v) && !std::isnan(p.v)) continue;
    }
    KahanInc(p.v / count - mean / count, mean, comp);
  }
  return std::isinf(mean) ? mean : mean + comp;
}

std::optional<double> SumOverTime(const FunctionCall& c) {
  double sum = 0, comp = 0;
  for (const auto& p : c.points) KahanInc(p.v, sum, comp);
  return std::isinf(sum) ? sum : sum + comp;
}

std::optional<double> CountOverTime(const FunctionCall& c) {
  return static_cast<double>(c.points.size());
}

std::optional<double> MinOverTime(const FunctionCall& c) {
  double v = c.points.front().v;
  for (const auto& p : c.points) {
    if (p.v < v || std::isnan(v)) v = p.v;
  }
  return v;
}

std::optional<double> MaxOverTime(const FunctionCall& c) {
  double v = c.points.front().v;
  for (const auto& p : c.points) {
    if (p.v > v || std::isnan(v)) v = p.v;
  }
  return v;
}

std::optional<double> QuantileOverTime(const FunctionCall& c) {
  std::vector<double> values;
  for (const auto& p : c.points) values.push_back(p.v);
  return Quantile(c.args[0].scalar, std::move(values));
}

double VarianceOverTime(const FunctionCall& c) {
  double count = 0, mean = 0, cmean = 0, aux = 0, caux = 0;
  for (const auto& p : c.points) {
    count += 1;
    double delta = p.v - (mean + cmean);
    KahanInc(delta / count, mean, cmean);
    KahanInc(delta * (p.v - (mean + cmean)), aux, caux);
  }
  return (aux + caux) / count;
}

std::optional<double> StdvarOverTime(const FunctionCall& c) {
  return VarianceOverTime(c);
}
std::optional<double> StddevOverTime(const FunctionCall& c) {
  return std::sqrt(VarianceOverTime(c));
}
std::optional<double> LastOverTime(const FunctionCall& c) {
  return c.points.back().v;
}
std::optional<double> PresentOverTime(const FunctionCall&) {
  return 1.0;
}

// ---- instant-vector functions ----

template <double (*F)(double)>
Vector Simple(FunctionCall& c) {
  Vector out = std::move(c.args[0].vector);
  for (auto& s : out) {
    s.metric = DropMetricName(std::move(s.metric));
    s.v = F(s.v);
  }
  return out;
}

double Abs(double v) {
  return std::fabs(v);
}
double Ceil(double v) {
  return std::ceil(v);
}
double Floor(double v) {
  return std::floor(v);
}
double Exp(double v) {
  return std::exp(v);
}
double Ln(double v) {
  return std::log(v);
}
double Log2(double v) {
  return std::log2(v);
}
double Log10(double v) {
  return std::log10(v);
}
double Sqrt(double v) {
  return std::sqrt(v);
}
double Sgn(double v) {
  return v < 0 ? -1 : v > 0 ? 1 : v;
}
double Acos(double v) {
  return std::acos(v);
}
double Acosh(double v) {
  return std::acosh(v);
}
double Asin(double v) {
  return std::asin(v);
}
double Asinh(double v) {
  return std::asinh(v);
}
double Atan(double v) {
  return std::atan(v);
}
double Atanh(double v) {
  return std::atanh(v);
}
double Cos(double v) {
  return std::cos(v);
}
double Cosh(double v) {
  return std::cosh(v);
}
double Sin(double v) {
  return std::sin(v);
}
double Sinh(double v) {
  return std::sinh(v);
}
double Tan(double v) {
  return std::tan(v);
}
double Tanh(double v) {
  return std::tanh(v);
}
double Deg(double v) {
  return v * 180 / std::numbers::pi;
}
double Rad(double v) {
  return v * std::numbers::pi / 180;
}

Vector Round(FunctionCall& c) {
  double to_nearest = c.args.size() > 1 ? c.args[1].scalar : 1;
  double inverse = 1.0 / to_nearest;
  Vector out = std::move(c.args[0].vector);
  for (auto& s : out) {
    s.metric = DropMetricName(std::move(s.metric));
    s.v = std::floor(s.v * inverse + 0.5) / inverse;
  }
  return out;
}

Vector Clamp(FunctionCall& c) {
  double lo = c.args[1].scalar, hi = c.args[2].scalar;
  if (hi < lo) return {};
  Vector out = std::move(c.args[0].vector);
  for (auto& s : out) {
    s.metric = DropMetricName(std::move(s.metric));
    s.v = GoMax(lo, GoMin(hi, s.v));
  }
  return out;
}

Vector ClampMax(FunctionCall& c) {
  Vector out = std::move(c.args[0].vector);
  for (auto& s : out) {
    s.metric = DropMetricName(std::move(s.metric));
    s.v = GoMin(s.v, c.args[1].scalar);
  }
  return out;
}

Vector ClampMin(FunctionCall& c) {
  Vector out = std::move(c.args[0].vector);
  for (auto& s : out) {
    s.metric = DropMetricName(std::move(s.metric));
    s.v = GoMax(s.v, c.args[1].scalar);
  }
  return out;
}

// The labels absent()/absent_over_time() give their result: the selector's equality matchers
// (a name matched more than once, or by another operator, is left out).
Labels AbsentLabels(const Expr& arg) {
  const Expr* vs = nullptr;
  if (arg.kind == ExprKind::kVectorSelector) vs = &arg;
  if (arg.kind == ExprKind::kMatrixSelector) vs = arg.operand.get();
  Labels out;
  if (!vs) return out;
  std::map<std::string, bool> seen;
  for (const auto& m : vs->matchers) {
    if (m.name() == "__name__") continue;
    std::erase_if(out, [&](const auto& l) { return l.first == m.name(); });
    if (m.op() == Matcher::Op::kEqual && !seen[m.name()]) {
      out.emplace_back(m.name(), m.value());
      seen[m.name()] = true;
    }
  }
  SortLabels(out);
  return out;
}

Vector Absent(FunctionCall& c) {
  if (!c.args[0].vector.empty()) return {};
  return {Sample{AbsentLabels(*c.expr.args[0]), c.ts, 1}};
}

Vector AbsentOverTime(FunctionCall& c) {
  if (!c.args[0].matrix.empty()) return {};
  return {Sample{AbsentLabels(*c.expr.args[0]), c.ts, 1}};
}

Vector ScalarFn(FunctionCall& c) {
  const Vector& v = c.args[0].vector;
  return {Sample{{}, c.ts, v.size() == 1 ? v[0].v : NAN}};
}

Vector TimeFn(FunctionCall& c) {
  return {Sample{{}, c.ts, static_cast<double>(c.ts) / 1000}};
}
Vector PiFn(FunctionCall& c) {
  return {Sample{{}, c.ts, std::numbers::pi}};
}
Vector VectorFn(FunctionCall& c) {
  return {Sample{{}, c.ts, c.args[0].scalar}};
}

// NaN sorts last both ways.
Vector SortAsc(FunctionCall& c) {
  Vector out = std::move(c.args[0].vector);
  std::stable_sort(out.begin(), out.end(), [](const Sample& a, const Sample& b) {
    if (std::isnan(a.v) || std::isnan(b.v)) return !std::isnan(a.v) && std::isnan(b.v);
    return a.v < b.v;
  });
  return out;
}

Vector SortDesc(FunctionCall& c) {
  Vector out = std::move(c.args[0].vector);
  std::stable_sort(out.begin(), out.end(), [](const Sample& a, const Sample& b) {
    if (std::isnan(a.v) || std::isnan(b.v)) return !std::isnan(a.v) && std::isnan(b.v);
    return a.v > b.v;
  });
  return out;
}

Vector Timestamp(FunctionCall& c) {
  Vector out = std::move(c.args[0].vector);
  for (auto& s : out) {
    s.metric = DropMetricName(std::move(s.metric));
    s.v = static_cast<double>(s.t) / 1000;
  }
  return out;
}

// Go's Regexp.Expand for label_replace's replacement: $1, ${1}, $name, ${name}, $$.
std::string Expand(const RE2& re, std::string_view tmpl, const std::vector<re2::StringPiece>& groups) {
  std::string out;
  const auto& names = re.NamedCapturingGroups();
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '$') {
      out += tmpl[i];
      continue;
    }
    if (i + 1 < tmpl.size() && tmpl[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    std::string_view name;
    size_t next = i + 1;
    if (next < tmpl.size() && tmpl[next] == '{') {
      size_t close = tmpl.find('}', next);
      if (close == std::string_view::npos) {
        out += '$';
        continue;
      }
      name = tmpl.substr(next + 1, close - next - 1);
      next = close + 1;
    } else {
      size_t j = next;
      while (j < tmpl.size() && (std::isalnum(static_cast<unsigned char>(tmpl[j])) || tmpl[j] == '_')) ++j;
      name = tmpl.substr(next, j - next);
      next = j;
    }
    bool valid = !name.empty();
    for (char ch : name) valid = valid && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
    if (!valid) {
      out += '$';
      continue;
    }
    i = next - 1;
    bool numeric = std::all_of(name.begin(), name.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    int index = -1;
    if (numeric) {
      if (name.size() < 10) index = std::stoi(std::string(name));
    } else {
      auto it = names.find(std::string(name));
      if (it != names.end()) index = it->second;
    }
    if (index >= 0 && static_cast<size_t>(index) < groups.size() && groups[index].data() != nullptr) {
      out.append(groups[index].data(), groups[index].size());
    }
  }
  return out;
}

Vector LabelReplace(FunctionCall& c) {
  const std::string& dst = c.args[1].string;
  const std::string& repl = c.args[2].string;
  const std::string& src = c.args[3].string;
  const std::string& regex = c.args[4].string;
  RE2::Options options;
  options.set_log_errors(false);
  RE2 re("^(?:" + regex + ")$", options);
  if (!re.ok()) throw EvalError{"invalid regular expression in label_replace(): " + regex};
  if (!ValidLabelName(dst)) throw EvalError{"invalid destination label name in label_replace(): " + dst};
  Vector out = std::move(c.args[0].vector);
  std::vector<re2::StringPiece> groups(static_cast<size_t>(re.NumberOfCapturingGroups()) + 1);
  for (auto& s : out) {
    std::string value(LabelValue(s.metric, src));
    if (!re.Match(value, 0, value.size(), RE2::ANCHOR_BOTH, groups.data(), static_cast<int>(groups.size())))
      continue;
    std::string result = Expand(re, repl, groups);
    s.metric = WithLabel(s.metric, dst, std::move(result));
  }
  return out;
}

Vector LabelJoin(FunctionCall& c) {
  const std::string& dst = c.args[1].string;
  const std::string& sep = c.args[2].string;
  if (!ValidLabelName(dst)) throw EvalError{"invalid destination label name in label_join(): " + dst};
  for (size_t i = 3; i < c.args.size(); ++i) {
    if (!ValidLabelName(c.args[i].string)) {
      throw EvalError{"invalid source label name in label_join(): " + c.args[i].string};
    }
  }
  Vector out = std::move(c.args[0].vector);
  for (auto& s : out) {
    std::string joined;
    for (size_t i = 3; i < c.args.size(); ++i) {
      if (i > 3) joined += sep;
      joined += LabelValue(s.metric, c.args[i].string);
    }
    s.metric = WithLabel(s.metric, dst, std::move(joined));
  }
  return out;
}

struct Bucket {
  double upper;
  double count;
};

double BucketQuantile(double q, std::vector<Bucket> buckets) {
  if (std::isnan(q)) return NAN;
  if (q < 0) return -INFINITY;
  if (q > 1) return INFINITY;
  std::sort(buckets.begin(), buckets.end(),
            [](const Bucket& a, const Bucket& b) { return a.upper < b.upper; });
  if (buckets.empty() || !std::isinf(buckets.back().upper) || buckets.back().upper < 0) return NAN;
  std::vector<Bucket> merged;
  for (const auto& b : buckets) {
    if (!merged.empty() && merged.back().upper == b.upper) {
      merged.back().count += b.count;
    } else {
      merged.push_back(b);
    }
  }
  double max = -INFINITY;
  for (auto& b : merged) {
    if (b.count > max) {
      max = b.count;
    } else {
      b.count = max;
    }
  }
  if (merged.size() < 2) return NAN;
  double observations = merged.back().count;
  if (observations == 0) return NAN;
  double rank = q * observations;
  size_t b = 0;
  while (b < merged.size() - 1 && merged[b].count < rank) ++b;
  if (b == merged.size() - 1) return merged[merged.size() - 2].upper;
  if (b == 0 && merged[0].upper <= 0) return merged[0].upper;
  double start = 0, end = merged[b].upper, count = merged[b].count;
  if (b > 0) {
    start = merged[b - 1].upper;
    count -= merged[b - 1].count;
    rank -= merged[b - 1].count;
  }
  return start + (end - start) * (rank / count);
}

Vector HistogramQuantile(FunctionCall& c) {
  double q = c.args[0].scalar;
  std::map<std::string, std::pair<Labels, std::vector<Bucket>>> groups;
  std::vector<std::string> order;
  for (const auto& s : c.args[1].vector) {
    std::string_view le = LabelValue(s.metric, "le");
    std::string les(le);
    char* end = nullptr;
    double upper = std::strtod(les.c_str(), &end);
    if (les.empty() || end != les.c_str() + les.size()) continue;
    // Buckets group by every label but le (__name__ included); the result then drops __name__, so
    // two histograms of different names collide, as in Prometheus.
    Labels metric = s.metric;
    std::erase_if(metric, [](const auto& l) { return l.first == "le"; });
    std::string key = LabelsKey(metric);
    metric = DropMetricName(std::move(metric));
    auto [it, inserted] = groups.try_emplace(key, metric, std::vector<Bucket>{});
    if (inserted) order.push_back(key);
    it->second.second.push_back(Bucket{upper, s.v});
  }
  Vector out;
  for (const auto& key : order) {
    auto& [metric, buckets] = groups[key];
    out.push_back(Sample{metric, c.ts, BucketQuantile(q, buckets)});
  }
  return out;
}

template <double (*F)(const std::tm&)>
Vector DateFn(FunctionCall& c) {
  Vector out;
  if (c.args.empty()) {
    out.push_back(Sample{{}, c.ts, static_cast<double>(c.ts) / 1000});
  } else {
    out = std::move(c.args[0].vector);
  }
  for (auto& s : out) {
    s.metric = DropMetricName(std::move(s.metric));
    if (std::isnan(s.v) || std::isinf(s.v)) continue;
    std::tm tm{};
    std::time_t t = static_cast<std::time_t>(std::fabs(s.v) < 1e17 ? s.v : 0);
    if (std::fabs(s.v) >= 1e17 || !gmtime_r(&t, &tm)) {
      s.v = NAN;
      continue;
    }
    s.v = F(tm);
  }
  return out;
}

double DayOfMonth(const std::tm& t) {
  return t.tm_mday;
}
double DayOfWeek(const std::tm& t) {
  return t.tm_wday;
}
double DayOfYear(const std::tm& t) {
  return t.tm_yday + 1;
}
double Hour(const std::tm& t) {
  return t.tm_hour;
}
double Minute(const std::tm& t) {
  return t.tm_min;
}
double Month(const std::tm& t) {
  return t.tm_mon + 1;
}
double Year(const std::tm& t) {
  return t.tm_year + 1900;
}
double DaysInMonth(const std::tm& t) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int year = t.tm_year + 1900;
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return t.tm_mon == 1 && leap ? 29 : kDays[t.tm_mon];
}

constexpr ValueType kS = ValueType::kScalar;
constexpr ValueType kV = ValueType::kVector;
constexpr ValueType kM = ValueType::kMatrix;
constexpr ValueType kStr = ValueType::kString;

FunctionDef Series(std::string_view name, std::vector<ValueType> args,
                   std::optional<double> (*fn)(const FunctionCall&), bool keeps_name = false) {
  FunctionDef f;
  f.name = name;
  f.arg_types = std::move(args);
  f.series_fn = fn;
  f.keeps_metric_name = keeps_name;
  return f;
}

FunctionDef Vec(std::string_view name, std::vector<ValueType> args, Vector (*fn)(FunctionCall&),
                int variadic = 0, ValueType ret = kV) {
  FunctionDef f;
  f.name = name;
  f.arg_types = std::move(args);
  f.vector_fn = fn;
  f.variadic = variadic;
  f.return_type = ret;
  return f;
}

// Every PromQL function, by name. Variadic: see FunctionDef.
const std::vector<FunctionDef>& Functions() {
  static const auto* table = new std::vector<FunctionDef>{
      Vec("abs", {kV}, Simple<Abs>),
      Vec("absent", {kV}, Absent),
      Vec("absent_over_time", {kM}, AbsentOverTime),
      Vec("acos", {kV}, Simple<Acos>),
      Vec("acosh", {kV}, Simple<Acosh>),
      Vec("asin", {kV}, Simple<Asin>),
      Vec("asinh", {kV}, Simple<Asinh>),
      Vec("atan", {kV}, Simple<Atan>),
      Vec("atanh", {kV}, Simple<Atanh>),
      Series("avg_over_time", {kM}, AvgOverTime),
      Vec("ceil", {kV}, Simple<Ceil>),
      Series("changes", {kM}, Changes),
      Vec("clamp", {kV, kS, kS}, Clamp),
      Vec("clamp_max", {kV, kS}, ClampMax),
      Vec("clamp_min", {kV, kS}, ClampMin),
      Vec("cos", {kV}, Simple<Cos>),
      Vec("cosh", {kV}, Simple<Cosh>),
      Series("count_over_time", {kM}, CountOverTime),
      Vec("day_of_month", {kV}, DateFn<DayOfMonth>, 1),
      Vec("day_of_week", {kV}, DateFn<DayOfWeek>, 1),
      Vec("day_of_year", {kV}, DateFn<DayOfYear>, 1),
      Vec("days_in_month", {kV}, DateFn<DaysInMonth>, 1),
      Vec("deg", {kV}, Simple<Deg>),
      Series("delta", {kM}, Delta),
      Series("deriv", {kM}, Deriv),
      Vec("exp", {kV}, Simple<Exp>),
      Vec("floor", {kV}, Simple<Floor>),
      Vec("histogram_quantile", {kS, kV}, HistogramQuantile),
      Series("holt_winters", {kM, kS, kS}, HoltWinters),
      Vec("hour", {kV}, DateFn<Hour>, 1),
      Series("idelta", {kM}, Idelta),
      Series("increase", {kM}, Increase),
      Series("irate", {kM}, Irate),
      Vec("label_join", {kV, kStr, kStr, kStr}, LabelJoin, -1),
      Vec("label_replace", {kV, kStr, kStr, kStr, kStr}, LabelReplace),
      Series("last_over_time", {kM}, LastOverTime, /*keeps_name=*/true),
      Vec("ln", {kV}, Simple<Ln>),
      Vec("log10", {kV}, Simple<Log10>),
      Vec("log2", {kV}, Simple<Log2>),
      Series("max_over_time", {kM}, MaxOverTime),
      Series("min_over_time", {kM}, MinOverTime),
      Vec("minute", {kV}, DateFn<Minute>, 1),
      Vec("month", {kV}, DateFn<Month>, 1),
      Vec("pi", {}, PiFn, 0, kS),
      Series("predict_linear", {kM, kS}, PredictLinear),
      Series("present_over_time", {kM}, PresentOverTime),
      Series("quantile_over_time", {kS, kM}, QuantileOverTime),
      Vec("rad", {kV}, Simple<Rad>),
      Series("rate", {kM}, Rate),
      Series("resets", {kM}, Resets),
      Vec("round", {kV, kS}, Round, 1),
      Vec("scalar", {kV}, ScalarFn, 0, kS),
      Vec("sgn", {kV}, Simple<Sgn>),
      Vec("sin", {kV}, Simple<Sin>),
      Vec("sinh", {kV}, Simple<Sinh>),
      Vec("sort", {kV}, SortAsc),
      Vec("sort_desc", {kV}, SortDesc),
      Vec("sqrt", {kV}, Simple<Sqrt>),
      Series("stddev_over_time", {kM}, StddevOverTime),
      Series("stdvar_over_time", {kM}, StdvarOverTime),
      Series("sum_over_time", {kM}, SumOverTime),
      Vec("tan", {kV}, Simple<Tan>),
      Vec("tanh", {kV}, Simple<Tanh>),
      Vec("time", {}, TimeFn, 0, kS),
      Vec("timestamp", {kV}, Timestamp),
      Vec("vector", {kS}, VectorFn),
      Vec("year", {kV}, DateFn<Year>, 1),
  };
  return *table;
}

}  // namespace

const FunctionDef* FindFunction(std::string_view name) {
  for (const auto& f : Functions()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

}  // namespace runbook::promql
