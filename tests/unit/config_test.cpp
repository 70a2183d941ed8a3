#include <doctest/doctest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>

#include "config.h"
#include "secrets.h"
#include "target_runtime.h"

namespace config_test {

using namespace runbook;

namespace {
std::string Errors(const ConfigResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e + "\n";
  return out;
}
const char* kValid = R"(global:
  interval: 10s
  timeout: 4s
  slow_interval: 2m
  workers: 2
web:
  listen_address: 127.0.0.1:9999
targets:
  postgres:
    - name: primary
      host: 127.0.0.1
      port: 6543
      user: exporter
      password_file: /run/secrets/pg
      labels: {role: primary, cluster: main}
      collectors:
        disable: [server]
    - name: replica
      user: exporter
      password_env: PG_PW
      interval: 30s
  pgbouncer: []
  redis: []
  certificates: []
)";
}  // namespace

TEST_CASE("durations use Prometheus syntax") {
  CHECK(ParseDuration("15s") == Millis(15000));
  CHECK(ParseDuration("1h30m") == Millis(5400000));
  CHECK(ParseDuration("500ms") == Millis(500));
  CHECK(ParseDuration("1m500ms") == Millis(60500));
  CHECK(ParseDuration("2d") == Millis(172800000));
  CHECK_FALSE(ParseDuration(""));
  CHECK_FALSE(ParseDuration("15"));
  CHECK_FALSE(ParseDuration("s"));
  CHECK_FALSE(ParseDuration("30m1h"));
  CHECK_FALSE(ParseDuration("1.5s"));
  CHECK_FALSE(ParseDuration("-1s"));
  CHECK(FormatDuration(Millis(5400000)) == "1h30m");
}

TEST_CASE("listen addresses") {
  CHECK(ValidateListenAddress("127.0.0.1:9187").empty());
  CHECK(ValidateListenAddress(":9187").empty());
  CHECK(ValidateListenAddress("[::1]:9187").empty());
  CHECK(ValidateListenAddress("localhost:1").empty());
  CHECK_FALSE(ValidateListenAddress("9187").empty());
  CHECK_FALSE(ValidateListenAddress("127.0.0.1:70000").empty());
  CHECK_FALSE(ValidateListenAddress("::1:9187").empty());
  CHECK_FALSE(ValidateListenAddress("host:").empty());
}

TEST_CASE("a valid config is loaded with defaults applied") {
  auto r = ParseConfig(kValid, "cfg.yml");
  REQUIRE_MESSAGE(r.config, Errors(r));
  const auto& c = *r.config;
  CHECK(c.listen_address == "127.0.0.1:9999");
  CHECK(c.workers == 2);
  REQUIRE(c.targets.size() == 2);
  const auto& p = c.targets[0];
  CHECK(p.name == "primary");
  CHECK(p.pg.port == 6543);
  CHECK(p.interval == Millis(10000));
  CHECK(p.timeout == Millis(4000));
  CHECK(p.slow_interval == Millis(120000));
  CHECK(p.pg.statement_timeout == Millis(4000));
  CHECK(p.labels == Labels{{"cluster", "main"}, {"role", "primary"}});
  CHECK(p.collectors.count("server") == 0);
  CHECK(c.targets[1].collectors.count("server") == 1);
  CHECK(c.targets[1].interval == Millis(30000));
  CHECK(c.targets[1].pg.password_env == "PG_PW");
  CHECK(c.targets[1].pg.port == 5432);
}

