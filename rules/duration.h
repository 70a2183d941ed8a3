#pragma once
// Durations as Prometheus writes them in rule files and promtool's test files.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "runbook/promql.h"

namespace runbook::rules {

// Prometheus' model.ParseDuration and model.Duration.String(), shared with PromQL.
using promql::FormatDuration;
using promql::ParseDuration;
// Go's time.Duration.String() of a millisecond count: `0s`, `5m0s`, `1h0m0s`, `2m59.999s`.
std::string FormatGoDuration(std::int64_t ms);

}  // namespace runbook::rules
