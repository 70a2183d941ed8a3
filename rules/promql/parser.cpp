// PromQL parser: recursive descent over the lexer's tokens with Prometheus' operator
// precedence, followed by the type checks Prometheus runs on a syntactically valid tree.

#include <re2/re2.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>

#include "go_text.h"
#include "promql/ast.h"
#include "promql/functions.h"
#include "promql/lexer.h"

namespace runbook::promql {

bool IsComparison(BinOp op) {
  return op >= BinOp::kEql && op <= BinOp::kLte;
}
bool IsSetOperator(BinOp op) {
  return op == BinOp::kAnd || op == BinOp::kOr || op == BinOp::kUnless;
}

std::string_view BinOpText(BinOp op) {
  static constexpr std::string_view kText[] = {
      "+", "-", "*", "/", "%", "^", "atan2", "==", "!=", ">", "<", ">=", "<=", "and", "or", "unless"};
  return kText[static_cast<int>(op)];
}

std::string_view AggOpText(AggOp op) {
  static constexpr std::string_view kText[] = {"sum",   "min",     "max",      "avg",
                                               "count", "group",   "stddev",   "stdvar",
                                               "topk",  "bottomk", "quantile", "count_values"};
  return kText[static_cast<int>(op)];
}

std::string_view ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kScalar: return "scalar";
    case ValueType::kVector: return "vector";
    case ValueType::kMatrix: return "matrix";
    case ValueType::kString: return "string";
    default: return "none";
  }
}

const Expr& Unparen(const Expr& e) {
  const Expr* p = &e;
  while (p->kind == ExprKind::kParen) p = p->operand.get();
  return *p;
}

std::string Error::ToString() const {
  if (line == 0) return message;
  return std::to_string(line) + ":" + std::to_string(column) + ": parse error: " + message;
}

// Go's regexp error text (RE2 and Go share the parser, not the wording).
static std::string RegexErrorText(const RE2& re) {
  std::string code;
  switch (re.error_code()) {
    case RE2::ErrorMissingParen: code = "missing closing )"; break;
    case RE2::ErrorMissingBracket: code = "missing closing ]"; break;
    case RE2::ErrorUnexpectedParen: code = "unexpected )"; break;
    case RE2::ErrorRepeatOp: code = "invalid nested repetition operator"; break;
    case RE2::ErrorRepeatArgument: code = "missing argument to repetition operator"; break;
    case RE2::ErrorRepeatSize: code = "invalid repeat count"; break;
    case RE2::ErrorBadEscape: code = "invalid escape sequence"; break;
    case RE2::ErrorBadCharRange: code = "invalid character class range"; break;
    case RE2::ErrorBadCharClass: code = "invalid character class"; break;
    case RE2::ErrorTrailingBackslash: code = "trailing backslash at end of expression"; break;
    case RE2::ErrorBadPerlOp: code = "invalid or unsupported Perl syntax"; break;
    case RE2::ErrorBadNamedCapture: code = "invalid named capture"; break;
    case RE2::ErrorBadUTF8: code = "invalid UTF-8"; break;
    default: return re.error();
  }
  return code + ": `" + re.error_arg() + "`";
}

std::optional<Matcher> Matcher::Make(Op op, std::string name, std::string value, std::string* error) {
  Matcher m;
  m.op_ = op;
  m.name_ = std::move(name);
  m.value_ = std::move(value);
  if (op == Op::kRegexMatch || op == Op::kRegexNoMatch) {
    RE2::Options options;
    options.set_log_errors(false);
    auto re = std::make_shared<RE2>("^(?:" + m.value_ + ")$", options);
    if (!re->ok()) {
      if (error) *error = "error parsing regexp: " + RegexErrorText(*re);
      return std::nullopt;
    }
    // Prometheus also parses the bare value, which rejects e.g. `a)|(b`.
    RE2 bare(m.value_, options);
    if (!bare.ok()) {
      if (error) *error = "error parsing regexp: " + RegexErrorText(bare);
      return std::nullopt;
    }
    m.regex_ = std::move(re);
  }
  return m;
}

bool Matcher::Matches(std::string_view value) const {
  switch (op_) {
    case Op::kEqual: return value == value_;
    case Op::kNotEqual: return value != value_;
    case Op::kRegexMatch: return RE2::FullMatch(value, *static_cast<const RE2*>(regex_.get()));
    case Op::kRegexNoMatch: return !RE2::FullMatch(value, *static_cast<const RE2*>(regex_.get()));
  }
  return false;
}

