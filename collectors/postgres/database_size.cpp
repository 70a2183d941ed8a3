// Size of every connectable database (slow tier: pg_database_size walks each database's files).
#include "runbook/collector.h"

namespace runbook {
namespace {

constexpr PgQuery kQuery{
    "database_size",
    "SELECT datname, pg_database_size(oid) AS size_bytes FROM pg_database WHERE datallowconn"};

const MetricDesc kSize{
    "pg_database_size_bytes", MetricKind::kGauge, "Disk space used by the database, in bytes.", {"datname"}};

constexpr std::string_view kLabelColumns[] = {"datname"};

class DatabaseSizeCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    PgResult r;
    if (auto st = ctx.pg->Query(kQuery, ctx.deadline, r); !st.ok()) return st;
    static const ColumnMetric kColumns[] = {{"size_bytes", kSize}};
    EmitRows(r, kLabelColumns, kColumns, sink);
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "database_size",
    .kind = TargetKind::kPostgres,
    .enabled_by_default = true,
    .tier = Tier::kSlow,
    .help = "Size of each database that accepts connections (pg_database_size).",
    .factory = [] { return std::make_unique<DatabaseSizeCollector>(); },
}};

}  // namespace
}  // namespace runbook
