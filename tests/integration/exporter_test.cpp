// The binary as an operator uses it: flags, config validation, reload, HTTP endpoints.
#include <doctest/doctest.h>
#include <signal.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <sstream>

#include "harness.h"

namespace exporter_test {

using namespace itest;
namespace fs = std::filesystem;

namespace {

std::string OneTarget(const std::string& name = "primary") {
  return "global: {interval: 1s, timeout: 800ms}\ntargets:\n  postgres:\n" +
         PgTarget(name, Stack::Get().Port("PG_PRIMARY_PORT"));
}

fs::path WriteTemp(const std::string& name, const std::string& text) {
  auto p = fs::temp_directory_path() / ("rbx-itest-" + std::to_string(getpid()) + "-" + name);
  std::ofstream(p) << text;
  return p;
}

}  // namespace

TEST_CASE("check-config accepts a valid file and rejects each kind of bad one with its line") {
  auto good = WriteTemp("good.yml", "targets:\n  postgres:\n    - {name: a, user: u}\n");
  auto [rc, out] = Run(ExporterBinary() + " --check-config --config " + good.string());
  CHECK_MESSAGE(rc == 0, out);

  struct Case {
    std::string yaml, expect;
  };
  const Case cases[] = {
      {"targets:\n  postgres:\n    - {name: a, user: u, hots: x}\n",
       ":3:26: targets.postgres[0].hots: unknown key"},
      {"targets:\n  postgres:\n    - {name: a, user: u, port: 99999}\n",
       ":3:32: targets.postgres[0].port: expected an integer"},
      {"global:\n  interval: soon\ntargets: {}\n", ":2:13: global.interval: expected a positive duration"},
      {"web:\n  listen_address: nowhere\ntargets: {}\n", ":2:19: web.listen_address: expected \"host:port\""},
      {"targets:\n  postgres: {}\n", ":2:13: targets.postgres: expected a list of targets"},
      {"rules:\n  files: [embedded:nope.yml]\ntargets: {}\n",
       ":2:11: rules.files[0]: no embedded rule file matches embedded:nope.yml"},
  };
  for (const auto& c : cases) {
    auto bad = WriteTemp("bad.yml", c.yaml);
    auto [brc, bout] = Run(ExporterBinary() + " --check-config --config " + bad.string());
    INFO(c.yaml);
    CHECK(brc == 2);
    CHECK_MESSAGE(bout.find(bad.string() + c.expect) != std::string::npos, bout);
  }
  auto [mrc, mout] = Run(ExporterBinary() + " --check-config --config /nonexistent/runbook.yml");
  CHECK(mrc == 2);
  CHECK(mout.find("/nonexistent/runbook.yml: cannot read") != std::string::npos);
  auto [frc, fout] = Run(ExporterBinary() + " --bogus");
  CHECK(frc == 2);
  CHECK(fout.find("unknown flag --bogus") != std::string::npos);
  auto [drc, dout] = Run(ExporterBinary() + " --check-config");
  CHECK(drc == 0);
  CHECK_MESSAGE(dout.find("<embedded default>: valid") != std::string::npos, dout);
  CHECK_MESSAGE(dout.find(", 0 rule groups") == std::string::npos, dout);  // the shipped rule pack
  auto [vrc, vout] = Run(ExporterBinary() + " --version");
  CHECK(vrc == 0);
  CHECK(vout.starts_with("runbook_exporter "));
  // The revision is read at build time, so a commit shows up without re-running CMake.
  auto [grc, head] = Run("git -C " RUNBOOK_SOURCE_DIR " rev-parse --short=7 HEAD");
  if (grc == 0) CHECK_MESSAGE(vout.find("(revision " + head.substr(0, 7)) != std::string::npos, vout);
}

TEST_CASE("reload applies a good config and keeps the running one on a bad config") {
  Exporter exp(OneTarget("first"));
  auto m = exp.WaitFor([](const Scrape& m) { return m.Value("pg_up", {{"target", "first"}}) == 1; }, 10s);
  CHECK(m.Value("runbook_exporter_config_last_reload_successful") == 1);

  exp.WriteConfig(OneTarget("first") + PgTarget("second", Stack::Get().Port("PG_REPLICA_PORT")));
  auto r = Http("POST", exp.url("/-/reload"));
  CHECK(r.status == 200);
  m = exp.WaitFor([](const Scrape& m) { return m.Value("pg_up", {{"target", "second"}}) == 1; }, 10s);
  CHECK(m.Value("runbook_exporter_targets", {{"kind", "postgres"}}) == 2);
  // The unchanged target kept its connection.
  CHECK(m.Value("runbook_exporter_connection_attempts_total", {{"target", "first"}}) == 1);

  exp.WriteConfig("targets:\n  postgres:\n    - {name: x, user: u, port: nope}\n");
  r = Http("POST", exp.url("/-/reload"));
  CHECK(r.status == 500);
  CHECK(r.body.find(exp.config_path().string() + ":3:") != std::string::npos);
  m = exp.Metrics();
  CHECK(m.Value("runbook_exporter_config_last_reload_successful") == 0);
  CHECK(m.Value("pg_up", {{"target", "second"}}) == 1);
  auto page = Http("GET", exp.url("/"));
  CHECK(page.body.find("latest configuration reload failed") != std::string::npos);

  exp.WriteConfig(OneTarget("third"));
  kill(exp.pid(), SIGHUP);
  m = exp.WaitFor(
      [](const Scrape& m) {
        return m.Value("runbook_exporter_config_last_reload_successful") == 1 &&
               m.Value("pg_up", {{"target", "third"}}) == 1;
      },
      10s);
  CHECK(m.Value("pg_up", {{"target", "third"}}) == 1);
  CHECK_FALSE(m.Has("pg_up", {{"target", "first"}}));
  CHECK(Http("GET", exp.url("/-/reload")).status == 405);
}

TEST_CASE("metrics are gzipped when asked and the endpoints answer") {
  Exporter exp(OneTarget());
  exp.WaitFor([](const Scrape& m) { return m.Value("pg_up", {{"target", "primary"}}) == 1; }, 10s);
  auto ready = Http("GET", exp.url("/-/ready"));
  CHECK(ready.status == 200);
  auto gz = Http("GET", exp.url("/metrics"), {}, true);
  CHECK(gz.status == 200);
  CHECK(gz.headers["content-encoding"] == "gzip");
  CHECK(gz.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(ParseExposition(gz.body).size() > 50);
  auto plain = Http("GET", exp.url("/metrics"));
  CHECK(plain.headers.count("content-encoding") == 0);
  auto page = Http("GET", exp.url("/"));
  CHECK(page.status == 200);
  CHECK(page.body.find("<a href=\"/probe?target=primary\">primary</a>") != std::string::npos);
  CHECK(page.body.find("class=\"up\">up") != std::string::npos);
  CHECK(Http("GET", exp.url("/nope")).status == 404);
  auto head = Http("HEAD", exp.url("/metrics"));
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(std::stoul(head.headers["content-length"]) > 1000);
  CHECK(Http("GET", exp.url("/-/healthy")).status == 200);
}

TEST_CASE("a target that never answers does not make the exporter unready forever nor block others") {
  int dead_port = FreePort();  // nothing listens there
  auto cfg =
      OneTarget() + "    - {name: dead, host: 127.0.0.1, port: " + std::to_string(dead_port) + ", user: u}\n";
  Exporter exp(cfg);
  auto m = exp.WaitFor(
      [](const Scrape& m) {
        return m.Has("pg_up", {{"target", "dead"}}) && m.Value("pg_up", {{"target", "primary"}}) == 1;
      },
      10s);
  CHECK(m.Value("pg_up", {{"target", "dead"}}) == 0);
  CHECK(m.Value("runbook_exporter_target_error", {{"target", "dead"}, {"reason", "network"}}) == 1);
  CHECK(m.Value("pg_up", {{"target", "primary"}}) == 1);
  CHECK(Http("GET", exp.url("/-/ready")).status == 200);
  auto page = Http("GET", exp.url("/"));
  CHECK(page.body.find("down: network") != std::string::npos);
  CHECK(page.body.find("Connection refused") != std::string::npos);
}

TEST_CASE("targets given by host name are resolved within the deadline; an unknown name is a network error") {
  auto& s = Stack::Get();
  auto by_name = [](std::string target) {
    auto at = target.find("host: 127.0.0.1");
    REQUIRE(at != std::string::npos);
    return target.replace(at, 15, "host: localhost");
  };
  std::string cfg = "global: {interval: 1s, timeout: 800ms}\ntargets:\n  postgres:\n" +
                    by_name(PgTarget("primary", s.Port("PG_PRIMARY_PORT"))) +
                    "    - {name: nowhere, host: no-such-host.invalid, port: 5432, user: u}\n" +
                    "  redis:\n    - name: cache\n      host: localhost\n      port: " + s["REDIS_PORT"] +
                    "\n      user: " + s["REDIS_EXPORTER_USER"] +
                    "\n      password_file: " + s["REDIS_EXPORTER_PASSWORD_FILE"] + "\n";
  Exporter exp(cfg);
  auto m = exp.WaitFor(
      [](const Scrape& m) {
        return m.Value("pg_up", {{"target", "primary"}}) == 1 &&
               m.Value("redis_up", {{"target", "cache"}}) == 1 && m.Has("pg_up", {{"target", "nowhere"}});
      },
      10s);
  CHECK(m.Value("pg_up", {{"target", "primary"}}) == 1);
  CHECK(m.Value("redis_up", {{"target", "cache"}}) == 1);
  CHECK(m.Value("pg_up", {{"target", "nowhere"}}) == 0);
  CHECK(m.Value("runbook_exporter_target_error", {{"target", "nowhere"}, {"reason", "network"}}) == 1);
  CHECK(Http("GET", exp.url("/")).body.find("resolve no-such-host.invalid") != std::string::npos);
}

TEST_CASE("json logs are one object per line and bad log flags are refused") {
  std::string log;
  {
    int dead_port = FreePort();
    Exporter exp("targets:\n  postgres:\n    - {name: dead, host: 127.0.0.1, port: " +
                     std::to_string(dead_port) + ", user: u}\n",
                 {"--log.format", "json", "--log.level", "debug"});
    exp.WaitFor([](const Scrape& m) { return m.Has("pg_up", {{"target", "dead"}}); }, 10s);
    log = exp.Log();
  }
  std::istringstream in(log);
  std::string line;
  int lines = 0;
  bool saw_down = false;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ++lines;
    auto j = nlohmann::json::parse(line, nullptr, false);
    REQUIRE_MESSAGE(j.is_object(), line);
    CHECK(j["ts"].is_string());
    CHECK(j["level"].is_string());
    CHECK(j["msg"].is_string());
    saw_down |= j["msg"].get<std::string>().find("target dead is down: reason=network") != std::string::npos;
  }
  CHECK(lines >= 2);
  CHECK(saw_down);
  auto [rc, out] = Run(ExporterBinary() + " --check-config --log.level loud");
  CHECK(rc == 2);
  CHECK(out.find("--log.level must be one of") != std::string::npos);
  auto [frc, fout] = Run(ExporterBinary() + " --check-config --log.format xml");
  CHECK(frc == 2);
  CHECK(fout.find("--log.format must be text or json") != std::string::npos);
}

TEST_CASE("probe serves one target's latest collection and names unknown targets") {
  Exporter exp(OneTarget("first") + PgTarget("second", Stack::Get().Port("PG_REPLICA_PORT")));
  exp.WaitFor([](const Scrape& m) { return m.Value("pg_up", {{"target", "second"}}) == 1; }, 10s);
  auto r = Http("GET", exp.url("/probe?target=second"));
  CHECK(r.status == 200);
  auto samples = ParseExposition(r.body);
  CHECK(samples.count("pg_up{target=\"second\"}") == 1);
  for (const auto& [series, v] : samples)
    CHECK_MESSAGE(series.find("target=\"first\"") == std::string::npos, series);
  auto collections = samples["runbook_exporter_collections_total{target=\"second\"}"];
  auto again = ParseExposition(Http("GET", exp.url("/probe?target=second")).body);
  // Probing does not collect: back-to-back probes see the same collection.
  CHECK(again["runbook_exporter_collections_total{target=\"second\"}"] <= collections + 1);
  auto unknown = Http("GET", exp.url("/probe?target=nope"));
  CHECK(unknown.status == 404);
  CHECK(unknown.body.find("no target named \"nope\"") != std::string::npos);
  CHECK(Http("GET", exp.url("/probe")).status == 400);
}

}  // namespace exporter_test
