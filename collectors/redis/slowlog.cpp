// Slow log: its length and its newest entry (SLOWLOG LEN, SLOWLOG GET 1, in one pipeline). Managed
// services that disable SLOWLOG make this collector fail with the server's reason; the others
// still run.
#include "runbook/collector.h"

namespace runbook::redis {
namespace {

const MetricDesc kLength{"redis_slowlog_length", MetricKind::kGauge, "Entries in the slow log.", {}};
const MetricDesc kLastId{"redis_slowlog_last_id",
                         MetricKind::kGauge,
                         "ID of the newest slow log entry (0 when the log is empty).",
                         {}};
const MetricDesc kLastDuration{"redis_last_slow_execution_duration_seconds",
                               MetricKind::kGauge,
                               "Execution time of the newest slow log entry (0 when the log is empty).",
                               {}};

class SlowlogCollector final : public Collector {
 public:
  void Prepare(ScrapeContext& ctx) override {
    static const std::vector<std::string> kLen{"SLOWLOG", "LEN"}, kGet{"SLOWLOG", "GET", "1"};
    ctx.redis->Queue(kLen, len_, len_status_);
    ctx.redis->Queue(kGet, last_, last_status_);
  }

  Status Update(ScrapeContext&, MetricSink& sink) override {
    if (!len_status_.ok()) return len_status_;
    if (!last_status_.ok()) return last_status_;
    const RedisReply& len = len_;
    const RedisReply& last = last_;
    if (len.type != RedisReply::Type::kInteger)
      return Status::Error(ErrorReason::kProtocol, "SLOWLOG LEN: expected an integer");
    if (last.type != RedisReply::Type::kArray)
      return Status::Error(ErrorReason::kProtocol, "SLOWLOG GET: expected an array");
    double id = 0, duration = 0;
    // An entry: [id, unix time, duration in microseconds, [args...], client address, client name].
    if (!last.elements.empty()) {
      const auto& e = last.elements[0];
      if (e.type != RedisReply::Type::kArray || e.elements.size() < 3 ||
          e.elements[0].type != RedisReply::Type::kInteger ||
          e.elements[2].type != RedisReply::Type::kInteger)
        return Status::Error(ErrorReason::kProtocol, "SLOWLOG GET: unexpected entry");
      id = static_cast<double>(e.elements[0].integer);
      duration = static_cast<double>(e.elements[2].integer) / 1e6;
    }
    sink.Add(kLength, {}, static_cast<double>(len.integer));
    sink.Add(kLastId, {}, id);
    sink.Add(kLastDuration, {}, duration);
    return Status::Ok();
  }

 private:
  RedisReply len_, last_;
  Status len_status_, last_status_;
};

const CollectorRegistration kRegistration{{
    .name = "slowlog",
    .kind = TargetKind::kRedis,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "Slow log length, newest entry id and its execution time (SLOWLOG LEN, SLOWLOG GET 1).",
    .factory = [] { return std::make_unique<SlowlogCollector>(); },
}};

}  // namespace
}  // namespace runbook::redis
