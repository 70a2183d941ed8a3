// The runbooks' PostgreSQL situations, produced on real servers, seen through the exporter.
#include <doctest/doctest.h>
#include <signal.h>

#include <cmath>
#include <fstream>
#include <regex>
#include <thread>

#include "harness.h"

namespace postgres_test {

using namespace itest;

namespace {

std::string Config(const std::string& targets,
                   const std::string& global = "{interval: 1s, timeout: 800ms, slow_interval: 5s}") {
  return "global: " + global + "\ntargets:\n  postgres:\n" + targets;
}

std::string PrimaryAndReplica() {
  auto& s = Stack::Get();
  return PgTarget("primary", s.Port("PG_PRIMARY_PORT"), "      labels: {role: primary}\n") +
         PgTarget("replica", s.Port("PG_REPLICA_PORT"), "      labels: {role: replica}\n");
}

const std::map<std::string, std::string> kPrimary{{"target", "primary"}};
const std::map<std::string, std::string> kReplica{{"target", "replica"}};

std::vector<int> PostmasterAndChildren() {
  auto& s = Stack::Get();
  std::vector<int> pids{std::stoi(s["PG_PRIMARY_PID"])};
  auto [rc, out] = Run("pgrep -P " + s["PG_PRIMARY_PID"]);
  std::istringstream in(out);
  int pid;
  while (in >> pid) pids.push_back(pid);
  return pids;
}

int CountInFile(const std::string& path, const std::string& needle) {
  std::ifstream in(path);
  std::string line;
  int n = 0;
  while (std::getline(in, line))
    if (line.find(needle) != std::string::npos) ++n;
  return n;
}

}  // namespace

TEST_CASE("replica lag grows while replay is paused and returns to zero after resume") {
  auto& s = Stack::Get();
  Exporter exp(Config(PrimaryAndReplica()));
  auto idle = exp.WaitFor(
      [](const Scrape& m) {
        // Both targets: under load the primary's first collection can end after the replica's.
        return m.Value("pg_up", kReplica) == 1 && m.Has("pg_replication_lag_seconds", kReplica) &&
               m.Has("pg_replication_is_replica", kPrimary);
      },
      10s);
  CHECK(idle.Value("pg_replication_is_replica", kReplica) == 1);
  CHECK(idle.Value("pg_replication_is_replica", kPrimary) == 0);
  CHECK(idle.Value("pg_replication_lag_seconds", kReplica) == 0);  // an idle primary is not lag

  // A standby that has replayed a commit since it started, as in normal operation.
  Pg primary(s.Port("PG_PRIMARY_PORT"));
  primary.Exec("CREATE TABLE IF NOT EXISTS itest_lag(x int)");
  primary.Exec("INSERT INTO itest_lag VALUES (0)");
  exp.WaitFor(
      [](const Scrape& m) { return m.Value("pg_replication_last_replay_timestamp_seconds", kReplica) > 0; },
      10s);
  REQUIRE(s.Control("replay", "pause") == 0);
  primary.Exec("INSERT INTO itest_lag SELECT generate_series(1, 5000)");
  auto lagging = exp.WaitFor(
      [](const Scrape& m) {
        return m.Value("pg_replication_receive_replay_lag_bytes", kReplica) > 0 &&
               m.Value("pg_replication_lag_seconds", kReplica) > 0 &&
               m.Value("pg_stat_replication_replay_lag_bytes", kPrimary) > 0;
      },
      10s);
  CHECK(lagging.Value("pg_replication_replay_paused", kReplica) == 1);
  CHECK(lagging.Value("pg_replication_receive_replay_lag_bytes", kReplica) > 0);
  CHECK(lagging.Value("pg_replication_lag_seconds", kReplica) > 0);
  CHECK(lagging.Value("pg_stat_replication_replay_lag_bytes", kPrimary) > 0);
  CHECK(lagging.Value("pg_stat_replication_pg_wal_lsn_diff", kPrimary) > 0);
  CHECK(lagging.Value("pg_stat_replication_standbys", kPrimary) == 1);

  REQUIRE(s.Control("replay", "resume") == 0);
  auto caught_up = exp.WaitFor(
      [](const Scrape& m) {
        return m.Value("pg_replication_receive_replay_lag_bytes", kReplica) == 0 &&
               m.Value("pg_replication_lag_seconds", kReplica) == 0 &&
               m.Value("pg_stat_replication_replay_lag_bytes", kPrimary) == 0;
      },
      15s);
  CHECK(caught_up.Value("pg_replication_lag_seconds", kReplica) == 0);
  CHECK(caught_up.Value("pg_replication_replay_paused", kReplica) == 0);
  CHECK(caught_up.Value("pg_stat_replication_replay_lag_bytes", kPrimary) == 0);
}

TEST_CASE("archiver failing then recovering") {
  auto& s = Stack::Get();
  Exporter exp(Config(PgTarget("primary", s.Port("PG_PRIMARY_PORT"))));
  auto before =
      exp.WaitFor([](const Scrape& m) { return m.Has("pg_stat_archiver_failed_count", kPrimary); }, 10s);
  double failed0 = before.Value("pg_stat_archiver_failed_count", kPrimary);
  double archived0 = before.Value("pg_stat_archiver_archived_count", kPrimary);
  REQUIRE(!std::isnan(failed0));

  REQUIRE(s.Control("archive-fail", "on") == 0);
  REQUIRE(s.Control("switch-wal") == 0);
  auto failing = exp.WaitFor(
      [&](const Scrape& m) {
        return m.Value("pg_stat_archiver_failing", kPrimary) == 1 &&
               m.Value("pg_stat_archiver_failed_count", kPrimary) > failed0;
      },
      15s);
  CHECK(failing.Value("pg_stat_archiver_failing", kPrimary) == 1);
  CHECK(failing.Value("pg_stat_archiver_failed_count", kPrimary) > failed0);
  CHECK(failing.Value("pg_stat_archiver_last_failed_timestamp_seconds", kPrimary) > 0);
  CHECK(failing.Value("pg_stat_archiver_pending_wal_files", kPrimary) >= 1);

  REQUIRE(s.Control("archive-fail", "off") == 0);
  REQUIRE(s.Control("switch-wal") == 0);
  auto healed = exp.WaitFor(
      [&](const Scrape& m) {
        return m.Value("pg_stat_archiver_failing", kPrimary) == 0 &&
               m.Value("pg_stat_archiver_archived_count", kPrimary) > archived0;
      },
      20s);
  CHECK(healed.Value("pg_stat_archiver_failing", kPrimary) == 0);
  CHECK(healed.Value("pg_stat_archiver_archived_count", kPrimary) > archived0);
  CHECK(healed.Value("pg_stat_archiver_last_archive_age", kPrimary) < 60);
}

TEST_CASE("a session idle in transaction and another blocked on its lock") {
  auto& s = Stack::Get();
  Exporter exp(Config(PgTarget("primary", s.Port("PG_PRIMARY_PORT"))));
  Pg holder(s.Port("PG_PRIMARY_PORT"));
  holder.Exec("CREATE TABLE IF NOT EXISTS itest_lock(id int PRIMARY KEY, v int)");
  holder.Exec("INSERT INTO itest_lock VALUES (1, 0) ON CONFLICT DO NOTHING");
  holder.Exec("BEGIN");
  holder.Exec("UPDATE itest_lock SET v = v + 1 WHERE id = 1");
  Pg waiter(s.Port("PG_PRIMARY_PORT"));
  waiter.SendAsync("UPDATE itest_lock SET v = v + 1 WHERE id = 1");
  const std::map<std::string, std::string> db{{"target", "primary"}, {"datname", "postgres"}};
  auto m = exp.WaitFor(
      [&](const Scrape& m) {
        return m.Value("pg_locks_blocked_backends", kPrimary) >= 1 &&
               m.Value("pg_stat_activity_oldest_idle_in_transaction_seconds", db) > 0;
      },
      10s);
  CHECK(m.Value("pg_locks_blocked_backends", kPrimary) >= 1);
  CHECK(m.Value("pg_locks_waiting",
                {{"target", "primary"}, {"locktype", "transactionid"}, {"mode", "sharelock"}}) >= 1);
  CHECK(m.Value("pg_stat_activity_lock_waiting_backends", db) >= 1);
  CHECK(m.Value("pg_stat_activity_count",
                {{"target", "primary"}, {"datname", "postgres"}, {"state", "idle in transaction"}}) >= 1);
  CHECK(m.Value("pg_stat_activity_oldest_idle_in_transaction_seconds", db) > 0);
  CHECK(m.Value("pg_stat_activity_oldest_query_seconds", db) > 0);  // the waiter is active
  holder.Exec("ROLLBACK");
  auto after =
      exp.WaitFor([&](const Scrape& m) { return m.Value("pg_locks_blocked_backends", kPrimary) == 0; }, 10s);
  CHECK(after.Value("pg_locks_blocked_backends", kPrimary) == 0);
}

TEST_CASE("one persistent connection per target named runbook_exporter") {
  auto& s = Stack::Get();
  Exporter exp(Config(PgTarget("primary", s.Port("PG_PRIMARY_PORT"))));
  exp.WaitFor([](const Scrape& m) { return m.Value("runbook_exporter_collections_total", kPrimary) >= 3; },
              10s);
  Pg pg(s.Port("PG_PRIMARY_PORT"));
  CHECK(pg.Scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'runbook_exporter'") ==
        "1");
  auto m = exp.Metrics();
  CHECK(m.Value("runbook_exporter_connection_attempts_total", kPrimary) == 1);
  // Our own backend is not counted as activity: the only active client backend is psql here.
  CHECK(m.Value("pg_stat_activity_count",
                {{"target", "primary"}, {"datname", "postgres"}, {"state", "active"}}) == 0);
}

TEST_CASE("PostgreSQL stopped and restarted leaves the exporter untouched") {
  auto& s = Stack::Get();
  Exporter exp(Config(PrimaryAndReplica()));
  exp.WaitFor([](const Scrape& m) { return m.Value("pg_up", kPrimary) == 1; }, 10s);
  REQUIRE(s.Control("stop-pg") == 0);
  auto down = exp.WaitFor([](const Scrape& m) { return m.Value("pg_up", kPrimary) == 0; }, 10s);
  CHECK(down.status == 200);
  CHECK(down.Value("pg_up", kPrimary) == 0);
  CHECK(down.Value("runbook_exporter_target_error", {{"target", "primary"}, {"reason", "network"}}) == 1);
  CHECK_FALSE(down.Has("pg_stat_database_xact_commit", kPrimary));  // no stale data from before
  CHECK(down.Value("pg_up", kReplica) == 1);
  REQUIRE(s.Control("start-pg") == 0);
  s.Reload();
  auto up = exp.WaitFor([](const Scrape& m) { return m.Value("pg_up", kPrimary) == 1; }, 20s);
  CHECK(up.Value("pg_up", kPrimary) == 1);
  CHECK(up.Value("runbook_exporter_target_error", {{"target", "primary"}, {"reason", "network"}}) == 0);
  CHECK(up.Has("pg_stat_database_xact_commit", kPrimary));
}

TEST_CASE("wrong password is reason auth with at most one failed login per backoff step") {
  auto& s = Stack::Get();
  auto bad = s.dir() / "secrets" / "itest-wrong.pw";
  std::ofstream(bad) << "definitely-not-the-password";
  const std::string needle = "password authentication failed for user \"exporter\"";
  int before = CountInFile(s["PG_PRIMARY_LOG"], needle);
  std::string target = "    - name: primary\n      host: 127.0.0.1\n      port: " + s["PG_PRIMARY_PORT"] +
                       "\n      user: exporter\n      password_file: " + bad.string() +
                       "\n      sslmode: disable\n";
  Exporter exp(Config(target));
  auto start = std::chrono::steady_clock::now();
  auto m = exp.WaitFor(
      [](const Scrape& m) {
        return m.Value("runbook_exporter_target_error", {{"target", "primary"}, {"reason", "auth"}}) == 1;
      },
      10s);
  CHECK(m.Value("pg_up", kPrimary) == 0);
  CHECK(m.Value("runbook_exporter_target_error", {{"target", "primary"}, {"reason", "auth"}}) == 1);
  CHECK(m.Value("runbook_exporter_target_error", {{"target", "primary"}, {"reason", "network"}}) == 0);
  std::this_thread::sleep_for(6s);
  auto later = exp.Metrics();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double attempts = later.Value("runbook_exporter_connection_attempts_total", kPrimary);
  double collections = later.Value("runbook_exporter_collections_total", kPrimary);
  int failed_logins = CountInFile(s["PG_PRIMARY_LOG"], needle) - before;
  INFO("elapsed " << elapsed << " s, attempts " << attempts << ", collections " << collections);
  CHECK(failed_logins >= 1);
  CHECK(failed_logins <= attempts);
  // Backoff doubles from the 1 s interval: 0, 1, 3, 7 s... — far fewer than one per collection.
  CHECK(attempts <= 1 + std::ceil(std::log2(elapsed + 1)));
  CHECK(collections > attempts);
  auto log = exp.Log();
  std::size_t downs = 0;
  for (auto pos = log.find("is down"); pos != std::string::npos; pos = log.find("is down", pos + 1)) ++downs;
  CHECK(downs == 1);  // logged once, not every cycle
}

TEST_CASE("frozen PostgreSQL cuts the collection at its deadline and metrics still answer at once") {
  Exporter exp(Config(PrimaryAndReplica()));
  CheckFreezeCutAtDeadline(exp, "pg_up", "primary", PostmasterAndChildren(), {"replica"});
}

}  // namespace postgres_test
