// SHOW STATS: the per-database totals since PgBouncer started, as counters in base units. Names as
// prometheus-community/pgbouncer_exporter. SHOW STATS (not STATS_TOTALS, 1.8+) works on every
// version; the avg_* columns are rates PromQL derives from the counters and are not published.
#include <string>

#include "runbook/collector.h"

namespace runbook {
namespace {

constexpr PgQuery kQuery{"stats", "SHOW STATS"};

constexpr std::string_view kLabelColumns[] = {"database"};

MetricDesc Counter(std::string name, std::string help) {
  return {std::move(name), MetricKind::kCounter, std::move(help), {"database"}};
}

// Before 1.8 the query count was total_requests; it and every column not listed here are ignored.
// The *_count columns of prepared statements and server assignments exist from 1.21.
const ColumnMetric kColumns[] = {
    {"total_xact_count",
     Counter("pgbouncer_stats_sql_transactions_pooled_total", "SQL transactions pooled by PgBouncer.")},
    {"total_query_count",
     Counter("pgbouncer_stats_queries_pooled_total", "SQL queries pooled by PgBouncer.")},
    {"total_received",
     Counter("pgbouncer_stats_received_bytes_total", "Network traffic received by PgBouncer, in bytes.")},
    {"total_sent",
     Counter("pgbouncer_stats_sent_bytes_total", "Network traffic sent by PgBouncer, in bytes.")},
    {"total_xact_time",
     Counter("pgbouncer_stats_server_in_transaction_seconds_total",
             "Time PgBouncer was connected to PostgreSQL in a transaction (idle or executing), in seconds."),
     1e-6},
    {"total_query_time",
     Counter("pgbouncer_stats_queries_duration_seconds_total",
             "Time PgBouncer was actively connected to PostgreSQL executing queries, in seconds."),
     1e-6},
    {"total_wait_time",
     Counter("pgbouncer_stats_client_wait_seconds_total", "Time clients waited for a server, in seconds."),
     1e-6},
    {"total_server_assignment_count", Counter("pgbouncer_stats_server_assignments_total",
                                              "Times a server connection was assigned to a client (1.21+).")},
    {"total_client_parse_count", Counter("pgbouncer_stats_client_parses_total",
                                         "Prepared statements created by clients (1.21+, prepared statement "
                                         "tracking only).")},
    {"total_server_parse_count", Counter("pgbouncer_stats_server_parses_total",
                                         "Prepared statements PgBouncer created on servers (1.21+, prepared "
                                         "statement tracking only).")},
    {"total_bind_count", Counter("pgbouncer_stats_binds_total",
                                 "Prepared statements readied for execution and forwarded to PostgreSQL "
                                 "(1.21+, prepared statement tracking only).")},
};

class StatsCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    PgResult r;
    if (auto st = ctx.pg->Query(kQuery, ctx.deadline, r); !st.ok()) return st;
    EmitRows(r, kLabelColumns, kColumns, sink);
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "stats",
    .kind = TargetKind::kPgBouncer,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "SHOW STATS: per-database transactions, queries, bytes and times since PgBouncer started.",
    .factory = [] { return std::make_unique<StatsCollector>(); },
}};

}  // namespace
}  // namespace runbook
