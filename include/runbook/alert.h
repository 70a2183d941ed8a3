#pragma once
// Alert and NotifyFunc: the only link between the rule engine (rules/) and alert delivery
// (rules/notify/). The engine calls NotifyFunc with the alerts to send after each evaluation of
// a group, exactly as Prometheus' rule manager does (firing alerts re-sent every resend delay,
// resolved alerts with their ends_at); delivery owns everything after that call.
//
// Thread-safety: a NotifyFunc may be called from any evaluation thread; implementations must
// return quickly (queue, never block on the network).

#include <functional>
#include <vector>

#include "runbook/clock.h"
#include "runbook/labels.h"

namespace runbook {

struct Alert {
  Labels labels;       // sorted by name; includes alertname and the external labels
  Labels annotations;  // sorted by name, templates already expanded
  TimestampMs starts_at = 0;
  TimestampMs ends_at = 0;  // firing: now + 4 * max(resend delay, interval); resolved: when it resolved
  std::string generator_url;

  bool operator==(const Alert&) const = default;
};

using NotifyFunc = std::function<void(const std::vector<Alert>& alerts)>;

}  // namespace runbook
