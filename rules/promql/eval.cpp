// PromQL evaluation. Every expression is evaluated at one timestamp; range queries and
// subqueries evaluate their expression once per step.

#include "promql/eval.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "promql/functions.h"

namespace runbook::promql {

std::string LabelsKey(const Labels& labels) {
  std::string key;
  for (const auto& [n, v] : labels) {
    key += n;
    key += '\xff';
    key += v;
    key += '\xff';
  }
  return key;
}

Labels DropMetricName(Labels labels) {
  std::erase_if(labels, [](const auto& l) { return l.first == "__name__"; });
  return labels;
}

LabelSet DropMetricName(const LabelSet& labels) {
  return labels.WithoutName();
}

LabelSet WithLabel(const LabelSet& labels, const std::string& name, std::string value) {
  Labels out;
  out.reserve(labels.size() + 1);
  bool done = value.empty();
  for (const auto& l : labels) {
    if (!done && name < l.first) {
      out.emplace_back(name, std::move(value));
      done = true;
    }
    if (l.first != name) out.push_back(l);
  }
  if (!done) out.emplace_back(name, std::move(value));
  return out;
}

void CheckUniqueLabelsets(const Vector& v) {
  if (v.size() < 2) return;
  std::vector<std::pair<std::uint64_t, const Labels*>> hashed;
  hashed.reserve(v.size());
  for (const auto& s : v) hashed.emplace_back(LabelsHash(s.metric), &s.metric.get());
  std::sort(hashed.begin(), hashed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 0; i < hashed.size(); ++i) {
    for (std::size_t j = i + 1; j < hashed.size() && hashed[j].first == hashed[i].first; ++j) {
      if (*hashed[j].second == *hashed[i].second)
        throw EvalError{"vector cannot contain metrics with the same labelset"};
    }
  }
}

bool Ignored(std::string_view name, const VectorMatching& m) {
  return name == "__name__" || std::find(m.labels.begin(), m.labels.end(), name) != m.labels.end();
}

std::uint64_t SignatureHash(const Labels& metric, const VectorMatching& m) {
  std::uint64_t h = 0x9e3779b97f4a7c15ULL;
  if (m.on) {
    for (const auto& name : m.labels) h = HashMix(HashMix(h, name), LabelValue(metric, name));
    return h;
  }
  for (const auto& [n, v] : metric) {
    if (!Ignored(n, m)) h = HashMix(HashMix(h, n), v);
  }
  return h;
}

bool SameSignature(const Labels& a, const Labels& b, const VectorMatching& m) {
  if (m.on) {
    return std::all_of(m.labels.begin(), m.labels.end(),
                       [&](const std::string& name) { return LabelValue(a, name) == LabelValue(b, name); });
  }
  auto i = a.begin(), j = b.begin();
  while (true) {
    while (i != a.end() && Ignored(i->first, m)) ++i;
    while (j != b.end() && Ignored(j->first, m)) ++j;
    if (i == a.end() || j == b.end()) return i == a.end() && j == b.end();
    if (*i != *j) return false;
    ++i;
    ++j;
  }
}

SignatureIndex::SignatureIndex(const Vector& v, const VectorMatching& m, HashFunc hash) : m_(m), hash_(hash) {
  entries_.reserve(v.size());
  for (const auto& s : v) entries_.push_back({hash_(s.metric, m), &s});
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const Entry& a, const Entry& b) { return a.hash < b.hash; });
}

const Sample* SignatureIndex::Find(const Labels& metric) const {
  const std::uint64_t hash = hash_(metric, m_);
  auto it = std::lower_bound(entries_.begin(), entries_.end(), hash,
                             [](const Entry& e, std::uint64_t h) { return e.hash < h; });
  for (; it != entries_.end() && it->hash == hash; ++it) {
    if (SameSignature(it->sample->metric, metric, m_)) return it->sample;
  }
  return nullptr;
}

std::optional<std::pair<const Sample*, const Sample*>> SignatureIndex::Duplicate() const {
  std::optional<std::pair<const Sample*, const Sample*>> found;
  std::size_t run = 0;  // first entry with entries_[j]'s hash; runs keep input order
  for (std::size_t j = 1; j < entries_.size(); ++j) {
    if (entries_[j].hash != entries_[run].hash) run = j;
    if (found && entries_[j].sample > found->second) continue;
    for (std::size_t i = run; i < j; ++i) {
      if (SameSignature(entries_[i].sample->metric, entries_[j].sample->metric, m_)) {
        found = std::pair{entries_[i].sample, entries_[j].sample};
        break;
      }
    }
  }
  return found;
}

namespace {

void SetLabel(Labels& labels, const std::string& name, const std::string& value) {
  for (auto& l : labels) {
    if (l.first == name) {
      l.second = value;
      return;
    }
  }
  labels.emplace_back(name, value);
  SortLabels(labels);
}

double ScalarOp(BinOp op, double l, double r, bool* keep) {
  *keep = true;
  switch (op) {
    case BinOp::kAdd: return l + r;
    case BinOp::kSub: return l - r;
    case BinOp::kMul: return l * r;
    case BinOp::kDiv: return l / r;
    case BinOp::kMod: return std::fmod(l, r);
    case BinOp::kPow: return std::pow(l, r);
    case BinOp::kAtan2: return std::atan2(l, r);
    case BinOp::kEql: *keep = l == r; return l;
    case BinOp::kNeq: *keep = l != r; return l;
    case BinOp::kGtr: *keep = l > r; return l;
    case BinOp::kLss: *keep = l < r; return l;
    case BinOp::kGte: *keep = l >= r; return l;
    case BinOp::kLte: *keep = l <= r; return l;
    default: return 0;
  }
}

// atan2 keeps the metric name, as in Prometheus.
// Dropping __name__ cannot make two series of one metric name equal: the uniqueness check after
// an operation that drops it is needed only when the input mixes names.
bool OneName(const Vector& v) {
  for (const auto& s : v) {
    if (LabelValue(s.metric, "__name__") != LabelValue(v.front().metric, "__name__")) return false;
  }
  return true;
}

bool OneName(const std::vector<Matcher>& matchers) {
  return std::any_of(matchers.begin(), matchers.end(), [](const Matcher& m) {
    return m.name() == "__name__" && m.op() == Matcher::Op::kEqual && !m.value().empty();
  });
}

bool DropsName(const Expr& e) {
  return (!IsComparison(e.op) && e.op != BinOp::kAtan2) || e.return_bool;
}

LabelSet ResultMetric(const LabelSet& many, const Labels& one, const Expr& e) {
  const auto& m = e.matching;
  // Most results keep the many side's labels (maybe without __name__): its set, no new one.
  const bool keeps_all =
      m.include.empty() &&
      (m.card != VectorMatching::Card::kOneToOne ||
       (!m.on && std::none_of(m.labels.begin(), m.labels.end(),
                              [&](const std::string& name) { return !LabelValue(many, name).empty(); })));
  if (keeps_all) return DropsName(e) ? many.WithoutName() : many;
  Labels out = many;
  if (DropsName(e)) out = DropMetricName(std::move(out));
  if (m.card == VectorMatching::Card::kOneToOne) {
    if (m.on) {
      std::erase_if(out, [&](const auto& l) {
        return std::find(m.labels.begin(), m.labels.end(), l.first) == m.labels.end();
      });
    } else {
      std::erase_if(out, [&](const auto& l) {
        return std::find(m.labels.begin(), m.labels.end(), l.first) != m.labels.end();
      });
    }
  }
  for (const auto& name : m.include) {
    std::string_view v = LabelValue(one, name);
    std::erase_if(out, [&](const auto& l) { return l.first == name; });
    if (!v.empty()) SetLabel(out, name, std::string(v));
  }
  return out;
}

}  // namespace

