// SHOW CONFIG: the connection limits (one row per setting), and the client connections against
// max_client_conn, which needs the used_clients count of SHOW LISTS: both queries run here.
#include <optional>
#include <string_view>

#include "runbook/collector.h"

namespace runbook {
namespace {

constexpr PgQuery kConfigQuery{"config", "SHOW CONFIG"};
constexpr PgQuery kListsQuery{"lists", "SHOW LISTS"};  // the fixture the lists collector reads too

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

const MetricDesc kUtilization = Gauge("pgbouncer_client_connections_utilization_ratio",
                                      "Client connections (SHOW LISTS used_clients, which is what PgBouncer "
                                      "checks) divided by max_client_conn; at 1 new clients are refused.");

class ConfigCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    PgResult config, lists;
    if (auto st = ctx.pg->Query(kConfigQuery, ctx.deadline, config); !st.ok()) return st;
    if (auto st = ctx.pg->Query(kListsQuery, ctx.deadline, lists); !st.ok()) return st;
    std::optional<double> max_client_conn, used_clients;
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
    MetricSink quiet;  // the lists collector reports bad values of SHOW LISTS
    for (const auto& row : lists.rows)
      if (TextAt(lists, row, "list") == "used_clients") used_clients = NumberAt(lists, row, "items", quiet);
    if (max_client_conn && used_clients && *max_client_conn > 0)
      sink.Add(kUtilization, {}, *used_clients / *max_client_conn);
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "config",
    .kind = TargetKind::kPgBouncer,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "SHOW CONFIG connection limits and client connections against max_client_conn (with SHOW LISTS).",
    .factory = [] { return std::make_unique<ConfigCollector>(); },
}};

}  // namespace
}  // namespace runbook
