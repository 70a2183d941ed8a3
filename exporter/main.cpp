// Wiring only: flags, logging, configuration, scheduler, HTTP server, signals.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <unistd.h>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "app.h"
#include "build_info.h"
#include "cli.h"
#include "http_server.h"
#include "logging.h"
#include "runbook/notify.h"

namespace {

constexpr const char* kUsage = R"(usage: runbook_exporter [flags]

Collects the health of PostgreSQL, PgBouncer, Redis and TLS certificates, serves it on
/metrics for Prometheus, evaluates Prometheus rule files and sends their alerts to webhooks and
Alertmanager.

  --config FILE               configuration file (YAML). Without it an embedded default is
                              used: PostgreSQL on 127.0.0.1:5432 as user postgres.
  --check-config              validate the configuration and its rule files and exit: 0 valid,
                              2 invalid
  --web.listen-address ADDR   host:port to serve on (overrides web.listen_address; default :9187)
  --log.level LEVEL           debug, info, warn, error (default info)
  --log.format FORMAT         text or json (default text)
  --version                   print the version and exit
  --help                      print this help and exit

Subcommands (promtool's output and exit codes: 0 success, 1 failure):
  check rules FILE...         validate Prometheus rule files
  test rules FILE...          run promtool-format rule unit tests

Signals: SIGHUP (or POST /-/reload) re-reads the configuration; a bad one keeps the running
configuration and sets runbook_exporter_config_last_reload_successful to 0.
)";

struct Flags {
  std::map<std::string, std::string> values;
  bool check_config = false, version = false, help = false;
};

bool ParseFlags(int argc, char** argv, Flags& f, std::string& error) {
  static const char* kWithValue[] = {"--config", "--web.listen-address", "--log.level", "--log.format"};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--check-config") {
      f.check_config = true;
      continue;
    }
    if (arg == "--version") {
      f.version = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      f.help = true;
      continue;
    }
    std::string name = arg, value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    bool known = false;
    for (const char* k : kWithValue) known |= name == k;
    if (!known) {
      error = "unknown flag " + name + " (see --help)";
      return false;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        error = "flag " + name + " needs a value";
        return false;
      }
      value = argv[++i];
    }
    f.values[name] = value;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (int rc = runbook::rules::RunRulesCommand(argc, argv); rc >= 0) return rc;
  Flags flags;
  std::string error;
  if (!ParseFlags(argc, argv, flags, error)) {
    std::fprintf(stderr, "runbook_exporter: %s\n", error.c_str());
    return 2;
  }
  if (flags.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (flags.version) {
    std::printf("runbook_exporter %s (revision %s)\n", RUNBOOK_VERSION, runbook::BuildRevision());
    return 0;
  }
  auto get = [&](const char* k, const char* def) {
    auto it = flags.values.find(k);
    return it == flags.values.end() ? std::string(def) : it->second;
  };
  if (auto err = runbook::SetupLogging(get("--log.level", "info"), get("--log.format", "text"));
      !err.empty()) {
    std::fprintf(stderr, "runbook_exporter: %s\n", err.c_str());
    return 2;
  }

  const std::string config_path = get("--config", "");
  auto loaded = config_path.empty() ? runbook::EmbeddedDefaultConfig() : runbook::LoadConfigFile(config_path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.c_str());
    return 2;
  }
  std::vector<runbook::rules::GroupDef> groups;
  if (auto rule_errors = runbook::LoadRuleFiles(loaded.config->rules, groups); !rule_errors.empty()) {
    for (const auto& e : rule_errors) std::fprintf(stderr, "%s\n", e.c_str());
    return 2;
  }
  if (flags.check_config) {
    std::printf("%s: valid, %zu targets, %zu rule groups\n", loaded.config->source.c_str(),
                loaded.config->targets.size(), groups.size());
    return 0;
  }
  if (config_path.empty())
    spdlog::warn(
        "no --config given: running the embedded default (PostgreSQL on 127.0.0.1:5432 as postgres, the "
        "shipped rule pack: {} rule groups)",
        groups.size());
  std::string listen = flags.values.count("--web.listen-address") ? flags.values["--web.listen-address"]
                                                                  : loaded.config->listen_address;
  if (auto err = runbook::ValidateListenAddress(listen); !err.empty()) {
    std::fprintf(stderr, "runbook_exporter: --web.listen-address %s: %s\n", listen.c_str(), err.c_str());
    return 2;
  }

  // Signals are taken synchronously by this thread; block them before any other thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  spdlog::info("runbook_exporter {} starting: config {}, {} targets", RUNBOOK_VERSION, loaded.config->source,
               loaded.config->targets.size());
  runbook::App app(config_path, std::move(*loaded.config), std::move(groups), listen);
  {
    runbook::NotifierOptions opts;
    opts.user_agent = "runbook_exporter/" RUNBOOK_VERSION;
    // Before the HTTP server starts, so /api/v1/notify/test and the first alerts find it. The
    // same default URL as the rule engine's: another would restart the engine at the first reload.
    auto errors =
        app.AttachNotifier(runbook::MakeNotifier(std::move(opts)), runbook::DefaultExternalUrl(listen));
    // Without a usable outbox nothing could be delivered durably: refuse to run half-configured.
    if (!errors.empty()) {
      for (const auto& e : errors) spdlog::error("alerting: {}", e);
      return 1;
    }
  }
  auto server = runbook::HttpServer::Start(app, listen, error);
  if (!server) {
    spdlog::error("{}", error);
    return 1;
  }
  spdlog::info("listening on {} (port {})", listen, server->port());

  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: reloading the configuration");
      app.Reload();
      continue;
    }
    spdlog::info("signal {}: shutting down", strsignal(sig));
    break;
  }
  server.reset();
  spdlog::info("http server stopped");
  return 0;
}
