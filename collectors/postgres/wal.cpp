// WAL segment files in pg_wal (slow tier: lists the directory; needs pg_monitor).
#include "runbook/collector.h"

namespace runbook {
namespace {

// Only segment files (24 hex digits): not .history, .partial or backup label files.
constexpr PgQuery kQuery{"wal",
                         "SELECT count(*) AS segments, coalesce(sum(size), 0) AS size_bytes"
                         " FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'"};

const MetricDesc kSegments{
    "pg_wal_segments", MetricKind::kGauge, "Number of WAL segment files in pg_wal.", {}};
const MetricDesc kSize{
    "pg_wal_size_bytes", MetricKind::kGauge, "Total size of the WAL segment files in pg_wal, in bytes.", {}};

class WalCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    PgResult r;
    if (auto st = ctx.pg->Query(kQuery, ctx.deadline, r); !st.ok()) return st;
    if (r.rows.size() != 1) return Status::Error(ErrorReason::kProtocol, "wal: expected one row");
    static constexpr std::string_view kNoLabels[] = {""};
    static const ColumnMetric kColumns[] = {{"segments", kSegments}, {"size_bytes", kSize}};
    EmitRows(r, std::span(kNoLabels, 0), kColumns, sink);
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "wal",
    .kind = TargetKind::kPostgres,
    .enabled_by_default = true,
    .tier = Tier::kSlow,
    .help = "Number and total size of WAL segment files in pg_wal (pg_ls_waldir).",
    .factory = [] { return std::make_unique<WalCollector>(); },
}};

}  // namespace
}  // namespace runbook
