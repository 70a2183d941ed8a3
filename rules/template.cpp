#include "template.h"

#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>

#include "duration.h"
#include "go_text.h"

namespace runbook::rules {

// ---------------------------------------------------------------- number formatting

namespace {

// Shortest round-trip digits and decimal exponent (position of the first digit minus one).
void ShortestDigits(double v, std::string& digits, int& exp) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, std::fabs(v), std::chars_format::scientific);
  std::string_view s(buf, res.ptr - buf);
  auto e = s.find('e');
  digits.clear();
  for (char c : s.substr(0, e)) {
    if (c != '.') digits += c;
  }
  exp = std::atoi(std::string(s.substr(e + 1)).c_str());
}

std::string SpecialFloat(double v) {
  if (std::isnan(v)) return "NaN";
  return v > 0 ? "+Inf" : "-Inf";
}

std::string ExpSuffix(int exp, char e) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%c%c%02d", e, exp < 0 ? '-' : '+', std::abs(exp));
  return buf;
}

}  // namespace

std::string FormatGoFloat(double v) {
  if (!std::isfinite(v)) return SpecialFloat(v);
  std::string digits;
  int exp = 0;
  ShortestDigits(v, digits, exp);
  std::string out = std::signbit(v) ? "-" : "";
  if (v == 0) return out + "0";
  if (exp < -4 || exp >= 6) {
    out += digits[0];
    if (digits.size() > 1) out += "." + digits.substr(1);
    return out + ExpSuffix(exp, 'e');
  }
  if (exp < 0) return out + "0." + std::string(-exp - 1, '0') + digits;
  if (int(digits.size()) <= exp + 1) return out + digits + std::string(exp + 1 - digits.size(), '0');
  return out + digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
}

std::string FormatGoFloatE(double v) {
  if (!std::isfinite(v)) return SpecialFloat(v);
  std::string digits;
  int exp = 0;
  ShortestDigits(v, digits, exp);
  if (v == 0) exp = 0;
  std::string out = std::signbit(v) ? "-" : "";
  out += digits[0];
  if (digits.size() > 1) out += "." + digits.substr(1);
  return out + ExpSuffix(exp, 'E');
}

// ---------------------------------------------------------------- values

namespace {

struct Value {
  enum class Kind { kNil, kBool, kInt, kFloat, kString, kMap, kData, kSamples, kSample, kTime, kArgs };
  Kind kind = Kind::kNil;
  bool b = false;
  std::int64_t i = 0;  // kInt; kTime: Unix milliseconds
  double f = 0;
  std::string s;
  std::shared_ptr<const Labels> map;
  const TemplateData* data = nullptr;
  std::shared_ptr<const std::vector<TemplateSample>> samples;
  std::shared_ptr<const TemplateSample> sample;
  std::shared_ptr<const std::vector<std::pair<std::string, Value>>> args;  // kArgs, sorted by key

  static Value Bool(bool b) {
    Value v;
    v.kind = Kind::kBool;
    v.b = b;
    return v;
  }
  static Value Int(std::int64_t i) {
    Value v;
    v.kind = Kind::kInt;
    v.i = i;
    return v;
  }
  static Value Float(double f) {
    Value v;
    v.kind = Kind::kFloat;
    v.f = f;
    return v;
  }
  static Value String(std::string s) {
    Value v;
    v.kind = Kind::kString;
    v.s = std::move(s);
    return v;
  }
  static Value Map(Labels l) {
    Value v;
    v.kind = Kind::kMap;
    SortLabels(l);
    v.map = std::make_shared<const Labels>(std::move(l));
    return v;
  }
};

const char* kDataType =
    "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value "
    "float64 }";

std::string TypeName(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNil: return "<nil>";
    case Value::Kind::kBool: return "bool";
    case Value::Kind::kInt: return "int";
    case Value::Kind::kFloat: return "float64";
    case Value::Kind::kString: return "string";
    case Value::Kind::kMap: return "map[string]string";
    case Value::Kind::kData: return kDataType;
    case Value::Kind::kSamples: return "template.queryResult";
    case Value::Kind::kSample: return "*template.sample";
    case Value::Kind::kTime: return "*time.Time";
    case Value::Kind::kArgs: return "map[string]interface {}";
  }
  return "?";
}

std::string FormatMap(const Labels& m) {
  std::string out = "map[";
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (i) out += ' ';
    out += m[i].first + ":" + m[i].second;
  }
  return out + "]";
}

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

// Go's time.Time.String() in UTC for a millisecond timestamp.
std::string FormatTime(std::int64_t ms) {
  std::int64_t secs = FloorDiv(ms, 1000);
  int frac = int(ms - secs * 1000);
  std::int64_t days = FloorDiv(secs, 86400);
  std::int64_t rem = secs - days * 86400;
  // Howard Hinnant's civil_from_days.
  std::int64_t z = days + 719468;
  std::int64_t era = FloorDiv(z, 146097);
  std::int64_t doe = z - era * 146097;
  std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  std::int64_t y = yoe + era * 400;
  std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  std::int64_t mp = (5 * doy + 2) / 153;
  std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lld %02lld:%02lld:%02lld", (long long)y, (long long)m,
                (long long)d, (long long)(rem / 3600), (long long)(rem / 60 % 60), (long long)(rem % 60));
  std::string out = buf;
  if (frac) {
    char f[8];
    std::snprintf(f, sizeof f, ".%03d", frac);
    std::string fs = f;
    while (fs.back() == '0') fs.pop_back();
    out += fs;
  }
  return out + " +0000 UTC";
}

std::string Print(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNil: return "<nil>";
    case Value::Kind::kBool: return v.b ? "true" : "false";
    case Value::Kind::kInt: return std::to_string(v.i);
    case Value::Kind::kFloat: return FormatGoFloat(v.f);
    case Value::Kind::kString: return v.s;
    case Value::Kind::kMap: return FormatMap(*v.map);
    case Value::Kind::kData: {
      Labels l = v.data->labels, e = v.data->external_labels;
      SortLabels(l);
      SortLabels(e);
      return "{" + FormatMap(l) + " " + FormatMap(e) + " " + v.data->external_url + " " +
             FormatGoFloat(v.data->value) + "}";
    }
    case Value::Kind::kSample:
      return "&{" + FormatMap(v.sample->labels) + " " + FormatGoFloat(v.sample->value) + "}";
    case Value::Kind::kSamples: {
      std::string out = "[";
      for (std::size_t i = 0; i < v.samples->size(); ++i) {
        if (i) out += " ";
        out += "&{" + FormatMap((*v.samples)[i].labels) + " " + FormatGoFloat((*v.samples)[i].value) + "}";
      }
      return out + "]";
    }
    case Value::Kind::kTime: return FormatTime(v.i);
    case Value::Kind::kArgs: {
      std::string out = "map[";
      for (std::size_t i = 0; i < v.args->size(); ++i) {
        if (i) out += ' ';
        out += (*v.args)[i].first + ":" + Print((*v.args)[i].second);
      }
      return out + "]";
    }
  }
  return "";
}

bool Truth(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNil: return false;
    case Value::Kind::kBool: return v.b;
    case Value::Kind::kInt: return v.i != 0;
    case Value::Kind::kFloat: return v.f != 0;
    case Value::Kind::kString: return !v.s.empty();
    case Value::Kind::kMap: return !v.map->empty();
    case Value::Kind::kArgs: return !v.args->empty();
    case Value::Kind::kSamples: return !v.samples->empty();
    default: return true;
  }
}

// An error raised while executing; `at` is the node the message refers to.
struct ExecError {
  std::string message;
  std::size_t pos = 0;
  std::string context;
};

// ---------------------------------------------------------------- printf

std::string Pad(std::string s, int width, bool minus, bool zero) {
  if (width <= 0 || int(s.size()) >= width) return s;
  std::size_t n = width - s.size();
  if (minus) return s + std::string(n, ' ');
  if (zero) {
    std::size_t sign = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    return s.substr(0, sign) + std::string(n, '0') + s.substr(sign);
  }
  return std::string(n, ' ') + s;
}

std::string BadVerb(char verb, const Value& v) {
  if (v.kind == Value::Kind::kNil) return std::string("%!") + verb + "(<nil>)";
  return std::string("%!") + verb + "(" + TypeName(v) + "=" + Print(v) + ")";
}

