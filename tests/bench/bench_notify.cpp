// Alerts per second through the Notifier and its durable outbox (fsync on) to a loopback
// receiver. Prints figures; asserts nothing. Usage: bench_notify [ALERTS] [OUTBOX_DIR]
#include <civetweb.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "runbook/notify.h"

using namespace runbook;
using namespace std::chrono_literals;

namespace {

std::atomic<long> g_requests{0};
std::atomic<long> g_bytes{0};

int Handle(mg_connection* conn, void*) {
  char buf[16384];
  int n;
  while ((n = mg_read(conn, buf, sizeof buf)) > 0) g_bytes += n;
  mg_printf(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  g_requests++;
  return 200;
}

struct Result {
  double seconds;
  long requests;
};

Result Run(const NotifierConfig& cfg, int alerts, int per_call, bool webhook) {
  NotifierOptions o;
  auto n = MakeNotifier(o);
  if (auto errors = n->Apply(cfg); !errors.empty()) {
    std::fprintf(stderr, "%s\n", errors.front().c_str());
    std::exit(1);
  }
  long before = g_requests;
  auto t0 = std::chrono::steady_clock::now();
  TimestampMs now = SystemClock().NowMs();
  std::vector<Alert> batch;
  for (int i = 0; i < alerts; ++i) {
    Alert a;
    a.labels = {{"alertname", "BenchAlert"},
                {"instance", "host-" + std::to_string(i)},
                {"job", "bench"},
                {"severity", "warning"}};
    a.annotations = {{"summary", "bench alert " + std::to_string(i)}};
    a.starts_at = now;
    a.ends_at = now + 240000;
    a.generator_url = "http://localhost:9187/graph?g0.expr=up&g0.tab=1";
    batch.push_back(std::move(a));
    if (static_cast<int>(batch.size()) == per_call) {
      n->Notify(batch);
      batch.clear();
    }
  }
  if (!batch.empty()) n->Notify(batch);
  long expect = webhook ? alerts : (alerts + 63) / 64;
  while (g_requests - before < expect) std::this_thread::sleep_for(1ms);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  n->Stop();
  return {s, g_requests - before};
}

}  // namespace

int main(int argc, char** argv) {
  int alerts = argc > 1 ? std::atoi(argv[1]) : 20000;
  std::string dir = argc > 2 ? argv[2] : "/var/tmp/rbx-bench-outbox";
  const char* options[] = {"listening_ports",   "127.0.0.1:0", "num_threads", "8",
                           "enable_keep_alive", "yes",         nullptr};
  mg_context* ctx = mg_start(nullptr, nullptr, options);
  mg_set_request_handler(ctx, "/", Handle, nullptr);
  mg_server_port ports[1];
  mg_get_server_ports(ctx, 1, ports);
  std::string base = "http://127.0.0.1:" + std::to_string(ports[0].port);
  std::printf("# bench_notify: %d alerts, outbox %s (fsync on), receiver %s\n\n", alerts, dir.c_str(),
              base.c_str());
  std::printf("| path | alerts | requests | seconds | alerts/s | requests/s |\n|---|---|---|---|---|---|\n");

  auto report = [&](const char* name, const Result& r) {
    std::printf("| %s | %d | %ld | %.3f | %.0f | %.0f |\n", name, alerts, r.requests, r.seconds,
                alerts / r.seconds, r.requests / r.seconds);
    std::fflush(stdout);
  };
  {
    std::filesystem::remove_all(dir);
    NotifierConfig cfg;
    cfg.outbox_dir = dir;
    cfg.outbox_capacity = 1000000;
    cfg.alertmanagers.push_back({"bench", base, {}});
    report("Alertmanager API v2 (batches of 64), Notify() 100 at a time", Run(cfg, alerts, 100, false));
  }
  {
    std::filesystem::remove_all(dir);
    NotifierConfig cfg;
    cfg.outbox_dir = dir;
    cfg.outbox_capacity = 1000000;
    WebhookReceiver r;
    r.name = "bench";
    r.url = base + "/hook";
    cfg.receivers.push_back(r);
    cfg.route.receiver = "bench";
    cfg.route.group_by_all = true;  // one notification per alert: the worst case
    cfg.route.group_wait = 0ms;
    report("webhook, one notification per alert (group_by ['...'], group_wait 0)",
           Run(cfg, alerts, 100, true));
  }
  std::filesystem::remove_all(dir);
  mg_stop(ctx);
  return 0;
}
