// PromQL parser: error positions and messages as promtool prints them, Format, series notation.

#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "runbook/promql.h"

namespace promql_parser_test {

namespace pq = runbook::promql;

namespace {

struct BadExpr {
  const char* expr;
  const char*
      promtool;  // what `promtool check rules` (Prometheus 2.42) prints after "could not parse expression: "
};

// Captured from Debian's promtool 2.42 with a one-rule file per expression.
const BadExpr kBadExprs[] = {
    {"sum(rate(foo[5m])", "1:18: parse error: unclosed left parenthesis"},
    {"foo)", "1:5: parse error: unexpected right parenthesis ')'"},
    {"foo{", "1:5: parse error: unexpected end of input inside braces"},
    {"foo{a=\"b\"", "1:10: parse error: unexpected end of input inside braces"},
    {"foo{a=}", "1:7: parse error: unexpected \"}\" in label matching, expected string"},
    {"foo[5m", "1:7: parse error: unclosed left bracket"},
    {"rate(foo)",
     "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"},
    {"unknownfn(foo)", "1:1: parse error: unknown function with name \"unknownfn\""},
    {"foo + ", "1:7: parse error: unexpected end of input"},
    {"1 +* 2", "1:4: parse error: unexpected <op:*>"},
    {"foo bar", "1:5: parse error: unexpected identifier \"bar\""},
    {"\"a\" + 1", "1:1: parse error: binary expression must contain only scalar and instant vector types"},
    {"1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"},
    {"foo and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"},
    {"sum(foo, bar)",
     "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 1, got 2"},
    {"topk(foo)",
     "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1"},
    {"foo[5m] + 1", "1:1: parse error: binary expression must contain only scalar and instant vector types"},
    {"{a=~\"\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"foo offset", "1:11: parse error: unexpected end of input in offset, expected duration"},
    {"foo[5x]", "1:5: parse error: bad duration syntax: \"5\""},
    {"1 + sum by (a", "1:14: parse error: unclosed left parenthesis"},
    {"foo{a=\"b\" c=\"d\"}",
     "1:11: parse error: unexpected identifier \"c\" in label matching, expected \",\" or \"}\""},
    {"foo @ ", "1:7: parse error: unexpected end of input in @, expected timestamp"},
    {"foo offset 5m offset 1m", "1:1: parse error: offset may not be set multiple times"},
    {"(foo + 1)[5m]", "1:10: parse error: ranges only allowed for vector selectors"},
    {"rate(foo[5m:1m:])", "1:15: parse error: unexpected colon ':'"},
    {"sum without (a) (foo[5m])",
     "1:18: parse error: expected type instant vector in aggregation expression, got range vector"},
    {"foo @ start", "1:12: parse error: unexpected end of input in @, expected timestamp"},
    {"foo[\"5m\"]", "1:5: parse error: missing unit character in duration"},
    {"'unterminated", "1:1: parse error: unterminated quoted string"},
    {"foo{a!b}", "1:6: parse error: unexpected character after '!' inside braces: 'b'"},
    {"foo > bool 1 and on(a) group_left bar", "1:1: parse error: no grouping allowed for \"and\" operation"},
    {"abs(foo, bar)", "1:1: parse error: expected 1 argument(s) in call to \"abs\", got 2"},
    {"label_join(foo)", "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 1"},
    {"foo ^ \"a\"", "1:7: parse error: binary expression must contain only scalar and instant vector types"},
    {"-\"a\"",
     "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got "
     "\"string\""},
    {"foo{__name__=\"bar\"}", "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\""},
    {"5m", "1:1: parse error: unexpected duration \"5m\""},
    {"1 +", "1:4: parse error: unexpected end of input"},
    {"foo and bool bar", "1:5: parse error: bool modifier can only be used on comparison operators"},
    {"foo + on(a) group_left(a) bar",
     "1:5: parse error: label \"a\" must not occur in ON and GROUP clause at once"},
    {"sum(foo) by", "1:12: parse error: unexpected end of input in grouping opts, expected \"(\""},
    {"foo[1m:1m] offset 1m offset 2m", "1:1: parse error: offset may not be set multiple times"},
    {"foo +\n  bar baz", "2:7: parse error: unexpected identifier \"baz\""},
    {"sum by (job)\n(\n  rate(x[5m]) +\n)", "4:1: parse error: unexpected \")\" in aggregation"},
    {"foo{a=~\"(\"}", "1:5: parse error: error parsing regexp: missing closing ): `^(?:()$`"},
    {"foo[5m] offset 1m @ 100 @ 200", "1:1: parse error: @ <timestamp> may not be set multiple times"},
    {"rate(foo[5m]) by (a)", "1:15: parse error: unexpected <by>"},
    {"sum(foo) without (a) by (b)", "1:22: parse error: unexpected <by>"},
    {"count_values(1, foo)", "1:14: parse error: expected type string in aggregation parameter, got scalar"},
    {"quantile(\"a\", foo)", "1:10: parse error: expected type scalar in aggregation parameter, got string"},
    {"histogram_quantile(foo, bar)",
     "1:20: parse error: expected type scalar in call to function \"histogram_quantile\", got instant "
     "vector"},
    {"foo[0s]", "1:5: parse error: duration must be greater than 0"},
    {"foo offset 0s", "1:12: parse error: duration must be greater than 0"},
    {"1 < bool 2 > 3", "1:12: parse error: comparisons between scalars must use BOOL modifier"},
    {"max_over_time(foo[5m:1m:])", "1:24: parse error: unexpected colon ':'"},
    {"time() + foo[1m]",
     "1:10: parse error: binary expression must contain only scalar and instant vector types"},
    {"sum(foo + )", "1:11: parse error: unexpected \")\" in aggregation"},
    {"rate(foo + )", "1:12: parse error: unexpected \")\""},
    {"abs(foo + )", "1:11: parse error: unexpected \")\""},
    {"(foo + )", "1:8: parse error: unexpected \")\""},
    {"foo + on(a", "1:11: parse error: unclosed left parenthesis"},
    {"foo{a=\"b\"} bar", "1:12: parse error: unexpected identifier \"bar\""},
    {"sum(foo bar)", "1:9: parse error: unexpected identifier \"bar\" in aggregation"},
    {"abs(foo bar)", "1:9: parse error: unexpected identifier \"bar\""},
    {"(foo bar)", "1:6: parse error: unexpected identifier \"bar\""},
    {"foo[5m", "1:7: parse error: unclosed left bracket"},
    {"foo[5m:1m", "1:10: parse error: unclosed left bracket"},
    {"foo[", "1:5: parse error: missing unit character in duration"},
    {"foo[]", "1:5: parse error: missing unit character in duration"},
    {"foo @ bar", "1:7: parse error: unexpected identifier \"bar\" in @, expected timestamp"},
    {"sum by (a b) (foo)",
     "1:11: parse error: unexpected identifier \"b\" in grouping opts, expected \",\" or \")\""},
    {"foo{a=~\"a**\"}", "1:5: parse error: error parsing regexp: invalid nested repetition operator: `**`"},
    {"foo{a=~\"[a\"}", "1:5: parse error: error parsing regexp: missing closing ]: `[a)$`"},
    {"foo{a=~\"\\\\p{Foo}\"}",
     "1:5: parse error: error parsing regexp: invalid character class range: `\\p{Foo}`"},
    {"foo{a=~\"a{2,1}\"}", "1:5: parse error: error parsing regexp: invalid repeat count: `{2,1}`"},
    {"foo{a=~\")\"}", "1:5: parse error: error parsing regexp: unexpected ): `^(?:))$`"},
    {"sum(foo,)", "1:8: parse error: trailing commas not allowed in function call args"},
    {"abs(foo,)", "1:8: parse error: trailing commas not allowed in function call args"},
    {"foo offset 5", "1:12: parse error: unexpected number \"5\" in offset, expected duration"},
};

std::string Roundtrip(const std::string& text) {
  auto r = pq::Parse(text);
  REQUIRE_MESSAGE(r.expr, text << ": " << r.error.ToString());
  return pq::Format(*r.expr);
}

}  // namespace

TEST_CASE("promql parse errors match promtool's text and position") {
  for (const auto& c : kBadExprs) {
    std::string expr = c.expr;
    CAPTURE(expr);
    auto r = pq::Parse(c.expr);
    CHECK(r.expr == nullptr);
    CHECK(r.error.ToString() == c.promtool);
  }
}

TEST_CASE("promql bounds nesting depth instead of exhausting the stack") {
  std::string deep(100000, '(');
  auto r = pq::Parse(deep + "1" + std::string(100000, ')'));
  REQUIRE(!r.expr);
  CHECK(r.error.message == "expression nested too deeply");
  CHECK(pq::Parse(std::string(200, '(') + "1" + std::string(200, ')')).expr);
  CHECK(!pq::Parse(std::string(100000, '-') + "1").expr);
  std::string chain = "1";
  for (int i = 0; i < 100000; ++i) chain += "+1";
  CHECK(pq::Parse(chain).error.message == "expression nested too deeply");
  std::string subqueries = "x";
  for (int i = 0; i < 100000; ++i) subqueries += "[5m:]";
  CHECK(pq::Parse(subqueries).error.message == "expression nested too deeply");
}

TEST_CASE("promql error positions count lines and columns in bytes") {
  auto r = pq::Parse("sum(\n  rate(x[5m])\n) +");
  REQUIRE(!r.expr);
  CHECK(r.error.line == 3);
  CHECK(r.error.column == 4);
  CHECK(r.error.message == "unexpected end of input");
}

TEST_CASE("promql Format prints Prometheus' canonical form") {
  // Captured from Prometheus 2.42's /api/v1/rules (the `query` of each rule) for these rules.
  const std::pair<const char*, const char*> kFormatted[] = {
      {"SUM BY(job)(rate(foo{a='b'}[5m] OFFSET 1m))", "sum by (job) (rate(foo{a=\"b\"}[5m] offset 1m))"},
      {"foo + on(a) group_left(b) bar", "foo + on (a) group_left (b) bar"},
      {"foo > bool ignoring(x) bar", "foo > bool ignoring (x) bar"},
      {"topk(3, foo) without (a)", "topk without (a) (3, foo)"},
      {"rate(foo[1h30m:])", "rate(foo[1h30m:])"},
      {"foo[5m:1m] @ 100 offset -5m", "foo[5m:1m] @ 100.000 offset -5m"},
      {"foo @ start()", "foo @ start()"},
      {"foo @ end() offset 1m", "foo @ end() offset 1m"},
      {"{__name__=~\"a.*\", b!=\"c\"}", "{__name__=~\"a.*\",b!=\"c\"}"},
      {"-(1 + 2) ^ -3", "-(1 + 2) ^ -3"},
      {"0x10 + .5 + Inf", "16 + 0.5 + +Inf"},
      {"1e6 + 1234567 + 123456 + 0.0001 + 0.00001 + -1.5e-7 + 1e21",
       "1e+06 + 1.234567e+06 + 123456 + 0.0001 + 1e-05 + -1.5e-07 + 1e+21"},
      {"label_replace(up, \"a\", \"$1\", \"b\", \"(.*)\")",
       "label_replace(up, \"a\", \"$1\", \"b\", \"(.*)\")"},
      {"foo[5m] offset 1h30m", "foo[5m] offset 1h30m"},
      {"sum without () (foo)", "sum without () (foo)"},
      {"sum by () (foo)", "sum(foo)"},
      {"count_values(\"x\", foo)", "count_values(\"x\", foo)"},
      {"foo{a=\"b\\\\n\\\"c\"}", "foo{a=\"b\\\\n\\\"c\"}"},
      {"max_over_time(foo[1d:5m] @ 1609746000)", "max_over_time(foo[1d:5m] @ 1609746000.000)"},
      {"foo and on() bar", "foo and on () bar"},
      {"foo * ignoring() bar", "foo * bar"},
      {"foo / on(a) group_right() bar", "foo / on (a) group_right () bar"},
      {"- foo", "-foo"},
      {"+foo", "+foo"},
      {"NaN", "NaN"},
      {"-Inf", "-Inf"},
      {"foo offset 1w2d", "foo offset 9d"},
      {"quantile(0.9, rate(x[1y]))", "quantile(0.9, rate(x[1y]))"},
      {"absent(nonexistent{job=\"x\"})", "absent(nonexistent{job=\"x\"})"},
      {"foo @ 1.5", "foo @ 1.500"},
      {"foo @ -100", "foo @ -100.000"},
      {"foo{a='\\u00e9'}", "foo{a=\"\u00e9\"}"},
      {"(foo)", "(foo)"},
      {"((foo + 1))", "((foo + 1))"},
      {"foo unless ignoring(a) bar or baz", "foo unless ignoring (a) bar or baz"},
  };
  for (const auto& [text, want] : kFormatted) {
    CAPTURE(std::string(text));
    CHECK(Roundtrip(text) == want);
    CHECK(Roundtrip(want) == want);
  }
}

TEST_CASE("promql operator precedence follows Prometheus") {
  // ^ is right-associative and binds tighter than unary minus; unary minus binds like * and /.
  CHECK(Roundtrip("2 ^ 3 ^ 2") == "2 ^ 3 ^ 2");
  pq::MemoryStorage storage;
  auto eval = [&](const char* text) {
    auto r = pq::Parse(text);
    REQUIRE_MESSAGE(r.expr, text << ": " << r.error.ToString());
    auto v = pq::EvalInstant(*r.expr, storage, 0);
    REQUIRE(!v.error);
    return v.value.scalar;
  };
  CHECK(eval("2 ^ 3 ^ 2") == 512);
  CHECK(eval("-2 ^ 2") == -4);
  CHECK(eval("2 / -2 ^ ---1 * 3 + 2") == -10);
  // `or` binds loosest: vector(1) or (vector(0) unless vector(1)).
  CHECK(eval("scalar(vector(1 + 2 * 3 > bool 6) or vector(0) unless vector(1))") == 1);
}

TEST_CASE("promql TypeOf") {
  auto type = [](const char* text) { return pq::TypeOf(*pq::Parse(text).expr); };
  CHECK(type("1 + 1") == pq::ValueType::kScalar);
  CHECK(type("foo") == pq::ValueType::kVector);
  CHECK(type("foo[5m]") == pq::ValueType::kMatrix);
  CHECK(type("rate(foo[5m])[10m:]") == pq::ValueType::kMatrix);
  CHECK(type("\"x\"") == pq::ValueType::kString);
  CHECK(type("scalar(foo)") == pq::ValueType::kScalar);
  CHECK(type("1 + foo") == pq::ValueType::kVector);
}

TEST_CASE("promql ParseSeriesDesc expands promtool's notation") {
  auto r = pq::ParseSeriesDesc("metric{b=\"2\", a=\"1\"} 1+2x3 _ stale -1x2 _x2 5-1.5x1 1e3");
  REQUIRE(std::holds_alternative<pq::SeriesDesc>(r));
  const auto& d = std::get<pq::SeriesDesc>(r);
  CHECK(d.metric == runbook::Labels{{"__name__", "metric"}, {"a", "1"}, {"b", "2"}});
  REQUIRE(d.values.size() == 14);
  CHECK(*d.values[0] == 1);
  CHECK(*d.values[3] == 7);
  CHECK(!d.values[4]);
  CHECK(pq::IsStaleMarker(*d.values[5]));
  CHECK(*d.values[6] == -1);
  CHECK(*d.values[8] == -1);
  CHECK(!d.values[9]);
  CHECK(!d.values[10]);
  CHECK(*d.values[11] == 5);
  CHECK(*d.values[12] == 3.5);
  CHECK(*d.values[13] == 1000);
  CHECK(std::holds_alternative<pq::Error>(pq::ParseSeriesDesc("metric{a=\"b\" 1")));
  CHECK(std::holds_alternative<pq::Error>(pq::ParseSeriesDesc("metric 1+2")));
}

TEST_CASE("promql ParseSeriesDesc and MemoryStorage drop empty-valued labels") {
  auto r = pq::ParseSeriesDesc("metric{a=\"\", b=\"2\"} 1 2");
  REQUIRE(std::holds_alternative<pq::SeriesDesc>(r));
  CHECK(std::get<pq::SeriesDesc>(r).metric == runbook::Labels{{"__name__", "metric"}, {"b", "2"}});
  pq::MemoryStorage storage;
  storage.Append({{"__name__", "metric"}, {"a", ""}, {"b", "2"}}, 0, 1);
  storage.Append({{"__name__", "metric"}, {"b", "2"}}, 1000, 2);
  std::vector<runbook::Labels> seen;
  storage.Select({}, 0, 2000, [&](const runbook::Labels& m, std::span<const pq::Point> pts) {
    seen.push_back(m);
    CHECK(pts.size() == 2);
  });
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == runbook::Labels{{"__name__", "metric"}, {"b", "2"}});
}

TEST_CASE("promql ParseMetric") {
  auto r = pq::ParseMetric("ALERTS{alertname=\"X\", severity='page'}");
  REQUIRE(std::holds_alternative<runbook::Labels>(r));
  CHECK(std::get<runbook::Labels>(r) ==
        runbook::Labels{{"__name__", "ALERTS"}, {"alertname", "X"}, {"severity", "page"}});
  auto bare = pq::ParseMetric("{a=\"b\"}");
  REQUIRE(std::holds_alternative<runbook::Labels>(bare));
  CHECK(std::get<runbook::Labels>(bare) == runbook::Labels{{"a", "b"}});
  CHECK(std::holds_alternative<pq::Error>(pq::ParseMetric("foo{a=~\"b\"}")));
  CHECK(std::holds_alternative<pq::Error>(pq::ParseMetric("foo bar")));
}

TEST_CASE("promql regex matchers are fully anchored RE2") {
  std::string err;
  auto m = pq::Matcher::Make(pq::Matcher::Op::kRegexMatch, "a", "foo|bar", &err);
  REQUIRE(m);
  CHECK(m->Matches("foo"));
  CHECK(m->Matches("bar"));
  CHECK(!m->Matches("foobar"));
  CHECK(!m->Matches("xfoo"));
  auto n = pq::Matcher::Make(pq::Matcher::Op::kRegexNoMatch, "a", "f.*", &err);
  REQUIRE(n);
  CHECK(!n->Matches("foo"));
  CHECK(n->Matches("bar"));
  CHECK(!pq::Matcher::Make(pq::Matcher::Op::kRegexMatch, "a", "(", &err));
  CHECK(err == "error parsing regexp: missing closing ): `^(?:()$`");
}

TEST_CASE("promql durations") {
  CHECK(pq::ParseDuration("1h30m") == 5400000);
  CHECK(pq::ParseDuration("0") == 0);
  CHECK(pq::ParseDuration("100ms") == 100);
  CHECK(pq::ParseDuration("1d") == 86400000);
  CHECK(!pq::ParseDuration("30m1h"));
  CHECK(!pq::ParseDuration("5"));
  CHECK(!pq::ParseDuration(""));
  CHECK(pq::FormatDuration(5400000) == "1h30m");
  CHECK(pq::FormatDuration(0) == "0s");
  CHECK(pq::FormatDuration(9 * 86400000LL) == "9d");
  CHECK(pq::FormatDuration(14 * 86400000LL) == "2w");
}

}  // namespace promql_parser_test
