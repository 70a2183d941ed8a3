// SHOW DATABASES: the limits and server connections of every configured database, and how much of
// its limit the database uses. Names and labels as prometheus-community/pgbouncer_exporter.
#include <optional>
#include <string>
#include <vector>

#include "runbook/collector.h"

namespace runbook {
namespace {

constexpr PgQuery kQuery{"databases", "SHOW DATABASES"};

constexpr std::string_view kLabelColumns[] = {"name", "host", "port", "database", "force_user", "pool_mode"};

MetricDesc Gauge(std::string name, std::string help) {
  return {std::move(name),
          MetricKind::kGauge,
          std::move(help),
          {"name", "host", "port", "database", "force_user", "pool_mode"}};
}

const MetricDesc kReservePool = Gauge("pgbouncer_databases_reserve_pool",
                                      "Maximum number of additional server connections for this database.");

const ColumnMetric kColumns[] = {
    {"pool_size",
     Gauge("pgbouncer_databases_pool_size", "Maximum number of server connections of each pool.")},
    {"min_pool_size",
     Gauge("pgbouncer_databases_min_pool_size", "Minimum number of server connections of each pool.")},
    {"reserve_pool", kReservePool},
    {"max_connections", Gauge("pgbouncer_databases_max_connections",
                              "Maximum number of server connections for this database (max_db_connections; "
                              "0 means unlimited).")},
    {"current_connections", Gauge("pgbouncer_databases_current_connections",
                                  "Current number of server connections for this database.")},
    {"paused", Gauge("pgbouncer_databases_paused", "1 if this database is currently paused, else 0.")},
    {"disabled", Gauge("pgbouncer_databases_disabled", "1 if this database is currently disabled, else 0.")},
};

// Newer PgBouncer versions call reserve_pool reserve_pool_size; read it only when the old name is absent.
const ColumnMetric kRenamedReservePool[] = {{"reserve_pool_size", kReservePool}};

const MetricDesc kUtilization = Gauge(
    "pgbouncer_databases_server_connections_utilization_ratio",
    "Server connections of the database divided by its limit: max_connections (max_db_connections) when "
    "set, else pool_size, the limit of each (database, user) pool; above 1 when several users or the "
    "reserve pool are in use.");

class DatabasesCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    PgResult r;
    if (auto st = ctx.pg->Query(kQuery, ctx.deadline, r); !st.ok()) return st;
    EmitRows(r, kLabelColumns, kColumns, sink);
    if (r.ColumnIndex("reserve_pool") < 0) EmitRows(r, kLabelColumns, kRenamedReservePool, sink);
    std::vector<std::string> labels(std::size(kLabelColumns));
    // Number parse errors were recorded once by EmitRows; these lookups only read.
    MetricSink quiet;
    for (const auto& row : r.rows) {
      auto current = NumberAt(r, row, "current_connections", quiet);
      auto max = NumberAt(r, row, "max_connections", quiet);
      auto pool = NumberAt(r, row, "pool_size", quiet);
      std::optional<double> limit = max && *max > 0 ? max : pool;
      if (!current || !limit || *limit <= 0) continue;
      for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = TextAt(r, row, kLabelColumns[i]);
      sink.Add(kUtilization, labels, *current / *limit);
    }
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "databases",
    .kind = TargetKind::kPgBouncer,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "SHOW DATABASES: pool limits, server connections, paused/disabled state and server "
            "connection utilisation per database.",
    .factory = [] { return std::make_unique<DatabasesCollector>(); },
}};

}  // namespace
}  // namespace runbook
