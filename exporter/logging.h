#pragma once
// Logging setup: spdlog to stderr, as logfmt-like text or one JSON object per line.
// Call once from main before any thread starts.

#include <string>
#include <string_view>

namespace runbook {

// level: debug, info, warn, error. format: text, json. Returns an error message or empty.
std::string SetupLogging(std::string_view level, std::string_view format);

}  // namespace runbook
