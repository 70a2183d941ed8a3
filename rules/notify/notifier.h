#pragma once
// Internal pieces of the Notifier shared with its unit tests.

#include <string>

namespace runbook::notify {

// Hex HMAC-SHA256 of `message` under `key`.
std::string HmacSha256Hex(const std::string& key, const std::string& message);
// The value of X-Runbook-Signature for a body sent at `timestamp` (unix seconds).
std::string SignatureHeader(const std::string& secret, long long timestamp, const std::string& body);

}  // namespace runbook::notify