namespace {

// The previous evaluation's input series of one operator, in input order, each with what the
// operator made of it (`value`: a group, a match). A selector yields the store's sets in the
// same order round after round, so this evaluation's i-th input is mostly the set held at the
// cursor: found by comparing addresses, without reading the labels. Holding the sets keeps
// their addresses from being reused by other sets.
class InputMemo {
 public:
  static constexpr std::uint32_t kNone = ~std::uint32_t(0);
  static constexpr std::size_t kMissing = ~std::size_t(0);

  void Begin() {
    next_.clear();
    next_.reserve(entries_.size());
    cursor_ = 0;
    hits_now_ = 0;
    index_.clear();
  }
  // The previous evaluation's entry for this very set, or kMissing.
  std::size_t Find(const LabelSet& metric) {
    if (metric.empty()) return kMissing;  // moved-from entries look empty too
    for (std::size_t k = cursor_; k < cursor_ + 2 && k < entries_.size(); ++k)
      if (entries_[k].metric.SameAs(metric)) return k;
    // Series were added or removed: an index by address, unless the input never repeats (sets
    // built anew by every evaluation).
    if (hits_ == 0 && hits_now_ == 0) return kMissing;
    if (index_.empty()) BuildIndex();
    const std::size_t mask = index_.size() - 1;
    for (std::size_t i = Slot(metric.identity(), mask); index_[i].first; i = (i + 1) & mask) {
      if (index_[i].first == metric.identity())
        return entries_[index_[i].second].metric.SameAs(metric) ? index_[i].second : kMissing;
    }
    return kMissing;
  }
  std::uint32_t value(std::size_t k) const { return entries_[k].value; }
  // Records this evaluation's next input: entry k's set (found by Find) or a new one.
  void Hit(std::size_t k, std::uint32_t value) {
    next_.push_back({std::move(entries_[k].metric), value});
    cursor_ = k + 1;
    ++hits_now_;
  }
  void Miss(const LabelSet& metric, std::uint32_t value) { next_.push_back({metric, value}); }
  // Ends an evaluation: its inputs replace the previous ones.
  void End() {
    entries_.swap(next_);
    hits_ = hits_now_;
    std::vector<Entry>().swap(next_);
    std::vector<std::pair<const void*, std::uint32_t>>().swap(index_);
  }
  void Clear() {
    entries_.clear();
    hits_ = 0;
  }
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    LabelSet metric;
    std::uint32_t value;
  };
  static std::size_t Slot(const void* p, std::size_t mask) {
    return static_cast<std::size_t>((reinterpret_cast<std::uintptr_t>(p) >> 4) * 0x9e3779b97f4a7c15ULL >>
                                    20) &
           mask;
  }
  void BuildIndex() {
    std::size_t n = 16;
    while (n < entries_.size() * 2) n *= 2;
    index_.assign(n, {nullptr, 0});
    for (std::size_t k = 0; k < entries_.size(); ++k) {
      const void* p = entries_[k].metric.identity();
      if (!p) continue;
      std::size_t i = Slot(p, n - 1);
      while (index_[i].first) i = (i + 1) & (n - 1);
      index_[i] = {p, static_cast<std::uint32_t>(k)};
    }
  }

  std::vector<Entry> entries_;  // the previous evaluation's
  std::size_t hits_ = 0;        // the previous evaluation's Hit calls
  std::vector<Entry> next_;     // this evaluation's
  std::size_t cursor_ = 0;
  std::size_t hits_now_ = 0;
  std::vector<std::pair<const void*, std::uint32_t>> index_;  // open addressing, built on demand
};

}  // namespace

struct EvalCache::Impl {
  // An aggregation's groups of the previous evaluation: label sets, and a table of
  // (hash, index into sets) as EvalAggregate builds it (open addressing, power-of-two size);
  // its inputs with their group (index into sets) for the grouping it was built with.
  struct Aggregation {
    std::vector<std::pair<std::uint64_t, std::size_t>> table;
    std::vector<LabelSet> sets;
    std::vector<std::string> grouping;  // sorted
    bool without = false;
    InputMemo inputs;  // value: group index, with kDroppedName set for drop_name inputs
  };
  // A binary operator between vectors: the side it indexes by signature as it was in the
  // previous evaluation, and the other side's samples with the position of their match in it.
  struct Binary {
    BinOp op = BinOp::kAdd;
    VectorMatching matching;  // card, on and labels: what decides matches
    std::vector<LabelSet> side;
    InputMemo probes;  // value: position in `side`, or kNone
  };
  std::unordered_map<const Expr*, Aggregation> aggregations;
  std::unordered_map<const Expr*, Binary> binaries;
};

