// Connection limits and how much of them client backends use.
#include <optional>

#include "runbook/collector.h"

namespace runbook {
namespace {

// pg_stat_get_activity(NULL) is the function under the pg_stat_activity view; calling it directly
// saves the view's joins (about half of this query's server CPU).
// reserved_connections (slots for roles with pg_use_reserved_connections) exists from 16.
constexpr PgQuery kQuery{
    "connections",
    "SELECT current_setting('max_connections')::int AS max_connections,"
    " current_setting('superuser_reserved_connections')::int AS superuser_reserved_connections,"
    " (SELECT count(*) FROM pg_stat_get_activity(NULL) WHERE backend_type = 'client backend')"
    " AS current_connections"};
constexpr PgQuery kQuery16{
    "connections",
    "SELECT current_setting('max_connections')::int AS max_connections,"
    " current_setting('superuser_reserved_connections')::int AS superuser_reserved_connections,"
    " current_setting('reserved_connections')::int AS reserved_connections,"
    " (SELECT count(*) FROM pg_stat_get_activity(NULL) WHERE backend_type = 'client backend')"
    " AS current_connections"};

const MetricDesc kMax{"pg_settings_max_connections",
                      MetricKind::kGauge,
                      "Setting max_connections: maximum number of concurrent connections.",
                      {}};
const MetricDesc kSuperuserReserved{
    "pg_settings_superuser_reserved_connections",
    MetricKind::kGauge,
    "Setting superuser_reserved_connections: connection slots reserved for superusers.",
    {}};
const MetricDesc kReserved{"pg_settings_reserved_connections",
                           MetricKind::kGauge,
                           "Setting reserved_connections (PostgreSQL 16+): connection slots "
                           "reserved for roles with pg_use_reserved_connections.",
                           {}};
const MetricDesc kCurrent{"pg_connections_current",
                          MetricKind::kGauge,
                          "Number of client backends, which count against max_connections "
                          "(including the exporter's own).",
                          {}};
const MetricDesc kUtilization{"pg_connections_utilization_ratio",
                              MetricKind::kGauge,
                              "Client backends divided by the connection slots open to ordinary "
                              "users (max_connections - superuser_reserved_connections - "
                              "reserved_connections); 1 means ordinary users are refused.",
                              {}};

class ConnectionsCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    const bool v16 = ctx.pg->ServerVersionNum() >= 160000;
    PgResult r;
    if (auto st = ctx.pg->Query(v16 ? kQuery16 : kQuery, ctx.deadline, r); !st.ok()) return st;
    if (r.rows.size() != 1) return Status::Error(ErrorReason::kProtocol, "connections: expected one row");
    const auto& row = r.rows[0];
    auto num = [&](std::string_view column, const MetricDesc& desc) {
      auto v = NumberAt(r, row, column, sink);
      if (v) sink.Add(desc, {}, *v);
      return v;
    };
    auto max = num("max_connections", kMax);
    auto superuser = num("superuser_reserved_connections", kSuperuserReserved);
    auto reserved = num("reserved_connections", kReserved);
    auto current = num("current_connections", kCurrent);
    if (max && superuser && current && (reserved || !v16)) {
      double usable = *max - *superuser - reserved.value_or(0);
      if (usable > 0) sink.Add(kUtilization, {}, *current / usable);
    }
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "connections",
    .kind = TargetKind::kPostgres,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "max_connections and reserved slots, current client backends and their utilisation "
            "of the slots open to ordinary users.",
    .factory = [] { return std::make_unique<ConnectionsCollector>(); },
}};

}  // namespace
}  // namespace runbook
