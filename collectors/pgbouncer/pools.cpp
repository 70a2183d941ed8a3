// SHOW POOLS: clients and servers of every (database, user) pool by state, and how long the oldest
// waiting client has waited. Names and labels as prometheus-community/pgbouncer_exporter.
#include <string>
#include <vector>

#include "runbook/collector.h"

namespace runbook {
namespace {

constexpr PgQuery kQuery{"pools", "SHOW POOLS"};

constexpr std::string_view kLabelColumns[] = {"database", "user"};

MetricDesc Gauge(std::string name, std::string help) {
  return {std::move(name), MetricKind::kGauge, std::move(help), {"database", "user"}};
}

// Columns a PgBouncer version does not have give no sample (cl_*_cancel_req, sv_active_cancel and
// sv_being_canceled exist from 1.18; 1.17 has cl_cancel_req instead, which is not published).
const ColumnMetric kColumns[] = {
    {"cl_active", Gauge("pgbouncer_pools_client_active_connections",
                        "Client connections linked to a server connection or idle with no queries waiting.")},
    {"cl_waiting",
     Gauge("pgbouncer_pools_client_waiting_connections",
           "Client connections that have sent queries but have not yet got a server connection.")},
    {"cl_active_cancel_req", Gauge("pgbouncer_pools_client_active_cancel_connections",
                                   "Client connections that have forwarded query cancellations to the server "
                                   "and wait for its answer.")},
    {"cl_waiting_cancel_req", Gauge("pgbouncer_pools_client_waiting_cancel_connections",
                                    "Client connections that have not forwarded query cancellations yet.")},
    {"sv_active",
     Gauge("pgbouncer_pools_server_active_connections", "Server connections linked to a client connection.")},
    {"sv_active_cancel", Gauge("pgbouncer_pools_server_active_cancel_connections",
                               "Server connections that are currently forwarding a cancel request.")},
    {"sv_being_canceled",
     Gauge("pgbouncer_pools_server_being_canceled_connections",
           "Server connections waiting for in-flight cancel requests before becoming idle.")},
    {"sv_idle", Gauge("pgbouncer_pools_server_idle_connections",
                      "Server connections that are unused and immediately usable for client queries.")},
    {"sv_used",
     Gauge("pgbouncer_pools_server_used_connections",
           "Server connections idle for more than server_check_delay, which need server_check_query.")},
    {"sv_tested", Gauge("pgbouncer_pools_server_testing_connections",
                        "Server connections currently running server_reset_query or server_check_query.")},
    {"sv_login",
     Gauge("pgbouncer_pools_server_login_connections", "Server connections currently logging in.")},
};

const MetricDesc kMaxwait = Gauge("pgbouncer_pools_client_maxwait_seconds",
                                  "How long the oldest waiting client of the pool has waited, in seconds "
                                  "(maxwait + maxwait_us); 0 when no client waits.");
const MetricDesc kInfo{"pgbouncer_pools_info",
                       MetricKind::kGauge,
                       "Pooling mode of the pool; constant 1.",
                       {"database", "user", "pool_mode"}};

class PoolsCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    PgResult r;
    if (auto st = ctx.pg->Query(kQuery, ctx.deadline, r); !st.ok()) return st;
    EmitRows(r, kLabelColumns, kColumns, sink);
    const int us_column = r.ColumnIndex("maxwait_us");
    for (const auto& row : r.rows) {
      std::string database = TextAt(r, row, "database"), user = TextAt(r, row, "user");
      // maxwait is whole seconds; maxwait_us (1.8+) the microseconds on top of them.
      auto seconds = NumberAt(r, row, "maxwait", sink);
      auto micros = NumberAt(r, row, "maxwait_us", sink);
      const bool has_micros = us_column >= 0 && row[us_column];
      if (seconds && (micros || !has_micros))
        sink.Add(kMaxwait, {database, user}, *seconds + micros.value_or(0) / 1e6);
      if (auto mode = TextAt(r, row, "pool_mode"); !mode.empty()) sink.Add(kInfo, {database, user, mode}, 1);
    }
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "pools",
    .kind = TargetKind::kPgBouncer,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "SHOW POOLS: client and server connections of every pool by state, and the oldest client's wait.",
    .factory = [] { return std::make_unique<PoolsCollector>(); },
}};

}  // namespace
}  // namespace runbook
