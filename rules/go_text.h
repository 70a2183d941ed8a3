#pragma once
// Go's text conventions that Prometheus and Alertmanager output depends on, shared by PromQL
// errors, rule-file messages, templates and notification payloads.

#include <string>
#include <string_view>

namespace runbook {

// strconv.Quote for ASCII and UTF-8 text: "a\"b\n" with Go's escapes (\a \b \f \n \r \t \v,
// \xNN for other control bytes).
std::string GoQuote(std::string_view s);
// url.QueryEscape: letters, digits and -_.~ kept, space as +, everything else %XX.
std::string QueryEscape(std::string_view s);
// text/template's HTMLEscapeString: " ' & < > as &#34; &#39; &amp; &lt; &gt;, NUL as U+FFFD. Also
// what the exporter's own pages escape with.
std::string HtmlEscape(std::string_view s);

}  // namespace runbook
