#pragma once
// Durations as Prometheus writes them in rule files and promtool's test files.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace runbook::rules {

// Prometheus' model.ParseDuration: `1h30m`, `90s`, `1d`, `0`; units y w d h m s ms, each at
// most once and in that order. Milliseconds, or nullopt when invalid or out of range.
std::optional<std::int64_t> ParseDuration(std::string_view text);
// Prometheus' model.Duration.String(): `0s`, `5m`, `1h30m`, `1d`, `2w`.
std::string FormatDuration(std::int64_t ms);
// Go's time.Duration.String() of a millisecond count: `0s`, `5m0s`, `1h0m0s`, `2m59.999s`.
std::string FormatGoDuration(std::int64_t ms);

}  // namespace runbook::rules
