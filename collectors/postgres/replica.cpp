// The standby side of streaming replication: replay lag, replay pause, WAL receiver state.
// On a primary only pg_replication_lag_seconds 0 is emitted.
//
// pg_replication_lag_seconds is "now - last replayed commit" only while the standby has received
// WAL it has not replayed; when the received and replayed positions are equal it is 0. An idle
// primary writes no commits, so the commit age alone would grow forever on a healthy standby.
#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

#include "runbook/collector.h"

namespace runbook {
namespace {

// The recovery functions raise an error on a primary, hence the CASE around each of them.
std::string ReplicaSql(std::string_view paused) {
  return std::string(
             "SELECT pg_is_in_recovery() AS in_recovery,"
             " CASE WHEN pg_is_in_recovery() THEN"
             " pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) END"
             " AS receive_replay_lag_bytes,"
             " CASE WHEN pg_is_in_recovery() THEN"
             " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END"
             " AS last_replay_age_seconds,"
             " CASE WHEN pg_is_in_recovery() THEN"
             " extract(epoch FROM pg_last_xact_replay_timestamp())::float8 END"
             " AS last_replay_timestamp_seconds,"
             " CASE WHEN pg_is_in_recovery() THEN ") +
         std::string(paused) +
         " END AS replay_paused,"
         " CASE WHEN pg_is_in_recovery() THEN"
         " coalesce((SELECT status = 'streaming' FROM pg_stat_wal_receiver), false) END"
         " AS wal_receiver_streaming";
}

// pg_get_wal_replay_pause_state() exists from 14 and also reports 'pause requested';
// pg_is_wal_replay_paused() is deprecated from 15.
const std::string kSql = ReplicaSql("pg_is_wal_replay_paused()");
const std::string kSql14 = ReplicaSql("pg_get_wal_replay_pause_state() <> 'not paused'");
const PgQuery kQuery{"replica", kSql};
const PgQuery kQuery14{"replica", kSql14};

const MetricDesc kLag{"pg_replication_lag_seconds",
                      MetricKind::kGauge,
                      "Replication lag of this standby in seconds: now - timestamp of the last "
                      "replayed transaction while received WAL waits for replay, 0 when all "
                      "received WAL is replayed or the server is not a standby.",
                      {}};
const MetricDesc kReceiveReplayLag{"pg_replication_receive_replay_lag_bytes",
                                   MetricKind::kGauge,
                                   "Bytes of WAL received by this standby but not replayed yet.",
                                   {}};
const MetricDesc kLastReplay{"pg_replication_last_replay_timestamp_seconds",
                             MetricKind::kGauge,
                             "Commit time of the last transaction replayed by this standby, in "
                             "Unix seconds.",
                             {}};
const MetricDesc kPaused{"pg_replication_replay_paused",
                         MetricKind::kGauge,
                         "1 if WAL replay on this standby is paused or a pause is requested, "
                         "else 0.",
                         {}};
const MetricDesc kStreaming{"pg_stat_wal_receiver_streaming",
                            MetricKind::kGauge,
                            "1 if this standby's WAL receiver is streaming from its upstream, 0 "
                            "if it is not (or there is no WAL receiver).",
                            {}};

class ReplicaCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    const PgQuery& query = ctx.pg->ServerVersionNum() >= 140000 ? kQuery14 : kQuery;
    PgResult r;
    if (auto st = ctx.pg->Query(query, ctx.deadline, r); !st.ok()) return st;
    if (r.rows.size() != 1) return Status::Error(ErrorReason::kProtocol, "replica: expected one row");
    const auto& row = r.rows[0];
    auto num = [&](std::string_view column) { return NumberAt(r, row, column, sink); };
    auto in_recovery = num("in_recovery");
    if (!in_recovery) return Status::Error(ErrorReason::kProtocol, "replica: no value for in_recovery");
    if (*in_recovery == 0) {
      sink.Add(kLag, {}, 0);
      return Status::Ok();
    }
    auto unreplayed = num("receive_replay_lag_bytes");
    if (unreplayed && *unreplayed == 0) {
      sink.Add(kLag, {}, 0);
    } else if (auto age = num("last_replay_age_seconds")) {
      sink.Add(kLag, {}, std::max(0.0, *age));
    }
    if (unreplayed) sink.Add(kReceiveReplayLag, {}, *unreplayed);
    if (auto v = num("last_replay_timestamp_seconds")) sink.Add(kLastReplay, {}, *v);
    if (auto v = num("replay_paused")) sink.Add(kPaused, {}, *v);
    if (auto v = num("wal_receiver_streaming")) sink.Add(kStreaming, {}, *v);
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "replica",
    .kind = TargetKind::kPostgres,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "Standby side of replication: replay lag in seconds and bytes, last replayed commit, "
            "replay paused, WAL receiver streaming.",
    .factory = [] { return std::make_unique<ReplicaCollector>(); },
}};

}  // namespace
}  // namespace runbook
