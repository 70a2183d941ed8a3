// The runbooks' PgBouncer situations on the stack's PgBouncer 1.18, seen through the exporter:
// clients queueing for a full pool, a restart, a freeze, and a wrong password.
#include <doctest/doctest.h>
#include <signal.h>

#include <fstream>
#include <memory>
#include <thread>

#include "harness.h"

namespace pgbouncer_test {

using namespace itest;

namespace {

const std::map<std::string, std::string> kBouncer{{"target", "bouncer"}};
const std::map<std::string, std::string> kAppdbPool{
    {"target", "bouncer"}, {"database", "appdb"}, {"user", "app"}};

std::string BouncerTarget(const std::string& password_file = "") {
  auto& s = Stack::Get();
  return "    - name: bouncer\n      host: 127.0.0.1\n      port: " + s["PGBOUNCER_PORT"] +
         "\n      user: " + s["PGBOUNCER_STATS_USER"] + "\n      password_file: " +
         (password_file.empty() ? s["PGBOUNCER_STATS_PASSWORD_FILE"] : password_file) +
         "\n      sslmode: disable\n";
}

std::string Config(const std::string& targets) {
  return "global: {interval: 1s, timeout: 800ms, slow_interval: 5s}\ntargets:\n  pgbouncer:\n" + targets;
}

bool Alive(int pid) {
  return kill(pid, 0) == 0;
}

// Resumes a frozen PgBouncer even when an assertion fails half-way.

// stack.sh has no PgBouncer restart: stop it with SIGTERM (immediate shutdown), start it again
// with the command line of scripts/stack-lib/servers.sh (as the owner of its config, with -d so
// that its pidfile names the new process), and record the new pid where `stack.sh down` finds it.
int StopBouncer(Stack& s) {
  int pid = std::stoi(s["PGBOUNCER_PID"]);
  REQUIRE(kill(pid, SIGTERM) == 0);
  for (int i = 0; i < 100 && Alive(pid); ++i) std::this_thread::sleep_for(50ms);
  REQUIRE_FALSE(Alive(pid));
  return pid;
}

void StartBouncer(Stack& s) {
  auto dir = s.dir().string();
  auto config = s["PGBOUNCER_CONFIG"];
  auto pidfile = dir + "/run/pgbouncer.pid";
  std::string as_owner = geteuid() == 0 ? "setpriv --reuid=$(stat -c %U " + config +
                                              ") --regid=$(stat -c %G " + config + ") --init-groups "
                                        : "";
  auto [rc, out] = Run("rm -f " + pidfile + " && setsid " + as_owner + "/usr/sbin/pgbouncer -d -q " + config +
                       " </dev/null >>" + s["PGBOUNCER_LOG"] + " 2>&1");
  REQUIRE_MESSAGE(rc == 0, out);
  std::string pid;
  for (int i = 0; i < 100 && pid.empty(); ++i) {
    std::ifstream(pidfile) >> pid;
    if (pid.empty()) std::this_thread::sleep_for(50ms);
  }
  REQUIRE_MESSAGE(!pid.empty(), "PgBouncer wrote no pidfile " << pidfile);
  auto [rc2, out2] =
      Run("sed -i 's/^pgbouncer .*/pgbouncer " + pid + "/' " + dir +
          "/pids && sed -i 's/^PGBOUNCER_PID=.*/PGBOUNCER_PID=" + pid + "/' " + dir + "/stack.env");
  REQUIRE_MESSAGE(rc2 == 0, out2);
  s.Reload();
}

}  // namespace

TEST_CASE("pgbouncer: more clients than the pool size make clients wait and maxwait grow") {
  auto& s = Stack::Get();
  Exporter exp(Config(BouncerTarget()));
  exp.WaitFor([](const Scrape& m) { return m.Value("pgbouncer_up", kBouncer) == 1; }, 10s);
  // appdb has default_pool_size = 5 in transaction mode: 8 sleeping clients, 3 of them queue.
  std::vector<std::unique_ptr<Pg>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(
        std::make_unique<Pg>(s.Port("PGBOUNCER_PORT"), s["PG_APP_USER"], "PG_APP_PASSWORD_FILE", "appdb"));
    clients.back()->SendAsync("SELECT pg_sleep(5)");
  }
  auto m = exp.WaitFor(
      [](const Scrape& m) {
        return m.Value("pgbouncer_pools_client_waiting_connections", kAppdbPool) == 3 &&
               m.Value("pgbouncer_pools_client_maxwait_seconds", kAppdbPool) > 0;
      },
      10s);
  CHECK(m.Value("pgbouncer_pools_client_waiting_connections", kAppdbPool) == 3);
  CHECK(m.Value("pgbouncer_pools_client_maxwait_seconds", kAppdbPool) > 0);
  CHECK(m.Value("pgbouncer_pools_server_active_connections", kAppdbPool) == 5);
  CHECK(m.Value("pgbouncer_databases_server_connections_utilization_ratio",
                {{"target", "bouncer"}, {"name", "appdb"}}) == 1);
  CHECK(m.Value("pgbouncer_client_connections_utilization_ratio", kBouncer) > 0);
  CHECK(m.Value("pgbouncer_config_max_client_connections", kBouncer) == 100);
  CHECK(m.Value("pgbouncer_databases_pool_size", {{"target", "bouncer"}, {"name", "appdb"}}) == 5);
  CHECK(m.Has("pgbouncer_stats_queries_pooled_total", {{"target", "bouncer"}, {"database", "appdb"}}));
  CHECK(m.Value("pgbouncer_version_info", {{"target", "bouncer"}, {"version", "1.18.0"}}) == 1);
  clients.clear();
}

