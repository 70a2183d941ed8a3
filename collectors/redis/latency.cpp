// Latency monitor: the latest spike of each event (LATENCY LATEST). Needs
// latency-monitor-threshold > 0 to record anything; servers without LATENCY (some proxies and
// managed services) make this collector fail with the server's reason.
#include "runbook/collector.h"

namespace runbook::redis {
namespace {

const MetricDesc kLast{"redis_latency_spike_last",
                       MetricKind::kGauge,
                       "Unix time of the latest latency spike of the event.",
                       {"event_name"}};
const MetricDesc kDuration{"redis_latency_spike_duration_seconds",
                           MetricKind::kGauge,
                           "Duration of the latest latency spike of the event.",
                           {"event_name"}};

class LatencyCollector final : public Collector {
 public:
  void Prepare(ScrapeContext& ctx) override {
    static const std::vector<std::string> kLatest{"LATENCY", "LATEST"};
    ctx.redis->Queue(kLatest, reply_, status_);
  }

  Status Update(ScrapeContext&, MetricSink& sink) override {
    if (!status_.ok()) return status_;
    const RedisReply& r = reply_;
    if (r.type != RedisReply::Type::kArray)
      return Status::Error(ErrorReason::kProtocol, "LATENCY LATEST: expected an array");
    // An event: [name, unix time of the latest spike, its duration in ms, the all-time max in ms].
    for (const auto& e : r.elements) {
      if (e.type != RedisReply::Type::kArray || e.elements.size() < 3 ||
          e.elements[1].type != RedisReply::Type::kInteger ||
          e.elements[2].type != RedisReply::Type::kInteger)
        return Status::Error(ErrorReason::kProtocol, "LATENCY LATEST: unexpected entry");
      const std::string& name = e.elements[0].str;
      sink.Add(kLast, {name}, static_cast<double>(e.elements[1].integer));
      sink.Add(kDuration, {name}, static_cast<double>(e.elements[2].integer) / 1000);
    }
    return Status::Ok();
  }

 private:
  RedisReply reply_;
  Status status_;
};

const CollectorRegistration kRegistration{{
    .name = "latency",
    .kind = TargetKind::kRedis,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "Latest latency spike per event from the latency monitor (LATENCY LATEST).",
    .factory = [] { return std::make_unique<LatencyCollector>(); },
}};

}  // namespace
}  // namespace runbook::redis
