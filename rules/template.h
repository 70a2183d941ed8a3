#pragma once
// The subset of Go's text/template that Prometheus alerting rules use, with Prometheus' function
// map (humanize*, reReplaceAll, query, ...). Output is byte-identical to Prometheus 2.42 for the
// supported constructs; a failure yields Go's error text so that callers can wrap it as
// Prometheus does (`<error expanding template: ...>`).
//
// Thread-safety: a parsed Template is immutable; Execute may run concurrently.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "go_text.h"
#include "runbook/labels.h"

namespace runbook::rules {

struct TemplateSample {
  Labels labels;
  double value = 0;
};
// Runs an instant query for the template function `query`; returns the samples or an error text.
using TemplateQueryFunc =
    std::function<std::variant<std::vector<TemplateSample>, std::string>(std::string_view expr)>;

// The data an alert template sees: .Labels, .ExternalLabels, .ExternalURL, .Value.
struct TemplateData {
  Labels labels;
  Labels external_labels;
  std::string external_url;
  double value = 0;
  TemplateQueryFunc query;  // may be empty: `query` then fails with an error
};

class Template {
 public:
  struct Node;
  // Parses `text`; on error returns Go's message, e.g. `template: NAME:1: function "x" not defined`.
  static std::variant<Template, std::string> Parse(std::string_view name, std::string_view text);
  // Go's error text on failure (`template: NAME:1:5: executing "NAME" at <...>: ...`).
  std::variant<std::string, std::string> Execute(const TemplateData& data) const;

 private:
  std::string name_;
  std::string text_;
  std::shared_ptr<const Node> root_;
};

// One label or annotation template of an alerting rule, parsed once (when the rule is loaded) and
// expanded for every alert at every evaluation. Immutable; Expand may run concurrently.
class AlertTemplate {
 public:
  AlertTemplate(std::string_view rule_name, std::string_view text);
  // Prometheus' expansion; a parse error is reported here as Prometheus reports it at run time.
  std::string Expand(const TemplateData& data) const;
  // The parse error (promtool check rules' message), if any.
  const std::optional<std::string>& parse_error() const { return parse_error_; }

 private:
  std::string name_;
  std::optional<Template> template_;
  std::optional<std::string> parse_error_;
  std::optional<std::string> constant_;  // the text, when it has no action (no "{{")
};

// Prometheus' alert template expansion: prepends the $labels/$externalLabels/$externalURL/$value
// definitions, expands, and on failure returns `<error expanding template: ...>`.
std::string ExpandAlertTemplate(std::string_view rule_name, std::string_view text, const TemplateData& data);
// The load-time check of a label or annotation template (promtool check rules): nullopt when it
// parses, else the error text.
std::optional<std::string> CheckAlertTemplate(std::string_view rule_name, std::string_view text);

// Go's %v of a float64 (strconv.FormatFloat(v, 'g', -1, 64)): 1.234567e+06, 123456.7, NaN, +Inf.
std::string FormatGoFloat(double v);
// Go's strconv.FormatFloat(v, 'E', -1, 64), as promtool prints sample values: 1E+00.
std::string FormatGoFloatE(double v);

}  // namespace runbook::rules
