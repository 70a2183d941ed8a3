// Captures a Redis fixture from a live server: runs every registered redis collector once with
// the key checks of one configured target, through a RecordingRedisSession, writing
// <out>/info.txt, <out>/replies.resp and <out>/settings.txt (see tests/support/redis_fixture.h).
//   capture_redis --config exporter.yml --target NAME --out tests/fixtures/redis/7.0/default
#include <cstdio>
#include <fstream>
#include <string>

#include "config.h"
#include "redis_fixture.h"
#include "redis_session.h"
#include "runbook/collector.h"

int main(int argc, char** argv) {
  std::string config, target, out;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--config")
      config = v;
    else if (k == "--target")
      target = v;
    else if (k == "--out")
      out = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (config.empty() || target.empty() || out.empty()) {
    std::fprintf(stderr, "usage: capture_redis --config FILE --target NAME --out DIR\n");
    return 2;
  }
  auto loaded = runbook::LoadConfigFile(config);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.c_str());
    return 2;
  }
  const runbook::TargetConfig* cfg = nullptr;
  for (const auto& t : loaded.config->targets)
    if (t.kind == runbook::TargetKind::kRedis && t.name == target) cfg = &t;
  if (!cfg) {
    std::fprintf(stderr, "no redis target named %s\n", target.c_str());
    return 2;
  }
  runbook::HiredisSession session(cfg->redis);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  if (auto st = session.Connect(deadline); !st.ok()) {
    std::fprintf(stderr, "connect: %s\n", st.message.c_str());
    return 1;
  }
  runbook::testing::RecordingRedisSession recorder(session, out);
  std::ofstream(std::filesystem::path(out) / "settings.txt", std::ios::binary)
      << runbook::testing::EncodeRedisSettings(cfg->settings);
  int failures = 0;
  for (const auto& info : runbook::RegisteredCollectors()) {
    if (info.kind != runbook::TargetKind::kRedis) continue;
    auto collector = info.factory();
    runbook::MetricSink sink;
    runbook::ScrapeContext ctx{info.name, deadline, nullptr, &recorder, &cfg->settings};
    auto st = runbook::CollectOnce(*collector, ctx, sink);
    std::fprintf(stderr, "%-24s %s %s\n", info.name.c_str(), st.ok() ? "ok" : "FAILED", st.message.c_str());
    failures += !st.ok();
  }
  return failures ? 1 : 0;
}
