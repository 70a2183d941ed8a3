// Per-database statistics (pg_stat_database joined with pg_stat_database_conflicts), named as
// postgres_exporter names them; times stay in milliseconds as it publishes them.
#include <string>
#include <string_view>

#include "runbook/collector.h"

namespace runbook {
namespace {

// The datid 0 row (shared objects, datname NULL) is skipped. Session columns exist from 14.
std::string StatDatabaseSql(std::string_view extra_columns) {
  return std::string(
             "SELECT d.datid, d.datname, d.numbackends, d.xact_commit, d.xact_rollback,"
             " d.blks_read, d.blks_hit, d.tup_returned, d.tup_fetched, d.tup_inserted,"
             " d.tup_updated, d.tup_deleted, d.conflicts, d.temp_files, d.temp_bytes,"
             " d.deadlocks, d.blk_read_time, d.blk_write_time, d.checksum_failures,"
             " c.confl_tablespace, c.confl_lock, c.confl_snapshot, c.confl_bufferpin,"
             " c.confl_deadlock") +
         std::string(extra_columns) +
         " FROM pg_stat_database d JOIN pg_stat_database_conflicts c ON c.datid = d.datid"
         " WHERE d.datname IS NOT NULL";
}

const std::string kSql = StatDatabaseSql("");
const std::string kSql14 = StatDatabaseSql(
    ", d.session_time, d.active_time, d.idle_in_transaction_time, d.sessions,"
    " d.sessions_abandoned, d.sessions_fatal, d.sessions_killed");
const PgQuery kQuery{"stat_database", kSql};
const PgQuery kQuery14{"stat_database", kSql14};

constexpr std::string_view kLabelColumns[] = {"datid", "datname"};

MetricDesc Counter(std::string name, std::string help) {
  return {std::move(name), MetricKind::kCounter, std::move(help), {"datid", "datname"}};
}

const ColumnMetric kColumns[] = {
    {"numbackends",
     {"pg_stat_database_numbackends",
      MetricKind::kGauge,
      "Number of backends currently connected to this database.",
      {"datid", "datname"}}},
    {"xact_commit", Counter("pg_stat_database_xact_commit",
                            "Number of transactions in this database that have been committed.")},
    {"xact_rollback", Counter("pg_stat_database_xact_rollback",
                              "Number of transactions in this database that have been rolled back.")},
    {"blks_read", Counter("pg_stat_database_blks_read", "Number of disk blocks read in this database.")},
    {"blks_hit", Counter("pg_stat_database_blks_hit",
                         "Number of times disk blocks were found already in the buffer cache.")},
    {"tup_returned", Counter("pg_stat_database_tup_returned",
                             "Number of live rows fetched by sequential scans and index entries "
                             "returned by index scans in this database.")},
    {"tup_fetched",
     Counter("pg_stat_database_tup_fetched", "Number of live rows fetched by index scans in this database.")},
    {"tup_inserted",
     Counter("pg_stat_database_tup_inserted", "Number of rows inserted by queries in this database.")},
    {"tup_updated",
     Counter("pg_stat_database_tup_updated", "Number of rows updated by queries in this database.")},
    {"tup_deleted",
     Counter("pg_stat_database_tup_deleted", "Number of rows deleted by queries in this database.")},
    {"conflicts", Counter("pg_stat_database_conflicts",
                          "Number of queries canceled due to conflicts with recovery in this "
                          "database (standbys only).")},
    {"temp_files", Counter("pg_stat_database_temp_files",
                           "Number of temporary files created by queries in this database.")},
    {"temp_bytes", Counter("pg_stat_database_temp_bytes",
                           "Total amount of data written to temporary files by queries in this "
                           "database, in bytes.")},
    {"deadlocks", Counter("pg_stat_database_deadlocks", "Number of deadlocks detected in this database.")},
    {"blk_read_time", Counter("pg_stat_database_blk_read_time",
                              "Time spent reading data file blocks by backends in this database, "
                              "in milliseconds (needs track_io_timing).")},
    {"blk_write_time", Counter("pg_stat_database_blk_write_time",
                               "Time spent writing data file blocks by backends in this "
                               "database, in milliseconds (needs track_io_timing).")},
    {"checksum_failures", Counter("pg_stat_database_checksum_failures",
                                  "Number of data page checksum failures detected in this "
                                  "database (only with data checksums enabled).")},
    {"session_time", Counter("pg_stat_database_session_time",
                             "Time spent by database sessions in this database, in milliseconds "
                             "(PostgreSQL 14+).")},
    {"active_time", Counter("pg_stat_database_active_time",
                            "Time spent executing SQL statements in this database, in "
                            "milliseconds (PostgreSQL 14+).")},
    {"idle_in_transaction_time",
     Counter("pg_stat_database_idle_in_transaction_time",
             "Time spent idling while in a transaction in this database, in milliseconds "
             "(PostgreSQL 14+).")},
    {"sessions", Counter("pg_stat_database_sessions",
                         "Total number of sessions established to this database (PostgreSQL "
                         "14+).")},
    {"sessions_abandoned",
     Counter("pg_stat_database_sessions_abandoned",
             "Number of sessions to this database that were terminated because the connection "
             "to the client was lost (PostgreSQL 14+).")},
    {"sessions_fatal", Counter("pg_stat_database_sessions_fatal",
                               "Number of sessions to this database that were terminated by "
                               "fatal errors (PostgreSQL 14+).")},
    {"sessions_killed", Counter("pg_stat_database_sessions_killed",
                                "Number of sessions to this database that were terminated by "
                                "operator intervention (PostgreSQL 14+).")},
    {"confl_tablespace", Counter("pg_stat_database_conflicts_confl_tablespace",
                                 "Number of queries in this database canceled due to dropped "
                                 "tablespaces (standbys only).")},
    {"confl_lock", Counter("pg_stat_database_conflicts_confl_lock",
                           "Number of queries in this database canceled due to lock timeouts "
                           "(standbys only).")},
    {"confl_snapshot", Counter("pg_stat_database_conflicts_confl_snapshot",
                               "Number of queries in this database canceled due to old "
                               "snapshots (standbys only).")},
    {"confl_bufferpin", Counter("pg_stat_database_conflicts_confl_bufferpin",
                                "Number of queries in this database canceled due to pinned "
                                "buffers (standbys only).")},
    {"confl_deadlock", Counter("pg_stat_database_conflicts_confl_deadlock",
                               "Number of queries in this database canceled due to deadlocks "
                               "(standbys only).")},
};

class StatDatabaseCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    const PgQuery& query = ctx.pg->ServerVersionNum() >= 140000 ? kQuery14 : kQuery;
    PgResult r;
    if (auto st = ctx.pg->Query(query, ctx.deadline, r); !st.ok()) return st;
    EmitRows(r, kLabelColumns, kColumns, sink);
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "stat_database",
    .kind = TargetKind::kPostgres,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "Per-database statistics from pg_stat_database and pg_stat_database_conflicts.",
    .factory = [] { return std::make_unique<StatDatabaseCollector>(); },
}};

}  // namespace
}  // namespace runbook