namespace {

// Finds the sample of one side of a binary operation that a sample of the other matches. With
// a memo and this side the previous evaluation's set for set, a sample it saw then gets the
// same answer without computing its signature; others (and every sample without a memo) are
// looked up in a SignatureIndex built on first need.
class SideMatch {
 public:
  SideMatch(const Vector& side, const Expr& e, EvalCache::Impl::Binary* memo)
      : side_(side), m_(e.matching), memo_(memo) {
    if (!memo_) return;
    const VectorMatching& was = memo_->matching;
    if (memo_->op != e.op || was.card != m_.card || was.on != m_.on || was.labels != m_.labels) {
      memo_->op = e.op;
      memo_->matching = m_;
      memo_->side.clear();
    }
    unchanged_ = !memo_->side.empty() && memo_->side.size() == side_.size();
    for (std::size_t i = 0; unchanged_ && i < side_.size(); ++i)
      unchanged_ = memo_->side[i].SameAs(side_[i].metric);
    if (!unchanged_) {
      // Invalid until End(): an evaluation that fails half-way leaves nothing to trust.
      memo_->side.clear();
      memo_->probes.Clear();
    }
    memo_->probes.Begin();
  }
  // Whether the side is the previous evaluation's, which passed the same checks.
  bool unchanged() const { return unchanged_; }
  const SignatureIndex& index() {
    if (!index_) index_.emplace(side_, m_);
    return *index_;
  }
  const Sample* Find(const LabelSet& metric) {
    if (unchanged_) {
      const std::size_t k = memo_->probes.Find(metric);
      if (k != InputMemo::kMissing) {
        const std::uint32_t at = memo_->probes.value(k);
        memo_->probes.Hit(k, at);
        return at == InputMemo::kNone ? nullptr : &side_[at];
      }
    }
    const Sample* s = index().Find(metric);
    if (memo_)
      memo_->probes.Miss(metric, s ? static_cast<std::uint32_t>(s - side_.data()) : InputMemo::kNone);
    return s;
  }
  // Ends a successful evaluation.
  void End() {
    if (!memo_) return;
    if (!unchanged_) {
      memo_->side.reserve(side_.size());
      for (const auto& s : side_) memo_->side.push_back(s.metric);
    }
    memo_->probes.End();
  }

 private:
  const Vector& side_;
  const VectorMatching& m_;
  EvalCache::Impl::Binary* memo_;
  bool unchanged_ = false;
  std::optional<SignatureIndex> index_;
};

}  // namespace

EvalCache::EvalCache() : impl_(std::make_unique<Impl>()) {}
EvalCache::~EvalCache() = default;
EvalCache::EvalCache(const EvalCache&) : EvalCache() {}
EvalCache& EvalCache::operator=(const EvalCache& other) {
  if (this != &other) Clear();
  return *this;
}
EvalCache::EvalCache(EvalCache&& other) noexcept : impl_(std::move(other.impl_)) {}
EvalCache& EvalCache::operator=(EvalCache&& other) noexcept {
  impl_.swap(other.impl_);
  return *this;
}
void EvalCache::Clear() {
  if (impl_) {
    impl_->aggregations.clear();
    impl_->binaries.clear();
  }
}
std::size_t EvalCache::label_sets() const {
  std::size_t n = 0;
  if (impl_)
    for (const auto& [_, a] : impl_->aggregations) n += a.sets.size();
  return n;
}
std::size_t EvalCache::inputs() const {
  std::size_t n = 0;
  if (!impl_) return n;
  for (const auto& [_, a] : impl_->aggregations) n += a.inputs.size();
  for (const auto& [_, b] : impl_->binaries) n += b.side.size() + b.probes.size();
  return n;
}

Evaluator::Evaluator(const Queryable& storage, TimestampMs start, TimestampMs end, const EvalOptions& options)
    : storage_(storage),
      start_(start),
      end_(end),
      default_step_(options.default_step_ms > 0 ? options.default_step_ms : 60000),
      max_samples_(options.max_samples),
      cache_(options.cache) {}

void Evaluator::Count(size_t samples) {
  samples_ += static_cast<long long>(samples);
  if (samples_ > max_samples_) {
    throw EvalError{"query processing would load too many samples into memory in query execution"};
  }
}

TimestampMs Evaluator::RefTime(const Expr& carrier, TimestampMs ts) const {
  switch (carrier.at) {
    case AtMode::kTimestamp: ts = carrier.at_ms; break;
    case AtMode::kStart: ts = start_; break;
    case AtMode::kEnd: ts = end_; break;
    case AtMode::kNone: break;
  }
  return ts - carrier.offset_ms;
}

template <class Sink>
void Evaluator::ForEachInstant(const Expr& vs, TimestampMs ts, Sink&& sink) {
  TimestampMs ref = RefTime(vs, ts);
  size_t loaded = 0;
  storage_.SelectLatest(
      vs.matchers, ref - kLookbackDeltaMs, ref, [&](const LabelSet& metric, std::span<const Point> points) {
        // Tolerate stores that pass points outside the window.
        auto it = !points.empty() && points.back().t <= ref
                      ? points.end()
                      : std::upper_bound(points.begin(), points.end(), ref,
                                         [](TimestampMs t, const Point& p) { return t < p.t; });
        if (it == points.begin()) return;
        const Point& last = *std::prev(it);
        if (last.t < ref - kLookbackDeltaMs || IsStaleMarker(last.v)) return;
        ++loaded;
        sink(metric, last);
      });
  Count(loaded);
}

Vector Evaluator::SelectVector(const Expr& vs, TimestampMs ts) {
  Vector out;
  ForEachInstant(vs, ts, [&](const LabelSet& metric, const Point& p) {
    out.push_back(Sample{metric, p.t, p.v});
  });
  return out;
}

const Expr* Evaluator::RangeSelectorArg(const Expr& e, size_t* matrix_arg) {
  *matrix_arg = 0;
  for (size_t i = 0; i < e.args.size(); ++i) {
    if (e.args[i]->type == ValueType::kMatrix) *matrix_arg = i;
  }
  const Expr& range_arg = Unparen(*e.args[*matrix_arg]);
  return range_arg.kind == ExprKind::kMatrixSelector ? &range_arg : nullptr;
}

