// The PgBouncer collectors on column sets and values the golden files do not show: other
// versions' columns, NULLs, the maxwait/maxwait_us combination, the utilisation ratios, failures.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "pg_fixture.h"
#include "postgres_test_support.h"
#include "runbook/collector.h"

namespace pgbouncer_collectors_test {

namespace fs = std::filesystem;
using namespace runbook;
using pgtest::Sample;
using pgtest::TsvLine;

namespace {

struct Result {
  std::string text;
  Status status;
  std::vector<std::string> errors;
  std::vector<std::string> queries;
};

fs::path WriteDir(const std::map<std::string, std::string>& files) {
  static std::atomic<int> counter{0};
  fs::path dir = fs::temp_directory_path() /
                 ("runbook-pgbtest-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "server_version_num") << "0\n";
  for (const auto& [name, text] : files) std::ofstream(dir / (name + ".tsv"), std::ios::binary) << text;
  return dir;
}

Result Run(std::string_view collector, testing::FixturePgSession& session,
           std::map<std::string, double, std::less<>>* shared = nullptr) {
  const CollectorInfo* info = FindCollector(TargetKind::kPgBouncer, collector);
  REQUIRE_MESSAGE(info != nullptr, "no pgbouncer collector " << collector);
  MetricSink sink;
  ScrapeContext ctx{"test", std::chrono::steady_clock::now() + std::chrono::seconds(5), &session};
  ctx.shared = shared;
  Result r;
  r.status = info->factory()->Update(ctx, sink);
  r.errors = sink.errors();
  r.queries = session.queries();
  r.text = testing::Exposition(sink.Take());
  return r;
}

// Runs `collector` on fixtures given as query name → TSV text.
Result Collect(std::string_view collector, const std::map<std::string, std::string>& files) {
  auto dir = WriteDir(files);
  testing::FixturePgSession session(dir);
  Result r = Run(collector, session);
  fs::remove_all(dir);
  return r;
}

std::vector<const CollectorInfo*> PgBouncerCollectors() {
  std::vector<const CollectorInfo*> out;
  for (const auto& info : RegisteredCollectors())
    if (info.kind == TargetKind::kPgBouncer) out.push_back(&info);
  return out;
}

fs::path Captured() {
  return testing::TestsDir() / "fixtures/pgbouncer/1.18/default";
}

const std::string kPoolsHeader18 =
    TsvLine({"database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req",
             "sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used", "sv_tested",
             "sv_login", "maxwait", "maxwait_us", "pool_mode"});

}  // namespace

TEST_CASE("pgbouncer pools: maxwait and maxwait_us make one value in seconds") {
  auto r = Collect(
      "pools", {{"pools", kPoolsHeader18 + TsvLine({"appdb", "app", "5", "3", "0", "0", "5", "0", "0", "0",
                                                    "0", "0", "0", "3", "250000", "transaction"})}});
  REQUIRE(r.status.ok());
  CHECK(r.errors.empty());
  CHECK(Sample(r.text, R"(pgbouncer_pools_client_maxwait_seconds{database="appdb",user="app"})") == 3.25);
  CHECK(Sample(r.text, R"(pgbouncer_pools_client_waiting_connections{database="appdb",user="app"})") == 3);
  CHECK(Sample(r.text, R"(pgbouncer_pools_info{database="appdb",pool_mode="transaction",user="app"})") == 1);
}

TEST_CASE("pgbouncer pools: a version without maxwait_us uses maxwait alone") {
  // PgBouncer before 1.8: no maxwait_us, no cancel columns.
  auto header = TsvLine({"database", "user", "cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used",
                         "sv_tested", "sv_login", "maxwait", "pool_mode"});
  auto r = Collect(
      "pools",
      {{"pools", header + TsvLine({"appdb", "app", "1", "2", "1", "0", "0", "0", "0", "7", "session"})}});
  REQUIRE(r.status.ok());
  CHECK(r.errors.empty());
  CHECK(Sample(r.text, R"(pgbouncer_pools_client_maxwait_seconds{database="appdb",user="app"})") == 7);
  CHECK(r.text.find("pgbouncer_pools_client_active_cancel_connections") == std::string::npos);
  CHECK(r.text.find("pgbouncer_pools_server_being_canceled_connections") == std::string::npos);
}

TEST_CASE("pgbouncer pools: a maxwait_us that is not a number gives no maxwait sample and an error") {
  auto r = Collect(
      "pools", {{"pools", kPoolsHeader18 + TsvLine({"appdb", "app", "5", "3", "0", "0", "5", "0", "0", "0",
                                                    "0", "0", "0", "3", "soon", "transaction"})}});
  CHECK(r.status.ok());
  CHECK(r.errors.size() == 1);
  CHECK(r.text.find("pgbouncer_pools_client_maxwait_seconds") == std::string::npos);
  CHECK(Sample(r.text, R"(pgbouncer_pools_client_waiting_connections{database="appdb",user="app"})") == 3);
}

TEST_CASE("pgbouncer pools: NULL values give no sample, unknown columns are ignored") {
  auto header = TsvLine({"database", "user", "cl_active", "cl_waiting", "sv_active", "maxwait", "maxwait_us",
                         "pool_mode", "load_balance_hosts", "some_future_column"});
  auto r = Collect(
      "pools",
      {{"pools", header + TsvLine({"appdb", "app", "\\N", "0", "2", "\\N", "\\N", "\\N", "\\N", "banana"})}});
  REQUIRE(r.status.ok());
  CHECK(r.errors.empty());
  CHECK(r.text.find("pgbouncer_pools_client_active_connections") == std::string::npos);
  CHECK(r.text.find("pgbouncer_pools_client_maxwait_seconds") == std::string::npos);
  CHECK(r.text.find("pgbouncer_pools_info") == std::string::npos);
  CHECK(Sample(r.text, R"(pgbouncer_pools_server_active_connections{database="appdb",user="app"})") == 2);
}

TEST_CASE("pgbouncer stats: the pre-1.8 column set (total_requests) neither crashes nor errs") {
  // The column that makes Debian's Python exporter crash on 1.18, the other way round.
  auto header = TsvLine({"database", "total_requests", "total_received", "total_sent", "total_query_time",
                         "avg_req", "avg_recv", "avg_sent", "avg_query"});
  auto r = Collect(
      "stats", {{"stats", header + TsvLine({"appdb", "10", "2048", "4096", "1500000", "1", "2", "3", "4"})}});
  REQUIRE(r.status.ok());
  CHECK(r.errors.empty());
  CHECK(Sample(r.text, R"(pgbouncer_stats_received_bytes_total{database="appdb"})") == 2048);
  CHECK(Sample(r.text, R"(pgbouncer_stats_queries_duration_seconds_total{database="appdb"})") == 1.5);
  CHECK(r.text.find("pgbouncer_stats_queries_pooled_total") == std::string::npos);
  CHECK(r.text.find("avg") == std::string::npos);
}

TEST_CASE("pgbouncer stats: microseconds become seconds") {
  auto header = TsvLine({"database", "total_xact_time", "total_wait_time"});
  auto r = Collect("stats", {{"stats", header + TsvLine({"appdb", "2500000", "750000"})}});
  REQUIRE(r.status.ok());
  CHECK(Sample(r.text, R"(pgbouncer_stats_server_in_transaction_seconds_total{database="appdb"})") == 2.5);
  CHECK(Sample(r.text, R"(pgbouncer_stats_client_wait_seconds_total{database="appdb"})") == 0.75);
}

namespace {
const std::string kDatabasesHeader =
    TsvLine({"name", "host", "port", "database", "force_user", "pool_size", "min_pool_size", "reserve_pool",
             "pool_mode", "max_connections", "current_connections", "paused", "disabled"});
const std::string kAppdbLabels =
    R"({database="appdb",force_user="",host="127.0.0.1",name="appdb",pool_mode="",port="5432"})";
}  // namespace

TEST_CASE("pgbouncer databases: server utilisation against pool_size, or max_connections when set") {
  auto r = Collect("databases", {{"databases", kDatabasesHeader +
                                                   TsvLine({"appdb", "127.0.0.1", "5432", "appdb", "\\N", "5",
                                                            "0", "0", "\\N", "0", "4", "0", "0"}) +
                                                   TsvLine({"capped", "127.0.0.1", "5432", "appdb", "\\N",
                                                            "5", "0", "0", "\\N", "2", "3", "0", "0"}) +
                                                   TsvLine({"nolimit", "127.0.0.1", "5432", "appdb", "\\N",
                                                            "0", "0", "0", "\\N", "0", "3", "1", "0"})}});
  REQUIRE(r.status.ok());
  CHECK(r.errors.empty());
  const std::string ratio = "pgbouncer_databases_server_connections_utilization_ratio";
  CHECK(Sample(r.text, ratio + kAppdbLabels) == doctest::Approx(0.8));
  CHECK(
      Sample(
          r.text,
          ratio +
              R"({database="appdb",force_user="",host="127.0.0.1",name="capped",pool_mode="",port="5432"})") ==
      1.5);
  CHECK(r.text.find(ratio + R"({database="appdb",force_user="",host="127.0.0.1",name="nolimit")") ==
        std::string::npos);  // no limit, no ratio
  CHECK(
      Sample(
          r.text,
          R"(pgbouncer_databases_paused{database="appdb",force_user="",host="127.0.0.1",name="nolimit",pool_mode="",port="5432"})") ==
      1);
}

TEST_CASE("pgbouncer databases: reserve_pool_size of newer versions is the reserve_pool family") {
  auto header = TsvLine({"name", "host", "port", "database", "force_user", "pool_size", "min_pool_size",
                         "reserve_pool_size", "server_lifetime", "pool_mode", "load_balance_hosts",
                         "max_connections", "current_connections", "max_client_connections",
                         "current_client_connections", "paused", "disabled"});
  auto r = Collect("databases",
                   {{"databases", header + TsvLine({"appdb", "127.0.0.1", "5432", "appdb", "\\N", "5", "0",
                                                    "2", "0", "\\N", "\\N", "0", "1", "0", "3", "0", "0"})}});
  REQUIRE(r.status.ok());
  CHECK(r.errors.empty());
  CHECK(Sample(r.text, "pgbouncer_databases_reserve_pool" + kAppdbLabels) == 2);
  CHECK(Sample(r.text, "pgbouncer_databases_current_connections" + kAppdbLabels) == 1);
}

namespace {
std::string Lists(std::string_view used_clients) {
  return TsvLine({"list", "items"}) + TsvLine({"databases", "3"}) + TsvLine({"used_clients", used_clients}) +
         TsvLine({"dns_pending", "0"}) + TsvLine({"some_future_list", "9"});
}
std::string Config(std::string_view max_client_conn) {
  return TsvLine({"key", "value", "default", "changeable"}) +
         TsvLine({"max_client_conn", max_client_conn, "100", "yes"}) +
         TsvLine({"default_pool_size", "5", "20", "yes"}) + TsvLine({"logfile", "/var/log/x.log", "", "yes"});
}
}  // namespace

// config (slow tier) then lists on one session, sharing as a target's collection does.
std::pair<Result, Result> ConfigThenLists(const std::map<std::string, std::string>& files) {
  auto dir = WriteDir(files);
  testing::FixturePgSession session(dir);
  std::map<std::string, double, std::less<>> shared;
  Result config = Run("config", session, &shared);
  Result lists = Run("lists", session, &shared);
  fs::remove_all(dir);
  return {config, lists};
}

TEST_CASE(
    "pgbouncer config is slow-tier SHOW CONFIG only and lists divides used_clients by its max_client_conn") {
  CHECK(FindCollector(TargetKind::kPgBouncer, "config")->tier == Tier::kSlow);
  auto [config, lists] = ConfigThenLists({{"config", Config("200")}, {"lists", Lists("50")}});
  REQUIRE(config.status.ok());
  REQUIRE(lists.status.ok());
  CHECK(config.errors.empty());
  CHECK(config.queries == std::vector<std::string>{"config"});
  CHECK(lists.queries == std::vector<std::string>{"config", "lists"});  // one SHOW LISTS in all
  CHECK(Sample(config.text, "pgbouncer_config_max_client_connections") == 200);
  CHECK(Sample(config.text, "pgbouncer_config_default_pool_size") == 5);
  CHECK(config.text.find("utilization_ratio") == std::string::npos);
  CHECK(Sample(lists.text, "pgbouncer_client_connections_utilization_ratio") == 0.25);
}

TEST_CASE("pgbouncer client utilisation: none without both numbers, and none from a config that lost it") {
  auto zero = ConfigThenLists({{"config", Config("0")}, {"lists", Lists("50")}});
  CHECK(zero.second.status.ok());
  CHECK(zero.second.text.find("utilization_ratio") == std::string::npos);
  auto no_used = ConfigThenLists({{"config", Config("100")}, {"lists", TsvLine({"list", "items"})}});
  CHECK(no_used.second.status.ok());
  CHECK(no_used.second.text.find("utilization_ratio") == std::string::npos);
  // Without the config collector (disabled, or nothing shared) lists publishes no ratio.
  auto alone = Collect("lists", {{"lists", Lists("50")}});
  CHECK(alone.status.ok());
  CHECK(alone.text.find("utilization_ratio") == std::string::npos);

  // A SHOW CONFIG without max_client_conn withdraws the value an earlier run shared.
  auto dir = WriteDir(
      {{"config", TsvLine({"key", "value"}) + TsvLine({"default_pool_size", "5"})}, {"lists", Lists("50")}});
  testing::FixturePgSession session(dir);
  std::map<std::string, double, std::less<>> shared{{"pgbouncer.max_client_conn", 100}};
  Run("config", session, &shared);
  auto lists = Run("lists", session, &shared);
  fs::remove_all(dir);
  CHECK(lists.text.find("utilization_ratio") == std::string::npos);
}

TEST_CASE("pgbouncer lists: unknown lists and the unused dns_pending are ignored") {
  auto r = Collect("lists", {{"lists", Lists("7")}});
  REQUIRE(r.status.ok());
  CHECK(r.errors.empty());
  CHECK(Sample(r.text, "pgbouncer_used_clients") == 7);
  CHECK(Sample(r.text, "pgbouncer_databases") == 3);
  CHECK(r.text.find("pending") == std::string::npos);
  CHECK(r.text.find("future") == std::string::npos);
}

TEST_CASE("pgbouncer version: the number from the version string, nothing without a row") {
  auto r = Collect("version", {{"version", TsvLine({"version"}) + TsvLine({"PgBouncer 1.23.1"})}});
  CHECK(Sample(r.text, R"(pgbouncer_version_info{version="1.23.1"})") == 1);
  auto none = Collect("version", {{"version", TsvLine({"version"})}});
  CHECK(none.status.ok());
  CHECK(none.text.empty());
}

TEST_CASE("every pgbouncer collector returns the status of a failed query") {
  for (const auto* info : PgBouncerCollectors()) {
    testing::FixturePgSession probe(Captured());
    Run(info->name, probe);
    for (const auto& query : probe.queries()) {
      INFO(info->name << " failing " << query);
      testing::FixturePgSession session(Captured());
      session.FailQuery(query, Status::Error(ErrorReason::kQuery, "invalid command"));
      auto r = Run(info->name, session);
      CHECK(r.status.reason == ErrorReason::kQuery);
      CHECK(r.status.message == "invalid command");
      CHECK(r.text.empty());
    }
  }
}

TEST_CASE("no single garbage value in the captured pgbouncer fixtures crashes a collector") {
  for (const auto* info : PgBouncerCollectors()) {
    testing::FixturePgSession probe(Captured());
    Run(info->name, probe);
    std::map<std::string, std::string> files;
    for (const auto& q : probe.queries()) files[q] = testing::ReadFile(Captured() / (q + ".tsv"));
    for (const auto& query : probe.queries()) {
      auto original = testing::DecodeTsv(files[query]);
      for (std::size_t row = 0; row < original.rows.size(); ++row) {
        for (std::size_t col = 0; col < original.columns.size(); ++col) {
          auto mutated = original;
          mutated.rows[row][col] = "garbage";
          auto copy = files;
          copy[query] = testing::EncodeTsv(mutated);
          auto r = Collect(info->name, copy);
          INFO(info->name << " " << query << " row " << row << " column " << original.columns[col]);
          CHECK(r.status.ok());
        }
      }
    }
  }
}

}  // namespace pgbouncer_collectors_test
