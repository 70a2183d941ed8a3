#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <tuple>

#include "runbook/collector.h"

namespace runbook {

const TargetSettings ScrapeContext::kDefaultSettings{};

Status ScrapeContext::SendPrepared() {
  if (redis && redis->queued() > 0) return redis->Flush(deadline);
  return Status::Ok();
}

Status CollectOnce(Collector& collector, ScrapeContext& ctx, MetricSink& sink) {
  collector.Prepare(ctx);
  ctx.SendPrepared();
  return collector.Update(ctx, sink);
}

namespace {
std::vector<CollectorInfo>& Registry() {
  static std::vector<CollectorInfo> registry;
  return registry;
}
}  // namespace

std::string_view KindName(TargetKind kind) {
  switch (kind) {
    case TargetKind::kPostgres: return "postgres";
    case TargetKind::kPgBouncer: return "pgbouncer";
    case TargetKind::kRedis: return "redis";
    case TargetKind::kCertificates: return "certificates";
  }
  return "unknown";
}

std::string_view ReasonName(ErrorReason r) {
  switch (r) {
    case ErrorReason::kNone: return "none";
    case ErrorReason::kNetwork: return "network";
    case ErrorReason::kAuth: return "auth";
    case ErrorReason::kTimeout: return "timeout";
    case ErrorReason::kPermission: return "permission";
    case ErrorReason::kProtocol: return "protocol";
    case ErrorReason::kQuery: return "query";
  }
  return "unknown";
}

CollectorRegistration::CollectorRegistration(CollectorInfo info) {
  auto& r = Registry();
  if (FindCollector(info.kind, info.name)) {
    std::fprintf(stderr, "collector %s/%s registered twice\n", std::string(KindName(info.kind)).c_str(),
                 info.name.c_str());
    std::abort();
  }
  auto key = [](const CollectorInfo& c) { return std::tie(c.kind, c.name); };
  auto pos = std::lower_bound(r.begin(), r.end(), info,
                              [&](const auto& a, const auto& b) { return key(a) < key(b); });
  r.insert(pos, std::move(info));
}

const std::vector<CollectorInfo>& RegisteredCollectors() {
  return Registry();
}

const CollectorInfo* FindCollector(TargetKind kind, std::string_view name) {
  for (const auto& c : Registry())
    if (c.kind == kind && c.name == name) return &c;
  return nullptr;
}

}  // namespace runbook
