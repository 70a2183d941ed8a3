// CONFIG GET of the settings INFO does not show: io-threads, and databases, which the info
// collector uses to publish redis_db_keys 0 for the databases that hold no key (INFO keyspace
// lists only non-empty ones). On the slow tier: settings change rarely. Managed services refuse
// CONFIG; then this collector alone fails, and the runtime asks again only at the slow interval.
#include <array>

#include "redis_info.h"
#include "runbook/collector.h"

namespace runbook::redis {
namespace {

const MetricDesc kIoThreads{"redis_config_io_threads",
                            MetricKind::kGauge,
                            "The io-threads setting: threads for client I/O (CONFIG GET io-threads).",
                            {}};

class ConfigCollector final : public Collector {
 public:
  // One parameter per CONFIG GET (several need Redis 7), in the collection's shared round trip.
  void Prepare(ScrapeContext& ctx) override {
    for (std::size_t i = 0; i < kCommands.size(); ++i)
      ctx.redis->Queue(kCommands[i], replies_[i], statuses_[i]);
  }

  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    for (const auto& st : statuses_)
      if (!st.ok()) return st;
    const auto& replies = replies_;
    std::optional<double> databases;
    for (std::size_t i = 0; i < replies.size(); ++i) {
      const auto& r = replies[i];
      // [name, value]; an empty array when the server does not know the parameter.
      if (r.type != RedisReply::Type::kArray || r.elements.size() % 2 != 0)
        return Status::Error(ErrorReason::kProtocol, "CONFIG GET: expected [name, value]");
      if (r.elements.empty()) continue;
      const std::string& value = r.elements[1].str;
      auto n = ParseNumber(value);
      if (!n) {
        sink.RecordError("CONFIG GET " + kCommands[i][2] + ": not a number: " + value);
        continue;
      }
      if (i == 0) sink.Add(kIoThreads, {}, *n);
      if (i == 1) databases = n;
    }
    if (ctx.shared) {
      if (databases)
        ctx.shared->insert_or_assign(std::string(kSharedDatabases), *databases);
      else if (auto it = ctx.shared->find(kSharedDatabases); it != ctx.shared->end())
        ctx.shared->erase(it);
    }
    return Status::Ok();
  }

 private:
  static inline const std::vector<std::vector<std::string>> kCommands{{"CONFIG", "GET", "io-threads"},
                                                                      {"CONFIG", "GET", "databases"}};
  std::array<RedisReply, 2> replies_;
  std::array<Status, 2> statuses_;
};

const CollectorRegistration kRegistration{{
    .name = "config",
    .kind = TargetKind::kRedis,
    .enabled_by_default = true,
    .tier = Tier::kSlow,
    .help = "CONFIG GET io-threads and databases (slow tier); with databases, the info collector "
            "publishes redis_db_keys 0 for empty databases.",
    .factory = [] { return std::make_unique<ConfigCollector>(); },
}};

}  // namespace
}  // namespace runbook::redis