namespace {

struct Failure {
  int pos;
  std::string message;
};

// strconv.ParseInt(s, 0, 64) then strconv.ParseFloat(s, 64), as Prometheus reads numbers.
std::optional<double> ParseNumber(const std::string& s, std::string* error) {
  *error = "error parsing number: strconv.ParseFloat: parsing " + GoQuote(s) + ": invalid syntax";
  if (s.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long n = std::strtoll(s.c_str(), &end, 0);
  if (errno == 0 && end == s.c_str() + s.size() && std::isdigit(static_cast<unsigned char>(s[0]))) {
    return static_cast<double>(n);
  }
  errno = 0;
  double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  if (errno == ERANGE && std::isinf(d)) {
    *error = "error parsing number: strconv.ParseFloat: parsing " + GoQuote(s) + ": value out of range";
    return std::nullopt;
  }
  return d;
}

bool IsLabelName(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

int Precedence(Tok t) {
  switch (t) {
    case Tok::kLor: return 1;
    case Tok::kLand:
    case Tok::kLunless: return 2;
    case Tok::kEqlc:
    case Tok::kNeq:
    case Tok::kLss:
    case Tok::kLte:
    case Tok::kGtr:
    case Tok::kGte: return 3;
    case Tok::kAdd:
    case Tok::kSub: return 4;
    case Tok::kMul:
    case Tok::kDiv:
    case Tok::kMod:
    case Tok::kAtan2: return 5;
    case Tok::kPow: return 6;
    default: return 0;
  }
}

BinOp ToBinOp(Tok t) {
  switch (t) {
    case Tok::kAdd: return BinOp::kAdd;
    case Tok::kSub: return BinOp::kSub;
    case Tok::kMul: return BinOp::kMul;
    case Tok::kDiv: return BinOp::kDiv;
    case Tok::kMod: return BinOp::kMod;
    case Tok::kPow: return BinOp::kPow;
    case Tok::kAtan2: return BinOp::kAtan2;
    case Tok::kEqlc: return BinOp::kEql;
    case Tok::kNeq: return BinOp::kNeq;
    case Tok::kGtr: return BinOp::kGtr;
    case Tok::kLss: return BinOp::kLss;
    case Tok::kGte: return BinOp::kGte;
    case Tok::kLte: return BinOp::kLte;
    case Tok::kLand: return BinOp::kAnd;
    case Tok::kLor: return BinOp::kOr;
    default: return BinOp::kUnless;
  }
}

bool IsKeywordToken(Tok t) {
  switch (t) {
    case Tok::kLand:
    case Tok::kLor:
    case Tok::kLunless:
    case Tok::kAtan2:
    case Tok::kAggregator:
    case Tok::kBool:
    case Tok::kBy:
    case Tok::kWithout:
    case Tok::kOn:
    case Tok::kIgnoring:
    case Tok::kGroupLeft:
    case Tok::kGroupRight:
    case Tok::kOffset:
    case Tok::kStart:
    case Tok::kEnd: return true;
    default: return false;
  }
}

std::optional<AggOp> ToAggOp(std::string_view word) {
  std::string lower;
  for (char c : word) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (int i = 0; i <= static_cast<int>(AggOp::kCountValues); ++i) {
    if (AggOpText(static_cast<AggOp>(i)) == lower) return static_cast<AggOp>(i);
  }
  return std::nullopt;
}

std::string_view DocumentedType(ValueType t) {
  switch (t) {
    case ValueType::kVector: return "instant vector";
    case ValueType::kMatrix: return "range vector";
    default: return ValueTypeName(t);
  }
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text), toks_(Lex(text)) {}

  ExprPtr ParseTop() {
    ExprPtr e = ParseExpr(1);
    if (Peek().type != Tok::kEOF) Unexpected("");
    if (!recorded_.empty()) throw recorded_.front();
    Check(*e);
    return e;
  }

  Labels ParseMetricOnly() {
    Labels labels;
    const Token& t = Peek();
    std::string name;
    if (t.type == Tok::kIdentifier || t.type == Tok::kMetricIdentifier || IsKeywordToken(t.type)) {
      name = Next().text;
    }
    if (Peek().type == Tok::kLeftBrace) {
      Next();
      for (;;) {
        if (Peek().type == Tok::kRightBrace) break;
        if (Peek().type != Tok::kIdentifier) Unexpected("label set", "identifier or \"}\"");
        std::string label = Next().text;
        if (Peek().type != Tok::kAssign) Unexpected("label set", "\"=\"");
        Next();
        if (Peek().type != Tok::kString) Unexpected("label set", "string");
        labels.emplace_back(label, Next().text);
        if (Peek().type == Tok::kComma) {
          Next();
          continue;
        }
        if (Peek().type != Tok::kRightBrace) Unexpected("label set", "\",\" or \"}\"");
      }
      Next();
    } else if (name.empty()) {
      Unexpected("", "metric name or \"{\"");
    }
    if (!name.empty()) labels.emplace_back("__name__", name);
    return labels;
  }

  const Token& Peek() const { return toks_[i_]; }
  const Token& Next() {
    const Token& t = toks_[i_];
    if (i_ + 1 < toks_.size()) ++i_;
    return t;
  }

  [[noreturn]] void Fail(int pos, std::string message) { throw Failure{pos, std::move(message)}; }
  // An error found when a construct is complete (yacc's actions): parsing goes on, and the first
  // one is reported unless a syntax error came before it.
  void Record(int pos, std::string message) { recorded_.push_back(Failure{pos, std::move(message)}); }
  const std::vector<Failure>& recorded() const { return recorded_; }

  [[noreturn]] void Unexpected(std::string_view context, std::string_view expected = "") {
    const Token& t = Peek();
    if (t.type == Tok::kError) Fail(t.pos, t.text);
    if (context.empty() && !contexts_.empty()) context = contexts_.back();
    std::string msg = "unexpected " + Describe(t);
    if (!context.empty()) msg += " in " + std::string(context);
    if (!expected.empty()) msg += ", expected " + std::string(expected);
    Fail(t.pos, msg);
  }

 private:
  ExprPtr NewNode(ExprKind kind, int start, int end) {
    auto e = std::make_shared<Expr>();
    e->kind = kind;
    e->start = start;
    e->end = end;
    return e;
  }

  ExprPtr ParseExpr(int min_prec) {
    // Parsing, checking, evaluation and Format recurse over the tree: bound its depth so a
    // hostile rule cannot exhaust the stack. (Prometheus has no such limit; 500 is far beyond use.)
    struct Depth {
      explicit Depth(int& d) : d_(d) { ++d_; }
      ~Depth() { --d_; }
      int& d_;
    } depth(depth_);
    if (depth_ > 500) Fail(Peek().pos, "expression nested too deeply");
    ExprPtr lhs = ParseUnary();
    for (int chain = 1;; ++chain) {
      const Token& t = Peek();
      int prec = Precedence(t.type);
      if (prec == 0 || prec < min_prec) break;
      if (depth_ + chain > 500) Fail(t.pos, "expression nested too deeply");
      Next();
      auto bin = NewNode(ExprKind::kBinary, lhs->start, 0);
      bin->op = ToBinOp(t.type);
      if (Peek().type == Tok::kBool) {
        Next();
        bin->return_bool = true;
      }
      if (Peek().type == Tok::kOn || Peek().type == Tok::kIgnoring) {
        bin->matching.on = Next().type == Tok::kOn;
        bin->matching.explicit_clause = true;
        bin->matching.labels = ParseLabelList("grouping opts");
        if (Peek().type == Tok::kGroupLeft || Peek().type == Tok::kGroupRight) {
          bin->matching.card = Next().type == Tok::kGroupLeft ? VectorMatching::Card::kManyToOne
                                                              : VectorMatching::Card::kOneToMany;
          if (Peek().type == Tok::kLeftParen) bin->matching.include = ParseLabelList("grouping opts");
        }
      }
      bin->lhs = lhs;
      depth_ += chain;  // the right operand sits that much deeper in the tree
      bin->rhs = ParseExpr(prec == 6 ? prec : prec + 1);
      depth_ -= chain;
      bin->end = bin->rhs->end;
      lhs = bin;
    }
    return lhs;
  }

  ExprPtr ParseUnary() {
    const Token& t = Peek();
    if (t.type == Tok::kAdd || t.type == Tok::kSub) {
      Next();
      bool neg = t.type == Tok::kSub;
      int start = t.pos;
      ExprPtr operand = ParseExpr(6);
      if (operand->kind == ExprKind::kNumber) {
        if (neg) operand->number = -operand->number;
        operand->start = start;
        return operand;
      }
      auto u = NewNode(ExprKind::kUnary, start, operand->end);
      u->op = neg ? BinOp::kSub : BinOp::kAdd;
      u->operand = operand;
      return u;
    }
    return ParsePostfix();
  }

  long long ExpectDuration(std::string_view context, std::string_view expected) {
    const Token& t = Peek();
    if (t.type != Tok::kDuration) Unexpected(context, expected);
    long long ms = 0;
    if (!ParseDurationMs(t.text, &ms)) {
      Record(t.pos, "not a valid duration string: " + GoQuote(t.text));
    } else if (ms == 0) {
      Record(t.pos, "duration must be greater than 0");
    }
    Next();
    return ms;
  }

  ExprPtr ParsePostfix() {
    ExprPtr e = ParsePrimary();
    for (int chain = 1;; ++chain) {
      const Token& t = Peek();
      if (depth_ + chain > 500) Fail(t.pos, "expression nested too deeply");
      if (t.type == Tok::kLeftBracket) {
        int bracket = t.pos;
        Next();
        long long range = ExpectDuration("", "");
        if (Peek().type == Tok::kColon) {
          Next();
          long long step = 0;
          if (Peek().type != Tok::kRightBracket)
            step = ExpectDuration("subquery selector", "duration or \"]\"");
          if (Peek().type != Tok::kRightBracket) Unexpected("subquery selector", "\"]\"");
          auto sq = NewNode(ExprKind::kSubquery, e->start, Next().end);
          sq->operand = e;
          sq->range_ms = range;
          sq->step_ms = step;
          e = sq;
          continue;
        }
        if (Peek().type != Tok::kRightBracket) Unexpected("subquery or range", "\":\" or \"]\"");
        int end = Next().end;
        if (e->kind != ExprKind::kVectorSelector) {
          Record(bracket, "ranges only allowed for vector selectors");
        } else if (e->offset_ms != 0 || offset_set_.count(e.get())) {
          Record(bracket, "no offset modifiers allowed before range");
        } else if (e->at != AtMode::kNone) {
          Record(bracket, "no @ modifiers allowed before range");
        }
        auto m = NewNode(ExprKind::kMatrixSelector, e->start, end);
        m->operand = e;
        m->range_ms = range;
        e = m;
        continue;
      }
      if (t.type == Tok::kOffset) {
        Next();
        bool neg = false;
        if (Peek().type == Tok::kSub) {
          Next();
          neg = true;
        }
        int end_pos = Peek().end;
        long long ms = ExpectDuration("offset", "duration");
        Expr* target = ModifierTarget(*e, "offset modifier");
        if (target && offset_set_.count(target)) {
          Record(e->start, "offset may not be set multiple times");
        } else if (target) {
          offset_set_.insert(target);
          target->offset_ms = neg ? -ms : ms;
        }
        e->end = end_pos;
        continue;
      }
      if (t.type == Tok::kAt) {
        Next();
        const Token& v = Peek();
        auto target_for = [&]() -> Expr* {
          Expr* target = ModifierTarget(*e, "@ modifier");
          if (target && target->at != AtMode::kNone) {
            Record(e->start, "@ <timestamp> may not be set multiple times");
            return nullptr;
          }
          return target;
        };
        if (v.type == Tok::kStart || v.type == Tok::kEnd) {
          Next();
          if (Peek().type != Tok::kLeftParen) Unexpected("@", "timestamp");
          Next();
          if (Peek().type != Tok::kRightParen) Unexpected("@", "timestamp");
          e->end = Next().end;
          if (Expr* target = target_for()) target->at = v.type == Tok::kStart ? AtMode::kStart : AtMode::kEnd;
          continue;
        }
        bool neg = false;
        if (Peek().type == Tok::kAdd || Peek().type == Tok::kSub) neg = Next().type == Tok::kSub;
        if (Peek().type != Tok::kNumber) Unexpected("@", "timestamp");
        const Token& num = Next();
        e->end = num.end;
        std::string err;
        auto value = ParseNumber(num.text, &err);
        if (!value) {
          Record(num.pos, err);
          continue;
        }
        double secs = neg ? -*value : *value;
        Expr* target = target_for();
        if (std::isnan(secs) || std::isinf(secs) || secs * 1000 >= 9.2e18 || secs * 1000 <= -9.2e18) {
          char buf[64];
          std::snprintf(buf, sizeof buf, "%f", secs);
          Record(e->start, std::string("timestamp out of bounds for @ modifier: ") + buf);
          continue;
        }
        if (target) {
          target->at = AtMode::kTimestamp;
          target->at_ms = static_cast<TimestampMs>(std::llround(secs * 1000));
        }
        continue;
      }
      break;
    }
    return e;
  }

  Expr* ModifierTarget(Expr& e, std::string_view what) {
    if (e.kind == ExprKind::kVectorSelector || e.kind == ExprKind::kSubquery) return &e;
    if (e.kind == ExprKind::kMatrixSelector) return e.operand.get();
    Record(e.start,
           std::string(what) +
               " must be preceded by an instant vector selector or range vector selector or a subquery");
    return nullptr;
  }

  ExprPtr ParsePrimary() {
    const Token& t = Peek();
    switch (t.type) {
      case Tok::kNumber: {
        Next();
        std::string err;
        auto value = ParseNumber(t.text, &err);
        if (!value) Record(t.pos, err);
        auto e = NewNode(ExprKind::kNumber, t.pos, t.end);
        e->number = value.value_or(0);
        return e;
      }
      case Tok::kString: {
        Next();
        auto e = NewNode(ExprKind::kString, t.pos, t.end);
        e->text = t.text;
        return e;
      }
      case Tok::kLeftParen: {
        Next();
        ExprPtr inner = ParseExpr(1);
        if (Peek().type != Tok::kRightParen) Unexpected("");
        auto e = NewNode(ExprKind::kParen, t.pos, Next().end);
        e->operand = inner;
        return e;
      }
      case Tok::kLeftBrace: return ParseSelector("", t.pos);
      case Tok::kAggregator: {
        Tok next = toks_[i_ + 1].type;
        if (next == Tok::kLeftParen || next == Tok::kBy || next == Tok::kWithout) return ParseAggregate();
        [[fallthrough]];
      }
      case Tok::kIdentifier:
      case Tok::kMetricIdentifier:
      case Tok::kLand:
      case Tok::kLor:
      case Tok::kLunless:
      case Tok::kBy:
      case Tok::kWithout:
      case Tok::kOffset:
      case Tok::kStart:
      case Tok::kEnd: {
        Next();
        if (t.type == Tok::kIdentifier && Peek().type == Tok::kLeftParen) return ParseCall(t);
        return ParseSelector(t.text, t.pos);
      }
      default: Unexpected("");
    }
  }

  ExprPtr ParseCall(const Token& name) {
    const FunctionDef* def = FindFunction(name.text);
    Next();  // (
    auto e = NewNode(ExprKind::kCall, name.pos, 0);
    e->func = def;
    e->args = ParseArgs("");
    e->end = Next().end;
    if (!def) {
      Record(name.pos, "unknown function with name " + GoQuote(name.text));
      return e;
    }
    e->type = def->return_type;
    return e;
  }

  static bool CanStartExpr(Tok t) {
    switch (t) {
      case Tok::kNumber:
      case Tok::kString:
      case Tok::kLeftParen:
      case Tok::kLeftBrace:
      case Tok::kIdentifier:
      case Tok::kMetricIdentifier:
      case Tok::kAdd:
      case Tok::kSub:
      case Tok::kAggregator:
      case Tok::kLand:
      case Tok::kLor:
      case Tok::kLunless:
      case Tok::kBy:
      case Tok::kWithout:
      case Tok::kOffset:
      case Tok::kStart:
      case Tok::kEnd: return true;  // keywords Prometheus also accepts as metric names
      default: return false;
    }
  }

  // Comma-separated arguments up to (not including) the closing parenthesis.
  std::vector<ExprPtr> ParseArgs(std::string_view context) {
    if (!context.empty()) contexts_.push_back(context);
    std::vector<ExprPtr> args;
    if (Peek().type != Tok::kRightParen) {
      for (;;) {
        args.push_back(ParseExpr(1));
        if (Peek().type == Tok::kComma) {
          int comma = Next().pos;
          while (!CanStartExpr(Peek().type) && Peek().type != Tok::kError) {
            Record(comma, "trailing commas not allowed in function call args");
            if (Peek().type != Tok::kComma) break;
            comma = Next().pos;
          }
          if (Peek().type == Tok::kRightParen) break;
          continue;
        }
        if (Peek().type != Tok::kRightParen) Unexpected("");
        break;
      }
    }
    if (!context.empty()) contexts_.pop_back();
    return args;
  }

  std::vector<std::string> ParseLabelList(std::string_view context) {
    if (Peek().type != Tok::kLeftParen) Unexpected(context, "\"(\"");
    Next();
    std::vector<std::string> labels;
    for (;;) {
      const Token& t = Peek();
      if (t.type == Tok::kRightParen) break;
      if (t.type != Tok::kIdentifier && !IsKeywordToken(t.type)) Unexpected(context, "label");
      if (!IsLabelName(t.text)) Fail(t.pos, "invalid label name " + GoQuote(t.text));
      labels.push_back(Next().text);
      if (Peek().type == Tok::kComma) {
        Next();
        continue;
      }
      if (Peek().type != Tok::kRightParen) Unexpected(context, "\",\" or \")\"");
    }
    Next();
    return labels;
  }

  ExprPtr ParseAggregate() {
    const Token& t = Next();
    auto e = NewNode(ExprKind::kAggregate, t.pos, 0);
    e->agg = *ToAggOp(t.text);
    e->type = ValueType::kVector;
    auto grouping = [&] {
      e->has_grouping = true;
      e->without = Next().type == Tok::kWithout;
      e->grouping = ParseLabelList("grouping opts");
    };
    if (Peek().type == Tok::kBy || Peek().type == Tok::kWithout) {
      grouping();
      if (Peek().type != Tok::kLeftParen) Unexpected("aggregation");
    }
    if (Peek().type != Tok::kLeftParen) Unexpected("");
    Next();
    std::vector<ExprPtr> args = ParseArgs("aggregation");
    e->end = Next().end;
    if (!e->has_grouping && (Peek().type == Tok::kBy || Peek().type == Tok::kWithout)) {
      grouping();
      e->end = toks_[i_ - 1].end;
    }
    size_t want = (e->agg == AggOp::kTopk || e->agg == AggOp::kBottomk || e->agg == AggOp::kQuantile ||
                   e->agg == AggOp::kCountValues)
                      ? 2
                      : 1;
    if (args.empty()) {
      Record(e->start, "no arguments for aggregate expression provided");
      return e;
    }
    if (args.size() != want) {
      Record(e->start, "wrong number of arguments for aggregate expression provided, expected " +
                           std::to_string(want) + ", got " + std::to_string(args.size()));
      return e;
    }
    if (want == 2) e->param = args[0];
    e->operand = args.back();
    return e;
  }

  ExprPtr ParseSelector(const std::string& name, int start) {
    auto e = NewNode(ExprKind::kVectorSelector, start, toks_[i_ - (name.empty() ? 0 : 1)].end);
    e->type = ValueType::kVector;
    e->text = name;
    if (Peek().type == Tok::kLeftBrace) {
      Next();
      for (;;) {
        if (Peek().type == Tok::kRightBrace) break;
        if (Peek().type != Tok::kIdentifier) Unexpected("label matching", "identifier or \"}\"");
        const Token& label = Next();
        Matcher::Op op;
        switch (Peek().type) {
          case Tok::kAssign: op = Matcher::Op::kEqual; break;
          case Tok::kNeq: op = Matcher::Op::kNotEqual; break;
          case Tok::kEqlRegex: op = Matcher::Op::kRegexMatch; break;
          case Tok::kNeqRegex: op = Matcher::Op::kRegexNoMatch; break;
          default: Unexpected("label matching", "label matching operator");
        }
        Next();
        if (Peek().type != Tok::kString) Unexpected("label matching", "string");
        const Token& value = Next();
        std::string err;
        auto m = Matcher::Make(op, label.text, value.text, &err);
        if (m) {
          e->matchers.push_back(std::move(*m));
        } else {
          Record(label.pos, err);
        }
        if (Peek().type == Tok::kComma) {
          Next();
          continue;
        }
        if (Peek().type != Tok::kRightBrace) Unexpected("label matching", "\",\" or \"}\"");
      }
      e->end = Next().end;
    }
    if (!name.empty()) {
      std::string err;
      e->matchers.push_back(*Matcher::Make(Matcher::Op::kEqual, "__name__", name, &err));
    }
    return e;
  }

  // Prometheus' checkAST: types of operands and arguments, on a syntactically valid tree.
  ValueType Check(Expr& n) {
    switch (n.kind) {
      case ExprKind::kNumber: n.type = ValueType::kScalar; break;
      case ExprKind::kString: n.type = ValueType::kString; break;
      case ExprKind::kVectorSelector: {
        n.type = ValueType::kVector;
        if (!n.text.empty()) {
          for (size_t i = 0; i + 1 < n.matchers.size(); ++i) {
            if (n.matchers[i].name() == "__name__") {
              Fail(n.start, "metric name must not be set twice: " + GoQuote(n.text) + " or " +
                                GoQuote(n.matchers[i].value()));
            }
          }
        }
        bool not_empty = false;
        for (const auto& m : n.matchers) not_empty = not_empty || !m.Matches("");
        if (!not_empty) Fail(n.start, "vector selector must contain at least one non-empty matcher");
        break;
      }
      case ExprKind::kMatrixSelector:
        Check(*n.operand);
        n.type = ValueType::kMatrix;
        break;
      case ExprKind::kSubquery: {
        ValueType t = Check(*n.operand);
        if (t != ValueType::kVector) {
          Fail(n.start, "subquery is only allowed on instant vector, got " + std::string(ValueTypeName(t)) +
                            " instead");
        }
        n.type = ValueType::kMatrix;
        break;
      }
      case ExprKind::kParen: n.type = Check(*n.operand); break;
      case ExprKind::kUnary: {
        ValueType t = Check(*n.operand);
        if (t != ValueType::kScalar && t != ValueType::kVector) {
          Fail(n.start,
               "unary expression only allowed on expressions of type scalar or instant vector, got " +
                   GoQuote(DocumentedType(t)));
        }
        n.type = t;
        break;
      }
      case ExprKind::kBinary: CheckBinary(n); break;
      case ExprKind::kCall: CheckCall(n); break;
      case ExprKind::kAggregate:
        ExpectType(*n.operand, ValueType::kVector, "aggregation expression");
        if (n.agg == AggOp::kTopk || n.agg == AggOp::kBottomk || n.agg == AggOp::kQuantile) {
          ExpectType(*n.param, ValueType::kScalar, "aggregation parameter");
        }
        if (n.agg == AggOp::kCountValues) ExpectType(*n.param, ValueType::kString, "aggregation parameter");
        n.type = ValueType::kVector;
        break;
    }
    return n.type;
  }

  void ExpectType(Expr& n, ValueType want, std::string_view context) {
    ValueType t = Check(n);
    if (t != want) {
      Fail(n.start, "expected type " + std::string(DocumentedType(want)) + " in " + std::string(context) +
                        ", got " + std::string(DocumentedType(t)));
    }
  }

  void CheckBinary(Expr& n) {
    ValueType lt = Check(*n.lhs);
    ValueType rt = Check(*n.rhs);
    int op_pos = n.lhs->end;
    while (op_pos < static_cast<int>(text_.size()) &&
           std::isspace(static_cast<unsigned char>(text_[op_pos]))) {
      ++op_pos;
    }
    if (n.return_bool && !IsComparison(n.op))
      Fail(op_pos, "bool modifier can only be used on comparison operators");
    if (IsComparison(n.op) && !n.return_bool && lt == ValueType::kScalar && rt == ValueType::kScalar) {
      Fail(op_pos, "comparisons between scalars must use BOOL modifier");
    }
    if (IsSetOperator(n.op) && n.matching.card == VectorMatching::Card::kOneToOne) {
      n.matching.card = VectorMatching::Card::kManyToMany;
    }
    if (n.matching.on) {
      for (const auto& a : n.matching.labels) {
        for (const auto& b : n.matching.include) {
          if (a == b) Fail(op_pos, "label " + GoQuote(a) + " must not occur in ON and GROUP clause at once");
        }
      }
    }
    if (lt != ValueType::kScalar && lt != ValueType::kVector) {
      Fail(n.lhs->start, "binary expression must contain only scalar and instant vector types");
    }
    if (rt != ValueType::kScalar && rt != ValueType::kVector) {
      Fail(n.rhs->start, "binary expression must contain only scalar and instant vector types");
    }
    if (lt != ValueType::kVector || rt != ValueType::kVector) {
      if (!n.matching.labels.empty()) Fail(n.start, "vector matching only allowed between instant vectors");
      n.has_matching = false;
    } else {
      n.has_matching = true;
      if (IsSetOperator(n.op)) {
        if (n.matching.card == VectorMatching::Card::kOneToMany ||
            n.matching.card == VectorMatching::Card::kManyToOne) {
          Fail(n.start, "no grouping allowed for \"" + std::string(BinOpText(n.op)) + "\" operation");
        }
      }
    }
    if ((lt == ValueType::kScalar || rt == ValueType::kScalar) && IsSetOperator(n.op)) {
      Fail(n.start,
           "set operator \"" + std::string(BinOpText(n.op)) + "\" not allowed in binary scalar expression");
    }
    n.type = (lt == ValueType::kScalar && rt == ValueType::kScalar) ? ValueType::kScalar : ValueType::kVector;
  }

  void CheckCall(Expr& n) {
    const FunctionDef& f = *n.func;
    int nargs = static_cast<int>(f.arg_types.size());
    int got = static_cast<int>(n.args.size());
    std::string name = GoQuote(f.name);
    if (f.variadic == 0) {
      if (nargs != got) {
        Fail(n.start, "expected " + std::to_string(nargs) + " argument(s) in call to " + name + ", got " +
                          std::to_string(got));
      }
    } else {
      int min = nargs - 1;
      if (min > got) {
        Fail(n.start, "expected at least " + std::to_string(min) + " argument(s) in call to " + name +
                          ", got " + std::to_string(got));
      } else if (f.variadic > 0 && min + f.variadic < got) {
        Fail(n.start, "expected at most " + std::to_string(min + f.variadic) + " argument(s) in call to " +
                          name + ", got " + std::to_string(got));
      }
    }
    for (int i = 0; i < got; ++i) {
      int k = i;
      if (k >= nargs) {
        if (f.variadic == 0) break;
        k = nargs - 1;
      }
      ExpectType(*n.args[i], f.arg_types[k], "call to function " + name);
    }
    n.type = f.return_type;
  }

  std::string_view text_;
  std::vector<Token> toks_;
  size_t i_ = 0;
  std::set<const Expr*> offset_set_;
  std::vector<Failure> recorded_;
  int depth_ = 0;
  // What yacc names in "unexpected X in ...": "aggregation" anywhere inside an aggregation's
  // arguments.
  std::vector<std::string_view> contexts_;
};

Error MakeError(std::string_view text, int pos, std::string message) {
  Error e;
  e.message = std::move(message);
  e.line = 1;
  int last_break = -1;
  for (int i = 0; i < pos && i < static_cast<int>(text.size()); ++i) {
    if (text[i] == '\n') {
      last_break = i;
      ++e.line;
    }
  }
  e.column = pos - last_break;
  return e;
}

void FormatTo(const Expr& e, std::string& out);

// Go's fmt %v of a float64 (how Prometheus prints number literals): shortest digits, exponent
// form below 1e-4 and from 1e6 on (strconv.FormatFloat(v, 'g', -1, 64)).
std::string FormatNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  size_t e = sci.find('e');
  int exponent = std::atoi(sci.c_str() + e + 1);
  if (v != 0 && (exponent < -4 || exponent >= 6)) {
    std::string digits = std::to_string(exponent < 0 ? -exponent : exponent);
    if (digits.size() < 2) digits = "0" + digits;
    return sci.substr(0, e) + "e" + (exponent < 0 ? "-" : "+") + digits;
  }
  return FormatFloatShortest(v);
}

void FormatModifiers(const Expr& carrier, std::string& out) {
  switch (carrier.at) {
    case AtMode::kNone: break;
    case AtMode::kStart: out += " @ start()"; break;
    case AtMode::kEnd: out += " @ end()"; break;
    case AtMode::kTimestamp: {
      char buf[64];
      std::snprintf(buf, sizeof buf, " @ %.3f", static_cast<double>(carrier.at_ms) / 1000.0);
      out += buf;
      break;
    }
  }
  if (carrier.offset_ms > 0) out += " offset " + FormatDurationMs(carrier.offset_ms);
  if (carrier.offset_ms < 0) out += " offset -" + FormatDurationMs(-carrier.offset_ms);
}

std::string JoinLabels(const std::vector<std::string>& labels) {
  std::string out;
  for (size_t i = 0; i < labels.size(); ++i) out += (i ? ", " : "") + labels[i];
  return out;
}

void FormatSelector(const Expr& e, std::string& out) {
  out += e.text;
  std::string inner;
  for (const auto& m : e.matchers) {
    if (!e.text.empty() && m.name() == "__name__" && m.op() == Matcher::Op::kEqual && m.value() == e.text)
      continue;
    static constexpr std::string_view kOps[] = {"=", "!=", "=~", "!~"};
    if (!inner.empty()) inner += ",";
    inner += m.name() + std::string(kOps[static_cast<int>(m.op())]) + GoQuote(m.value());
  }
  if (!inner.empty() || e.text.empty()) out += "{" + inner + "}";
}

void FormatTo(const Expr& e, std::string& out) {
  switch (e.kind) {
    case ExprKind::kNumber: out += FormatNumber(e.number); break;
    case ExprKind::kString: out += GoQuote(e.text); break;
    case ExprKind::kVectorSelector:
      FormatSelector(e, out);
      FormatModifiers(e, out);
      break;
    case ExprKind::kMatrixSelector:
      FormatSelector(*e.operand, out);
      out += "[" + FormatDurationMs(e.range_ms) + "]";
      FormatModifiers(*e.operand, out);
      break;
    case ExprKind::kSubquery:
      FormatTo(*e.operand, out);
      out += "[" + FormatDurationMs(e.range_ms) + ":" + (e.step_ms ? FormatDurationMs(e.step_ms) : "") + "]";
      FormatModifiers(e, out);
      break;
    case ExprKind::kParen:
      out += "(";
      FormatTo(*e.operand, out);
      out += ")";
      break;
    case ExprKind::kUnary:
      out += BinOpText(e.op);
      FormatTo(*e.operand, out);
      break;
    case ExprKind::kBinary: {
      FormatTo(*e.lhs, out);
      out += " ";
      out += BinOpText(e.op);
      if (e.return_bool) out += " bool";
      const auto& m = e.matching;
      if (!m.labels.empty() || m.on) {
        out += std::string(m.on ? " on" : " ignoring") + " (" + JoinLabels(m.labels) + ")";
        if (m.card == VectorMatching::Card::kManyToOne || m.card == VectorMatching::Card::kOneToMany) {
          out += std::string(m.card == VectorMatching::Card::kManyToOne ? " group_left" : " group_right") +
                 " (" + JoinLabels(m.include) + ")";
        }
      }
      out += " ";
      FormatTo(*e.rhs, out);
      break;
    }
    case ExprKind::kCall:
      out += e.func->name;
      out += "(";
      for (size_t i = 0; i < e.args.size(); ++i) {
        if (i) out += ", ";
        FormatTo(*e.args[i], out);
      }
      out += ")";
      break;
    case ExprKind::kAggregate:
      out += AggOpText(e.agg);
      if (e.without) {
        out += " without (" + JoinLabels(e.grouping) + ") ";
      } else if (!e.grouping.empty()) {
        out += " by (" + JoinLabels(e.grouping) + ") ";
      }
      out += "(";
      if (e.param) {
        FormatTo(*e.param, out);
        out += ", ";
      }
      FormatTo(*e.operand, out);
      out += ")";
      break;
  }
}

std::optional<double> ParseSeriesNumber(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::string str(s);
  size_t i = (str[0] == '+' || str[0] == '-') ? 1 : 0;
  if (str.size() > i + 1 && str[i] == '0' && (str[i + 1] == 'x' || str[i + 1] == 'X')) return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(str.c_str(), &end);
  if (end != str.c_str() + str.size()) return std::nullopt;
  return d;
}

}  // namespace

