// WAL archiving (pg_stat_archiver): counters, last success and failure, whether archiving is
// failing right now, and how many segments wait to be archived.
#include <optional>

#include "runbook/collector.h"

namespace runbook {
namespace {

// pg_ls_archive_statusdir() exists from 12 and needs pg_monitor; a standby does not archive
// (unless archive_mode=always), so the backlog is only read on a primary.
constexpr PgQuery kQuery{
    "stat_archiver",
    "SELECT archived_count, failed_count,"
    " extract(epoch FROM now() - last_archived_time)::float8 AS last_archive_age,"
    " extract(epoch FROM last_archived_time)::float8 AS last_archived_timestamp_seconds,"
    " extract(epoch FROM last_failed_time)::float8 AS last_failed_timestamp_seconds,"
    " CASE WHEN NOT pg_is_in_recovery() THEN (SELECT count(*) FROM pg_ls_archive_statusdir()"
    " WHERE name LIKE '%.ready') END AS pending_wal_files"
    " FROM pg_stat_archiver"};

const MetricDesc kArchived{"pg_stat_archiver_archived_count",
                           MetricKind::kCounter,
                           "Number of WAL files that have been successfully archived.",
                           {}};
const MetricDesc kFailed{"pg_stat_archiver_failed_count",
                         MetricKind::kCounter,
                         "Number of failed attempts to archive WAL files.",
                         {}};
const MetricDesc kAge{"pg_stat_archiver_last_archive_age",
                      MetricKind::kGauge,
                      "Time since the last WAL file was successfully archived, in seconds.",
                      {}};
const MetricDesc kLastArchived{"pg_stat_archiver_last_archived_timestamp_seconds",
                               MetricKind::kGauge,
                               "Time of the last successful archive, in Unix seconds.",
                               {}};
const MetricDesc kLastFailed{"pg_stat_archiver_last_failed_timestamp_seconds",
                             MetricKind::kGauge,
                             "Time of the last failed archive attempt, in Unix seconds.",
                             {}};
const MetricDesc kFailing{"pg_stat_archiver_failing",
                          MetricKind::kGauge,
                          "1 if the last archive attempt failed (last failure later than the "
                          "last success), else 0.",
                          {}};
const MetricDesc kPending{"pg_stat_archiver_pending_wal_files",
                          MetricKind::kGauge,
                          "Number of WAL files waiting to be archived (.ready files in "
                          "pg_wal/archive_status); primary only.",
                          {}};

class StatArchiverCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    PgResult r;
    if (auto st = ctx.pg->Query(kQuery, ctx.deadline, r); !st.ok()) return st;
    if (r.rows.size() != 1) return Status::Error(ErrorReason::kProtocol, "stat_archiver: expected one row");
    const auto& row = r.rows[0];
    auto num = [&](std::string_view column, const MetricDesc& desc) {
      auto v = NumberAt(r, row, column, sink);
      if (v) sink.Add(desc, {}, *v);
      return v;
    };
    num("archived_count", kArchived);
    num("failed_count", kFailed);
    num("last_archive_age", kAge);
    num("pending_wal_files", kPending);
    auto archived = num("last_archived_timestamp_seconds", kLastArchived);
    auto failed = num("last_failed_timestamp_seconds", kLastFailed);
    sink.Add(kFailing, {}, failed && (!archived || *failed > *archived) ? 1 : 0);
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "stat_archiver",
    .kind = TargetKind::kPostgres,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "WAL archiving from pg_stat_archiver: archived and failed counts, last success and "
            "failure, failing flag, pending .ready files.",
    .factory = [] { return std::make_unique<StatArchiverCollector>(); },
}};

}  // namespace
}  // namespace runbook
