#pragma once
// PromQL tokens. The lexer is context-free except for braces: inside {...} every word is a
// label name; outside, keywords, aggregators and inf/nan are recognised (case-insensitively).

#include <string>
#include <string_view>
#include <vector>

namespace runbook::promql {

enum class Tok {
  kEOF,
  kError,  // text holds the message
  kIdentifier,
  kMetricIdentifier,  // an identifier containing ':'
  kNumber,
  kDuration,
  kString,  // text holds the unquoted value
  kLeftParen,
  kRightParen,
  kLeftBrace,
  kRightBrace,
  kLeftBracket,
  kRightBracket,
  kComma,
  kColon,
  kAssign,  // =
  kEqlRegex,
  kNeqRegex,
  kAt,
  // operators
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kEqlc,  // ==
  kNeq,
  kLss,
  kLte,
  kGtr,
  kGte,
  // keyword operators
  kLand,
  kLor,
  kLunless,
  kAtan2,
  // aggregators: text holds the lower-cased name
  kAggregator,
  // keywords
  kBool,
  kBy,
  kWithout,
  kOn,
  kIgnoring,
  kGroupLeft,
  kGroupRight,
  kOffset,
  kStart,
  kEnd,
};

struct Token {
  Tok type = Tok::kEOF;
  std::string text;  // the source text (unquoted for strings, message for errors)
  std::string raw;   // strings: the quoted source text
  int pos = 0;       // byte offset
  int end = 0;
};

// Tokenises the whole input; the last token is kEOF or kError.
std::vector<Token> Lex(std::string_view input);

// Prometheus' description of a token in "unexpected ..." messages.
std::string Describe(const Token& token);

// model.ParseDuration: `1h30m`, `5m`, `10s`, `100ms`, `1d`, `1w`, `1y`, `0`. False when invalid.
bool ParseDurationMs(std::string_view text, long long* ms);
std::string FormatDurationMs(long long ms);

}  // namespace runbook::promql
