// Replication slots and the WAL each one holds back (slow tier).
#include "runbook/collector.h"

namespace runbook {
namespace {

// Current position: insert position on a primary, received position on a standby. A slot that
// never reserved WAL (restart_lsn NULL) has no lsn_diff sample. database is '' for physical slots.
constexpr PgQuery kQuery{"replication_slots",
                         "SELECT slot_name, coalesce(database, '') AS database, active,"
                         " pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()"
                         " ELSE pg_current_wal_lsn() END, restart_lsn) AS wal_lsn_diff"
                         " FROM pg_replication_slots"};

const MetricDesc kActive{"pg_replication_slots_active",
                         MetricKind::kGauge,
                         "1 if a consumer is connected to the replication slot, else 0.",
                         {"slot_name", "database"}};
const MetricDesc kLsnDiff{"pg_replication_slots_pg_wal_lsn_diff",
                          MetricKind::kGauge,
                          "Bytes of WAL retained for the slot: current WAL position (received "
                          "position on a standby) - restart_lsn.",
                          {"slot_name", "database"}};

constexpr std::string_view kLabelColumns[] = {"slot_name", "database"};

class ReplicationSlotsCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    PgResult r;
    if (auto st = ctx.pg->Query(kQuery, ctx.deadline, r); !st.ok()) return st;
    static const ColumnMetric kColumns[] = {{"active", kActive}, {"wal_lsn_diff", kLsnDiff}};
    EmitRows(r, kLabelColumns, kColumns, sink);
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "replication_slots",
    .kind = TargetKind::kPostgres,
    .enabled_by_default = true,
    .tier = Tier::kSlow,
    .help = "Replication slots: whether active and how much WAL each retains.",
    .factory = [] { return std::make_unique<ReplicationSlotsCollector>(); },
}};

}  // namespace
}  // namespace runbook