std::string GoPrintf(std::string_view format, const std::vector<Value>& args) {
  std::string out;
  std::size_t argi = 0;
  for (std::size_t i = 0; i < format.size();) {
    char c = format[i];
    if (c != '%') {
      out += c;
      ++i;
      continue;
    }
    ++i;
    bool minus = false, plus = false, sharp = false, space = false, zero = false;
    for (; i < format.size(); ++i) {
      char f = format[i];
      if (f == '-')
        minus = true, zero = false;
      else if (f == '+')
        plus = true;
      else if (f == '#')
        sharp = true;
      else if (f == ' ')
        space = true;
      else if (f == '0')
        zero = !minus;
      else
        break;
    }
    int width = -1, prec = -1;
    auto number = [&](int& n) {
      std::size_t start = i;
      n = 0;
      while (i < format.size() && std::isdigit(static_cast<unsigned char>(format[i]))) {
        // Go's parsenum: a crazy long number swallows the rest of the format.
        if (n > 1000000) {
          i = format.size();
          n = -1;
          return;
        }
        n = n * 10 + (format[i++] - '0');
      }
      if (i == start) n = -1;
    };
    number(width);
    if (i < format.size() && format[i] == '.') {
      ++i;
      number(prec);
      if (prec < 0) prec = 0;
    }
    if (i >= format.size()) {
      out += "%!(NOVERB)";
      break;
    }
    char verb = format[i++];
    if (verb == '%') {
      out += '%';
      continue;
    }
    if (argi >= args.size()) {
      out += std::string("%!") + verb + "(MISSING)";
      continue;
    }
    const Value& a = args[argi++];
    std::string flags = std::string(minus ? "-" : "") + (plus ? "+" : "") + (sharp ? "#" : "") +
                        (space ? " " : "") + (zero ? "0" : "");
    auto cfmt = [&](const char* conv, auto value) {
      std::string f = "%" + flags;
      if (width >= 0) f += std::to_string(width);
      if (prec >= 0) f += "." + std::to_string(prec);
      f += conv;
      int n = std::snprintf(nullptr, 0, f.c_str(), value);
      std::string buf(n > 0 ? n + 1 : 1, '\0');
      std::snprintf(buf.data(), buf.size(), f.c_str(), value);
      buf.resize(n > 0 ? n : 0);
      return buf;
    };
    auto float_verb = [&](double v, char fverb) -> std::string {
      if (!std::isfinite(v)) {
        std::string s = SpecialFloat(v);
        if (std::isnan(v) && plus) s = "+NaN";
        if (std::isinf(v) && v > 0 && !plus) s = space ? " Inf" : "+Inf";
        return Pad(s, width, minus, false);
      }
      if ((fverb == 'g' || fverb == 'G' || fverb == 'v') && prec < 0) {
        std::string s = FormatGoFloat(v);
        if (fverb == 'G') std::transform(s.begin(), s.end(), s.begin(), ::toupper);
        if (plus && v >= 0) s = "+" + s;
        return Pad(s, width, minus, zero);
      }
      char conv[3] = {fverb == 'v' ? 'g' : fverb, 0, 0};
      return cfmt(conv, v);
    };
    switch (verb) {
      case 'v':
        if (a.kind == Value::Kind::kFloat)
          out += float_verb(a.f, 'v');
        else if (a.kind == Value::Kind::kInt)
          out += cfmt("lld", (long long)a.i);
        else
          out += Pad(Print(a), width, minus, false);
        break;
      case 'd':
        if (a.kind == Value::Kind::kInt)
          out += cfmt("lld", (long long)a.i);
        else
          out += BadVerb(verb, a);
        break;
      case 'c':
        if (a.kind == Value::Kind::kInt && a.i >= 0 && a.i < 128)
          out += Pad(std::string(1, char(a.i)), width, minus, false);
        else
          out += BadVerb(verb, a);
        break;
      case 'o':
      case 'x':
      case 'X':
        if (a.kind == Value::Kind::kInt) {
          out += cfmt(verb == 'o' ? "llo" : verb == 'x' ? "llx" : "llX", (long long)a.i);
        } else if (a.kind == Value::Kind::kString && verb != 'o') {
          std::string h;
          char buf[4];
          for (unsigned char ch : a.s) {
            std::snprintf(buf, sizeof buf, verb == 'x' ? "%02x" : "%02X", ch);
            h += buf;
          }
          out += Pad(h, width, minus, false);
        } else {
          out += BadVerb(verb, a);
        }
        break;
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G':
        if (a.kind == Value::Kind::kFloat)
          out += float_verb(a.f, verb == 'F' ? 'f' : verb);
        else
          out += BadVerb(verb, a);
        break;
      case 's':
        if (a.kind == Value::Kind::kString || a.kind == Value::Kind::kMap || a.kind == Value::Kind::kTime) {
          std::string s = Print(a);
          if (prec >= 0 && int(s.size()) > prec) s.resize(prec);
          out += Pad(s, width, minus, false);
        } else {
          out += BadVerb(verb, a);
        }
        break;
      case 'q':
        if (a.kind == Value::Kind::kString)
          out += Pad(GoQuote(a.s), width, minus, false);
        else if (a.kind == Value::Kind::kInt && a.i >= 0x20 && a.i < 0x7f)
          out += "'" + std::string(1, char(a.i)) + "'";
        else
          out += BadVerb(verb, a);
        break;
      case 't':
        if (a.kind == Value::Kind::kBool)
          out += Pad(a.b ? "true" : "false", width, minus, false);
        else
          out += BadVerb(verb, a);
        break;
      default: out += BadVerb(verb, a);
    }
  }
  if (argi < args.size()) {
    out += "%!(EXTRA ";
    for (std::size_t k = argi; k < args.size(); ++k) {
      if (k > argi) out += ", ";
      out += args[k].kind == Value::Kind::kNil ? "<nil>" : TypeName(args[k]) + "=" + Print(args[k]);
    }
    out += ")";
  }
  return out;
}

// unicode.ToTitle for the two-byte UTF-8 scripts alert text uses: Latin-1, Latin Extended-A,
// Greek and Cyrillic; other runes are returned unchanged.
char32_t TitleRune(char32_t r) {
  if ((r >= 0xE0 && r <= 0xFE && r != 0xF7) || (r >= 0x3B1 && r <= 0x3CB && r != 0x3C2) ||
      (r >= 0x430 && r <= 0x44F))
    return r - 0x20;
  if (r == 0xFF) return 0x178;
  if (r == 0x3C2) return 0x3A3;
  if (r >= 0x450 && r <= 0x45F) return r - 0x50;
  bool odd_lower = (r >= 0x100 && r <= 0x12F) || (r >= 0x132 && r <= 0x137) || (r >= 0x14A && r <= 0x177);
  bool even_lower = (r >= 0x139 && r <= 0x148) || (r >= 0x179 && r <= 0x17E);
  if ((odd_lower && r % 2 == 1) || (even_lower && r % 2 == 0)) return r - 1;
  return r;
}

// strings.Title: upper-cases the first letter of each word; words are separated by anything but
// letters, digits and '_' in ASCII, and by Unicode spaces beyond it.
std::string GoTitle(const std::string& s) {
  std::string out;
  bool start = true;
  for (std::size_t i = 0; i < s.size(); ++i) {
    unsigned char u = static_cast<unsigned char>(s[i]);
    if (u < 0x80) {
      out += start && std::islower(u) ? char(std::toupper(u)) : char(u);
      start = !(std::isalnum(u) || u == '_');
      continue;
    }
    if ((u & 0xE0) == 0xC0 && i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80) {
      char32_t r = char32_t((u & 0x1F) << 6 | (static_cast<unsigned char>(s[i + 1]) & 0x3F));
      if (start) r = TitleRune(r);
      out += char(0xC0 | (r >> 6));
      out += char(0x80 | (r & 0x3F));
      ++i;
      start = r == 0x85 || r == 0xA0;
      continue;
    }
    out += char(u);
    // Continuation bytes of a longer rune keep the word going; U+2000-U+200A, U+2028/9, U+202F,
    // U+205F, U+3000 and U+1680 are spaces, caught at their last byte.
    start = false;
    if (i >= 2) {
      unsigned char a = static_cast<unsigned char>(s[i - 2]), b = static_cast<unsigned char>(s[i - 1]);
      if (a == 0xE2 && b == 0x80 && (u <= 0x8A || u == 0xA8 || u == 0xA9 || u == 0xAF)) start = true;
      if (a == 0xE2 && b == 0x81 && u == 0x9F) start = true;
      if (a == 0xE3 && b == 0x80 && u == 0x80) start = true;
      if (a == 0xE1 && b == 0x9A && u == 0x80) start = true;
    }
  }
  return out;
}

// text/template's JSEscapeString. Non-ASCII runes are kept except the Latin-1 ones Go's
// unicode.IsPrint rejects (C1 controls, no-break space, soft hyphen), which become \uXXXX.
std::string JsEscape(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '\\': out += "\\\\"; continue;
      case '\'': out += "\\'"; continue;
      case '"': out += "\\\""; continue;
      case '<': out += "\\u003C"; continue;
      case '>': out += "\\u003E"; continue;
      case '&': out += "\\u0026"; continue;
      case '=': out += "\\u003D"; continue;
      default: break;
    }
    if (c < ' ') {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else if (c == 0xC2 && i + 1 < s.size()) {
      unsigned char d = static_cast<unsigned char>(s[i + 1]);
      if (d < 0xA1 || d == 0xAD) {
        out += "\\u00";
        out += kHex[d >> 4];
        out += kHex[d & 15];
        ++i;
      } else {
        out += char(c);
      }
    } else {
      out += char(c);
    }
  }
  return out;
}

// Go's fmt.Sprint: a space between operands when neither is a string.
std::string GoSprint(const std::vector<Value>& args, bool ln) {
  std::string out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (i > 0 && (ln || (args[i].kind != Value::Kind::kString && args[i - 1].kind != Value::Kind::kString))) {
      out += ' ';
    }
    out += Print(args[i]);
  }
  if (ln) out += '\n';
  return out;
}

}  // namespace

// ---------------------------------------------------------------- AST

namespace {

enum class Tok {
  kIdent,
  kField,
  kVar,
  kDot,
  kString,
  kNumber,
  kChar,
  kPipe,
  kLParen,
  kRParen,
  kDeclare,
  kAssign,
  kComma,
  kEnd
};

struct Token {
  Tok type;
  std::string text;   // source text
  std::string value;  // unquoted string literal
  std::size_t pos = 0;
  bool space_before = false;
};

struct Pipeline;

struct Operand {
  enum class Kind { kField, kVar, kDot, kFunc, kString, kNumber, kBool, kNil, kPipe } kind;
  std::size_t pos = 0;
  std::string name;                 // variable or function name; string value
  std::vector<std::string> fields;  // field chain applied after the term
  bool is_float = false;
  std::int64_t ival = 0;
  double fval = 0;
  bool bval = false;
  std::shared_ptr<Pipeline> pipe;
  std::string src;
};

struct Command {
  std::size_t pos = 0;
  std::vector<Operand> args;
  std::string String() const {
    std::string s;
    for (std::size_t i = 0; i < args.size(); ++i) s += (i ? " " : "") + args[i].src;
    return s;
  }
};

struct Pipeline {
  std::size_t pos = 0;
  std::vector<std::string> decl;
  bool assign = false;
  std::vector<Command> cmds;
  std::string src;
};

}  // namespace

