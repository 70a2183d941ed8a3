#pragma once
// Configuration: loaded from YAML, strictly validated (unknown keys, wrong types, bad durations,
// bad addresses and unknown collectors are errors naming file:line:column and the field).
// A Config is an immutable value once loaded; share it as shared_ptr<const Config>.

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "libpq_session.h"
#include "runbook/collector.h"
#include "runbook/metric_sink.h"
#include "runbook/notify.h"

namespace runbook {

using Millis = std::chrono::milliseconds;

struct RedisConnParams {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;           // ACL user; empty: AUTH with the password only
  std::string password_file;  // read at every connect
  std::string password_env;
  int db = 0;  // SELECTed after connecting
  std::string client_name = "runbook_exporter";

  bool operator==(const RedisConnParams&) const = default;
};

struct TargetConfig {
  TargetKind kind = TargetKind::kPostgres;
  std::string name;
  Labels labels;  // configured constant labels, sorted by name
  Millis interval{15000};
  Millis timeout{10000};
  Millis slow_interval{300000};
  std::set<std::string> collectors;  // enabled collector names (defaults ± enable/disable)
  PgConnParams pg;                   // postgres and pgbouncer targets
  RedisConnParams redis;             // redis targets
  TargetSettings settings;           // what collectors read (key checks, bounds)

  bool operator==(const TargetConfig&) const;
};

// The `rules:` section: Prometheus rule files evaluated by the embedded engine.
struct RulesConfig {
  std::vector<std::string>
      files;  // paths, globs expanded, relative ones resolved against the config's folder
  Millis evaluation_interval{15000};
  Labels external_labels;  // sorted; added to alerts at send time, as Prometheus' global.external_labels
  std::string state_file;  // alert state kept across restarts; empty: not persisted

  bool operator==(const RulesConfig&) const = default;
};

struct Config {
  std::string source;  // file path, or "<embedded default>"
  std::string listen_address = ":9187";
  int workers = 4;
  std::vector<TargetConfig> targets;
  NotifierConfig alerting;  // `alerting:`; disabled when it lists no alertmanager or receiver
  RulesConfig rules;
};

struct ConfigResult {
  std::optional<Config> config;
  std::vector<std::string> errors;  // "file:line:col: field: what was expected"
};

ConfigResult LoadConfigFile(const std::string& path);
ConfigResult ParseConfig(const std::string& yaml_text, const std::string& source_name);
// The configuration used when no --config is given: local servers on their standard ports.
ConfigResult EmbeddedDefaultConfig();

// "1h30m", "15s", "500ms": Prometheus duration syntax. nullopt when invalid.
std::optional<Millis> ParseDuration(std::string_view text);
std::string FormatDuration(Millis d);
// "host:port", "[v6]:port" or ":port". Returns an error message or empty.
std::string ValidateListenAddress(std::string_view addr);

}  // namespace runbook