ParseResult Parse(std::string_view text) {
  ParseResult result;
  Parser p(text);
  try {
    result.expr = p.ParseTop();
  } catch (const Failure& f) {
    const Failure& first = p.recorded().empty() ? f : p.recorded().front();
    result.error = MakeError(text, first.pos, first.message);
  }
  return result;
}

ValueType TypeOf(const Expr& expr) {
  return expr.type;
}

std::string Format(const Expr& expr) {
  std::string out;
  FormatTo(expr, out);
  return out;
}

std::variant<Labels, Error> ParseMetric(std::string_view text) {
  try {
    Parser p(text);
    Labels labels = p.ParseMetricOnly();
    if (p.Peek().type != Tok::kEOF) p.Unexpected("label set");
    SortLabels(labels);
    return labels;
  } catch (const Failure& f) {
    return MakeError(text, f.pos, f.message);
  }
}

std::variant<SeriesDesc, Error> ParseSeriesDesc(std::string_view text) {
  // The metric part ends at the closing brace, or at the first space when there are no braces.
  size_t split = std::string_view::npos;
  {
    bool in_string = false;
    char quote = 0;
    bool braces = false;
    for (size_t i = 0; i < text.size(); ++i) {
      char c = text[i];
      if (in_string) {
        if (c == '\\' && quote != '`') {
          ++i;
        } else if (c == quote) {
          in_string = false;
        }
        continue;
      }
      if (c == '"' || c == '\'' || c == '`') {
        in_string = true;
        quote = c;
      } else if (c == '{') {
        braces = true;
      } else if (c == '}') {
        split = i + 1;
        break;
      } else if (!braces && (c == ' ' || c == '\t')) {
        split = i;
        break;
      }
    }
    if (split == std::string_view::npos) split = text.size();
  }
  SeriesDesc desc;
  auto metric = ParseMetric(text.substr(0, split));
  if (auto* err = std::get_if<Error>(&metric)) return *err;
  desc.metric = std::get<Labels>(metric);
  CanonicalLabels(desc.metric);
  size_t pos = split;
  auto fail = [&](size_t at, std::string message) {
    return MakeError(text, static_cast<int>(at), std::move(message));
  };
  while (pos < text.size()) {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
    if (pos >= text.size()) break;
    size_t start = pos;
    while (pos < text.size() && text[pos] != ' ' && text[pos] != '\t') ++pos;
    std::string_view item = text.substr(start, pos - start);
    // Optional repetition suffix xN.
    std::optional<long long> times;
    size_t x = item.rfind('x');
    if (x != std::string_view::npos && x + 1 < item.size()) {
      bool digits = true;
      for (size_t i = x + 1; i < item.size(); ++i)
        digits = digits && std::isdigit(static_cast<unsigned char>(item[i]));
      if (digits) {
        times = std::atoll(std::string(item.substr(x + 1)).c_str());
        item = item.substr(0, x);
      }
    }
    if (item == "_") {
      for (long long i = 0; i < (times ? *times : 1); ++i) desc.values.push_back(std::nullopt);
      continue;
    }
    if (item == "stale") {
      for (long long i = 0; i <= (times ? *times : 0); ++i) desc.values.push_back(StaleMarker());
      continue;
    }
    // a, a+b or a-b (the sign of an exponent does not split).
    size_t op = std::string_view::npos;
    for (size_t i = 1; i < item.size(); ++i) {
      if ((item[i] == '+' || item[i] == '-') && item[i - 1] != 'e' && item[i - 1] != 'E') {
        op = i;
        break;
      }
    }
    auto base = ParseSeriesNumber(item.substr(0, op));
    if (!base) return fail(start, "unexpected " + std::string(item) + " in series values");
    if (op == std::string_view::npos) {
      for (long long i = 0; i <= (times ? *times : 0); ++i) desc.values.push_back(*base);
      continue;
    }
    if (!times) return fail(start, "unexpected " + std::string(item) + " in series values, expected \"x\"");
    auto step = ParseSeriesNumber(item.substr(op + 1));
    if (!step) return fail(start, "unexpected " + std::string(item) + " in series values");
    double inc = item[op] == '-' ? -*step : *step;
    double v = *base;
    for (long long i = 0; i <= *times; ++i) {
      desc.values.push_back(v);
      v += inc;
    }
  }
  return desc;
}

}  // namespace runbook::promql
