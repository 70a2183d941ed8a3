#pragma once
// Keys of ScrapeContext::shared written and read by the PgBouncer collectors.
#include <string_view>

namespace runbook::pgbouncer {

// max_client_conn from SHOW CONFIG (config, slow tier), for the client utilisation (lists).
inline constexpr std::string_view kSharedMaxClientConn = "pgbouncer.max_client_conn";

}  // namespace runbook::pgbouncer