struct Template::Node {
  // kTemplate: {{template "text" pipe}} (has_pipe) and {{block}}; kDefine: a named body (text).
  enum class Kind {
    kText,
    kAction,
    kIf,
    kWith,
    kRange,
    kBreak,
    kContinue,
    kTemplate,
    kDefine
  } kind = Kind::kText;
  std::string text;
  Pipeline pipe;
  bool has_pipe = false;
  std::size_t pos = 0;
  std::vector<Node> list, else_list;
  std::vector<Node> defines;  // root only: every {{define}} and {{block}} body
};

namespace {

// The functions known at parse time: Go's builtins plus Prometheus' function map.
bool KnownFunction(std::string_view name) {
  static const char* kNames[] = {"and",
                                 "or",
                                 "not",
                                 "len",
                                 "index",
                                 "print",
                                 "printf",
                                 "println",
                                 "eq",
                                 "ne",
                                 "lt",
                                 "le",
                                 "gt",
                                 "ge",
                                 "html",
                                 "js",
                                 "urlquery",
                                 "slice",
                                 "call",
                                 "query",
                                 "first",
                                 "label",
                                 "value",
                                 "strvalue",
                                 "args",
                                 "reReplaceAll",
                                 "safeHtml",
                                 "match",
                                 "title",
                                 "toUpper",
                                 "toLower",
                                 "graphLink",
                                 "tableLink",
                                 "sortByLabel",
                                 "humanize",
                                 "humanize1024",
                                 "humanizeDuration",
                                 "humanizePercentage",
                                 "humanizeTimestamp",
                                 "toTime",
                                 "pathPrefix",
                                 "externalURL",
                                 "parseDuration",
                                 "stripPort",
                                 "stripDomain"};
  for (const char* n : kNames) {
    if (name == n) return true;
  }
  return false;
}

struct ParseError {
  std::string message;
};

class Parser {
 public:
  Parser(std::string_view name, std::string_view text) : name_(name), text_(text) { vars_.push_back("$"); }

  std::vector<Template::Node> ParseAll() {
    std::string stop;
    auto list = ParseList(stop);
    if (!stop.empty()) Fail(stop_pos_, "unexpected {{" + stop + "}}");
    for (const auto& d : defines_) {
      if (d.text == name_ && !EmptyTree(d.list) && !EmptyTree(list))
        Fail(text_.size(), "template: multiple definition of template " + GoQuote(std::string(name_)));
    }
    return list;
  }
  std::vector<Template::Node> TakeDefines() { return std::move(defines_); }

 private:
  int LineAt(std::size_t pos) const { return 1 + int(std::count(text_.begin(), text_.begin() + pos, '\n')); }
  [[noreturn]] void Fail(std::size_t pos, const std::string& msg) const {
    throw ParseError{"template: " + std::string(name_) + ":" + std::to_string(LineAt(pos)) + ": " + msg};
  }

  // Reads nodes until EOF or an {{else}} / {{end}} (returned in `stop`, with the action's tokens
  // left in tokens_ for else-if chains).
  std::vector<Template::Node> ParseList(std::string& stop) {
    ++list_depth_;
    std::vector<Template::Node> list;
    while (pos_ < text_.size()) {
      std::size_t open = text_.find("{{", pos_);
      std::string text(
          text_.substr(pos_, open == std::string_view::npos ? std::string_view::npos : open - pos_));
      if (open != std::string_view::npos && open + 2 < text_.size() && text_[open + 2] == '-' &&
          open + 3 < text_.size() && IsSpace(text_[open + 3])) {
        while (!text.empty() && IsSpace(text.back())) text.pop_back();
      }
      if (trim_next_) {
        std::size_t k = 0;
        while (k < text.size() && IsSpace(text[k])) ++k;
        text.erase(0, k);
        trim_next_ = false;
      }
      if (!text.empty()) {
        Template::Node n;
        n.kind = Template::Node::Kind::kText;
        n.text = std::move(text);
        list.push_back(std::move(n));
      }
      if (open == std::string_view::npos) {
        pos_ = text_.size();
        break;
      }
      std::size_t action_pos = open;
      pos_ = open + 2;
      if (pos_ + 1 < text_.size() && text_[pos_] == '-' && IsSpace(text_[pos_ + 1])) pos_ += 2;
      if (!LexAction(action_pos)) continue;  // a comment
      if (tokens_.size() == 1) Fail(action_pos, "missing value for command");
      const Token& first = tokens_[0];
      if (first.type == Tok::kIdent) {
        if (first.text == "end" || first.text == "else") {
          stop = first.text;
          stop_pos_ = first.pos;
          --list_depth_;
          return list;
        }
        if (first.text == "if" || first.text == "with" || first.text == "range") {
          list.push_back(ParseControl(first.text));
          continue;
        }
        if (first.text == "break" || first.text == "continue") {
          std::string what = "{{" + first.text + "}}";
          if (tokens_.size() != 2) Fail(tokens_[1].pos, "unexpected " + Describe(tokens_[1]) + " in " + what);
          if (range_depth_ == 0) Fail(first.pos, what + " outside {{range}}");
          Template::Node n;
          n.kind = first.text == "break" ? Template::Node::Kind::kBreak : Template::Node::Kind::kContinue;
          list.push_back(std::move(n));
          continue;
        }
        if (first.text == "define") {
          // Only at the top level; elsewhere Go's parser meets the keyword as a command.
          if (list_depth_ != 1) Fail(first.pos, "unexpected <define> in command");
          std::string name = TemplateName("define clause");
          if (tokens_[2].type != Tok::kEnd)
            Fail(tokens_[2].pos, "unexpected " + Describe(tokens_[2]) + " in define clause");
          std::size_t at = first.pos;
          AddDefinition(name, ParseBody("define clause"), at);
          continue;
        }
        if (first.text == "template" || first.text == "block") {
          bool block = first.text == "block";
          std::string context = block ? "block clause" : "template clause";
          Template::Node n;
          n.kind = Template::Node::Kind::kTemplate;
          n.pos = tokens_[1].pos;
          n.text = TemplateName(context);
          if (block || tokens_[2].type != Tok::kEnd) {
            ti_ = 2;
            n.pipe = ParsePipeline(context, false);
            n.has_pipe = true;
          }
          if (block) AddDefinition(n.text, ParseBody(context), n.pos);
          list.push_back(std::move(n));
          continue;
        }
      }
      Template::Node n;
      n.kind = Template::Node::Kind::kAction;
      ti_ = 0;
      n.pipe = ParsePipeline("command", false);
      list.push_back(std::move(n));
    }
    --list_depth_;
    return list;
  }

  // The quoted name after {{define}}, {{template}} or {{block}}.
  std::string TemplateName(const std::string& context) {
    if (tokens_.size() < 2 || tokens_[1].type != Tok::kString)
      Fail(tokens_[1].pos, "unexpected " + Describe(tokens_[1]) + " in " + context);
    return tokens_[1].value;
  }

  // A {{define}} or {{block}} body up to its {{end}}: its own variables, outside any range.
  std::vector<Template::Node> ParseBody(const std::string& context) {
    auto vars = std::move(vars_);
    vars_ = {"$"};
    int range_depth = std::exchange(range_depth_, 0);
    int list_depth = std::exchange(list_depth_, 1);
    std::string stop;
    auto body = ParseList(stop);
    if (stop.empty()) Fail(text_.size(), "unexpected EOF");
    if (stop != "end") Fail(stop_pos_, "unexpected {{" + stop + "}} in " + context);
    if (tokens_.size() != 2) Fail(tokens_[1].pos, "unexpected " + Describe(tokens_[1]) + " in end");
    vars_ = std::move(vars);
    range_depth_ = range_depth;
    list_depth_ = list_depth;
    return body;
  }

  // Go's IsEmptyTree: only whitespace text.
  static bool EmptyTree(const std::vector<Template::Node>& list) {
    for (const auto& n : list) {
      if (n.kind != Template::Node::Kind::kText) return false;
      for (char c : n.text)
        if (!IsSpace(c)) return false;
    }
    return true;
  }

  // A second non-empty body for one name is an error; an empty one never replaces a body.
  void AddDefinition(const std::string& name, std::vector<Template::Node> body, std::size_t pos) {
    auto it = std::find_if(defines_.begin(), defines_.end(), [&](const auto& d) { return d.text == name; });
    bool empty = EmptyTree(body);
    if (it != defines_.end() && !EmptyTree(it->list)) {
      if (!empty) Fail(pos, "template: multiple definition of template " + GoQuote(name));
      return;
    }
    Template::Node d;
    d.kind = Template::Node::Kind::kDefine;
    d.text = name;
    d.list = std::move(body);
    if (it != defines_.end()) {
      *it = std::move(d);
    } else {
      defines_.push_back(std::move(d));
    }
  }

