// Every Grafana panel query returns data from a real Prometheus (Debian's) that scrapes the
// exporter on the throwaway stack and evaluates the runbook rule pack. The stack is first driven
// into the states the panels show (sessions idle, idle in transaction and blocked on a lock, a
// long query, an archived segment, a Redis list, a slow log that grows, maxmemory, a target that
// is down and one whose collectors lack privileges). Panels that need what the stack cannot
// produce are listed in kNoDataOnTheStack with the reason; any other empty panel fails the test.

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace dashboards_test {

using namespace itest;
namespace fs = std::filesystem;

namespace {

// "dashboard file|panel title|refId" of the queries that return nothing on the stack, and why.
const std::map<std::string, std::string> kNoDataOnTheStack = {
    {"runbook-postgres.json|Transactions per second|B",
     "the baseline is the hour ending 15 minutes ago: the test's Prometheus is younger than 15 minutes"},
};

std::string UrlEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Redis as its default (administrative) user; restores what the test changed.
class RedisAdmin {
 public:
  explicit RedisAdmin(const Stack& s)
      : cli_("redis-cli --no-auth-warning -h 127.0.0.1 -p " + s["REDIS_PORT"] + " -a \"$(cat '" +
             s["REDIS_PASSWORD_FILE"] + "')\" ") {}
  ~RedisAdmin() {
    Run(cli_ + "CONFIG SET slowlog-log-slower-than 10000");
    Run(cli_ + "CONFIG SET maxmemory 0");
    Run(cli_ + "DEL action_jobs");
  }
  void Do(const std::string& args) {
    auto [rc, out] = Run(cli_ + args);
    REQUIRE_MESSAGE(rc == 0, args << ": " << out);
  }

 private:
  std::string cli_;
};

}  // namespace

TEST_CASE("dashboards: every panel query returns data on the stack") {
  auto& s = Stack::Get();
  auto dir = fs::temp_directory_path() / ("rbx-dash-" + std::to_string(getpid()));
  fs::create_directories(dir);

  // The stack's own exporter config (its TLS endpoints, STARTTLS and certificate files included),
  // collected fast, plus a target that is down and one whose
  // role lacks pg_monitor (its wal and archiver collectors fail): the exporter panels show both.
  auto config_file = dir / "exporter.yml";
  REQUIRE(s.Control("write-config", config_file.string() + " --interval 2s --timeout 1500ms") == 0);
  std::string config = ReadFile(config_file);
  auto slow = config.find("slow_interval: 1m");
  REQUIRE(slow != std::string::npos);
  config.replace(slow, 17, "slow_interval: 4s");
  auto pg_list = config.find("  postgres:\n");
  REQUIRE(pg_list != std::string::npos);
  config.insert(pg_list + 12, "    - {name: nowhere, host: 127.0.0.1, port: " + std::to_string(FreePort()) +
                                  ", user: exporter, password_file: " + s["PG_EXPORTER_PASSWORD_FILE"] +
                                  ", sslmode: disable}\n"
                                  "    - {name: unprivileged, host: 127.0.0.1, port: " +
                                  s["PG_PRIMARY_PORT"] + ", database: appdb, user: " + s["PG_APP_USER"] +
                                  ", password_file: " + s["PG_APP_PASSWORD_FILE"] + ", sslmode: disable}\n");
  Exporter exp(config);
  std::string exporter_address = exp.url("").substr(std::string("http://").size());

  // States the panels show. The guard ends this test's sessions even when a check fails, so
  // that no lock or pg_sleep outlives the test (a backend notices a closed client only later).
  struct EndSessions {
    const Stack& s;
    ~EndSessions() {
      Pg pg(s.Port("PG_PRIMARY_PORT"));
      pg.Exec(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%itest_dash%' AND pid <> "
          "pg_backend_pid()");
    }
  } end_sessions{s};
  Pg holder(s.Port("PG_PRIMARY_PORT"), "postgres", "PG_SUPERUSER_PASSWORD_FILE", "appdb");
  holder.Exec("CREATE TABLE IF NOT EXISTS itest_dash(id int PRIMARY KEY, v int)");
  holder.Exec("INSERT INTO itest_dash VALUES (1, 0) ON CONFLICT DO NOTHING");
  holder.Exec("BEGIN");
  holder.Exec("UPDATE itest_dash SET v = v + 1 WHERE id = 1");
  Pg waiter(s.Port("PG_PRIMARY_PORT"), "postgres", "PG_SUPERUSER_PASSWORD_FILE", "appdb");
  waiter.SendAsync("UPDATE itest_dash SET v = v + 1 WHERE id = 1");
  Pg sleeper(s.Port("PG_PRIMARY_PORT"), "postgres", "PG_SUPERUSER_PASSWORD_FILE", "appdb");
  sleeper.SendAsync("SELECT pg_sleep(120) /* itest_dash */");
  Pg idle(s.Port("PG_PRIMARY_PORT"), "postgres", "PG_SUPERUSER_PASSWORD_FILE", "appdb");
  REQUIRE(s.Control("switch-wal") == 0);  // at least one archived segment: last_archive_age
  RedisAdmin redis(s);
  redis.Do("RPUSH action_jobs job-1 job-2 job-3");
  redis.Do("CONFIG SET maxmemory 1gb");
  redis.Do("CONFIG SET slowlog-log-slower-than 0");  // every command is "slow": RedisSlowlogGrowing fires

  // Prometheus: scrapes the exporter and itself every second, evaluates the rule pack, sends
  // alerts to an Alertmanager address where nobody listens (the notifier's error counters).
  int prom_port = FreePort();
  std::string prom = "127.0.0.1:" + std::to_string(prom_port);
  std::ofstream(dir / "prometheus.yml")
      << "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
      << "rule_files: ['" << RUNBOOK_SOURCE_DIR << "/rules/runbook/*.rules.yml']\n"
      << "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['127.0.0.1:" << FreePort()
      << "']}]\n"
      << "scrape_configs:\n"
      << "  - job_name: runbook_exporter\n"
      << "    static_configs: [{targets: ['" << exporter_address << "']}]\n"
      << "  - job_name: prometheus\n"
      << "    static_configs: [{targets: ['" << prom << "']}]\n";
  Child prometheus(
      {"/usr/bin/prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
       "--storage.tsdb.path=" + (dir / "data").string(), "--web.listen-address=" + prom, "--log.level=warn"},
      dir / "prometheus.log");
  auto api = [&](const std::string& query) {
    return Http("GET", "http://" + prom + "/api/v1/query?query=" + UrlEncode(query));
  };
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (api("up{job=\"runbook_exporter\"} == 1").body.find("\"result\":[{") == std::string::npos) {
    REQUIRE_MESSAGE(prometheus.Alive(), ReadFile(dir / "prometheus.log"));
    REQUIRE_MESSAGE(
        std::chrono::steady_clock::now() < deadline,
        "Prometheus did not scrape the exporter within 30 s: " << ReadFile(dir / "prometheus.log"));
    std::this_thread::sleep_for(500ms);
  }

  auto [rc, listing] = Run("/usr/bin/python3 " + std::string(RUNBOOK_SOURCE_DIR) +
                           "/tests/dashboards/panel_queries.py list " + RUNBOOK_SOURCE_DIR + "/dashboards");
  REQUIRE_MESSAGE(rc == 0, listing);
  auto queries = nlohmann::json::parse(listing);
  REQUIRE(queries.size() > 100);

  // Rates need two samples in their window, the slow tier two collections, an alert its first
  // evaluation: poll until every query that should have data has it, or 60 s have passed.
  std::map<std::string, std::string> empty;  // key -> last answer
  std::set<std::string> answered_excepted;
  deadline = std::chrono::steady_clock::now() + 60s;
  do {
    empty.clear();
    answered_excepted.clear();
    for (const auto& q : queries) {
      std::string key = q["dashboard"].get<std::string>() + "|" + q["panel"].get<std::string>() + "|" +
                        q["ref"].get<std::string>();
      auto r = api(q["expr"].get<std::string>());
      INFO(key, ": ", q["expr"].get<std::string>());
      REQUIRE_MESSAGE(r.status == 200, r.body);
      auto body = nlohmann::json::parse(r.body);
      REQUIRE(body["status"] == "success");
      bool has_data = !body["data"]["result"].empty();
      if (kNoDataOnTheStack.count(key)) {
        if (has_data) answered_excepted.insert(key);
      } else if (!has_data) {
        empty[key] = q["expr"].get<std::string>();
      }
    }
    if (empty.empty()) break;
    std::this_thread::sleep_for(500ms);
  } while (std::chrono::steady_clock::now() < deadline);

  std::string missing;
  for (const auto& [key, expr] : empty) missing += "\n  " + key + ": " + expr;
  CHECK_MESSAGE(empty.empty(), "panel queries without data:" << missing);
  for (const auto& key : answered_excepted) {
    MESSAGE(
        key << " is listed as impossible on the stack but returned data: remove it from kNoDataOnTheStack");
  }
  MESSAGE(queries.size() << " panel queries, " << kNoDataOnTheStack.size()
                         << " listed as impossible on the stack");

  holder.Exec("ROLLBACK");
  std::error_code ec;
  fs::remove_all(dir / "data", ec);
}

}  // namespace dashboards_test