template <class Sink>
void Evaluator::ForEachRangeResult(const Expr& e, const Expr& range_arg, size_t matrix_arg, TimestampMs ts,
                                   Sink&& sink) {
  const FunctionDef& f = *e.func;
  FunctionCall call{e, ts, {}, {}, 0, 0, 0};
  for (size_t i = 0; i < e.args.size(); ++i)
    call.args.push_back(i == matrix_arg ? Value{} : Eval(*e.args[i], ts));
  // Each series' window goes straight from the store into the function: no matrix of copies.
  const Expr& vs = *range_arg.operand;
  const TimestampMs ref = RefTime(vs, ts);
  call.range_start = ref - range_arg.range_ms;
  call.range_end = ref;
  call.range_ms = range_arg.range_ms;
  size_t loaded = 0;
  std::vector<Point> scratch;
  storage_.Select(vs.matchers, call.range_start, call.range_end,
                  [&](const LabelSet& metric, std::span<const Point> points) {
                    // Tolerate stores that pass points outside the window; searching only when they do.
                    auto lo = points.empty() || points.front().t >= call.range_start
                                  ? points.begin()
                                  : std::lower_bound(points.begin(), points.end(), call.range_start,
                                                     [](const Point& p, TimestampMs t) { return p.t < t; });
                    auto hi = points.empty() || points.back().t <= call.range_end
                                  ? points.end()
                                  : std::upper_bound(lo, points.end(), call.range_end,
                                                     [](TimestampMs t, const Point& p) { return t < p.t; });
                    std::span<const Point> window(lo, hi);
                    if (std::any_of(lo, hi, [](const Point& p) { return IsStaleMarker(p.v); })) {
                      scratch.clear();
                      std::copy_if(lo, hi, std::back_inserter(scratch),
                                   [](const Point& p) { return !IsStaleMarker(p.v); });
                      window = scratch;
                    }
                    if (window.empty()) return;
                    loaded += window.size();
                    call.points = window;
                    std::optional<double> v = f.series_fn(call);
                    if (v) sink(metric, *v);
                  });
  Count(loaded);
}

template <class Sink>
bool Evaluator::Stream(const Expr& arg, TimestampMs ts, Sink&& sink) {
  const Expr& e = Unparen(arg);
  if (e.kind == ExprKind::kVectorSelector) {
    ForEachInstant(e, ts, [&](const LabelSet& metric, const Point& p) { sink(metric, p.v, false); });
    return true;
  }
  if (e.kind != ExprKind::kCall || !e.func->series_fn) return false;
  size_t matrix_arg = 0;
  const Expr* range_arg = RangeSelectorArg(e, &matrix_arg);
  // A result that drops names of several metrics may hold duplicates: EvalCall checks those.
  const bool drop_name = !e.func->keeps_metric_name;
  if (!range_arg || (drop_name && !OneName(range_arg->operand->matchers))) return false;
  ForEachRangeResult(e, *range_arg, matrix_arg, ts,
                     [&](const LabelSet& metric, double v) { sink(metric, v, drop_name); });
  return true;
}

Matrix Evaluator::SelectMatrix(const Expr& ms, TimestampMs ts, Window* window) {
  const Expr& vs = *ms.operand;
  TimestampMs ref = RefTime(vs, ts);
  window->start = ref - ms.range_ms;
  window->end = ref;
  window->range = ms.range_ms;
  Matrix out;
  storage_.Select(vs.matchers, window->start, window->end,
                  [&](const LabelSet& metric, std::span<const Point> points) {
                    Series s;
                    s.metric = metric;
                    for (const auto& p : points) {
                      if (p.t >= window->start && p.t <= window->end && !IsStaleMarker(p.v))
                        s.points.push_back(p);
                    }
                    if (!s.points.empty()) out.push_back(std::move(s));
                  });
  for (const auto& s : out) Count(s.points.size());
  return out;
}

Matrix Evaluator::EvalSubquery(const Expr& sq, TimestampMs ts, Window* window) {
  TimestampMs ref = RefTime(sq, ts);
  TimestampMs step = sq.step_ms > 0 ? sq.step_ms : default_step_;
  TimestampMs mint = ref - sq.range_ms;
  TimestampMs first = (mint / step) * step;
  if (first < mint) first += step;
  window->start = mint;
  window->end = ref;
  window->range = sq.range_ms;
  std::map<Labels, Series> series;
  for (TimestampMs t = first; t <= ref; t = ref - t < step ? ref + 1 : t + step) {
    Count(1);
    Value v = Eval(*sq.operand, t);
    for (auto& s : v.vector) {
      auto& ser = series[s.metric];
      if (ser.points.empty()) ser.metric = s.metric;
      ser.points.push_back(Point{t, s.v});
    }
  }
  Matrix out;
  for (auto& [_, s] : series) out.push_back(std::move(s));
  return out;
}

Matrix Evaluator::EvalRangeArg(const Expr& arg, TimestampMs ts, Window* window) {
  const Expr& e = Unparen(arg);
  if (e.kind == ExprKind::kMatrixSelector) return SelectMatrix(e, ts, window);
  return EvalSubquery(e, ts, window);
}

Value Evaluator::Eval(const Expr& e, TimestampMs ts) {
  Value out;
  out.type = e.type;
  switch (e.kind) {
    case ExprKind::kNumber: out.scalar = e.number; return out;
    case ExprKind::kString: out.string = e.text; return out;
    case ExprKind::kParen: return Eval(*e.operand, ts);
    case ExprKind::kVectorSelector: out.vector = SelectVector(e, ts); return out;
    case ExprKind::kMatrixSelector: {
      Window w;
      out.matrix = SelectMatrix(e, ts, &w);
      return out;
    }
    case ExprKind::kSubquery: {
      Window w;
      out.matrix = EvalSubquery(e, ts, &w);
      return out;
    }
    case ExprKind::kUnary: {
      out = Eval(*e.operand, ts);
      if (e.op != BinOp::kSub) return out;
      if (out.type == ValueType::kScalar) {
        out.scalar = -out.scalar;
        return out;
      }
      for (auto& s : out.vector) {
        s.metric = DropMetricName(std::move(s.metric));
        s.v = -s.v;
        s.t = ts;
      }
      CheckUniqueLabelsets(out.vector);
      return out;
    }
    case ExprKind::kBinary: return EvalBinary(e, ts);
    case ExprKind::kCall: return EvalCall(e, ts);
    case ExprKind::kAggregate: return EvalAggregate(e, ts);
  }
  return out;
}

