// SHOW CONFIG: the connection limits (one row per setting). Settings change only on a reload of
// PgBouncer, so this runs on the slow tier; max_client_conn is handed to the lists collector,
// which has used_clients for the client utilisation every collection.
#include <optional>
#include <string_view>

#include "pgbouncer_shared.h"
#include "runbook/collector.h"

namespace runbook {
namespace {

constexpr PgQuery kConfigQuery{"config", "SHOW CONFIG"};

struct SettingMetric {
  std::string_view key;
  MetricDesc desc;
};

MetricDesc Gauge(std::string name, std::string help) {
  return {std::move(name), MetricKind::kGauge, std::move(help), {}};
}

const MetricDesc kMaxClientConn = Gauge("pgbouncer_config_max_client_connections",
                                        "Setting max_client_conn: maximum number of client connections.");

const SettingMetric kSettings[] = {
    {"max_client_conn", kMaxClientConn},
    {"max_user_connections", Gauge("pgbouncer_config_max_user_connections",
                                   "Setting max_user_connections: maximum number of server connections per "
                                   "user (0 means unlimited).")},
    {"max_db_connections", Gauge("pgbouncer_config_max_db_connections",
                                 "Setting max_db_connections: maximum number of server connections per "
                                 "database (0 means unlimited).")},
    {"default_pool_size",
     Gauge("pgbouncer_config_default_pool_size",
           "Setting default_pool_size: server connections allowed per (database, user) pool.")},
    {"min_pool_size",
     Gauge("pgbouncer_config_min_pool_size", "Setting min_pool_size: server connections kept in each pool.")},
    {"reserve_pool_size", Gauge("pgbouncer_config_reserve_pool_size",
                                "Setting reserve_pool_size: additional server connections a pool may use.")},
};

class ConfigCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    PgResult config;
    if (auto st = ctx.pg->Query(kConfigQuery, ctx.deadline, config); !st.ok()) return st;
    std::optional<double> max_client_conn;
    for (const auto& row : config.rows) {
      std::string key = TextAt(config, row, "key");
      for (const auto& s : kSettings) {
        if (s.key != key) continue;
        auto v = NumberAt(config, row, "value", sink);
        if (v) sink.Add(s.desc, {}, *v);
        if (v && s.key == "max_client_conn") max_client_conn = v;
        break;
      }
    }
    if (ctx.shared) {
      if (max_client_conn)
        ctx.shared->insert_or_assign(std::string(pgbouncer::kSharedMaxClientConn), *max_client_conn);
      else if (auto it = ctx.shared->find(pgbouncer::kSharedMaxClientConn); it != ctx.shared->end())
        ctx.shared->erase(it);
    }
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "config",
    .kind = TargetKind::kPgBouncer,
    .enabled_by_default = true,
    .tier = Tier::kSlow,
    .help = "SHOW CONFIG connection limits (slow tier: they change only when PgBouncer reloads).",
    .factory = [] { return std::make_unique<ConfigCollector>(); },
}};

}  // namespace
}  // namespace runbook