TEST_CASE("each kind of bad config names file line column and field") {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"targets:\n  postgres:\n    - name: a\n      user: u\n      hots: x\n",
       "bad.yml:5:7: targets.postgres[0].hots: unknown key"},
      {"targets:\n  postgres:\n    - name: a\n      user: u\n      port: abc\n",
       "bad.yml:5:13: targets.postgres[0].port: expected an integer between 1 and 65535, got \"abc\""},
      {"targets:\n  postgres:\n    - name: a\n      user: u\n      port: [1]\n",
       "bad.yml:5:13: targets.postgres[0].port: expected an integer"},
      {"global:\n  interval: 15\ntargets: {}\n",
       "bad.yml:2:13: global.interval: expected a positive duration"},
      {"global:\n  interval: 10s\n  timeout: 20s\ntargets: {}\n",
       "bad.yml:3:12: global.timeout: must not exceed"},
      {"web:\n  listen_address: 9187\ntargets: {}\n",
       "bad.yml:2:19: web.listen_address: expected \"host:port\""},
      {"targets:\n  postgres:\n    - user: u\n",
       "bad.yml:3:7: targets.postgres[0]: missing required key \"name\""},
      {"targets:\n  postgres:\n    - {name: a, user: u}\n    - {name: a, user: u}\n",
       "bad.yml:4:14: targets.postgres[1].name: duplicate target name \"a\""},
      {"targets:\n  postgres:\n    - name: a\n      user: u\n      collectors: {disable: [nope]}\n",
       "bad.yml:5:30: targets.postgres[0].collectors.disable[0]: unknown postgres collector \"nope\""},
      {"targets:\n  postgres:\n    - name: a\n      user: u\n      labels: {target: x}\n",
       "bad.yml:5:16: targets.postgres[0].labels.target: label name is reserved"},
      {"targets:\n  postgres:\n    - name: a\n      user: u\n      sslmode: maybe\n",
       "bad.yml:5:16: targets.postgres[0].sslmode: expected one of"},
      {"targets:\n  redis:\n    - name: r\n      keys:\n        - {db: 1}\n",
       "bad.yml:5:11: targets.redis[0].keys[0]: missing key or pattern"},
      {"targets: [\n", "bad.yml:2:1: invalid YAML"},
      {"", "bad.yml: the file is empty"},
      {"tragets: {}\n", "bad.yml:1:1: tragets: unknown key"},
  };
  for (const auto& c : cases) {
    auto r = ParseConfig(c.yaml, "bad.yml");
    INFO(std::string(c.yaml));
    CHECK_FALSE(r.config);
    REQUIRE(!r.errors.empty());
    CHECK_MESSAGE(r.errors[0].starts_with(c.expected), r.errors[0]);
  }
}

TEST_CASE("the embedded default config is valid") {
  auto r = EmbeddedDefaultConfig();
  REQUIRE_MESSAGE(r.config, Errors(r));
  CHECK(r.config->source == "<embedded default>");
  REQUIRE(r.config->targets.size() == 1);
  CHECK(r.config->targets[0].pg.port == 5432);
}

TEST_CASE("pgbouncer targets talk to the admin console with simple queries") {
  auto r =
      ParseConfig("targets:\n  pgbouncer:\n    - {name: b, user: pgb_stats, password_file: /f}\n", "c.yml");
  REQUIRE_MESSAGE(r.config, Errors(r));
  const auto& t = r.config->targets.at(0);
  CHECK(t.kind == TargetKind::kPgBouncer);
  CHECK(t.pg.port == 6432);
  CHECK(t.pg.database == "pgbouncer");
  CHECK_FALSE(t.pg.send_session_options);
  CHECK_FALSE(t.pg.prepare_statements);
  auto bad = ParseConfig("targets:\n  pgbouncer:\n    - {name: b, user: u, db: 3}\n", "c.yml");
  REQUIRE_FALSE(bad.config);
  CHECK(bad.errors.at(0).starts_with("c.yml:3:26: targets.pgbouncer[0].db: unknown key"));
}

TEST_CASE("target names are unique across kinds") {
  auto r = ParseConfig(
      "targets:\n  postgres:\n    - {name: x, user: u}\n  pgbouncer:\n    - {name: x, user: u}\n", "c.yml");
  REQUIRE_FALSE(r.config);
  CHECK(r.errors.at(0).starts_with("c.yml:5:14: targets.pgbouncer[0].name: duplicate target name"));
}

