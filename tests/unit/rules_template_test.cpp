// Expected strings come from promtool 2.42 on this machine (SEMANTICS.md §1.7 and runs of
// `promtool test rules` whose failure output prints the expanded annotations).
#include <doctest/doctest.h>

#include <cmath>

#include "template.h"

namespace rules_template_test {

using namespace runbook;
using namespace runbook::rules;

namespace {
TemplateData Data(double value) {
  TemplateData d;
  d.labels = {{"__name__", "x"}, {"instance", "h:1"}, {"job", "j1"}};
  d.external_labels = {{"monitor", "lab"}};
  d.external_url = "http://127.0.0.1:29090";
  d.value = value;
  return d;
}
std::string Expand(std::string_view text, double value = 1234567) {
  return ExpandAlertTemplate("A", text, Data(value));
}
}  // namespace

TEST_CASE("template: $value prints as Go %v and humanize* match Prometheus' table") {
  struct Row {
    double v;
    const char* value;
    const char* humanize;
    const char* h1024;
    const char* duration;
    const char* pct;
    const char* f1;
  };
  const Row rows[] = {
      {100000, "100000", "100k", "97.66ki", "1d 3h 46m 40s", "1e+07%", "100000.0"},
      {1e6, "1e+06", "1M", "976.6ki", "11d 13h 46m 40s", "1e+08%", "1000000.0"},
      {123456.7, "123456.7", "123.5k", "120.6ki", "1d 10h 17m 36s", "1.235e+07%", "123456.7"},
      {0.0001, "0.0001", "100u", "0.0001", "100us", "0.01%", "0.0"},
      {0.00001, "1e-05", "10u", "1e-05", "10us", "0.001%", "0.0"},
      {0.5, "0.5", "500m", "0.5", "500ms", "50%", "0.5"},
      {-3725, "-3725", "-3.725k", "-3.638ki", "-1h 2m 5s", "-3.725e+05%", "-3725.0"},
      {0, "0", "0", "0", "0s", "0%", "0.0"},
      {NAN, "NaN", "NaN", "NaN", "NaN", "NaN%", "NaN"},
      {INFINITY, "+Inf", "+Inf", "+Inf", "+Inf", "+Inf%", "+Inf"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.value);
    CHECK(Expand("{{ $value }}", r.v) == r.value);
    CHECK(Expand("{{ humanize $value }}", r.v) == r.humanize);
    CHECK(Expand("{{ humanize1024 $value }}", r.v) == r.h1024);
    CHECK(Expand("{{ humanizeDuration $value }}", r.v) == r.duration);
    CHECK(Expand("{{ humanizePercentage $value }}", r.v) == r.pct);
    CHECK(Expand("{{ printf \"%.1f\" $value }}", r.v) == r.f1);
  }
  CHECK(Expand("{{ $value }} {{ humanize $value }}") == "1.234567e+06 1.235M");
  CHECK(FormatGoFloat(-0.0) == "-0");
  CHECK(FormatGoFloat(1e21) == "1e+21");
  CHECK(FormatGoFloat(123456789012) == "1.23456789012e+11");
  CHECK(FormatGoFloatE(1) == "1E+00");
  CHECK(FormatGoFloatE(0.2) == "2E-01");
}

TEST_CASE("template: variables, maps and control structures as promtool renders them") {
  CHECK(Expand("{{ $labels }} {{ .Labels.nope }}|{{ $externalLabels.nope }}|") ==
        "map[__name__:x instance:h:1 job:j1] ||");
  CHECK(Expand("{{ range $k, $v := $labels }}{{$k}}={{$v}};{{ end }}{{ with $labels.job }}J{{.}}{{ else "
               "}}none{{ end }}") == "__name__=x;instance=h:1;job=j1;Jj1");
  CHECK(Expand("{{ $x := 5 }}{{ $x }} {{ $x = 6 }}{{ $x }} {{ if false }}a{{ else if true }}b{{ end }} {{- "
               "\" trimmed "
               "\" -}} |{{/* c */}}|{{ \"a\" | printf \"%s-%s\" \"b\" }}") == "5 6 b trimmed ||b-a");
  CHECK(Expand("{{ $externalLabels.monitor }} {{ $externalURL }} {{ .ExternalURL }}") ==
        "lab http://127.0.0.1:29090 http://127.0.0.1:29090");
  CHECK(Expand("{{ with $labels.nope }}x{{ else }}none{{ end }}") == "none");
  CHECK(Expand("{{ range $labels }}{{ . }},{{ end }}") == "x,h:1,j1,");
  CHECK(Expand("{{ if and (gt $value 10.0) (lt $value 2e6) }}mid{{ end }}") == "mid");
}

TEST_CASE("template: functions as promtool renders them") {
  CHECK(Expand("{{ reReplaceAll \"(a+)\" \"<$1>\" \"xaay\" }} {{ match \"^a\" \"abc\" }} {{ stripPort "
               "\"host:90\" }} "
               "{{ stripPort \"[::1]:90\" }} {{ index $labels \"job\" }} {{ len $labels }}") ==
        "x<aa>y true host ::1 j1 3");
  CHECK(Expand("{{ printf \"%5.1f|%-6s|%x|%q|%t|%03d\" 3.14159 \"ab\" 255 \"q\\\"\" true 7 }} {{ printf \"%v "
               "%v\" 1 }} "
               "{{ printf \"%d\" 1 2 }}") ==
        "  3.1|ab    |ff|\"q\\\"\"|true|007 1 %!v(MISSING) 1%!(EXTRA int=2)");
  CHECK(Expand("{{ humanize 1234567 }} {{ humanize \"1234567\" }} {{ humanizeDuration 0.5 }} {{ humanize1024 "
               "-3725 }} "
               "{{ toTime 5 }} {{ parseDuration \"1m\" }}") ==
        "1.235M 1.235M 500ms -3.638ki 1970-01-01 00:00:05 +0000 UTC 60");
  CHECK(Expand("{{ and 1 0 }} {{ or 0 \"x\" }} {{ not \"\" }} {{ lt 1 2 }} {{ eq \"a\" \"b\" \"a\" }} {{ ne "
               "1 2 }} "
               "{{ print 1 2 \"a\" \"b\" 3.5 }} {{ println \"x\" }}") ==
        "0 x true true true true 1 2ab3.5 x\n");
  CHECK(Expand("{{ printf \"%d\" $value }}") == "%!d(float64=1.234567e+06)");
  CHECK(Expand("{{ printf \"%77777777777777c|%d\" 7 8 }}") == "%!(NOVERB)%!(EXTRA int=7, int=8)");
  CHECK(Expand("{{ printf \"%.30f|%8.3e|%-8g|%+d|% d\" 0.1 12345.678 0.5 5 7 }}") ==
        "0.100000000000000005551115123126|1.235e+04|0.5     |+5| 7");
  CHECK(Expand("{{ printf \"%s %v\" $labels.job }}") == "j1 %!v(MISSING)");
  // From SEMANTICS.md §3.2 (LabCertExpiringSoon).
  CHECK(Expand(
            "humanize={{ 1234567.0 | humanize }} humanize1024={{ 1048576.0 | humanize1024 }} pct={{ 0.1234 | "
            "humanizePercentage }} ts={{ 1700000000 | humanizeTimestamp }} title={{ \"abc def\" | title }} "
            "upper={{ "
            "\"x\" | toUpper }}") ==
        "humanize=1.235M humanize1024=1Mi pct=12.34% ts=2023-11-14 22:13:20 +0000 UTC title=Abc Def upper=X");
  CHECK(Expand(
            "{{ humanizeTimestamp 1700000000.5 }} {{ title \"abc def-ghi\" }} {{ 1 }} {{ 1.5 }} {{ 1e3 }}") ==
        "2023-11-14 22:13:20.5 +0000 UTC Abc Def-Ghi 1 1.5 1000");
  CHECK(Expand("{{ stripDomain \"db1.example.com:5432\" }} {{ stripDomain \"10.0.0.1:80\" }}") ==
        "db1:5432 10.0.0.1:80");
}

TEST_CASE("template: text without an action expands to itself, and the first {{ makes one") {
  for (std::string_view text : {"critical", "", "a }} b", "{ {x} }", "$labels.job and $value", "100% {",
                                "line one\nline two", "\xc3\xa9t\xc3\xa9 }}{"}) {
    CHECK(Expand(text) == text);
  }
  CHECK(Expand("x{{ `y` }}z") == "xyz");
  CHECK(Expand("a {{/* c */}} b") == "a  b");
  CHECK(Expand("}} {{ $labels.job }}") == "}} j1");
}

TEST_CASE("template: failures give Prometheus' error text, never a crash") {
  const std::string pre =
      "<error expanding template: error executing template __alert_A: template: __alert_A:1:";
  CHECK(Expand("{{ humanize \"abc\" }}") ==
        pre +
            "115: executing \"__alert_A\" at <humanize \"abc\">: error calling humanize: strconv.ParseFloat: "
            "parsing \"abc\": invalid syntax>");
  CHECK(Expand("{{ gt $value 80 }}") == pre +
                                            "115: executing \"__alert_A\" at <gt $value 80>: error calling "
                                            "gt: incompatible types for comparison>");
  CHECK(Expand("{{ toUpper $value }}") ==
        pre +
            "123: executing \"__alert_A\" at <$value>: wrong type for value; expected string; got float64>");
  CHECK(Expand("{{ .Foo }}") ==
        pre +
            "115: executing \"__alert_A\" at <.Foo>: can't evaluate field Foo in type struct { Labels "
            "map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }>");
  CHECK(
      Expand("{{ humanizeTimestamp 1700000000.5 }} {{ title \"abc def-ghi\" }} {{ 1 }} {{ 1.5 }} {{ 1e3 }} "
             "{{ eq 1 1.0 }}") ==
      pre +
          "206: executing \"__alert_A\" at <eq 1 1.0>: error calling eq: incompatible types for comparison>");
  CHECK(Expand("{{ $value | humanize }} {{ (humanize $value) | toUpper }} {{ nil }}") ==
        pre + "173: executing \"__alert_A\" at <nil>: nil is not a command>");
  CHECK(Expand("{{ nosuch 1 }}") ==
        "<error expanding template: error parsing template __alert_A: template: __alert_A:1: function "
        "\"nosuch\" "
        "not defined>");
  CHECK(Expand("{{ if 1 }}x").find("unexpected EOF") != std::string::npos);
  CHECK(Expand("{{ end }}").find("unexpected {{end}}") != std::string::npos);
  CHECK(Expand("{{ $nope }}").find("undefined variable \"$nope\"") != std::string::npos);
  CHECK(Expand("{{ $labels.job").find("unclosed action") != std::string::npos);
  CHECK(Expand("{{ reReplaceAll \"(\" \"x\" \"y\" }}").find("<error expanding template:") == 0);
  CHECK(Expand("{{ \"\\x41\\x4g\" }}").find("<error expanding template: error parsing template") == 0);
  CHECK(Expand("{{ \"\\x41\" }}") == "A");
}

TEST_CASE("template: load-time check accepts what promtool accepts") {
  CHECK_FALSE(CheckAlertTemplate(
      "A", "{{ $labels.instance }} {{ $value | humanize }} {{ query \"up\" | first | value }}"));
  CHECK(CheckAlertTemplate("A", "{{ $labels.instance "));
  CHECK(CheckAlertTemplate("A", "{{ humanise $value }}"));
  CHECK(*CheckAlertTemplate("A", "{{ humanise $value }}") ==
        "template: __alert_A:1: function \"humanise\" not defined");
}

TEST_CASE("template: query results feed first/value/label/sortByLabel") {
  TemplateData d = Data(1);
  d.query = [](std::string_view expr) -> std::variant<std::vector<TemplateSample>, std::string> {
    if (expr == "bad") return std::string("parse error");
    return std::vector<TemplateSample>{{{{"instance", "b"}}, 2}, {{{"instance", "a"}}, 1}};
  };
  CHECK(ExpandAlertTemplate("A", "{{ query \"up\" | first | value }}", d) == "2");
  CHECK(
      ExpandAlertTemplate(
          "A",
          "{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}={{ .Value }} {{ end }}",
          d) == "a=1 b=2 ");
  CHECK(ExpandAlertTemplate("A", "{{ with query \"up\" }}{{ . | first | label \"instance\" }}{{ end }}", d) ==
        "b");
  CHECK(ExpandAlertTemplate("A", "{{ query \"bad\" }}", d).find("error calling query: parse error") !=
        std::string::npos);
}

TEST_CASE("template: Go built-ins html, js, urlquery, args, slice, call, index as promtool renders them") {
  // tests/conformance/promtool_extra/template_functions_test.yml holds the same cases through
  // `test rules`; these strings are promtool's output.
  CHECK(Expand("{{ html \"<a href=\\\"x\\\">O'Neil & co</a>\" }}|{{ html 1 \"x\" 2.5 }}") ==
        "&lt;a href=&#34;x&#34;&gt;O&#39;Neil &amp; co&lt;/a&gt;|1x2.5");
  CHECK(Expand("{{ js \"it's \\\"q\\\" <x>&y=z \\\\ tab\\t\" }}|{{ \"a=b\" | js }}") ==
        "it\\'s \\\"q\\\" \\u003Cx\\u003E\\u0026y\\u003Dz \\\\ tab\\u0009|a\\u003Db");
  CHECK(Expand("{{ urlquery \"a b&c=d/é\" }}") == "a+b%26c%3Dd%2F%C3%A9");
  CHECK(
      Expand("{{ args 1 \"two\" 3.5 }}|{{ (args \"x\" \"y\").arg1 }}|{{ len (args 1 2 3) }}|{{ range $k, $v "
             ":= args \"p\" \"q\" }}{{ $k }}={{ $v }};{{ end }}") ==
      "map[arg0:1 arg1:two arg2:3.5]|y|3|arg0=p;arg1=q;");
  CHECK(Expand("{{ slice \"abcdef\" 1 3 }}|{{ slice \"abcdef\" 2 }}|{{ slice \"abc\" }}") == "bc|cdef|abc");
  CHECK(Expand("{{ index $labels \"instance\" }}|{{ index $labels \"nope\" }}|{{ index \"abc\" 1 }}") ==
        "h:1||98");
  CHECK(Expand("{{ print 1 2 \"a\" \"b\" 3 }}|{{ println \"x\" 1 }}|{{ print }}") == "1 2ab3|x 1\n|");
  CHECK(
      Expand(
          "{{ title \"hello wORLD foo-bar élan\" }}|{{ safeHtml \"<i>\" }}|{{ parseDuration \"1h30m\" }}") ==
      "Hello WORLD Foo-Bar Élan|<i>|5400");
  const std::string pre =
      "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing "
      "\"__alert_A\" at <";
  CHECK(Expand("{{ call \"x\" }}") == pre + "call \"x\">: error calling call: non-function of type string>");
  CHECK(Expand("{{ call nil }}") == pre + "call nil>: error calling call: call of nil>");
  CHECK(Expand("{{ slice \"abc\" 2 1 }}") ==
        pre + "slice \"abc\" 2 1>: error calling slice: invalid slice index: 2 > 1>");
  CHECK(Expand("{{ slice \"abc\" 5 }}") ==
        pre + "slice \"abc\" 5>: error calling slice: index out of range: 5>");
  CHECK(Expand("{{ slice 1 }}") == pre + "slice 1>: error calling slice: can't slice item of type int>");
  CHECK(Expand("{{ index \"abc\" 7 }}") ==
        pre + "index \"abc\" 7>: error calling index: index out of range: 7>");
}

TEST_CASE("template: break, continue, define, template and block as Go's text/template") {
  TemplateData d = Data(2);
  d.query = [](std::string_view) -> std::variant<std::vector<TemplateSample>, std::string> {
    return std::vector<TemplateSample>{{{{"instance", "c"}}, 3},
                                       {{{"instance", "a"}}, 1},
                                       {{{"instance", "b"}}, 2},
                                       {{{"instance", "d"}}, 4}};
  };
  auto expand = [&](std::string_view text) { return ExpandAlertTemplate("A", text, d); };
  CHECK(
      expand(
          "{{ range $i, $s := query \"y\" }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ if eq $i 3 }}{{ break "
          "}}{{ end }}{{ $i }}{{ end }}") == "02");
  CHECK(expand(
            "{{ define \"row\" }}[{{ .Labels.instance }}={{ .Value }}]{{ end }}{{ range sortByLabel "
            "\"instance\" "
            "(query \"y\") }}{{ template \"row\" . }}{{ end }}|{{ block \"b\" $value }}v={{ . }}{{ end }}|{{ "
            "template \"nodot\" }}{{ define \"nodot\" }}{{ . }}{{ end }}") ==
        "[a=1][b=2][c=3][d=4]|v=2|<no value>");
  // Errors inside a called template name it; promtool's texts.
  CHECK(expand("{{ define \"bad\" }}{{ .Nope }}{{ end }}{{ template \"bad\" 1 }}") ==
        "<error expanding template: error executing template __alert_A: template: __alert_A:1:133: executing "
        "\"bad\" at <.Nope>: can't evaluate field Nope in type int>");
  CHECK(expand("{{ template \"missing\" }}") ==
        "<error expanding template: error executing template __alert_A: template: __alert_A:1:124: executing "
        "\"__alert_A\" at <{{template \"missing\"}}>: template \"missing\" not defined>");
  // Unbounded recursion stops (Go allows 100000 levels; native stacks allow fewer).
  CHECK(expand("{{ define \"loop\" }}{{ template \"loop\" . }}{{ end }}{{ template \"loop\" }}") ==
        "<error expanding template: error executing template __alert_A: template: __alert_A:1:143: executing "
        "\"loop\" at <{{template \"loop\" .}}>: exceeded maximum template depth (100)>");
  // Parse errors, as promtool check rules prints them.
  auto check = [](std::string_view text) { return CheckAlertTemplate("A", text).value_or("ok"); };
  const std::string at = "template: __alert_A:1: ";
  CHECK(check("{{ break }}") == at + "{{break}} outside {{range}}");
  CHECK(check("{{ range $labels }}{{ break 1 }}{{ end }}") == at + "unexpected \"1\" in {{break}}");
  CHECK(check("{{ range $labels }}{{ else }}{{ continue }}{{ end }}") ==
        at + "{{continue}} outside {{range}}");
  CHECK(check("{{ if 1 }}{{ define \"x\" }}{{ end }}{{ end }}") == at + "unexpected <define> in command");
  CHECK(check("{{ define \"x\" }}a{{ end }}{{ define \"x\" }}b{{ end }}") ==
        at + "template: multiple definition of template \"x\"");
  CHECK(check("{{ define \"x\" }}a{{ else }}{{ end }}") == at + "unexpected {{else}} in define clause");
  CHECK(check("{{ template x }}") == at + "unexpected \"x\" in template clause");
  CHECK(check("{{ block \"b\" }}{{ end }}") == at + "missing value for block clause");
  CHECK(check("{{ define \"x\" }}a") == at + "unexpected EOF");
  CHECK(check("{{ with 1 }}{{ else with 2 }}{{ end }}") == at + "unexpected <with> in else");  // Go 1.19
  CHECK(check("{{ range $labels }}a{{ else if 1 }}b{{ end }}") == at + "unexpected <if> in input");
  CHECK(check("{{ tmpl \"x\" }}") == at + "function \"tmpl\" not defined");  // console templates only
  CHECK(check("{{ define \"x\" }} {{ end }}{{ define \"x\" }}b{{ end }}{{ template \"x\" }}") == "ok");
}

TEST_CASE("template: a parsed AlertTemplate expands many times and keeps its parse error") {
  AlertTemplate t("A", "{{ $labels.instance }}={{ $value }}");
  CHECK_FALSE(t.parse_error());
  CHECK(t.Expand(Data(1)) == "h:1=1");
  CHECK(t.Expand(Data(2.5)) == "h:1=2.5");
  AlertTemplate bad("A", "{{ nosuch }}");
  REQUIRE(bad.parse_error());
  CHECK(*bad.parse_error() == "template: __alert_A:1: function \"nosuch\" not defined");
  CHECK(bad.Expand(Data(1)) ==
        "<error expanding template: error parsing template __alert_A: " + *bad.parse_error() + ">");
}

}  // namespace rules_template_test
