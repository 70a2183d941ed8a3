// Standbys connected to this server (pg_stat_replication), one set of series per walsender,
// labelled by the standby's name and address, never by walsender pid.
//
// write_lag, flush_lag and replay_lag are NULL once a standby has caught up and no WAL flows
// (PostgreSQL clears them after reporting the last lag). Then the lag is 0 if the standby's
// position equals sent_lsn; if the column is NULL while the standby is behind (e.g. just
// connected), there is no sample rather than a made-up value.
#include <optional>

#include "runbook/collector.h"

namespace runbook {
namespace {

// "Current" WAL position: the insert position on a primary, the received position on a standby
// (a cascading standby's walsenders send what it has received). pg_stat_get_wal_senders() and
// pg_stat_get_activity(NULL) are the functions the pg_stat_replication view joins; calling them
// directly skips its pg_authid join and costs a third of the server CPU.
constexpr PgQuery kQuery{
    "stat_replication",
    "SELECT a.application_name, coalesce(host(a.client_addr), '') AS client_addr, w.state,"
    " w.sync_state,"
    " pg_wal_lsn_diff(c.lsn, '0/0') AS current_wal_lsn_bytes,"
    " pg_wal_lsn_diff(c.lsn, w.replay_lsn) AS wal_lsn_diff,"
    " pg_wal_lsn_diff(c.lsn, w.sent_lsn) AS sent_lag_bytes,"
    " pg_wal_lsn_diff(c.lsn, w.write_lsn) AS write_lag_bytes,"
    " pg_wal_lsn_diff(c.lsn, w.flush_lsn) AS flush_lag_bytes,"
    " pg_wal_lsn_diff(c.lsn, w.replay_lsn) AS replay_lag_bytes,"
    " extract(epoch FROM w.write_lag)::float8 AS write_lag_seconds,"
    " extract(epoch FROM w.flush_lag)::float8 AS flush_lag_seconds,"
    " extract(epoch FROM w.replay_lag)::float8 AS replay_lag_seconds"
    " FROM pg_stat_get_wal_senders() w JOIN pg_stat_get_activity(NULL) a ON a.pid = w.pid"
    " CROSS JOIN (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()"
    " ELSE pg_current_wal_lsn() END AS lsn) c"};

const std::vector<std::string> kLabels = {"application_name", "client_addr", "state", "sync_state"};

const MetricDesc kCurrentLsn{"pg_stat_replication_pg_current_wal_lsn_bytes", MetricKind::kGauge,
                             "Current WAL position of this server in bytes (received position "
                             "on a standby), once per standby.",
                             kLabels};
const MetricDesc kLsnDiff{"pg_stat_replication_pg_wal_lsn_diff", MetricKind::kGauge,
                          "Bytes of WAL the standby has not replayed yet (current position - "
                          "replay_lsn).",
                          kLabels};
const MetricDesc kSentLag{"pg_stat_replication_sent_lag_bytes", MetricKind::kGauge,
                          "Bytes of WAL not yet sent to the standby (current position - "
                          "sent_lsn).",
                          kLabels};
const MetricDesc kWriteLag{"pg_stat_replication_write_lag_bytes", MetricKind::kGauge,
                           "Bytes of WAL not yet written by the standby (current position - "
                           "write_lsn).",
                           kLabels};
const MetricDesc kFlushLag{"pg_stat_replication_flush_lag_bytes", MetricKind::kGauge,
                           "Bytes of WAL not yet flushed by the standby (current position - "
                           "flush_lsn).",
                           kLabels};
const MetricDesc kReplayLag{"pg_stat_replication_replay_lag_bytes", MetricKind::kGauge,
                            "Bytes of WAL not yet replayed by the standby (current position - "
                            "replay_lsn).",
                            kLabels};
const MetricDesc kWriteLagSeconds{"pg_stat_replication_write_lag_seconds", MetricKind::kGauge,
                                  "write_lag: time until recent WAL was written by the standby, "
                                  "in seconds; 0 when caught up (write_lsn = sent_lsn).",
                                  kLabels};
const MetricDesc kFlushLagSeconds{"pg_stat_replication_flush_lag_seconds", MetricKind::kGauge,
                                  "flush_lag: time until recent WAL was flushed by the standby, "
                                  "in seconds; 0 when caught up (flush_lsn = sent_lsn).",
                                  kLabels};
const MetricDesc kReplayLagSeconds{"pg_stat_replication_replay_lag_seconds", MetricKind::kGauge,
                                   "replay_lag: time until recent WAL was replayed by the "
                                   "standby, in seconds; 0 when caught up (replay_lsn = "
                                   "sent_lsn).",
                                   kLabels};
const MetricDesc kStandbys{"pg_stat_replication_standbys",
                           MetricKind::kGauge,
                           "Number of walsenders (standbys and base backups) in "
                           "pg_stat_replication.",
                           {}};

struct LagSeconds {
  std::string_view seconds_column;
  std::string_view bytes_column;
  const MetricDesc& desc;
};

class StatReplicationCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    PgResult r;
    if (auto st = ctx.pg->Query(kQuery, ctx.deadline, r); !st.ok()) return st;
    static constexpr std::string_view kLabelColumns[] = {"application_name", "client_addr", "state",
                                                         "sync_state"};
    static const ColumnMetric kColumns[] = {
        {"current_wal_lsn_bytes", kCurrentLsn}, {"wal_lsn_diff", kLsnDiff},
        {"sent_lag_bytes", kSentLag},           {"write_lag_bytes", kWriteLag},
        {"flush_lag_bytes", kFlushLag},         {"replay_lag_bytes", kReplayLag}};
    EmitRows(r, kLabelColumns, kColumns, sink);

    static const LagSeconds kLags[] = {{"write_lag_seconds", "write_lag_bytes", kWriteLagSeconds},
                                       {"flush_lag_seconds", "flush_lag_bytes", kFlushLagSeconds},
                                       {"replay_lag_seconds", "replay_lag_bytes", kReplayLagSeconds}};
    for (const auto& row : r.rows) {
      std::vector<std::string> labels;
      for (auto c : kLabelColumns) labels.push_back(TextAt(r, row, c));
      // Byte columns that are not numbers were reported by EmitRows already.
      auto bytes = [&](std::string_view column) { return ParsePgNumber(TextAt(r, row, column)); };
      for (const auto& lag : kLags) {
        int i = r.ColumnIndex(lag.seconds_column);
        if (i >= 0 && row[i]) {
          if (auto v = NumberAt(r, row, lag.seconds_column, sink)) sink.Add(lag.desc, labels, *v);
          continue;
        }
        // NULL interval: 0 only when the standby's position equals sent_lsn (caught up).
        auto behind = bytes(lag.bytes_column), unsent = bytes("sent_lag_bytes");
        if (behind && unsent && *behind == *unsent) sink.Add(lag.desc, labels, 0);
      }
    }
    sink.Add(kStandbys, {}, static_cast<double>(r.rows.size()));
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "stat_replication",
    .kind = TargetKind::kPostgres,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "Standbys streaming from this server (pg_stat_replication): WAL positions, byte lags "
            "and write/flush/replay lag in seconds.",
    .factory = [] { return std::make_unique<StatReplicationCollector>(); },
}};

}  // namespace
}  // namespace runbook
