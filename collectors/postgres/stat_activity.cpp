// Client backends from pg_stat_activity: counts and ages per database, state, user and wait type.
//
// PostgreSQL groups the client backends by (database, user, state, wait event type) and returns
// each group's count and oldest ages; every other figure is a roll-up of those groups done here.
// The query calls pg_stat_get_activity(NULL), the function under the pg_stat_activity view, and
// resolves names itself: expanding the view (joins with pg_database and pg_authid) costs about
// four times as much server CPU. Databases without client backends come with NULL group columns
// so that the postgres_exporter families can be zero-filled.
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runbook/collector.h"

namespace runbook {
namespace {

constexpr PgQuery kQuery{
    "stat_activity",
    "SELECT d.datname, a.usename, a.state, a.wait_event_type, a.backends, a.max_xact_age,"
    " a.max_query_age, a.max_state_age"
    " FROM pg_database d LEFT JOIN ("
    "SELECT datid, pg_get_userbyid(usesysid) AS usename, state,"
    " coalesce(wait_event_type, '') AS wait_event_type, count(*) AS backends,"
    " max(extract(epoch FROM now() - xact_start))::float8 AS max_xact_age,"
    " max(extract(epoch FROM now() - query_start))::float8 AS max_query_age,"
    " max(extract(epoch FROM now() - state_change))::float8 AS max_state_age"
    " FROM pg_stat_get_activity(NULL)"
    " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    " GROUP BY datid, usesysid, state, wait_event_type) a ON a.datid = d.oid"
    " WHERE d.datallowconn OR a.datid IS NOT NULL"};

// The states zero-filled by postgres_exporter; other states appear only when non-zero.
constexpr std::string_view kStates[] = {
    "active",  "idle", "idle in transaction", "idle in transaction (aborted)", "fastpath function call",
    "disabled"};

const MetricDesc kCount{"pg_stat_activity_count",
                        MetricKind::kGauge,
                        "Number of client backends per database and state (zero-filled).",
                        {"datname", "state"}};
const MetricDesc kMaxTx{"pg_stat_activity_max_tx_duration",
                        MetricKind::kGauge,
                        "Age of the oldest open transaction per database and state, in seconds "
                        "(0 when there is none).",
                        {"datname", "state"}};
const MetricDesc kBackends{"pg_stat_activity_backends",
                           MetricKind::kGauge,
                           "Number of client backends per database, user, state and wait event "
                           "type ('' when not waiting); only non-empty groups.",
                           {"datname", "usename", "state", "wait_event_type"}};
const MetricDesc kOldestQuery{"pg_stat_activity_oldest_query_seconds",
                              MetricKind::kGauge,
                              "Run time of the longest running active query per database, in "
                              "seconds (now - query_start).",
                              {"datname"}};
const MetricDesc kOldestIdleInTx{"pg_stat_activity_oldest_idle_in_transaction_seconds",
                                 MetricKind::kGauge,
                                 "Longest time a client backend has been idle in transaction "
                                 "(aborted or not) per database, in seconds (now - state_change).",
                                 {"datname"}};
const MetricDesc kOldestIdle{"pg_stat_activity_oldest_idle_seconds",
                             MetricKind::kGauge,
                             "Longest time a client backend has been idle per database, in "
                             "seconds (now - state_change).",
                             {"datname"}};
const MetricDesc kOldestXact{"pg_stat_activity_oldest_xact_seconds",
                             MetricKind::kGauge,
                             "Age of the oldest open transaction per database in any state, in "
                             "seconds (now - xact_start).",
                             {"datname"}};
const MetricDesc kLockWaiting{"pg_stat_activity_lock_waiting_backends",
                              MetricKind::kGauge,
                              "Number of client backends waiting for a heavyweight lock "
                              "(wait_event_type 'Lock') per database with client backends.",
                              {"datname"}};

// Keeps the larger of two optional values.
void KeepMax(std::optional<double>& into, std::optional<double> v) {
  if (v && (!into || *v > *into)) into = v;
}

struct StateTotals {
  double count = 0;
  std::optional<double> max_xact_age;
};

struct DatabaseTotals {
  std::map<std::string, StateTotals> states;
  bool has_backends = false;
  double lock_waiting = 0;
  std::optional<double> oldest_query, oldest_idle_in_tx, oldest_idle, oldest_xact;
};

class StatActivityCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    PgResult r;
    if (auto st = ctx.pg->Query(kQuery, ctx.deadline, r); !st.ok()) return st;
    if (r.ColumnIndex("datname") < 0 || r.ColumnIndex("backends") < 0)
      return Status::Error(ErrorReason::kProtocol, "stat_activity: missing columns");

    std::map<std::string, DatabaseTotals> databases;
    for (const auto& row : r.rows) {
      const std::string datname = TextAt(r, row, "datname");
      auto& db = databases[datname];
      for (auto s : kStates) db.states.try_emplace(std::string(s));
      auto backends = NumberAt(r, row, "backends", sink);
      if (!backends) continue;  // a database without client backends: zero-fill only

      const std::string state = TextAt(r, row, "state"), wait = TextAt(r, row, "wait_event_type");
      sink.Add(kBackends, {datname, TextAt(r, row, "usename"), state, wait}, *backends);
      auto xact_age = NumberAt(r, row, "max_xact_age", sink),
           query_age = NumberAt(r, row, "max_query_age", sink),
           state_age = NumberAt(r, row, "max_state_age", sink);
      auto& totals = db.states[state];
      totals.count += *backends;
      KeepMax(totals.max_xact_age, xact_age);
      db.has_backends = true;
      if (wait == "Lock") db.lock_waiting += *backends;
      KeepMax(db.oldest_xact, xact_age);
      if (state == "active") KeepMax(db.oldest_query, query_age);
      if (state == "idle") KeepMax(db.oldest_idle, state_age);
      if (state.starts_with("idle in transaction")) KeepMax(db.oldest_idle_in_tx, state_age);
    }

    // now() is our transaction's start, so a backend that began later has a tiny negative age.
    for (const auto& [datname, db] : databases) {
      for (const auto& [state, totals] : db.states) {
        sink.Add(kCount, {datname, state}, totals.count);
        sink.Add(kMaxTx, {datname, state}, std::max(0.0, totals.max_xact_age.value_or(0)));
      }
      if (!db.has_backends) continue;
      sink.Add(kLockWaiting, {datname}, db.lock_waiting);
      const std::pair<const MetricDesc&, const std::optional<double>&> ages[] = {
          {kOldestQuery, db.oldest_query},
          {kOldestIdleInTx, db.oldest_idle_in_tx},
          {kOldestIdle, db.oldest_idle},
          {kOldestXact, db.oldest_xact}};
      for (const auto& [desc, age] : ages)
        if (age) sink.Add(desc, {datname}, std::max(0.0, *age));
    }
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "stat_activity",
    .kind = TargetKind::kPostgres,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "Client backends from pg_stat_activity: counts per state, user and wait type, oldest "
            "query, transaction and idle ages, lock waiters.",
    .factory = [] { return std::make_unique<StatActivityCollector>(); },
}};

}  // namespace
}  // namespace runbook