  Template::Node ParseControl(std::string keyword) {
    Template::Node n;
    n.kind = keyword == "if"     ? Template::Node::Kind::kIf
             : keyword == "with" ? Template::Node::Kind::kWith
                                 : Template::Node::Kind::kRange;
    std::size_t vars_mark = vars_.size();
    ti_ = 1;
    n.pipe = ParsePipeline(keyword, keyword == "range");
    std::string stop;
    if (keyword == "range") ++range_depth_;
    n.list = ParseList(stop);
    if (keyword == "range") --range_depth_;
    if (stop.empty()) Fail(text_.size(), "unexpected EOF");
    if (stop == "else") {
      // `{{else if ...}}` nests as a single control node in the else list.
      if (keyword != "if" && tokens_.size() > 2 && tokens_[1].type == Tok::kIdent && tokens_[1].text == "if")
        Fail(tokens_[1].pos, "unexpected <if> in input");  // Go 1.19: else-if chains only follow an if
      if (tokens_.size() > 2 && tokens_[1].type == Tok::kIdent &&
          tokens_[1].text == "if") {  // Go 1.19 has no {{else with}}
        std::string inner = tokens_[1].text;
        tokens_.erase(tokens_.begin());
        n.else_list.push_back(ParseControl(inner));
        vars_.resize(vars_mark);
        return n;
      }
      if (tokens_.size() != 2) Fail(tokens_[1].pos, "unexpected " + Describe(tokens_[1]) + " in else");
      n.else_list = ParseList(stop);
      if (stop.empty()) Fail(text_.size(), "unexpected EOF");
      if (stop != "end") Fail(stop_pos_, "expected end; found {{else}}");
    }
    if (tokens_.size() != 2) Fail(tokens_[1].pos, "unexpected " + Describe(tokens_[1]) + " in end");
    vars_.resize(vars_mark);
    return n;
  }

  static bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
  static bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

  std::string Describe(const Token& t) const {
    if (t.type == Tok::kEnd) return "<end of action>";
    static const char* kKeywords[] = {"block", "break", "continue", "define",   "else", "end",
                                      "if",    "range", "nil",      "template", "with"};
    if (t.type == Tok::kIdent)
      for (const char* k : kKeywords)
        if (t.text == k) return "<" + t.text + ">";
    return "\"" + t.text + "\"";
  }

  // Tokenizes one action starting at pos_ (after the delimiter); false for a comment.
  bool LexAction(std::size_t action_pos) {
    tokens_.clear();
    auto close_at = [&](std::size_t p) -> int {
      // Returns the length of the closing delimiter (with trim marker) at p, or 0.
      if (text_.compare(p, 2, "}}") == 0) return 2;
      if (p + 3 < text_.size() + 1 && IsSpace(text_[p]) && text_.compare(p + 1, 3, "-}}") == 0) return 4;
      return 0;
    };
    if (text_.compare(pos_, 2, "/*") == 0) {
      std::size_t end = text_.find("*/", pos_ + 2);
      if (end == std::string_view::npos) Fail(action_pos, "unclosed comment");
      pos_ = end + 2;
      int c = close_at(pos_);
      if (!c) Fail(action_pos, "comment ends before closing delimiter");
      if (c == 4) trim_next_ = true;
      pos_ += c;
      return false;
    }
    bool space = false;
    while (true) {
      if (pos_ >= text_.size()) Fail(action_pos, "unclosed action");
      if (int c = close_at(pos_)) {
        tokens_.push_back({Tok::kEnd, "", "", pos_, space});
        if (c == 4) trim_next_ = true;
        pos_ += c;
        return true;
      }
      char c = text_[pos_];
      if (IsSpace(c)) {
        if (c == '\n') Fail(action_pos, "unclosed action");
        space = true;
        ++pos_;
        continue;
      }
      std::size_t start = pos_;
      Token t{Tok::kEnd, "", "", start, space};
      space = false;
      if (c == '|') {
        t.type = Tok::kPipe;
        ++pos_;
      } else if (c == '(') {
        t.type = Tok::kLParen;
        ++pos_;
      } else if (c == ')') {
        t.type = Tok::kRParen;
        ++pos_;
      } else if (c == ',') {
        t.type = Tok::kComma;
        ++pos_;
      } else if (c == ':' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '=') {
        t.type = Tok::kDeclare;
        pos_ += 2;
      } else if (c == '=') {
        t.type = Tok::kAssign;
        ++pos_;
      } else if (c == '"' || c == '`') {
        t.type = Tok::kString;
        ++pos_;
        if (c == '`') {
          std::size_t end = text_.find('`', pos_);
          if (end == std::string_view::npos) Fail(start, "unterminated raw quoted string");
          t.value = std::string(text_.substr(pos_, end - pos_));
          pos_ = end + 1;
        } else {
          while (true) {
            if (pos_ >= text_.size() || text_[pos_] == '\n') Fail(start, "unterminated quoted string");
            char ch = text_[pos_++];
            if (ch == '"') break;
            if (ch == '\\') {
              if (pos_ >= text_.size()) Fail(start, "unterminated quoted string");
              char e = text_[pos_++];
              switch (e) {
                case 'n': t.value += '\n'; break;
                case 't': t.value += '\t'; break;
                case 'r': t.value += '\r'; break;
                case 'a': t.value += '\a'; break;
                case 'b': t.value += '\b'; break;
                case 'f': t.value += '\f'; break;
                case 'v': t.value += '\v'; break;
                case '\\': t.value += '\\'; break;
                case '"': t.value += '"'; break;
                case '\'': t.value += '\''; break;
                case 'x': {
                  if (pos_ + 2 > text_.size() || !std::isxdigit(static_cast<unsigned char>(text_[pos_])) ||
                      !std::isxdigit(static_cast<unsigned char>(text_[pos_ + 1]))) {
                    Fail(start, "invalid syntax");
                  }
                  t.value += char(std::stoi(std::string(text_.substr(pos_, 2)), nullptr, 16));
                  pos_ += 2;
                  break;
                }
                default: Fail(start, "invalid syntax");
              }
            } else {
              t.value += ch;
            }
          }
        }
      } else if (c == '\'') {
        t.type = Tok::kChar;
        ++pos_;
        if (pos_ + 1 >= text_.size() || text_[pos_ + 1] != '\'')
          Fail(start, "unterminated character constant");
        t.value = std::string(1, text_[pos_]);
        pos_ += 2;
      } else if (c == '$') {
        t.type = Tok::kVar;
        ++pos_;
        while (pos_ < text_.size() && IsAlnum(text_[pos_])) ++pos_;
      } else if (c == '.') {
        ++pos_;
        if (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
          pos_ = start;
          LexNumber(t);
        } else if (pos_ < text_.size() && IsAlnum(text_[pos_])) {
          t.type = Tok::kField;
          while (pos_ < text_.size() && IsAlnum(text_[pos_])) ++pos_;
        } else {
          t.type = Tok::kDot;
        }
      } else if (std::isdigit(static_cast<unsigned char>(c)) ||
                 ((c == '-' || c == '+') && pos_ + 1 < text_.size() &&
                  (std::isdigit(static_cast<unsigned char>(text_[pos_ + 1])) || text_[pos_ + 1] == '.'))) {
        LexNumber(t);
      } else if (IsAlnum(c)) {
        t.type = Tok::kIdent;
        while (pos_ < text_.size() && IsAlnum(text_[pos_])) ++pos_;
      } else {
        Fail(
            start, std::string("unrecognized character in action: U+00") +
                       [&] {
                         char b[8];
                         std::snprintf(b, sizeof b, "%02X", static_cast<unsigned char>(c));
                         return std::string(b);
                       }() +
                       " '" + c + "'");
      }
      t.text = std::string(text_.substr(start, pos_ - start));
      tokens_.push_back(std::move(t));
    }
  }

