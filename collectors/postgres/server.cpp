// Server identity and role: version, start time, recovery state.
#include "runbook/collector.h"

namespace runbook {
namespace {

constexpr PgQuery kQuery{"server",
                         "SELECT current_setting('server_version') AS version,"
                         " current_setting('server_version_num')::int AS version_num,"
                         " extract(epoch FROM pg_postmaster_start_time()) AS start_time_seconds,"
                         " pg_is_in_recovery() AS in_recovery"};

const MetricDesc kStatic{"pg_static",
                         MetricKind::kGauge,
                         "Version of the PostgreSQL server; constant 1.",
                         {"version", "short_version"}};
const MetricDesc kVersionNum{
    "pg_server_version_num", MetricKind::kGauge, "server_version_num of the PostgreSQL server.", {}};
const MetricDesc kStartTime{"pg_postmaster_start_time_seconds",
                            MetricKind::kGauge,
                            "Time at which the postmaster started, in Unix seconds.",
                            {}};
const MetricDesc kIsReplica{"pg_replication_is_replica",
                            MetricKind::kGauge,
                            "1 if the server is in recovery (a standby), else 0.",
                            {}};

class ServerCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    PgResult r;
    if (auto st = ctx.pg->Query(kQuery, ctx.deadline, r); !st.ok()) return st;
    if (r.rows.size() != 1) return Status::Error(ErrorReason::kProtocol, "server: expected one row");
    const auto& row = r.rows[0];
    auto col = [&](std::string_view name) -> const std::optional<std::string>& {
      static const std::optional<std::string> kNull;
      int i = r.ColumnIndex(name);
      return i < 0 ? kNull : row[i];
    };
    if (const auto& v = col("version")) {
      // "15.4 (Debian 15.4-1)" → "15.4"; "17beta1" stays whole.
      std::string short_version = v->substr(0, v->find(' '));
      sink.Add(kStatic, {*v, short_version}, 1);
    }
    static constexpr std::string_view kNoLabels[] = {""};
    static const ColumnMetric kColumns[] = {
        {"version_num", kVersionNum}, {"start_time_seconds", kStartTime}, {"in_recovery", kIsReplica}};
    EmitRows(r, std::span(kNoLabels, 0), kColumns, sink);
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "server",
    .kind = TargetKind::kPostgres,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "Server version, postmaster start time and whether it is a standby.",
    .factory = [] { return std::make_unique<ServerCollector>(); },
}};

}  // namespace
}  // namespace runbook