TEST_CASE("pgbouncer: restarted, pgbouncer_up goes 0 and back to 1 by itself") {
  auto& s = Stack::Get();
  Exporter exp(Config(BouncerTarget()));
  exp.WaitFor([](const Scrape& m) { return m.Value("pgbouncer_up", kBouncer) == 1; }, 10s);
  StopBouncer(s);
  // The first failed query may carry PgBouncer's shutdown message; the reconnection is refused.
  auto down = exp.WaitFor(
      [](const Scrape& m) {
        return m.Value("pgbouncer_up", kBouncer) == 0 &&
               m.Value("runbook_exporter_target_error", {{"target", "bouncer"}, {"reason", "network"}}) == 1;
      },
      10s);
  CHECK(down.status == 200);
  CHECK(down.Value("pgbouncer_up", kBouncer) == 0);
  CHECK(down.Value("runbook_exporter_target_error", {{"target", "bouncer"}, {"reason", "network"}}) == 1);
  CHECK_FALSE(down.Has("pgbouncer_pools_client_active_connections", kBouncer));  // nothing stale
  StartBouncer(s);
  auto up = exp.WaitFor([](const Scrape& m) { return m.Value("pgbouncer_up", kBouncer) == 1; }, 20s);
  CHECK(up.Value("pgbouncer_up", kBouncer) == 1);
  CHECK(up.Has("pgbouncer_pools_client_active_connections", kBouncer));
  CHECK(up.Value("runbook_exporter_connection_attempts_total", kBouncer) >= 2);
}

TEST_CASE("pgbouncer: frozen, the collection is cut at its deadline and metrics answer at once") {
  Exporter exp(Config(BouncerTarget()));
  CheckFreezeCutAtDeadline(exp, "pgbouncer_up", "bouncer", {std::stoi(Stack::Get()["PGBOUNCER_PID"])});
}

TEST_CASE("pgbouncer: a wrong password is reason auth") {
  auto& s = Stack::Get();
  auto bad = s.dir() / "secrets" / "itest-pgbouncer-wrong.pw";
  std::ofstream(bad) << "definitely-not-the-password";
  Exporter exp(Config(BouncerTarget(bad.string())));
  auto m = exp.WaitFor(
      [](const Scrape& m) {
        return m.Value("runbook_exporter_target_error", {{"target", "bouncer"}, {"reason", "auth"}}) == 1;
      },
      10s);
  CHECK(m.Value("pgbouncer_up", kBouncer) == 0);
  CHECK(m.Value("runbook_exporter_target_error", {{"target", "bouncer"}, {"reason", "auth"}}) == 1);
  CHECK(m.Value("runbook_exporter_target_error", {{"target", "bouncer"}, {"reason", "network"}}) == 0);
}

}  // namespace pgbouncer_test