  void LexNumber(Token& t) {
    t.type = Tok::kNumber;
    std::size_t start = pos_;
    if (text_[pos_] == '+' || text_[pos_] == '-') ++pos_;
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (IsAlnum(c) || c == '.' ||
          ((c == '+' || c == '-') && (text_[pos_ - 1] == 'e' || text_[pos_ - 1] == 'E') &&
           !(pos_ - start > 1 && (text_[start + 1] == 'x' || text_[start + 1] == 'X')))) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  const Token& Peek() const { return tokens_[ti_]; }
  const Token& Next() { return tokens_[ti_ < tokens_.size() - 1 ? ti_++ : ti_]; }

  Pipeline ParsePipeline(const std::string& context, bool allow_two_vars) {
    Pipeline p;
    p.pos = Peek().pos;
    std::size_t src_start = Peek().pos;
    // Declarations: `$x :=`, `$x =`, and for range `$i, $v :=`.
    if (Peek().type == Tok::kVar) {
      std::size_t save = ti_;
      std::vector<std::string> names{Next().text};
      if (allow_two_vars && Peek().type == Tok::kComma) {
        Next();
        if (Peek().type == Tok::kVar) names.push_back(Next().text);
      }
      if (Peek().type == Tok::kDeclare || (Peek().type == Tok::kAssign && names.size() == 1)) {
        p.assign = Next().type == Tok::kAssign;
        if (p.assign && std::find(vars_.begin(), vars_.end(), names[0]) == vars_.end()) {
          Fail(p.pos, "undefined variable \"" + names[0] + "\"");
        }
        p.decl = names;
      } else {
        ti_ = save;
      }
    }
    while (true) {
      if (Peek().type == Tok::kEnd || Peek().type == Tok::kRParen) break;
      Command cmd;
      cmd.pos = Peek().pos;
      while (true) {
        const Token& t = Peek();
        if (t.type == Tok::kEnd || t.type == Tok::kRParen || t.type == Tok::kPipe) break;
        cmd.args.push_back(ParseOperand());
      }
      if (cmd.args.empty()) Fail(Peek().pos, "missing value for command");
      p.cmds.push_back(std::move(cmd));
      if (Peek().type == Tok::kPipe) {
        Next();
        if (Peek().type == Tok::kEnd || Peek().type == Tok::kRParen)
          Fail(Peek().pos, "missing command after |");
      }
    }
    if (p.cmds.empty()) Fail(p.pos, "missing value for " + context);
    if (!p.assign) {
      for (const auto& d : p.decl) vars_.push_back(d);
    }
    p.src = std::string(text_.substr(src_start, Peek().pos - src_start));
    while (!p.src.empty() && IsSpace(p.src.back())) p.src.pop_back();
    return p;
  }

  Operand ParseOperand() {
    const Token t = Next();
    Operand o;
    o.pos = t.pos;
    std::size_t end = 0;
    switch (t.type) {
      case Tok::kField:
        o.kind = Operand::Kind::kField;
        o.fields.push_back(t.text.substr(1));
        break;
      case Tok::kVar:
        o.kind = Operand::Kind::kVar;
        o.name = t.text;
        if (std::find(vars_.begin(), vars_.end(), t.text) == vars_.end()) {
          Fail(t.pos, "undefined variable \"" + t.text + "\"");
        }
        break;
      case Tok::kDot: o.kind = Operand::Kind::kDot; break;
      case Tok::kString:
        o.kind = Operand::Kind::kString;
        o.name = t.value;
        break;
      case Tok::kChar:
        o.kind = Operand::Kind::kNumber;
        o.ival = static_cast<unsigned char>(t.value[0]);
        break;
      case Tok::kNumber: ParseNumber(t, o); break;
      case Tok::kLParen: {
        o.kind = Operand::Kind::kPipe;
        o.pipe = std::make_shared<Pipeline>(ParsePipeline("parenthesized pipeline", false));
        if (Peek().type != Tok::kRParen) Fail(Peek().pos, "unclosed left paren");
        Next();
        break;
      }
      case Tok::kIdent:
        if (t.text == "true" || t.text == "false") {
          o.kind = Operand::Kind::kBool;
          o.bval = t.text == "true";
        } else if (t.text == "nil") {
          o.kind = Operand::Kind::kNil;
        } else if (KnownFunction(t.text)) {
          o.kind = Operand::Kind::kFunc;
          o.name = t.text;
        } else if (t.text == "else" || t.text == "end" || t.text == "if" || t.text == "range" ||
                   t.text == "with" || t.text == "define" || t.text == "template" || t.text == "block") {
          Fail(t.pos, "unexpected <" + t.text + "> in command");
        } else {
          Fail(t.pos, "function \"" + t.text + "\" not defined");
        }
        break;
      default: Fail(t.pos, "unexpected " + Describe(t) + " in operand");
    }
    // A field chain directly attached to the term: $x.a.b, (pipe).a, .a.b
    while (Peek().type == Tok::kField && !Peek().space_before) {
      if (o.kind != Operand::Kind::kField && o.kind != Operand::Kind::kVar &&
          o.kind != Operand::Kind::kPipe && o.kind != Operand::Kind::kDot) {
        Fail(Peek().pos, "unexpected . after term \"" + t.text + "\"");
      }
      if (o.kind == Operand::Kind::kDot) o.kind = Operand::Kind::kField;
      o.fields.push_back(Next().text.substr(1));
    }
    end = tokens_[ti_ - (ti_ > 0 ? 0 : 0)].pos;
    std::size_t last = ti_ - 1;
    end = tokens_[last].pos + tokens_[last].text.size();
    o.src = std::string(text_.substr(t.pos, end - t.pos));
    return o;
  }

  void ParseNumber(const Token& t, Operand& o) {
    o.kind = Operand::Kind::kNumber;
    std::string s;
    for (char c : t.text) {
      if (c != '_') s += c;
    }
    bool hex = s.find("0x") != std::string::npos || s.find("0X") != std::string::npos;
    o.is_float = !hex && s.find_first_of(".eE") != std::string::npos;
    errno = 0;
    char* end = nullptr;
    if (o.is_float) {
      o.fval = std::strtod(s.c_str(), &end);
    } else {
      o.ival = std::strtoll(s.c_str(), &end, 0);
      o.fval = double(o.ival);
    }
    if (end == s.c_str() || *end != '\0' || errno == ERANGE)
      Fail(t.pos, "bad number syntax: \"" + t.text + "\"");
  }

  std::string_view name_, text_;
  std::size_t pos_ = 0;
  bool trim_next_ = false;
  std::vector<Token> tokens_;
  std::size_t ti_ = 0;
  std::size_t stop_pos_ = 0;
  std::vector<std::string> vars_;
  int range_depth_ = 0;  // {{break}} and {{continue}} are allowed inside a range
  int list_depth_ = 0;   // 1: the top level, where {{define}} may appear
  std::vector<Template::Node> defines_;
};

// ---------------------------------------------------------------- execution

std::variant<double, std::string> ConvertToFloat(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kFloat: return v.f;
    case Value::Kind::kInt: return double(v.i);
    case Value::Kind::kString: {
      std::string s = v.s;
      const char* p = s.c_str();
      char* end = nullptr;
      std::string lower = s;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      std::string body = lower;
      if (!body.empty() && (body[0] == '+' || body[0] == '-')) body.erase(0, 1);
      if (body == "inf" || body == "infinity" || body == "nan") {
        double r = body == "nan" ? NAN : INFINITY;
        return s[0] == '-' ? -r : r;
      }
      if (body.find_first_not_of("0123456789.eE+-_xXabcdefpP") != std::string::npos || s.empty()) {
        return "strconv.ParseFloat: parsing " + GoQuote(s) + ": invalid syntax";
      }
      errno = 0;
      double r = std::strtod(p, &end);
      if (end == p || *end != '\0') return "strconv.ParseFloat: parsing " + GoQuote(s) + ": invalid syntax";
      if (errno == ERANGE && std::isinf(r)) {
        return "strconv.ParseFloat: parsing " + GoQuote(s) + ": value out of range";
      }
      return r;
    }
    default: return "can't convert " + TypeName(v) + " to float";
  }
}

std::string FormatG4(double v) {
  if (!std::isfinite(v)) return SpecialFloat(v);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string Humanize(double v) {
  if (v == 0 || !std::isfinite(v)) return FormatG4(v);
  std::string prefix;
  if (std::fabs(v) >= 1) {
    for (const char* p : {"k", "M", "G", "T", "P", "E", "Z", "Y"}) {
      if (std::fabs(v) < 1000) break;
      prefix = p;
      v /= 1000;
    }
  } else {
    for (const char* p : {"m", "u", "n", "p", "f", "a", "z", "y"}) {
      if (std::fabs(v) >= 1) break;
      prefix = p;
      v *= 1000;
    }
  }
  return FormatG4(v) + prefix;
}

std::string Humanize1024(double v) {
  if (std::fabs(v) <= 1 || !std::isfinite(v)) return FormatG4(v);
  std::string prefix;
  for (const char* p : {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"}) {
    if (std::fabs(v) < 1024) break;
    prefix = p;
    v /= 1024;
  }
  return FormatG4(v) + prefix;
}

std::string HumanizeDuration(double v) {
  if (!std::isfinite(v)) return FormatG4(v);
  if (v == 0) return FormatG4(v) + "s";
  if (std::fabs(v) >= 1) {
    std::string sign;
    if (v < 0) {
      sign = "-";
      v = -v;
    }
    std::int64_t d = v >= 9.2e18 ? INT64_MAX : std::int64_t(v);
    std::int64_t seconds = d % 60, minutes = d / 60 % 60, hours = d / 3600 % 24, days = d / 86400;
    char buf[128];
    if (days) {
      std::snprintf(buf, sizeof buf, "%s%lldd %lldh %lldm %llds", sign.c_str(), (long long)days,
                    (long long)hours, (long long)minutes, (long long)seconds);
    } else if (hours) {
      std::snprintf(buf, sizeof buf, "%s%lldh %lldm %llds", sign.c_str(), (long long)hours,
                    (long long)minutes, (long long)seconds);
    } else if (minutes) {
      std::snprintf(buf, sizeof buf, "%s%lldm %llds", sign.c_str(), (long long)minutes, (long long)seconds);
    } else {
      return sign + FormatG4(v) + "s";
    }
    return buf;
  }
  std::string prefix;
  for (const char* p : {"m", "u", "n", "p", "f", "a", "z", "y"}) {
    if (std::fabs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return FormatG4(v) + prefix + "s";
}

// Go's regexp.Expand template ($1, ${1}, $name, $$) rewritten for RE2's \1 syntax.
std::string GoReplacementToRe2(std::string_view repl, const RE2& re) {
  std::string out;
  const auto& names = re.NamedCapturingGroups();
  for (std::size_t i = 0; i < repl.size(); ++i) {
    char c = repl[i];
    if (c == '\\') {
      out += "\\\\";
      continue;
    }
    if (c != '$' || i + 1 >= repl.size()) {
      out += c;
      continue;
    }
    if (repl[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    std::string name;
    std::size_t j = i + 1;
    bool brace = repl[j] == '{';
    if (brace) ++j;
    while (j < repl.size() && (std::isalnum(static_cast<unsigned char>(repl[j])) || repl[j] == '_'))
      name += repl[j++];
    if (brace) {
      if (j >= repl.size() || repl[j] != '}' || name.empty()) {
        out += c;
        continue;
      }
      ++j;
    }
    if (name.empty()) {
      out += c;
      continue;
    }
    i = j - 1;
    int group = -1;
    if (std::all_of(name.begin(), name.end(), ::isdigit)) {
      group = name.size() > 3 ? 1000 : std::stoi(name);
    } else if (auto it = names.find(name); it != names.end()) {
      group = it->second;
    }
    if (group >= 0 && group <= re.NumberOfCapturingGroups()) out += "\\" + std::to_string(group);
  }
  return out;
}

std::shared_ptr<RE2> CompileGo(const std::string& pattern, std::string* error) {
  RE2::Options opts;
  opts.set_log_errors(false);
  auto re = std::make_shared<RE2>(pattern, opts);
  if (!re->ok()) {
    *error = "error parsing regexp: " + re->error() + ": `" + pattern + "`";
    return nullptr;
  }
  return re;
}

// Go's net.SplitHostPort, enough for stripPort / stripDomain.
bool SplitHostPort(const std::string& hp, std::string& host, std::string& port) {
  std::size_t colon = hp.rfind(':');
  if (colon == std::string::npos) return false;
  if (!hp.empty() && hp[0] == '[') {
    std::size_t close = hp.find(']');
    if (close == std::string::npos || close + 1 != colon) return false;
    host = hp.substr(1, close - 1);
  } else {
    host = hp.substr(0, colon);
    if (host.find(':') != std::string::npos) return false;
  }
  if (host.find('[') != std::string::npos || host.find(']') != std::string::npos) return false;
  port = hp.substr(colon + 1);
  return true;
}

bool LooksLikeIp(const std::string& s) {
  if (s.find(':') != std::string::npos) return true;
  int dots = 0;
  for (char c : s) {
    if (c == '.')
      ++dots;
    else if (!std::isdigit(static_cast<unsigned char>(c)))
      return false;
  }
  return dots == 3;
}

struct BreakSignal {};
struct ContinueSignal {};
constexpr int kMaxTemplateDepth = 100;

class Executor {
 public:
  Executor(const std::string& name, const std::string& text, const TemplateData& data,
           const Template::Node& root)
      : name_(name), text_(text), data_(data), root_(root), current_(name) {}

  // The template executing when an error was raised ({{template}} changes it).
  const std::string& current() const { return current_; }

  std::string Run(const std::vector<Template::Node>& list) {
    Value dot;
    dot.kind = Value::Kind::kData;
    dot.data = &data_;
    vars_.push_back({"$", dot});
    Walk(list, dot);
    return std::move(out_);
  }

  std::string Location(std::size_t pos) const {
    std::string_view before = std::string_view(text_).substr(0, pos);
    std::size_t nl = before.rfind('\n');
    std::size_t col = nl == std::string_view::npos ? pos : pos - (nl + 1);
    int line = 1 + int(std::count(before.begin(), before.end(), '\n'));
    return name_ + ":" + std::to_string(line) + ":" + std::to_string(col);
  }

 private:
  [[noreturn]] static void Throw(std::size_t pos, std::string context, std::string msg) {
    throw ExecError{std::move(msg), pos, std::move(context)};
  }

  void Walk(const std::vector<Template::Node>& list, const Value& dot) {
    for (const auto& n : list) WalkNode(n, dot);
  }

  void WalkNode(const Template::Node& n, const Value& dot) {
    if (++steps_ > 1000000) Throw(n.pipe.pos, n.pipe.src, "template execution exceeded its step limit");
    switch (n.kind) {
      case Template::Node::Kind::kText: out_ += n.text; return;
      case Template::Node::Kind::kAction: {
        Value v = EvalPipeline(n.pipe, dot);
        if (n.pipe.decl.empty()) out_ += v.kind == Value::Kind::kNil ? "<no value>" : Print(v);
        return;
      }
      case Template::Node::Kind::kIf:
      case Template::Node::Kind::kWith: {
        std::size_t mark = vars_.size();
        Value v = EvalPipeline(n.pipe, dot);
        if (Truth(v)) {
          Walk(n.list, n.kind == Template::Node::Kind::kWith ? v : dot);
        } else {
          Walk(n.else_list, dot);
        }
        vars_.resize(mark);
        return;
      }
      case Template::Node::Kind::kRange: {
        std::size_t mark = vars_.size();
        Pipeline p = n.pipe;
        auto decl = p.decl;
        p.decl.clear();
        Value v = EvalPipeline(p, dot);
        auto one = [&](Value key, Value elem) {
          std::size_t inner = vars_.size();
          if (decl.size() == 1) vars_.push_back({decl[0], elem});
          if (decl.size() == 2) {
            vars_.push_back({decl[0], key});
            vars_.push_back({decl[1], elem});
          }
          try {
            Walk(n.list, elem);
          } catch (const ContinueSignal&) {
          }
          vars_.resize(inner);
        };
        std::size_t count = 0;
        try {
          if (v.kind == Value::Kind::kMap) {
            for (const auto& [k, val] : *v.map) one(Value::String(k), Value::String(val)), ++count;
          } else if (v.kind == Value::Kind::kArgs) {
            for (const auto& [k, val] : *v.args) one(Value::String(k), val), ++count;
          } else if (v.kind == Value::Kind::kSamples) {
            for (std::size_t i = 0; i < v.samples->size(); ++i) {
              Value s;
              s.kind = Value::Kind::kSample;
              s.sample = std::make_shared<const TemplateSample>((*v.samples)[i]);
              one(Value::Int(std::int64_t(i)), s);
              ++count;
            }
          } else if (v.kind != Value::Kind::kNil) {
            Throw(n.pipe.pos, n.pipe.src, "range can't iterate over " + Print(v));
          }
        } catch (const BreakSignal&) {
          vars_.resize(mark);
          return;
        }
        // Declared variables stay visible in the else branch only as Go leaves them: unset.
        for (const auto& d : decl) vars_.push_back({d, Value()});
        if (count == 0) Walk(n.else_list, dot);
        vars_.resize(mark);
        return;
      }
      case Template::Node::Kind::kBreak: throw BreakSignal{};
      case Template::Node::Kind::kContinue: throw ContinueSignal{};
      case Template::Node::Kind::kDefine: return;
      case Template::Node::Kind::kTemplate: {
        std::string ctx = "{{template " + GoQuote(n.text) + (n.has_pipe ? " " + n.pipe.src : "") + "}}";
        const std::vector<Template::Node>* body = nullptr;
        if (n.text == name_ && !root_.list.empty()) body = &root_.list;
        for (const auto& d : root_.defines)
          if (!body && d.text == n.text) body = &d.list;
        if (!body) Throw(n.pos, ctx, "template " + GoQuote(n.text) + " not defined");
        // Go allows 100000 nested calls; native frames are larger than Go's growable stacks.
        if (depth_ == kMaxTemplateDepth)
          Throw(n.pos, ctx, "exceeded maximum template depth (" + std::to_string(kMaxTemplateDepth) + ")");
        Value called;
        if (n.has_pipe) {
          std::size_t mark = vars_.size();
          called = EvalPipeline(n.pipe, dot);
          vars_.resize(mark);
        }
        auto vars = std::move(vars_);
        vars_ = {{"$", called}};
        std::string caller = std::exchange(current_, n.text);
        ++depth_;
        Walk(*body, called);
        --depth_;
        current_ = std::move(caller);
        vars_ = std::move(vars);
        return;
      }
    }
  }

  Value EvalPipeline(const Pipeline& p, const Value& dot) {
    Value v;
    bool has_final = false;
    for (const auto& cmd : p.cmds) {
      v = EvalCommand(cmd, dot, has_final ? &v : nullptr);
      has_final = true;
    }
    for (const auto& d : p.decl) {
      if (p.assign) {
        for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
          if (it->first == d) {
            it->second = v;
            break;
          }
        }
      } else {
        vars_.push_back({d, v});
      }
    }
    return v;
  }

  Value VarValue(const std::string& name, std::size_t pos) {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
      if (it->first == name) return it->second;
    }
    Throw(pos, name, "undefined variable: " + name);
  }

  Value Field(const Value& receiver, const std::string& field, std::size_t pos, const std::string& ctx) {
    switch (receiver.kind) {
      case Value::Kind::kMap: {
        for (const auto& [k, v] : *receiver.map) {
          if (k == field) return Value::String(v);
        }
        return Value::String("");
      }
      case Value::Kind::kArgs:
        for (const auto& [k, v] : *receiver.args) {
          if (k == field) return v;
        }
        return Value();
      case Value::Kind::kData:
        if (field == "Labels") return Value::Map(receiver.data->labels);
        if (field == "ExternalLabels") return Value::Map(receiver.data->external_labels);
        if (field == "ExternalURL") return Value::String(receiver.data->external_url);
        if (field == "Value") return Value::Float(receiver.data->value);
        break;
      case Value::Kind::kSample:
        if (field == "Labels") return Value::Map(receiver.sample->labels);
        if (field == "Value") return Value::Float(receiver.sample->value);
        break;
      case Value::Kind::kNil: Throw(pos, ctx, "nil pointer evaluating interface {}." + field);
      default: break;
    }
    Throw(pos, ctx, "can't evaluate field " + field + " in type " + TypeName(receiver));
  }

  Value Chain(Value v, const Operand& o) {
    for (const auto& f : o.fields) v = Field(v, f, o.pos, o.src);
    return v;
  }

  Value EvalArg(const Operand& o, const Value& dot) {
    switch (o.kind) {
      case Operand::Kind::kField: return Chain(dot, o);
      case Operand::Kind::kVar: return Chain(VarValue(o.name, o.pos), o);
      case Operand::Kind::kDot: return dot;
      case Operand::Kind::kString: return Value::String(o.name);
      case Operand::Kind::kNumber: return o.is_float ? Value::Float(o.fval) : Value::Int(o.ival);
      case Operand::Kind::kBool: return Value::Bool(o.bval);
      case Operand::Kind::kNil: return Value();
      case Operand::Kind::kPipe: {
        std::size_t mark = vars_.size();
        Value v = EvalPipeline(*o.pipe, dot);
        vars_.resize(mark);
        return Chain(v, o);
      }
      case Operand::Kind::kFunc: {
        Command c;
        c.pos = o.pos;
        c.args.push_back(o);
        return Call(c, dot, nullptr);
      }
    }
    return Value();
  }

  Value EvalCommand(const Command& cmd, const Value& dot, const Value* final) {
    const Operand& first = cmd.args[0];
    if (first.kind == Operand::Kind::kFunc) return Call(cmd, dot, final);
    if (first.kind == Operand::Kind::kNil) Throw(first.pos, first.src, "nil is not a command");
    if (cmd.args.size() > 1 || final) {
      if (first.kind == Operand::Kind::kField || first.kind == Operand::Kind::kVar ||
          first.kind == Operand::Kind::kPipe) {
        Throw(first.pos, first.src,
              first.fields.empty()
                  ? "can't give argument to non-function " + first.src
                  : first.fields.back() + " has arguments but cannot be invoked as function");
      }
      Throw(first.pos, first.src, "can't give argument to non-function " + first.src);
    }
    return EvalArg(first, dot);
  }

  enum class Param { kAny, kString, kFloat, kInt, kSamples, kSample };

  // Evaluates an argument for a typed parameter the way Go's evalArg does.
  Value TypedArg(const Operand& o, const Value& dot, Param p) {
    if (p == Param::kString && o.kind == Operand::Kind::kNumber)
      Throw(o.pos, o.src, "expected string; found " + o.src);
    if (p == Param::kString && o.kind == Operand::Kind::kBool)
      Throw(o.pos, o.src, "expected string; found " + o.src);
    Value v = EvalArg(o, dot);
    return Convert(v, p, o.pos, o.src);
  }

  Value Convert(const Value& v, Param p, std::size_t pos, const std::string& src) {
    auto expect = [&](Value::Kind k, const char* type) {
      if (v.kind == Value::Kind::kNil) Throw(pos, src, std::string("invalid value; expected ") + type);
      if (v.kind != k)
        Throw(pos, src, std::string("wrong type for value; expected ") + type + "; got " + TypeName(v));
    };
    switch (p) {
      case Param::kAny: break;
      case Param::kString: expect(Value::Kind::kString, "string"); break;
      case Param::kFloat:
        if (v.kind == Value::Kind::kInt) return Value::Float(double(v.i));
        expect(Value::Kind::kFloat, "float64");
        break;
      case Param::kInt: expect(Value::Kind::kInt, "int"); break;
      case Param::kSamples: expect(Value::Kind::kSamples, "template.queryResult"); break;
      case Param::kSample: expect(Value::Kind::kSample, "*template.sample"); break;
    }
    return v;
  }

  Value Call(const Command& cmd, const Value& dot, const Value* final) {
    const Operand& fn = cmd.args[0];
    const std::string& name = fn.name;
    std::vector<const Operand*> ops;
    for (std::size_t i = 1; i < cmd.args.size(); ++i) ops.push_back(&cmd.args[i]);
    std::size_t nargs = ops.size() + (final ? 1 : 0);
    std::string ctx = cmd.String();
    auto fail = [&](const std::string& msg) { Throw(cmd.pos, ctx, "error calling " + name + ": " + msg); };
    auto want = [&](std::size_t n) {
      if (nargs != n) {
        Throw(cmd.pos, ctx,
              "wrong number of args for " + name + ": want " + std::to_string(n) + " got " +
                  std::to_string(nargs));
      }
    };
    auto arg = [&](std::size_t i, Param p) -> Value {
      if (i < ops.size()) return TypedArg(*ops[i], dot, p);
      return Convert(*final, p, cmd.pos, ctx);
    };
    auto all = [&]() {
      std::vector<Value> v;
      for (std::size_t i = 0; i < nargs; ++i) v.push_back(arg(i, Param::kAny));
      return v;
    };
    auto number = [&](std::size_t i) {
      auto r = ConvertToFloat(arg(i, Param::kAny));
      if (auto* e = std::get_if<std::string>(&r)) fail(*e);
      return std::get<double>(r);
    };

    if (name == "and" || name == "or") {
      if (nargs < 1) Throw(cmd.pos, ctx, "wrong number of args for " + name + ": want at least 1 got 0");
      Value v;
      for (std::size_t i = 0; i < nargs; ++i) {
        v = arg(i, Param::kAny);
        if (Truth(v) == (name == "or")) return v;
      }
      return v;
    }
    if (name == "not") {
      want(1);
      return Value::Bool(!Truth(arg(0, Param::kAny)));
    }
    if (name == "print" || name == "println") return Value::String(GoSprint(all(), name == "println"));
    if (name == "printf") {
      if (nargs < 1) Throw(cmd.pos, ctx, "wrong number of args for printf: want at least 1 got 0");
      Value format = arg(0, Param::kString);
      std::vector<Value> rest;
      for (std::size_t i = 1; i < nargs; ++i) rest.push_back(arg(i, Param::kAny));
      return Value::String(GoPrintf(format.s, rest));
    }
    if (name == "len") {
      want(1);
      Value v = arg(0, Param::kAny);
      if (v.kind == Value::Kind::kString) return Value::Int(std::int64_t(v.s.size()));
      if (v.kind == Value::Kind::kMap) return Value::Int(std::int64_t(v.map->size()));
      if (v.kind == Value::Kind::kArgs) return Value::Int(std::int64_t(v.args->size()));
      if (v.kind == Value::Kind::kSamples) return Value::Int(std::int64_t(v.samples->size()));
      fail("len of type " + TypeName(v));
    }
    if (name == "index") {
      if (nargs < 1) Throw(cmd.pos, ctx, "wrong number of args for index: want at least 1 got 0");
      Value v = arg(0, Param::kAny);
      for (std::size_t i = 1; i < nargs; ++i) {
        Value k = arg(i, Param::kAny);
        if (v.kind == Value::Kind::kMap || v.kind == Value::Kind::kArgs) {
          if (k.kind != Value::Kind::kString) fail("value has type " + TypeName(k) + "; should be string");
          v = Field(v, k.s, cmd.pos, ctx);
        } else if (v.kind == Value::Kind::kSamples || v.kind == Value::Kind::kString) {
          if (k.kind == Value::Kind::kNil) fail("cannot index slice/array with nil");
          if (k.kind != Value::Kind::kInt) fail("cannot index slice/array with type " + TypeName(k));
          std::size_t len = v.kind == Value::Kind::kString ? v.s.size() : v.samples->size();
          if (k.i < 0 || k.i >= std::int64_t(len)) fail("index out of range: " + std::to_string(k.i));
          if (v.kind == Value::Kind::kString) {
            v = Value::Int(static_cast<unsigned char>(v.s[std::size_t(k.i)]));
            continue;
          }
          Value s;
          s.kind = Value::Kind::kSample;
          s.sample = std::make_shared<const TemplateSample>((*v.samples)[k.i]);
          v = s;
        } else if (v.kind == Value::Kind::kNil) {
          fail("index of untyped nil");
        } else {
          fail("can't index item of type " + TypeName(v));
        }
      }
      return v;
    }
    if (name == "eq" || name == "ne" || name == "lt" || name == "le" || name == "gt" || name == "ge") {
      if (name == "eq" ? nargs < 1 : nargs != 2) {
        Throw(cmd.pos, ctx, "wrong number of args for " + name + ": want 2 got " + std::to_string(nargs));
      }
      Value a = arg(0, Param::kAny);
      auto basic = [](const Value& v) {
        return v.kind == Value::Kind::kBool || v.kind == Value::Kind::kInt || v.kind == Value::Kind::kFloat ||
               v.kind == Value::Kind::kString;
      };
      auto compare = [&](const Value& x, const Value& y, bool ordered) -> int {
        if (!basic(x) || !basic(y)) {
          if (!ordered && x.kind == Value::Kind::kNil && y.kind == Value::Kind::kNil) return 0;
          fail(ordered || (x.kind != Value::Kind::kNil && y.kind != Value::Kind::kNil && x.kind == y.kind)
                   ? "invalid type for comparison"
                   : "incompatible types for comparison");
        }
        if (x.kind != y.kind) fail("incompatible types for comparison");
        switch (x.kind) {
          case Value::Kind::kBool:
            if (ordered) fail("invalid type for comparison");
            return x.b == y.b ? 0 : 1;
          case Value::Kind::kInt: return x.i < y.i ? -1 : x.i > y.i ? 1 : 0;
          case Value::Kind::kFloat: return x.f < y.f ? -1 : x.f > y.f ? 1 : x.f == y.f ? 0 : 2;
          default: return x.s < y.s ? -1 : x.s > y.s ? 1 : 0;
        }
      };
      if (name == "eq") {
        if (nargs < 2) fail("missing argument for comparison");
        for (std::size_t i = 1; i < nargs; ++i) {
          if (compare(a, arg(i, Param::kAny), false) == 0) return Value::Bool(true);
        }
        return Value::Bool(false);
      }
      int c = compare(a, arg(1, Param::kAny), name != "ne");
      if (name == "ne") return Value::Bool(c != 0);
      if (name == "lt") return Value::Bool(c == -1);
      if (name == "le") return Value::Bool(c == -1 || c == 0);
      if (name == "gt") return Value::Bool(c == 1);
      return Value::Bool(c == 1 || c == 0);
    }
    if (name == "urlquery") return Value::String(QueryEscape(GoSprint(all(), false)));
    if (name == "html") return Value::String(HtmlEscape(GoSprint(all(), false)));
    if (name == "js") return Value::String(JsEscape(GoSprint(all(), false)));
    if (name == "args") {
      std::vector<std::pair<std::string, Value>> m;
      for (std::size_t i = 0; i < nargs; ++i) m.emplace_back("arg" + std::to_string(i), arg(i, Param::kAny));
      std::sort(m.begin(), m.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      Value v;
      v.kind = Value::Kind::kArgs;
      v.args = std::make_shared<const std::vector<std::pair<std::string, Value>>>(std::move(m));
      return v;
    }
    if (name == "call") {
      if (nargs < 1) Throw(cmd.pos, ctx, "wrong number of args for call: want at least 1 got 0");
      Value f = arg(0, Param::kAny);
      // No value a rule template can reach is a function.
      if (f.kind == Value::Kind::kNil) fail("call of nil");
      fail("non-function of type " + TypeName(f));
    }
    if (name == "slice") {
      if (nargs < 1) Throw(cmd.pos, ctx, "wrong number of args for slice: want at least 1 got 0");
      Value v = arg(0, Param::kAny);
      if (v.kind == Value::Kind::kNil) fail("slice of untyped nil");
      if (nargs > 4) fail("too many slice indexes: " + std::to_string(nargs - 1));
      if (v.kind != Value::Kind::kString && v.kind != Value::Kind::kSamples)
        fail("can't slice item of type " + TypeName(v));
      if (v.kind == Value::Kind::kString && nargs == 4) fail("cannot 3-index slice a string");
      std::int64_t len =
          v.kind == Value::Kind::kString ? std::int64_t(v.s.size()) : std::int64_t(v.samples->size());
      std::int64_t idx[3] = {0, len, len};
      for (std::size_t i = 1; i < nargs; ++i) {
        Value k = arg(i, Param::kAny);
        if (k.kind == Value::Kind::kNil) fail("cannot index slice/array with nil");
        if (k.kind != Value::Kind::kInt) fail("cannot index slice/array with type " + TypeName(k));
        if (k.i < 0 || k.i > len) fail("index out of range: " + std::to_string(k.i));
        idx[i - 1] = k.i;
      }
      if (idx[0] > idx[1])
        fail("invalid slice index: " + std::to_string(idx[0]) + " > " + std::to_string(idx[1]));
      if (nargs == 4 && idx[1] > idx[2])
        fail("invalid slice index: " + std::to_string(idx[1]) + " > " + std::to_string(idx[2]));
      if (v.kind == Value::Kind::kString)
        return Value::String(v.s.substr(std::size_t(idx[0]), std::size_t(idx[1] - idx[0])));
      v.samples = std::make_shared<const std::vector<TemplateSample>>(v.samples->begin() + idx[0],
                                                                      v.samples->begin() + idx[1]);
      return v;
    }
    if (name == "humanize" || name == "humanize1024" || name == "humanizeDuration" ||
        name == "humanizePercentage" || name == "humanizeTimestamp" || name == "toTime") {
      want(1);
      double v = number(0);
      if (name == "humanize") return Value::String(Humanize(v));
      if (name == "humanize1024") return Value::String(Humanize1024(v));
      if (name == "humanizeDuration") return Value::String(HumanizeDuration(v));
      if (name == "humanizePercentage") return Value::String(FormatG4(v * 100) + "%");
      if (!std::isfinite(v)) {
        if (name == "toTime") fail(FormatGoFloat(v) + " cannot be represented as a nanoseconds timestamp");
        return Value::String(FormatG4(v));
      }
      double ns = v * 1e9;
      if (ns >= 9.223372036854775807e18 || ns < -9.223372036854775808e18) {
        fail(FormatGoFloat(v) + " cannot be represented as a nanoseconds timestamp since it overflows int64");
      }
      Value t;
      t.kind = Value::Kind::kTime;
      t.i = std::int64_t(ns) / 1000000;
      if (name == "toTime") return t;
      return Value::String(FormatTime(t.i));
    }
    if (name == "toUpper" || name == "toLower" || name == "title" || name == "safeHtml" ||
        name == "stripPort" || name == "stripDomain" || name == "graphLink" || name == "tableLink" ||
        name == "parseDuration" || name == "query") {
      want(1);
      std::string s = arg(0, Param::kString).s;
      if (name == "toUpper") std::transform(s.begin(), s.end(), s.begin(), ::toupper);
      if (name == "toLower") std::transform(s.begin(), s.end(), s.begin(), ::tolower);
      if (name == "title") s = GoTitle(s);
      if (name == "stripPort" || name == "stripDomain") {
        if (s.empty()) return Value::String("");
        std::string host, port;
        bool split = SplitHostPort(s, host, port);
        if (name == "stripPort") return Value::String(split ? host : s);
        if (!split) host = s;
        if (LooksLikeIp(host)) return Value::String(s);
        host = host.substr(0, host.find('.'));
        if (!port.empty()) return Value::String(host + ":" + port);
        return Value::String(host);
      }
      if (name == "graphLink") s = "/graph?g0.expr=" + QueryEscape(s) + "&g0.tab=0";
      if (name == "tableLink") s = "/graph?g0.expr=" + QueryEscape(s) + "&g0.tab=1";
      if (name == "parseDuration") {
        auto d = ParseDuration(s);
        if (!d) fail("not a valid duration string: " + GoQuote(s));
        return Value::Float(double(*d) / 1000);
      }
      if (name == "query") {
        if (!data_.query) fail("query is not available here");
        auto r = data_.query(s);
        if (auto* e = std::get_if<std::string>(&r)) fail(*e);
        Value v;
        v.kind = Value::Kind::kSamples;
        v.samples = std::make_shared<const std::vector<TemplateSample>>(std::get<0>(std::move(r)));
        return v;
      }
      return Value::String(s);
    }
    if (name == "reReplaceAll") {
      want(3);
      std::string pattern = arg(0, Param::kString).s, repl = arg(1, Param::kString).s,
                  text = arg(2, Param::kString).s;
      std::string error;
      auto re = CompileGo(pattern, &error);
      if (!re) Throw(cmd.pos, ctx, "regexp: Compile(" + GoQuote(pattern) + "): " + error);
      RE2::GlobalReplace(&text, *re, GoReplacementToRe2(repl, *re));
      return Value::String(text);
    }
    if (name == "match") {
      want(2);
      std::string pattern = arg(0, Param::kString).s, s = arg(1, Param::kString).s;
      std::string error;
      auto re = CompileGo(pattern, &error);
      if (!re) fail(error);
      return Value::Bool(RE2::PartialMatch(s, *re));
    }
    if (name == "first") {
      want(1);
      Value v = arg(0, Param::kSamples);
      if (v.samples->empty()) fail("first() called on vector with no elements");
      Value s;
      s.kind = Value::Kind::kSample;
      s.sample = std::make_shared<const TemplateSample>(v.samples->front());
      return s;
    }
    if (name == "label") {
      want(2);
      std::string l = arg(0, Param::kString).s;
      Value s = arg(1, Param::kSample);
      return Value::String(std::string(LabelValue(s.sample->labels, l)));
    }
    if (name == "value") {
      want(1);
      return Value::Float(arg(0, Param::kSample).sample->value);
    }
    if (name == "strvalue") {
      want(1);
      return Value::String(std::string(LabelValue(arg(0, Param::kSample).sample->labels, "__value__")));
    }
    if (name == "sortByLabel") {
      want(2);
      std::string l = arg(0, Param::kString).s;
      Value v = arg(1, Param::kSamples);
      auto sorted = *v.samples;
      std::stable_sort(sorted.begin(), sorted.end(), [&](const TemplateSample& a, const TemplateSample& b) {
        return LabelValue(a.labels, l) < LabelValue(b.labels, l);
      });
      v.samples = std::make_shared<const std::vector<TemplateSample>>(std::move(sorted));
      return v;
    }
    if (name == "externalURL" || name == "pathPrefix") {
      want(0);
      if (name == "externalURL") return Value::String(data_.external_url);
      std::string u = data_.external_url;
      std::size_t scheme = u.find("://");
      std::size_t slash = u.find('/', scheme == std::string::npos ? 0 : scheme + 3);
      return Value::String(slash == std::string::npos ? "" : u.substr(slash));
    }
    fail("internal error: known function without an implementation");
    return Value();
  }

  const std::string& name_;
  const std::string& text_;
  const TemplateData& data_;
  const Template::Node& root_;
  std::string current_;
  int depth_ = 0;
  std::vector<std::pair<std::string, Value>> vars_;
  std::string out_;
  std::size_t steps_ = 0;
};

constexpr std::string_view kAlertPrelude =
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := "
    ".Value}}";

}  // namespace

std::variant<Template, std::string> Template::Parse(std::string_view name, std::string_view text) {
  Template t;
  t.name_ = std::string(name);
  t.text_ = std::string(text);
  try {
    Parser p(t.name_, t.text_);
    auto root = std::make_shared<Node>();
    root->list = p.ParseAll();
    root->defines = p.TakeDefines();
    t.root_ = std::move(root);
  } catch (const ParseError& e) {
    return e.message;
  }
  return t;
}

std::variant<std::string, std::string> Template::Execute(const TemplateData& data) const {
  Executor ex(name_, text_, data, *root_);
  try {
    return std::variant<std::string, std::string>(std::in_place_index<0>, ex.Run(root_->list));
  } catch (const ExecError& e) {
    return std::variant<std::string, std::string>(
        std::in_place_index<1>, "template: " + ex.Location(e.pos) + ": executing " + GoQuote(ex.current()) +
                                    " at <" + e.context + ">: " + e.message);
  }
}

AlertTemplate::AlertTemplate(std::string_view rule_name, std::string_view text)
    : name_("__alert_" + std::string(rule_name)) {
  auto parsed = Template::Parse(name_, std::string(kAlertPrelude) + std::string(text));
  if (auto* e = std::get_if<std::string>(&parsed)) {
    parse_error_ = std::move(*e);
  } else {
    template_ = std::get<Template>(std::move(parsed));
  }
  // Text without an action expands to itself (the prelude only defines variables): labels such
  // as `severity: critical` need no execution per alert and round.
  if (!parse_error_ && text.find("{{") == std::string_view::npos) constant_ = std::string(text);
}

std::string AlertTemplate::Expand(const TemplateData& data) const {
  if (constant_) return *constant_;
  if (parse_error_)
    return "<error expanding template: error parsing template " + name_ + ": " + *parse_error_ + ">";
  auto result = template_->Execute(data);
  if (result.index() == 1) {
    return "<error expanding template: error executing template " + name_ + ": " + std::get<1>(result) + ">";
  }
  return std::get<0>(std::move(result));
}

std::string ExpandAlertTemplate(std::string_view rule_name, std::string_view text, const TemplateData& data) {
  return AlertTemplate(rule_name, text).Expand(data);
}

std::optional<std::string> CheckAlertTemplate(std::string_view rule_name, std::string_view text) {
  return AlertTemplate(rule_name, text).parse_error();
}

}  // namespace runbook::rules
