// SHOW LISTS: PgBouncer's internal object counts (one row per list), named as
// prometheus-community/pgbouncer_exporter names them. Unknown lists are ignored. With
// max_client_conn from the config collector, also the client connections against that limit.
#include <optional>
#include <string_view>

#include "pgbouncer_shared.h"
#include "runbook/collector.h"

namespace runbook {
namespace {

constexpr PgQuery kQuery{"lists", "SHOW LISTS"};

struct ListMetric {
  std::string_view list;
  MetricDesc desc;
};

MetricDesc Gauge(std::string name, std::string help) {
  return {std::move(name), MetricKind::kGauge, std::move(help), {}};
}

// dns_pending is documented as unused and is not published.
const ListMetric kLists[] = {
    {"databases", Gauge("pgbouncer_databases", "Count of databases.")},
    {"users", Gauge("pgbouncer_users", "Count of users.")},
    {"pools", Gauge("pgbouncer_pools", "Count of pools.")},
    {"free_clients", Gauge("pgbouncer_free_clients", "Count of free clients (memory kept for reuse).")},
    {"used_clients",
     Gauge("pgbouncer_used_clients", "Count of used clients; max_client_conn limits this number.")},
    {"login_clients", Gauge("pgbouncer_login_clients", "Count of clients in login state.")},
    {"free_servers", Gauge("pgbouncer_free_servers", "Count of free servers (memory kept for reuse).")},
    {"used_servers", Gauge("pgbouncer_used_servers", "Count of used servers.")},
    {"dns_names", Gauge("pgbouncer_cached_dns_names", "Count of DNS names in the cache.")},
    {"dns_zones", Gauge("pgbouncer_cached_dns_zones", "Count of DNS zones in the cache.")},
    {"dns_queries", Gauge("pgbouncer_in_flight_dns_queries", "Count of in-flight DNS queries.")},
};

const MetricDesc kUtilization = Gauge("pgbouncer_client_connections_utilization_ratio",
                                      "Client connections (SHOW LISTS used_clients, which is what PgBouncer "
                                      "checks) divided by max_client_conn; at 1 new clients are refused.");

class ListsCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    PgResult r;
    if (auto st = ctx.pg->Query(kQuery, ctx.deadline, r); !st.ok()) return st;
    std::optional<double> used_clients;
    for (const auto& row : r.rows) {
      std::string list = TextAt(r, row, "list");
      for (const auto& m : kLists) {
        if (m.list != list) continue;
        auto v = NumberAt(r, row, "items", sink);
        if (v) sink.Add(m.desc, {}, *v);
        if (v && m.list == "used_clients") used_clients = v;
        break;
      }
    }
    if (ctx.shared && used_clients)
      if (auto it = ctx.shared->find(pgbouncer::kSharedMaxClientConn);
          it != ctx.shared->end() && it->second > 0)
        sink.Add(kUtilization, {}, *used_clients / it->second);
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "lists",
    .kind = TargetKind::kPgBouncer,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "SHOW LISTS: counts of databases, users, pools, clients, servers and DNS cache entries; "
            "client connections against max_client_conn (from the config collector).",
    .factory = [] { return std::make_unique<ListsCollector>(); },
}};

}  // namespace
}  // namespace runbook
