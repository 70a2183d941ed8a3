#pragma once
// Outcome of talking to a monitored server, with a small closed set of reasons that operators
// can alert on (`runbook_exporter_target_error{reason=...}`). Value type, no thread-safety concerns.

#include <string>
#include <string_view>

namespace runbook {

enum class ErrorReason {
  kNone,        // success
  kNetwork,     // refused, reset, unreachable, DNS, TLS handshake on the transport
  kAuth,        // wrong password, unknown user, pg_hba rejection
  kTimeout,     // connect or query passed its deadline (includes a frozen server)
  kPermission,  // authenticated but not allowed to read something (insufficient_privilege)
  kProtocol,    // the server answered something we cannot interpret (missing column, bad value)
  kQuery,       // the server rejected a query for another reason (SQL error, read-only, ...)
};

// Stable lower-case name used as the `reason` label value.
std::string_view ReasonName(ErrorReason r);
// Every reason except kNone, in declaration order (for zero-filled reason series).
inline constexpr ErrorReason kAllErrorReasons[] = {ErrorReason::kNetwork,  ErrorReason::kAuth,
                                                   ErrorReason::kTimeout,  ErrorReason::kPermission,
                                                   ErrorReason::kProtocol, ErrorReason::kQuery};

struct Status {
  ErrorReason reason = ErrorReason::kNone;
  std::string message;  // human-readable detail; never contains secrets

  bool ok() const { return reason == ErrorReason::kNone; }
  static Status Ok() { return {}; }
  static Status Error(ErrorReason r, std::string msg) { return {r, std::move(msg)}; }
};

}  // namespace runbook