Value Evaluator::EvalBinary(const Expr& e, TimestampMs ts) {
  // A selector (or a per-series function of one) filtered by a number, as alerting rules'
  // `rate(x[5m]) > 3`: only the samples kept are built.
  if (IsComparison(e.op) && !e.return_bool) {
    const Expr& lhs = Unparen(*e.lhs);
    const Expr& rhs = Unparen(*e.rhs);
    const bool number_right = rhs.kind == ExprKind::kNumber && lhs.type == ValueType::kVector;
    if (number_right || (lhs.kind == ExprKind::kNumber && rhs.type == ValueType::kVector)) {
      const double number = (number_right ? rhs : lhs).number;
      Value out;
      out.type = e.type;
      auto filter = [&](const LabelSet& metric, double v, bool drop_name) {
        bool keep = true;
        ScalarOp(e.op, number_right ? v : number, number_right ? number : v, &keep);
        if (keep) out.vector.push_back(Sample{drop_name ? metric.WithoutName() : metric, ts, v});
      };
      if (Stream(number_right ? lhs : rhs, ts, filter)) return out;
    }
  }
  Value l = Eval(*e.lhs, ts);
  Value r = Eval(*e.rhs, ts);
  Value out;
  out.type = e.type;
  bool keep = true;
  if (l.type == ValueType::kScalar && r.type == ValueType::kScalar) {
    double v = ScalarOp(e.op, l.scalar, r.scalar, &keep);
    out.scalar = IsComparison(e.op) ? (keep ? 1 : 0) : v;
    return out;
  }
  if (l.type == ValueType::kScalar || r.type == ValueType::kScalar) {
    bool scalar_left = l.type == ValueType::kScalar;
    Vector& vec = scalar_left ? r.vector : l.vector;
    double scalar = scalar_left ? l.scalar : r.scalar;
    const bool check = DropsName(e) && !OneName(vec);
    for (auto& s : vec) {
      double lv = scalar_left ? scalar : s.v;
      double rv = scalar_left ? s.v : scalar;
      double v = ScalarOp(e.op, lv, rv, &keep);
      if (IsComparison(e.op) && scalar_left) v = rv;
      if (e.return_bool) {
        v = keep ? 1 : 0;
      } else if (!keep) {
        continue;
      }
      Sample o{DropsName(e) ? DropMetricName(std::move(s.metric)) : std::move(s.metric), ts, v};
      out.vector.push_back(std::move(o));
    }
    if (check) CheckUniqueLabelsets(out.vector);
    return out;
  }
  const auto& m = e.matching;
  EvalCache::Impl::Binary* memo = nullptr;
  if (cache_) {
    if (!cache_->impl_) cache_->impl_ = std::make_unique<EvalCache::Impl>();
    memo = &cache_->impl_->binaries[&e];
  }
  switch (e.op) {
    case BinOp::kAnd:
    case BinOp::kUnless: {
      SideMatch right(r.vector, e, memo);
      for (auto& s : l.vector) {
        if (!right.Find(s.metric) == (e.op == BinOp::kUnless))
          out.vector.push_back(Sample{std::move(s.metric), ts, s.v});
      }
      right.End();
      return out;
    }
    case BinOp::kOr: {
      SideMatch left(l.vector, e, memo);
      std::vector<bool> add(r.vector.size());
      for (std::size_t i = 0; i < r.vector.size(); ++i) add[i] = !left.Find(r.vector[i].metric);
      left.End();
      for (auto& s : l.vector) out.vector.push_back(Sample{std::move(s.metric), ts, s.v});
      for (std::size_t i = 0; i < r.vector.size(); ++i) {
        if (add[i]) out.vector.push_back(Sample{std::move(r.vector[i].metric), ts, r.vector[i].v});
      }
      return out;
    }
    default: break;
  }
  // Nothing can match, so no duplicate on either side is an error either. Nothing to remember:
  // the memo lets go of series that vanished.
  if (l.vector.empty() || r.vector.empty()) {
    if (memo) *memo = EvalCache::Impl::Binary{};
    return out;
  }
  bool swap = m.card == VectorMatching::Card::kOneToMany;
  Vector& many = swap ? r.vector : l.vector;
  Vector& one = swap ? l.vector : r.vector;
  SideMatch one_side(one, e, memo);
  if (auto dup = one_side.unchanged() ? std::nullopt : one_side.index().Duplicate()) {
    const auto [first, later] = *dup;  // Prometheus names the later one first
    throw EvalError{"found duplicate series for the match group " + Format(later->metric, m) + " on the " +
                    (swap ? "left" : "right") + " hand-side of the operation: [" +
                    FormatLabels(later->metric) + ", " + FormatLabels(first->metric) +
                    "];many-to-many matching not allowed: matching labels must be unique on one side"};
  }
  // one-to-one: whether each one-side sample matched already; group_left/right: the result
  // label sets per one-side sample (hash, output index), checked for repeats at the end.
  std::vector<bool> matched(m.card == VectorMatching::Card::kOneToOne ? one.size() : 0);
  std::vector<std::tuple<std::size_t, std::uint64_t, std::size_t>> results;
  for (const auto& s : many) {
    const Sample* match = one_side.Find(s.metric);
    if (!match) continue;
    double lv = s.v;
    double rv = match->v;
    if (swap) std::swap(lv, rv);
    double v = ScalarOp(e.op, lv, rv, &keep);
    if (e.return_bool) {
      v = keep ? 1 : 0;
    } else if (!keep) {
      continue;
    }
    const auto one_index = static_cast<std::size_t>(match - one.data());
    if (m.card == VectorMatching::Card::kOneToOne) {
      if (matched[one_index]) {
        throw EvalError{
            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"};
      }
      matched[one_index] = true;
    }
    LabelSet metric = ResultMetric(s.metric, match->metric, e);
    if (m.card != VectorMatching::Card::kOneToOne)
      results.emplace_back(one_index, metric.hash(), out.vector.size());
    out.vector.push_back(Sample{std::move(metric), ts, v});
  }
  one_side.End();
  std::sort(results.begin(), results.end());
  for (std::size_t i = 0; i + 1 < results.size(); ++i) {
    for (std::size_t j = i + 1; j < results.size() && std::get<0>(results[j]) == std::get<0>(results[i]) &&
                                std::get<1>(results[j]) == std::get<1>(results[i]);
         ++j) {
      if (out.vector[std::get<2>(results[i])].metric == out.vector[std::get<2>(results[j])].metric)
        throw EvalError{"multiple matches for labels: grouping labels must ensure unique matches"};
    }
  }
  CheckUniqueLabelsets(out.vector);
  return out;
}

std::string Evaluator::Format(const Labels& metric, const VectorMatching& m) {
  Labels shown;
  for (const auto& [n, v] : metric) {
    bool listed = std::find(m.labels.begin(), m.labels.end(), n) != m.labels.end();
    if (m.on ? listed : (!listed && n != "__name__")) shown.emplace_back(n, v);
  }
  return FormatLabels(shown);
}

std::string FormatLabels(const Labels& labels) {
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ", ";
    out += labels[i].first + "=";
    out += '"';
    for (char c : labels[i].second) {
      if (c == '"' || c == '\\') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

Value Evaluator::EvalCall(const Expr& e, TimestampMs ts) {
  const FunctionDef& f = *e.func;
  FunctionCall call{e, ts, {}, {}, 0, 0, 0};
  Value out;
  out.type = e.type;
  if (f.series_fn) {
    size_t matrix_arg = 0;
    if (const Expr* range_arg = RangeSelectorArg(e, &matrix_arg)) {
      ForEachRangeResult(e, *range_arg, matrix_arg, ts, [&](const LabelSet& metric, double v) {
        out.vector.push_back(Sample{f.keeps_metric_name ? metric : DropMetricName(metric), ts, v});
      });
      if (!f.keeps_metric_name && !OneName(range_arg->operand->matchers)) CheckUniqueLabelsets(out.vector);
      return out;
    }
    for (size_t i = 0; i < e.args.size(); ++i) {
      call.args.push_back(i == matrix_arg ? Value{} : Eval(*e.args[i], ts));
    }
    Window w;
    Matrix matrix = EvalRangeArg(*e.args[matrix_arg], ts, &w);
    call.range_start = w.start;
    call.range_end = w.end;
    call.range_ms = w.range;
    for (auto& s : matrix) {
      call.points = s.points;
      std::optional<double> v = f.series_fn(call);
      if (!v) continue;
      out.vector.push_back(
          Sample{f.keeps_metric_name ? std::move(s.metric) : DropMetricName(std::move(s.metric)), ts, *v});
    }
    CheckUniqueLabelsets(out.vector);
    return out;
  }
  for (const auto& arg : e.args) call.args.push_back(Eval(*arg, ts));
  Vector result = f.vector_fn(call);
  if (f.return_type == ValueType::kScalar) {
    out.scalar = result.empty() ? NAN : result.front().v;
    return out;
  }
  for (auto& s : result) s.t = ts;
  CheckUniqueLabelsets(result);
  out.vector = std::move(result);
  return out;
}

namespace {

constexpr std::size_t kNoGroup = ~std::size_t(0);

struct Group {
  LabelSet metric;
  std::uint64_t hash = 0;  // LabelsHash(metric)
  double value = 0;
  double mean = 0;
  long long count = 0;
  std::vector<Sample> samples;  // topk/bottomk/quantile
};

}  // namespace

Value Evaluator::EvalAggregate(const Expr& e, TimestampMs ts) {
  Value param;
  if (e.param) param = Eval(*e.param, ts);
  // These need each input sample, or check their parameter before evaluating the operand.
  const bool streams = e.agg != AggOp::kTopk && e.agg != AggOp::kBottomk && e.agg != AggOp::kQuantile &&
                       e.agg != AggOp::kCountValues;
  Value in;
  if (!streams) in = Eval(*e.operand, ts);
  Value out;
  out.type = ValueType::kVector;
  std::vector<std::string> grouping = e.grouping;
  std::sort(grouping.begin(), grouping.end());
  std::string value_label;
  if (e.agg == AggOp::kCountValues) {
    value_label = param.string;
    bool valid = !value_label.empty();
    for (size_t i = 0; i < value_label.size(); ++i) {
      char c = value_label[i];
      valid = valid && (c == '_' || std::isalpha(static_cast<unsigned char>(c)) ||
                        (i > 0 && std::isdigit(static_cast<unsigned char>(c))));
    }
    if (!valid) throw EvalError{"invalid label name \"" + value_label + "\""};
  }
  long long k = 0;
  if (e.agg == AggOp::kTopk || e.agg == AggOp::kBottomk) {
    double p = param.scalar;
    if (std::isnan(p) || p < 1) return out;
    k = p >= 9.2e18 ? std::numeric_limits<long long>::max() : static_cast<long long>(p);
  }
  // Groups by a hash of their labels in an open-addressing table of group indexes (told apart
  // by comparing). A sample's grouping labels are picked by walking its sorted labels next to
  // the sorted grouping list, and compared and hashed in place: only a new group copies them.
  // A new group's label set comes from the cache when the previous evaluation had that group,
  // and an input set the previous evaluation had goes to that group without reading its labels
  // (count_values groups by value too: not remembered).
  EvalCache::Impl::Aggregation* prev = nullptr;
  bool memo = false;
  if (cache_) {
    if (!cache_->impl_) cache_->impl_ = std::make_unique<EvalCache::Impl>();
    prev = &cache_->impl_->aggregations[&e];
    // The cache may have seen another expression at this address.
    if (prev->grouping != grouping || prev->without != e.without) {
      prev->inputs.Clear();
      prev->grouping = grouping;
      prev->without = e.without;
    }
    memo = e.agg != AggOp::kCountValues;
    // The inputs' group indexes point into the sets this evaluation replaces.
    if (memo)
      prev->inputs.Begin();
    else
      prev->inputs.Clear();
  }
  constexpr std::uint32_t kDroppedName = std::uint32_t(1) << 31;
  // Previous group index → this evaluation's.
  std::vector<std::uint32_t> prev_to_group(memo ? prev->sets.size() : 0, InputMemo::kNone);
  std::vector<Group> groups;
  std::vector<std::pair<std::uint64_t, std::size_t>> table(64, {0, kNoGroup});
  auto insert = [&](std::uint64_t hash, std::size_t group) {
    for (std::size_t i = hash & (table.size() - 1);; i = (i + 1) & (table.size() - 1)) {
      if (table[i].second == kNoGroup) {
        table[i] = {hash, group};
        return;
      }
    }
  };
  auto new_group = [&](LabelSet set, std::uint64_t hash, const LabelSet& metric, double v) {
    Group g;
    g.metric = std::move(set);
    g.hash = hash;
    g.value = v;
    g.mean = v;
    g.count = 1;
    if (e.agg == AggOp::kStddev || e.agg == AggOp::kStdvar) g.value = 0;
    if (e.agg == AggOp::kTopk || e.agg == AggOp::kBottomk || e.agg == AggOp::kQuantile)
      g.samples.push_back(Sample{metric, 0, v});
    groups.push_back(std::move(g));
    if (groups.size() * 2 > table.size()) {
      table.assign(table.size() * 4, {0, kNoGroup});
      for (std::size_t k = 0; k < groups.size(); ++k) insert(groups[k].hash, k);
    } else {
      insert(hash, groups.size() - 1);
    }
  };
  auto accumulate = [&](Group& g, const LabelSet& metric, double v) {
    ++g.count;
    switch (e.agg) {
      case AggOp::kSum: g.value += v; break;
      case AggOp::kAvg:
        if (std::isinf(g.mean)) {
          if (std::isinf(v) && (g.mean > 0) == (v > 0)) break;
          if (!std::isinf(v) && !std::isnan(v)) break;
        }
        g.mean += v / static_cast<double>(g.count) - g.mean / static_cast<double>(g.count);
        break;
      case AggOp::kMax:
        if (g.value < v || std::isnan(g.value)) g.value = v;
        break;
      case AggOp::kMin:
        if (g.value > v || std::isnan(g.value)) g.value = v;
        break;
      case AggOp::kStddev:
      case AggOp::kStdvar: {
        double delta = v - g.mean;
        g.mean += delta / static_cast<double>(g.count);
        g.value += delta * (v - g.mean);
        break;
      }
      case AggOp::kTopk:
      case AggOp::kBottomk:
      case AggOp::kQuantile: g.samples.push_back(Sample{metric, 0, v}); break;
      default: break;
    }
  };
  // `by` picks only the grouping names: their hashes are computed once.
  std::vector<std::size_t> grouping_hashes;
  for (const auto& name : grouping) grouping_hashes.push_back(std::hash<std::string_view>{}(name));
  std::vector<const Labels::value_type*> picked;
  std::vector<std::size_t> picked_name_hashes;
  Labels with_value;  // count_values: the grouping labels and the value label
  constexpr std::string_view kName = "__name__";
  // drop_name: `metric` has a __name__ the operand's result does not have.
  auto add = [&](const LabelSet& metric, double v, bool drop_name) {
    const std::uint32_t name_bit = drop_name ? kDroppedName : 0;
    if (memo) {
      const std::size_t k = prev->inputs.Find(metric);
      if (k != InputMemo::kMissing && (prev->inputs.value(k) & kDroppedName) == name_bit) {
        const std::uint32_t last = prev->inputs.value(k) & ~kDroppedName;
        std::uint32_t& now = prev_to_group[last];
        if (now == InputMemo::kNone) {
          now = static_cast<std::uint32_t>(groups.size());
          new_group(prev->sets[last], prev->sets[last].hash(), metric, v);
        } else {
          accumulate(groups[now], metric, v);
        }
        prev->inputs.Hit(k, now | name_bit);
        return;
      }
    }
    picked.clear();
    picked_name_hashes.clear();
    auto g_it = grouping.begin();
    for (const auto& l : metric) {
      if (drop_name && l.first == kName) continue;
      while (g_it != grouping.end() && *g_it < l.first) ++g_it;
      const bool listed = g_it != grouping.end() && *g_it == l.first;
      if (e.without ? !listed && l.first != kName : listed) {
        picked.push_back(&l);
        picked_name_hashes.push_back(e.without ? std::hash<std::string_view>{}(l.first)
                                               : grouping_hashes[std::size_t(g_it - grouping.begin())]);
      }
    }
    if (e.agg == AggOp::kCountValues) {
      with_value.clear();
      for (const auto* l : picked) with_value.push_back(*l);
      SetLabel(with_value, value_label, FormatFloatShortest(v));
      picked.clear();
      picked_name_hashes.clear();
      for (const auto& l : with_value) {
        picked.push_back(&l);
        picked_name_hashes.push_back(std::hash<std::string_view>{}(l.first));
      }
    }
    std::uint64_t hash = 0x9e3779b97f4a7c15ULL;
    for (std::size_t i = 0; i < picked.size(); ++i)
      hash = HashMix(HashMixHashed(hash, picked_name_hashes[i]), picked[i]->second);
    if (hash == 0) hash = 1;  // as LabelsHash
    auto same = [&](const Labels& m) {
      if (m.size() != picked.size()) return false;
      for (std::size_t i = 0; i < picked.size(); ++i)
        if (m[i] != *picked[i]) return false;
      return true;
    };
    std::size_t found = kNoGroup;
    for (std::size_t i = hash & (table.size() - 1); table[i].second != kNoGroup;
         i = (i + 1) & (table.size() - 1)) {
      if (table[i].first == hash && same(groups[table[i].second].metric.get())) {
        found = table[i].second;
        break;
      }
    }
    if (found == kNoGroup) {
      found = groups.size();
      LabelSet set;
      if (prev && !prev->table.empty()) {
        const std::size_t mask = prev->table.size() - 1;
        for (std::size_t i = hash & mask; prev->table[i].second != kNoGroup; i = (i + 1) & mask) {
          if (prev->table[i].first == hash && same(prev->sets[prev->table[i].second])) {
            set = prev->sets[prev->table[i].second];
            if (memo) prev_to_group[prev->table[i].second] = static_cast<std::uint32_t>(found);
            break;
          }
        }
      }
      if (set.empty() && !picked.empty()) {
        Labels labels;
        labels.reserve(picked.size());
        for (const auto* l : picked) labels.push_back(*l);
        set = LabelSet(std::move(labels), hash);
      }
      new_group(std::move(set), hash, metric, v);
    } else {
      accumulate(groups[found], metric, v);
    }
    if (memo) prev->inputs.Miss(metric, static_cast<std::uint32_t>(found) | name_bit);
  };
  if (!streams || !Stream(*e.operand, ts, add)) {
    if (streams) in = Eval(*e.operand, ts);
    for (const auto& s : in.vector) add(s.metric, s.v, false);
  }
  if (prev) {
    if (memo) prev->inputs.End();
    prev->sets.clear();
    for (const auto& g : groups) prev->sets.push_back(g.metric);
    prev->table = std::move(table);
  }
  out.vector.reserve(e.agg == AggOp::kTopk || e.agg == AggOp::kBottomk ? 0 : groups.size());
  for (auto& g : groups) {
    double v = g.value;
    switch (e.agg) {
      case AggOp::kAvg: v = g.mean; break;
      case AggOp::kCount:
      case AggOp::kCountValues: v = static_cast<double>(g.count); break;
      case AggOp::kGroup: v = 1; break;
      case AggOp::kStdvar: v = g.value / static_cast<double>(g.count); break;
      case AggOp::kStddev: v = std::sqrt(g.value / static_cast<double>(g.count)); break;
      case AggOp::kQuantile: {
        std::vector<double> values;
        for (const auto& s : g.samples) values.push_back(s.v);
        v = Quantile(param.scalar, std::move(values));
        break;
      }
      case AggOp::kTopk:
      case AggOp::kBottomk: {
        bool top = e.agg == AggOp::kTopk;
        std::stable_sort(g.samples.begin(), g.samples.end(), [top](const Sample& a, const Sample& b) {
          if (std::isnan(a.v) || std::isnan(b.v)) return !std::isnan(a.v) && std::isnan(b.v);
          return top ? a.v > b.v : a.v < b.v;
        });
        if (static_cast<long long>(g.samples.size()) > k) g.samples.resize(static_cast<size_t>(k));
        for (auto& s : g.samples) out.vector.push_back(Sample{std::move(s.metric), ts, s.v});
        continue;
      }
      default: break;
    }
    out.vector.push_back(Sample{std::move(g.metric), ts, v});
  }
  return out;
}

double Quantile(double q, std::vector<double> values) {
  if (values.empty() || std::isnan(q)) return NAN;
  if (q < 0) return -INFINITY;
  if (q > 1) return INFINITY;
  // NaN sorts first, as with Prometheus' sort of samples by value.
  std::sort(values.begin(), values.end(),
            [](double a, double b) { return std::isnan(a) ? !std::isnan(b) : a < b; });
  double n = static_cast<double>(values.size());
  double rank = q * (n - 1);
  double lower = std::max(0.0, std::floor(rank));
  double upper = std::min(n - 1, lower + 1);
  double weight = rank - std::floor(rank);
  return values[static_cast<size_t>(lower)] * (1 - weight) + values[static_cast<size_t>(upper)] * weight;
}

namespace {

EvalResult Run(const std::function<Value()>& fn) {
  EvalResult result;
  try {
    result.value = fn();
  } catch (const EvalError& e) {
    result.error = Error{e.message, 0, 0};
  }
  return result;
}

}  // namespace

EvalResult EvalInstant(const Expr& expr, const Queryable& storage, TimestampMs t,
                       const EvalOptions& options) {
  return Run([&] {
    Evaluator ev(storage, t, t, options);
    Value v = ev.Eval(expr, t);
    for (auto& s : v.vector) s.t = t;
    return v;
  });
}

EvalResult EvalInstant(const Expr& expr, const Queryable& storage, TimestampMs t) {
  return EvalInstant(expr, storage, t, EvalOptions{});
}

EvalResult EvalRange(const Expr& expr, const Queryable& storage, TimestampMs start, TimestampMs end,
                     TimestampMs step, const EvalOptions& options) {
  return Run([&] {
    if (expr.type != ValueType::kScalar && expr.type != ValueType::kVector) {
      throw EvalError{
          "invalid expression type \"" +
          std::string(expr.type == ValueType::kMatrix ? "range vector" : ValueTypeName(expr.type)) +
          "\" for range query, must be Scalar or instant Vector"};
    }
    if (step <= 0) throw EvalError{"zero or negative query resolution step widths are not accepted"};
    Evaluator ev(storage, start, end, options);
    if ((end - start) / step > 11000) {
      throw EvalError{
          "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution "
          "(?step=XX)"};
    }
    std::map<Labels, Series> series;
    for (TimestampMs t = start; t <= end; t = end - t < step ? end + 1 : t + step) {
      Value v = ev.Eval(expr, t);
      if (v.type == ValueType::kScalar) {
        auto& s = series[Labels{}];
        s.points.push_back(Point{t, v.scalar});
        continue;
      }
      for (auto& sample : v.vector) {
        auto& s = series[sample.metric];
        if (s.points.empty()) s.metric = sample.metric;
        s.points.push_back(Point{t, sample.v});
      }
    }
    Value out;
    out.type = ValueType::kMatrix;
    for (auto& [_, s] : series) out.matrix.push_back(std::move(s));
    return out;
  });
}

EvalResult EvalRange(const Expr& expr, const Queryable& storage, TimestampMs start, TimestampMs end,
                     TimestampMs step) {
  return EvalRange(expr, storage, start, end, step, EvalOptions{});
}

}  // namespace runbook::promql

namespace runbook::promql {
namespace {

void CollectSelectors(const Expr& e, TimestampMs extra, bool pinned, std::vector<SelectorUse>& out) {
  auto use = [&](const Expr& vs, TimestampMs window, bool range) {
    bool fixed = pinned || vs.at == AtMode::kTimestamp;
    TimestampMs base = vs.at == AtMode::kTimestamp ? 0 : extra;
    TimestampMs reach = std::max<TimestampMs>(0, base + vs.offset_ms + window);
    out.push_back(SelectorUse{vs.matchers, reach, fixed, range || reach > kLookbackDeltaMs});
  };
  switch (e.kind) {
    case ExprKind::kVectorSelector: use(e, kLookbackDeltaMs, false); return;
    case ExprKind::kMatrixSelector: use(*e.operand, e.range_ms, true); return;
    case ExprKind::kSubquery: {
      bool fixed = pinned || e.at == AtMode::kTimestamp;
      TimestampMs base = e.at == AtMode::kTimestamp ? 0 : extra;
      CollectSelectors(*e.operand, std::max<TimestampMs>(0, base + e.offset_ms + e.range_ms), fixed, out);
      return;
    }
    default: break;
  }
  for (const auto* child : {&e.operand, &e.lhs, &e.rhs, &e.param}) {
    if (*child) CollectSelectors(**child, extra, pinned, out);
  }
  for (const auto& a : e.args) CollectSelectors(*a, extra, pinned, out);
}

}  // namespace

std::vector<SelectorUse> Selectors(const Expr& expr) {
  std::vector<SelectorUse> out;
  CollectSelectors(expr, 0, false, out);
  return out;
}

}  // namespace runbook::promql
