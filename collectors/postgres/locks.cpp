// Heavyweight locks from pg_locks: postgres_exporter's per-database counts, a granted/waiting
// split over all lock types (transactionid included), and the number of blocked backends.
//
// PostgreSQL groups the locks by (database, lock type, mode, granted); the families are roll-ups
// of those groups. Every connectable database comes back at least once (FULL JOIN) so that
// pg_locks_count can be zero-filled. The exporter's own locks are left out; locks of prepared
// transactions (pid NULL) are kept.
#include <map>
#include <string>
#include <utility>

#include "runbook/collector.h"

namespace runbook {
namespace {

constexpr PgQuery kQuery{"locks",
                         "SELECT d.datname, l.locktype, l.mode, l.granted, l.locks"
                         " FROM (SELECT database, locktype, lower(mode) AS mode, granted, count(*) AS locks"
                         " FROM pg_locks WHERE pid IS DISTINCT FROM pg_backend_pid()"
                         " GROUP BY database, locktype, lower(mode), granted) l"
                         " FULL JOIN (SELECT oid, datname FROM pg_database WHERE datallowconn) d"
                         " ON d.oid = l.database"};

// The modes postgres_exporter zero-fills, lower-cased as it publishes them.
constexpr std::string_view kModes[] = {
    "accesssharelock", "rowsharelock",          "rowexclusivelock", "shareupdateexclusivelock",
    "sharelock",       "sharerowexclusivelock", "exclusivelock",    "accessexclusivelock",
    "sireadlock"};

const MetricDesc kCount{"pg_locks_count",
                        MetricKind::kGauge,
                        "Number of locks on objects of each database per lock mode, granted or "
                        "not (zero-filled; locks without a database, e.g. transactionid, are not "
                        "counted).",
                        {"datname", "mode"}};
const MetricDesc kGranted{"pg_locks_granted",
                          MetricKind::kGauge,
                          "Number of granted locks per lock type and mode (all databases).",
                          {"locktype", "mode"}};
const MetricDesc kWaiting{"pg_locks_waiting",
                          MetricKind::kGauge,
                          "Number of lock requests not yet granted per lock type and mode.",
                          {"locktype", "mode"}};
const MetricDesc kBlocked{
    "pg_locks_blocked_backends", MetricKind::kGauge, "Number of backends waiting for a lock.", {}};

class LocksCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    PgResult r;
    if (auto st = ctx.pg->Query(kQuery, ctx.deadline, r); !st.ok()) return st;
    const int datname_i = r.ColumnIndex("datname"), locktype_i = r.ColumnIndex("locktype"),
              mode_i = r.ColumnIndex("mode"), granted_i = r.ColumnIndex("granted"),
              locks_i = r.ColumnIndex("locks");
    if (datname_i < 0 || locktype_i < 0 || mode_i < 0 || granted_i < 0 || locks_i < 0)
      return Status::Error(ErrorReason::kProtocol, "locks: missing columns");

    std::map<std::pair<std::string, std::string>, double> per_database, granted, waiting;
    double blocked = 0;
    for (const auto& row : r.rows) {
      if (row[datname_i])
        for (auto m : kModes) per_database.try_emplace({*row[datname_i], std::string(m)}, 0);
      if (!row[locks_i]) continue;  // a database without locks: zero-fill only
      auto n = ParsePgNumber(*row[locks_i]);
      auto is_granted = row[granted_i] ? ParsePgNumber(*row[granted_i]) : std::nullopt;
      if (!n || !is_granted) {
        sink.RecordError("locks: lock count or granted flag is not a number");
        continue;
      }
      const std::string locktype = row[locktype_i].value_or(""), mode = row[mode_i].value_or("");
      if (row[datname_i]) {
        auto it = per_database.find({*row[datname_i], mode});
        if (it != per_database.end()) it->second += *n;
      }
      if (*is_granted) {
        granted[{locktype, mode}] += *n;
      } else {
        waiting[{locktype, mode}] += *n;
        blocked += *n;  // a process waits for one lock at a time
      }
    }
    for (const auto& [key, n] : per_database) sink.Add(kCount, {key.first, key.second}, n);
    for (const auto& [key, n] : granted) sink.Add(kGranted, {key.first, key.second}, n);
    for (const auto& [key, n] : waiting) sink.Add(kWaiting, {key.first, key.second}, n);
    sink.Add(kBlocked, {}, blocked);
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "locks",
    .kind = TargetKind::kPostgres,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "Locks from pg_locks: per-database counts by mode, granted and waiting locks by type "
            "and mode, blocked backends.",
    .factory = [] { return std::make_unique<LocksCollector>(); },
}};

}  // namespace
}  // namespace runbook
