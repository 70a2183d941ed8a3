#include "promql/lexer.h"

#include <cctype>
#include <cstdio>
#include <string>
#include <unordered_map>

#include "runbook/promql.h"

namespace runbook::promql {
namespace {

bool IsAlpha(char c) {
  return c == '_' || std::isalpha(static_cast<unsigned char>(c));
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsAlnum(char c) {
  return IsAlpha(c) || IsDigit(c);
}
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

const std::unordered_map<std::string, Tok>& Keywords() {
  static const auto* map = new std::unordered_map<std::string, Tok>{
      {"and", Tok::kLand},
      {"or", Tok::kLor},
      {"unless", Tok::kLunless},
      {"atan2", Tok::kAtan2},
      {"bool", Tok::kBool},
      {"by", Tok::kBy},
      {"without", Tok::kWithout},
      {"on", Tok::kOn},
      {"ignoring", Tok::kIgnoring},
      {"group_left", Tok::kGroupLeft},
      {"group_right", Tok::kGroupRight},
      {"offset", Tok::kOffset},
      {"start", Tok::kStart},
      {"end", Tok::kEnd},
      {"sum", Tok::kAggregator},
      {"min", Tok::kAggregator},
      {"max", Tok::kAggregator},
      {"avg", Tok::kAggregator},
      {"count", Tok::kAggregator},
      {"group", Tok::kAggregator},
      {"stddev", Tok::kAggregator},
      {"stdvar", Tok::kAggregator},
      {"topk", Tok::kAggregator},
      {"bottomk", Tok::kAggregator},
      {"quantile", Tok::kAggregator},
      {"count_values", Tok::kAggregator},
  };
  return *map;
}

// Go's %q for a short ASCII/UTF-8 string.
std::string Quote(std::string_view s, char q = '"') {
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == static_cast<unsigned char>(q) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += q;
  return out;
}

void AppendUtf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

int HexValue(char c) {
  if (IsDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  explicit Lexer(std::string_view in) : in_(in) {}

  std::vector<Token> Run() {
    std::vector<Token> out;
    for (;;) {
      Token t = Next();
      bool last = t.type == Tok::kEOF || t.type == Tok::kError;
      out.push_back(std::move(t));
      if (last) break;
    }
    return out;
  }

 private:
  Token Make(Tok type, int start, std::string text) {
    Token t;
    t.type = type;
    t.pos = start;
    t.end = static_cast<int>(pos_);
    t.text = std::move(text);
    return t;
  }
  Token Error(int at, std::string message) {
    Token t;
    t.type = Tok::kError;
    t.pos = at;
    t.end = at;
    t.text = std::move(message);
    return t;
  }
  char Peek(size_t ahead = 0) const { return pos_ + ahead < in_.size() ? in_[pos_ + ahead] : '\0'; }
  bool AtEnd() const { return pos_ >= in_.size(); }

  Token Next() {
    for (;;) {
      while (!AtEnd() && IsSpace(Peek())) ++pos_;
      if (!AtEnd() && Peek() == '#') {
        while (!AtEnd() && Peek() != '\n') ++pos_;
        continue;
      }
      break;
    }
    int start = static_cast<int>(pos_);
    if (AtEnd()) {
      if (brace_open_) return Error(start, "unexpected end of input inside braces");
      if (bracket_open_) {
        return Error(start, duration_first_ ? "missing unit character in duration" : "unclosed left bracket");
      }
      if (paren_depth_ > 0) return Error(start, "unclosed left parenthesis");
      return Make(Tok::kEOF, start, "");
    }
    char c = Peek();
    if (brace_open_) return InsideBraces(start, c);
    if (bracket_open_) return InsideBrackets(start, c);
    switch (c) {
      case ',': ++pos_; return Make(Tok::kComma, start, ",");
      case '(':
        ++pos_;
        ++paren_depth_;
        return Make(Tok::kLeftParen, start, "(");
      case ')':
        ++pos_;
        // Prometheus reports this one after the parenthesis.
        if (--paren_depth_ < 0) return Error(start + 1, "unexpected right parenthesis ')'");
        return Make(Tok::kRightParen, start, ")");
      case '{':
        ++pos_;
        brace_open_ = true;
        return Make(Tok::kLeftBrace, start, "{");
      case '}': return Error(start, "unexpected right brace '}'");
      case '[':
        ++pos_;
        bracket_open_ = true;
        colon_seen_ = false;
        duration_first_ = true;
        return Make(Tok::kLeftBracket, start, "[");
      case ']': return Error(start, "unexpected right bracket ']'");
      case '@': ++pos_; return Make(Tok::kAt, start, "@");
      case '+': ++pos_; return Make(Tok::kAdd, start, "+");
      case '-': ++pos_; return Make(Tok::kSub, start, "-");
      case '*': ++pos_; return Make(Tok::kMul, start, "*");
      case '/': ++pos_; return Make(Tok::kDiv, start, "/");
      case '%': ++pos_; return Make(Tok::kMod, start, "%");
      case '^': ++pos_; return Make(Tok::kPow, start, "^");
      case '=':
        ++pos_;
        if (Peek() == '=') {
          ++pos_;
          return Make(Tok::kEqlc, start, "==");
        }
        if (Peek() == '~') return Error(start, "unexpected character after '=': '~'");
        return Make(Tok::kAssign, start, "=");
      case '!':
        ++pos_;
        if (Peek() == '=') {
          ++pos_;
          return Make(Tok::kNeq, start, "!=");
        }
        return Error(start,
                     std::string("unexpected character after '!': ") + Quote(std::string(1, Peek()), '\''));
      case '<':
        ++pos_;
        if (Peek() == '=') {
          ++pos_;
          return Make(Tok::kLte, start, "<=");
        }
        return Make(Tok::kLss, start, "<");
      case '>':
        ++pos_;
        if (Peek() == '=') {
          ++pos_;
          return Make(Tok::kGte, start, ">=");
        }
        return Make(Tok::kGtr, start, ">");
      case '"':
      case '\'':
      case '`': return String(start, c);
      case ':': return Error(start, "unexpected colon ':'");
      default: break;
    }
    if (IsDigit(c) || (c == '.' && IsDigit(Peek(1)))) return NumberOrDuration(start, false);
    if (IsAlpha(c) || c == ':') {
      while (!AtEnd() && (IsAlnum(Peek()) || Peek() == ':')) ++pos_;
      std::string word(in_.substr(start, pos_ - start));
      std::string lower;
      for (char ch : word) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (lower == "inf" || lower == "nan") return Make(Tok::kNumber, start, word);
      auto it = Keywords().find(lower);
      if (it != Keywords().end()) return Make(it->second, start, word);
      return Make(word.find(':') != std::string::npos ? Tok::kMetricIdentifier : Tok::kIdentifier, start,
                  word);
    }
    return Error(start, std::string("unexpected character: ") + Quote(std::string(1, c), '\''));
  }

  Token InsideBraces(int start, char c) {
    if (IsAlpha(c)) {
      while (!AtEnd() && IsAlnum(Peek())) ++pos_;
      return Make(Tok::kIdentifier, start, std::string(in_.substr(start, pos_ - start)));
    }
    switch (c) {
      case ',': ++pos_; return Make(Tok::kComma, start, ",");
      case '}':
        ++pos_;
        brace_open_ = false;
        return Make(Tok::kRightBrace, start, "}");
      case '{': return Error(start, "unexpected left brace '{'");
      case '"':
      case '\'':
      case '`': return String(start, c);
      case '=':
        ++pos_;
        if (Peek() == '~') {
          ++pos_;
          return Make(Tok::kEqlRegex, start, "=~");
        }
        return Make(Tok::kAssign, start, "=");
      case '!':
        ++pos_;
        if (Peek() == '~') {
          ++pos_;
          return Make(Tok::kNeqRegex, start, "!~");
        }
        if (Peek() == '=') {
          ++pos_;
          return Make(Tok::kNeq, start, "!=");
        }
        return Error(start, std::string("unexpected character after '!' inside braces: ") +
                                Quote(std::string(1, Peek()), '\''));
      default: break;
    }
    if (IsDigit(c)) return NumberOrDuration(start, false);
    return Error(start, std::string("unexpected character inside braces: ") + Quote(std::string(1, c), '\''));
  }

  Token InsideBrackets(int start, char c) {
    if (duration_first_) {
      duration_first_ = false;
      if (!IsDigit(c)) return Error(start, "missing unit character in duration");
    }
    switch (c) {
      case ']':
        ++pos_;
        bracket_open_ = false;
        return Make(Tok::kRightBracket, start, "]");
      case '[': return Error(start, "unexpected left bracket '['");
      case ':':
        ++pos_;
        if (colon_seen_) return Error(start, "unexpected colon ':'");
        colon_seen_ = true;
        return Make(Tok::kColon, start, ":");
      case '"':
      case '\'':
      case '`': return Error(start, "missing unit character in duration");
      default: break;
    }
    if (IsDigit(c)) return NumberOrDuration(start, true);
    if (IsAlpha(c)) {
      while (!AtEnd() && IsAlnum(Peek())) ++pos_;
      return Make(Tok::kIdentifier, start, std::string(in_.substr(start, pos_ - start)));
    }
    return Error(
        start, std::string("unexpected character in duration expression: ") + Quote(std::string(1, c), '\''));
  }

  Token NumberOrDuration(int start, bool in_brackets) {
    size_t begin = pos_;
    // A duration: digits followed by units, e.g. 1h30m.
    {
      size_t p = pos_;
      bool any = false;
      while (p < in_.size() && IsDigit(in_[p])) {
        size_t q = p;
        while (q < in_.size() && IsDigit(in_[q])) ++q;
        size_t u = q;
        if (q + 1 < in_.size() && in_[q] == 'm' && in_[q + 1] == 's') {
          q += 2;
        } else if (q < in_.size() && std::string_view("ywdhms").find(in_[q]) != std::string_view::npos) {
          ++q;
        }
        if (q == u) break;
        p = q;
        any = true;
      }
      if (any && (p >= in_.size() || !IsAlnum(in_[p]))) {
        pos_ = p;
        return Make(Tok::kDuration, start, std::string(in_.substr(begin, p - begin)));
      }
    }
    std::string digits = "0123456789";
    if (Peek() == '0' && (Peek(1) == 'x' || Peek(1) == 'X')) {
      pos_ += 2;
      digits = "0123456789abcdefABCDEF";
    }
    while (!AtEnd() && digits.find(Peek()) != std::string::npos) ++pos_;
    if (Peek() == '.') {
      ++pos_;
      while (!AtEnd() && digits.find(Peek()) != std::string::npos) ++pos_;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      while (!AtEnd() && IsDigit(Peek())) ++pos_;
    }
    if (!AtEnd() && IsAlnum(Peek())) {
      std::string so_far(in_.substr(begin, pos_ - begin));
      return Error(
          start, (in_brackets ? "bad duration syntax: " : "bad number or duration syntax: ") + Quote(so_far));
    }
    return Make(Tok::kNumber, start, std::string(in_.substr(begin, pos_ - begin)));
  }

  Token String(int start, char q) {
    ++pos_;
    std::string out;
    for (;;) {
      if (AtEnd()) return Error(start, "unterminated quoted string");
      char c = in_[pos_++];
      if (c == q) break;
      if (q == '`') {
        out += c;
        continue;
      }
      if (c == '\n') return Error(start, "unterminated quoted string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (AtEnd()) return Error(start, "unterminated quoted string");
      char e = in_[pos_++];
      switch (e) {
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case '\\': out += '\\'; break;
        case '\'':
        case '"':
          if (e != q) return Error(start, "unknown escape sequence");
          out += e;
          break;
        case 'x':
        case 'u':
        case 'U': {
          int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          unsigned v = 0;
          for (int i = 0; i < n; ++i) {
            int h = HexValue(Peek());
            if (h < 0) return Error(start, "invalid escape sequence");
            v = v * 16 + static_cast<unsigned>(h);
            ++pos_;
          }
          if (e == 'x') {
            out += static_cast<char>(v);
          } else {
            if (v > 0x10FFFF || (v >= 0xD800 && v < 0xE000)) return Error(start, "invalid escape sequence");
            AppendUtf8(out, v);
          }
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            unsigned v = static_cast<unsigned>(e - '0');
            for (int i = 0; i < 2; ++i) {
              char d = Peek();
              if (d < '0' || d > '7') return Error(start, "invalid escape sequence");
              v = v * 8 + static_cast<unsigned>(d - '0');
              ++pos_;
            }
            if (v > 255) return Error(start, "invalid escape sequence");
            out += static_cast<char>(v);
            break;
          }
          return Error(start, "unknown escape sequence");
      }
    }
    return Make(Tok::kString, start, out);
  }

  std::string_view in_;
  size_t pos_ = 0;
  int paren_depth_ = 0;
  bool brace_open_ = false;
  bool bracket_open_ = false;
  bool colon_seen_ = false;
  bool duration_first_ = false;  // just after '['
};

}  // namespace

std::vector<Token> Lex(std::string_view input) {
  return Lexer(input).Run();
}

std::string Describe(const Token& t) {
  switch (t.type) {
    case Tok::kEOF: return "end of input";
    case Tok::kError: return t.text;
    case Tok::kIdentifier: return "identifier " + Quote(t.text);
    case Tok::kMetricIdentifier: return "metric identifier " + Quote(t.text);
    case Tok::kNumber: return "number " + Quote(t.text);
    case Tok::kDuration: return "duration " + Quote(t.text);
    case Tok::kString: return "string " + Quote(t.text);
    case Tok::kLeftParen:
    case Tok::kRightParen:
    case Tok::kLeftBrace:
    case Tok::kRightBrace:
    case Tok::kLeftBracket:
    case Tok::kRightBracket:
    case Tok::kComma:
    case Tok::kColon:
    case Tok::kAssign: return Quote(t.text);
    case Tok::kAggregator: return "<aggr:" + t.text + ">";
    case Tok::kBool:
    case Tok::kBy:
    case Tok::kWithout:
    case Tok::kOn:
    case Tok::kIgnoring:
    case Tok::kGroupLeft:
    case Tok::kGroupRight:
    case Tok::kOffset:
    case Tok::kStart:
    case Tok::kEnd: return "<" + t.text + ">";
    default: return "<op:" + t.text + ">";
  }
}

bool ParseDurationMs(std::string_view s, long long* ms) {
  if (s == "0") {
    *ms = 0;
    return true;
  }
  static constexpr struct {
    std::string_view unit;
    long long ms;
  } kUnits[] = {{"y", 365LL * 24 * 3600 * 1000},
                {"w", 7LL * 24 * 3600 * 1000},
                {"d", 24LL * 3600 * 1000},
                {"h", 3600LL * 1000},
                {"m", 60LL * 1000},
                {"s", 1000},
                {"ms", 1}};
  long long total = 0;
  size_t next_unit = 0;
  size_t p = 0;
  if (s.empty()) return false;
  while (p < s.size()) {
    size_t d = p;
    long long n = 0;
    while (p < s.size() && IsDigit(s[p])) {
      if (n > (1LL << 50)) return false;
      n = n * 10 + (s[p] - '0');
      ++p;
    }
    if (p == d) return false;
    std::string_view unit;
    if (p + 1 < s.size() && s[p] == 'm' && s[p + 1] == 's') {
      unit = s.substr(p, 2);
    } else if (p < s.size()) {
      unit = s.substr(p, 1);
    } else {
      return false;
    }
    p += unit.size();
    bool found = false;
    for (; next_unit < std::size(kUnits); ++next_unit) {
      if (kUnits[next_unit].unit == unit) {
        if (n > 9'223'372'036'854LL / kUnits[next_unit].ms) return false;
        total += n * kUnits[next_unit].ms;
        ++next_unit;
        found = true;
        break;
      }
    }
    if (!found) return false;
    // time.Duration's range (about 292 years), which also keeps timestamp arithmetic in range.
    if (total > 9'223'372'036'854LL) return false;
  }
  *ms = total;
  return true;
}

std::string FormatDurationMs(long long ms) {
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  static constexpr struct {
    const char* unit;
    long long ms;
  } kUnits[] = {{"y", 365LL * 24 * 3600 * 1000},
                {"w", 7LL * 24 * 3600 * 1000},
                {"d", 24LL * 3600 * 1000},
                {"h", 3600LL * 1000},
                {"m", 60LL * 1000},
                {"s", 1000},
                {"ms", 1}};
  for (const auto& u : kUnits) {
    // Years and weeks only when exact: 90d reads better than 12w6d.
    bool exact_only = u.unit[0] == 'y' || u.unit[0] == 'w';
    if (exact_only && ms % u.ms != 0) continue;
    if (ms >= u.ms) {
      out += std::to_string(ms / u.ms) + u.unit;
      ms %= u.ms;
    }
  }
  return out;
}

}  // namespace runbook::promql

namespace runbook::promql {

std::optional<TimestampMs> ParseDuration(std::string_view text) {
  long long ms = 0;
  if (!ParseDurationMs(text, &ms)) return std::nullopt;
  return ms;
}

std::string FormatDuration(TimestampMs ms) {
  return FormatDurationMs(ms);
}

}  // namespace runbook::promql
