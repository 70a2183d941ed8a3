#pragma once
// Collector interface and the self-registering collector registry.
//
// A collector lives in one .cpp under collectors/<family>/ and registers itself with a
// file-scope `CollectorRegistration`; there is no central list to edit. The registry is filled
// during static initialisation and read-only afterwards, so reads are thread-safe.
//
// A collector instance belongs to one target and is called by one thread at a time.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runbook/metric_sink.h"
#include "runbook/pg_session.h"
#include "runbook/redis_session.h"
#include "runbook/status.h"
#include "runbook/tls_dialer.h"

namespace runbook {

enum class TargetKind { kPostgres, kPgBouncer, kRedis, kCertificates };

std::string_view KindName(TargetKind kind);  // "postgres", "pgbouncer", "redis", "certificates"

// A Redis key check: one key, or a glob pattern expanded with SCAN (bounded per collection).
struct RedisKeyCheck {
  int db = 0;
  std::string key;  // the key, or the pattern when `pattern`
  bool pattern = false;

  bool operator==(const RedisKeyCheck&) const = default;
};

// Per-target settings that collectors read; fields of other kinds stay at their defaults.
struct TargetSettings {
  std::vector<RedisKeyCheck> redis_keys;
  int redis_scan_count = 100;           // COUNT hint of each SCAN call
  int redis_scan_max_keys = 1000;       // keys examined per pattern per collection
  int redis_db = 0;                     // the database the session has SELECTed
  TlsEndpoint tls_endpoint;             // certificates: the endpoint probed (none when host is empty)
  std::vector<std::string> cert_files;  // certificates: PEM files or glob patterns

  bool operator==(const TargetSettings&) const = default;
};

// What a collector may use during one collection of one target.
struct ScrapeContext {
  std::string_view target;                             // configured target name
  Deadline deadline;                                   // the collection must return before this
  PgSession* pg = nullptr;                             // set for postgres and pgbouncer targets
  RedisSession* redis = nullptr;                       // set for redis targets
  const TargetSettings* settings = &kDefaultSettings;  // never null
  TlsDialer* tls = nullptr;                            // set for certificates targets
  // Figures one collector hands to those that run after it (collectors of a target run in
  // registry order, by name), e.g. a slow-tier setting that a fast collector divides by. The
  // target keeps them between collections and clears them when its connection is lost, so a
  // value stays as fresh as the slow-tier output it came with. Null: nothing is shared.
  std::map<std::string, double, std::less<>>* shared = nullptr;
  // Set by a collector that leaves the session in a state it could not undo (the Redis key checks
  // when the SELECT back to the target's database is refused): the target drops its connection
  // after this collection, so the next one starts from a fresh, correctly set up session.
  bool reconnect = false;
  static const TargetSettings kDefaultSettings;

  bool Expired() const { return std::chrono::steady_clock::now() >= deadline; }
  // Sends what the collectors' Prepare queued: one round trip per session (RedisSession::Flush).
  // Each queued command gets its own status; the result is the connection's failure if there was
  // one, else the first refused command's status.
  Status SendPrepared();
};

// A collection of a target runs in two steps, each over the collectors due (registry order):
//   1. Prepare on each, then ctx.SendPrepared(): what they queued goes out in one round trip;
//   2. Update on each, which reads the outcome of what it queued and may send more itself.
// A collector that talks to the server only in Update leaves Prepare alone. Adding a collector is
// still one .cpp: nothing else lists what is queued.
class Collector {
 public:
  virtual ~Collector() = default;
  // Optional: queues the requests that do not depend on another reply of this collection
  // (ctx.redis->Queue) so that those of all the target's collectors share one round trip. Sends
  // nothing, writes no samples, never fails. What it queues (command, reply, status) must stay
  // valid and unchanged until Update returns. Each queued command gets its own reply and status:
  // a command the server refuses fails only the collector that queued it (its Update returns that
  // status), a frozen server gives every unanswered command the timeout at ctx.deadline. Update
  // may be skipped (deadline reached, connection lost by an earlier collector); the next
  // collection calls Prepare again.
  virtual void Prepare(ScrapeContext& ctx) { (void)ctx; }
  // Writes this collector's samples for one target. Never throws, never blocks past
  // ctx.deadline, never logs (the scheduler logs state changes once). A failure returns its
  // reason; samples written before it are discarded by the caller.
  virtual Status Update(ScrapeContext& ctx, MetricSink& sink) = 0;
};

enum class Tier {
  kFast,  // every collection of the target
  kSlow,  // at most every `slow_interval` of the target (expensive figures); cached in between
};

struct CollectorInfo {
  std::string name;  // config key and `collector` label value, unique per kind
  TargetKind kind;
  bool enabled_by_default = true;
  Tier tier = Tier::kFast;
  std::string help;  // one line for --help and docs
  std::function<std::unique_ptr<Collector>()> factory;
};

// One collector alone, as a collection runs it: Prepare, SendPrepared, Update (tests, tools).
Status CollectOnce(Collector& collector, ScrapeContext& ctx, MetricSink& sink);

// All registered collectors, sorted by kind then name.
const std::vector<CollectorInfo>& RegisteredCollectors();
const CollectorInfo* FindCollector(TargetKind kind, std::string_view name);

// Registers at static-initialisation time:
//   const runbook::CollectorRegistration kReg{{.name = "...", .kind = ..., ...}};
struct CollectorRegistration {
  explicit CollectorRegistration(CollectorInfo info);
};

}  // namespace runbook