TEST_CASE("every kind of target the config accepts gets a connection") {
  auto r = ParseConfig(
      "targets:\n  postgres:\n    - {name: p, user: u}\n  pgbouncer:\n    - {name: b, user: u}\n"
      "  redis:\n    - {name: r}\n",
      "c.yml");
  REQUIRE_MESSAGE(r.config, Errors(r));
  REQUIRE(r.config->targets.size() == 3);
  for (const auto& t : r.config->targets) {
    INFO(t.name);
    CHECK(MakeConnection(t) != nullptr);
  }
}

TEST_CASE("passwords come from a file without its trailing newline or from the environment") {
  auto path = std::filesystem::temp_directory_path() / "runbook-secret-test.pw";
  std::ofstream(path) << "s3cret\n";
  std::string pw;
  CHECK(ReadPassword(path.string(), "", pw).ok());
  CHECK(pw == "s3cret");
  setenv("RUNBOOK_TEST_PW", "from-env", 1);
  CHECK(ReadPassword("", "RUNBOOK_TEST_PW", pw).ok());
  CHECK(pw == "from-env");
  auto missing = ReadPassword("/nonexistent/pw", "", pw);
  CHECK(missing.reason == ErrorReason::kAuth);
  CHECK(missing.message.find("/nonexistent/pw") != std::string::npos);
  CHECK(ReadPassword("", "RUNBOOK_TEST_UNSET_PW", pw).reason == ErrorReason::kAuth);
  std::filesystem::remove(path);
}

TEST_CASE("the rules section: files and globs relative to the config file, defaults, bad values") {
  auto dir = std::filesystem::temp_directory_path() / ("rb-rules-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "pack");
  for (auto f : {"pack/b.rules.yml", "pack/a.rules.yml", "extra.yml"})
    std::ofstream(dir / f) << "groups: []\n";
  std::ofstream(dir / "cfg.yml")
      << "rules:\n  files: [pack/*.rules.yml, extra.yml, pack/a.rules.yml, none/*.yml]\n"
         "  evaluation_interval: 30s\n  external_labels: {cluster: eu, target: x}\n"
         "  state_file: state/alerts.json\ntargets: {}\n";
  auto r = LoadConfigFile((dir / "cfg.yml").string());
  REQUIRE_MESSAGE(r.config, Errors(r));
  const auto& rules = r.config->rules;
  REQUIRE(rules.files.size() == 3);
  CHECK(rules.files[0] == (dir / "pack/a.rules.yml").string());
  CHECK(rules.files[1] == (dir / "pack/b.rules.yml").string());
  CHECK(rules.files[2] == (dir / "extra.yml").string());
  CHECK(rules.evaluation_interval == Millis(30000));
  CHECK(rules.external_labels == Labels{{"cluster", "eu"}, {"target", "x"}});
  CHECK(rules.state_file == (dir / "state/alerts.json").string());

  auto defaults = ParseConfig("targets: {}\n", "x.yml");
  REQUIRE(defaults.config);
  CHECK(defaults.config->rules.files.empty());
  CHECK(defaults.config->rules.evaluation_interval == Millis(15000));

  const std::pair<const char*, const char*> bad[] = {
      {"rules:\n  files: [/nonexistent/x.yml]\ntargets: {}\n", "b.yml:2:11: rules.files[0]: no such file"},
      {"rules:\n  evaluation_interval: 0s\ntargets: {}\n",
       "b.yml:2:24: rules.evaluation_interval: expected a positive"},
      {"rules:\n  external_labels: {__x: y}\ntargets: {}\n",
       "b.yml:2:21: rules.external_labels.__x: invalid label"},
      {"rules:\n  file: []\ntargets: {}\n", "b.yml:2:3: rules.file: unknown key"},
  };
  for (const auto& [yaml, expected] : bad) {
    auto e = ParseConfig(yaml, "b.yml");
    REQUIRE(!e.errors.empty());
    CHECK_MESSAGE(e.errors[0].starts_with(expected), e.errors[0]);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace config_test
