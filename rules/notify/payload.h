#pragma once
// Wire formats of alert delivery, pure functions: Alertmanager API v2 bodies (as Prometheus
// sends them), webhook payload version 4 (as Alertmanager 0.25 sends it), group keys, the
// Alertmanager alert ordering and matchers.

#include <re2/re2.h>

#include <memory>
#include <string>
#include <vector>

#include "go_text.h"
#include "runbook/notify.h"

namespace runbook::notify {

// "2026-11-21T08:09:16.713Z": always three fractional digits (go-openapi strfmt.DateTime).
std::string FormatTimeMillis(TimestampMs t);
// RFC 3339 with trailing fractional zeros trimmed (Go's RFC3339Nano): "…:16.713Z", "…:00Z".
std::string FormatTimeNano(TimestampMs t);
inline constexpr const char* kZeroTime = "0001-01-01T00:00:00Z";

// model.LabelSet.String(): {a="b", c="d"} with sorted names.
std::string LabelSetString(const Labels& labels);
// regexp.QuoteMeta.
std::string QuoteMeta(std::string_view s);

// Alertmanager's AlertSlice order: job, then instance, then the whole label set.
bool AlertBefore(const Labels& a, const Labels& b);

class CompiledMatcher {
 public:
  explicit CompiledMatcher(LabelMatcher m);
  bool Matches(const Labels& labels) const;
  const LabelMatcher& matcher() const { return m_; }

 private:
  LabelMatcher m_;
  std::shared_ptr<const re2::RE2> re_;
};
bool MatchAll(const std::vector<CompiledMatcher>& ms, const Labels& labels);
// Matchers.String(): {a="b",c=~"d"}.
std::string MatchersString(const std::vector<LabelMatcher>& ms);

// POST /api/v2/alerts body for `alerts` (Prometheus' field order, no trailing newline).
std::string AlertmanagerBody(const std::vector<Alert>& alerts);

struct WebhookMessage {
  std::string receiver;
  std::vector<Alert> alerts;  // the group's alerts; sorted and truncated by WebhookBody
  Labels group_labels;
  std::string external_url;
  std::string group_key;
  int max_alerts = 0;
  TimestampMs now = 0;  // an alert is resolved iff ends_at <= now
};
// Webhook payload version 4 (Alertmanager's field order, trailing newline).
std::string WebhookBody(WebhookMessage msg);

// JSON with Go's HTML escaping of <, > and & (encoding/json's default).
std::string GoJsonEscapeHtml(std::string json);

}  // namespace runbook::notify
