#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "pg_fixture.h"
#include "postgres_test_support.h"
#include "runbook/collector.h"

namespace postgres_stat_database_test {

using namespace runbook;
using pgtest::Sample;

TEST_CASE("stat_database: session columns are selected from PostgreSQL 14 only") {
  auto fixtures = testing::TestsDir() / "fixtures/postgres";
  std::string v13 = pgtest::SentSql("stat_database", fixtures / "13/primary");
  std::string v15 = pgtest::SentSql("stat_database", fixtures / "15/primary");
  for (std::string column : {"session_time", "active_time", "idle_in_transaction_time", "sessions",
                             "sessions_abandoned", "sessions_fatal", "sessions_killed"}) {
    INFO(column);
    CHECK(v13.find("d." + column) == std::string::npos);
    CHECK(v15.find("d." + column) != std::string::npos);
  }
  CHECK(v13.find("d.checksum_failures") != std::string::npos);
  CHECK(v13.find("WHERE d.datname IS NOT NULL") != std::string::npos);
}

TEST_CASE("stat_database: PostgreSQL 13 fixtures give no session families") {
  testing::FixturePgSession session(testing::TestsDir() / "fixtures/postgres/13/primary");
  runbook::MetricSink sink;
  ScrapeContext ctx{"t", std::chrono::steady_clock::now() + std::chrono::seconds(5), &session};
  REQUIRE(FindCollector(TargetKind::kPostgres, "stat_database")->factory()->Update(ctx, sink).ok());
  std::string text = testing::Exposition(sink.Take());
  CHECK(text.find("pg_stat_database_sessions") == std::string::npos);
  CHECK(text.find("pg_stat_database_active_time") == std::string::npos);
  CHECK(Sample(text, "pg_stat_database_xact_commit{datid=\"16387\",datname=\"appdb\"}") == 15.0);
}

TEST_CASE("stat_database: columns map to families with datid and datname and NULL gives no sample") {
  Status st;
  std::vector<std::string> errors;
  std::string text =
      pgtest::CollectTsv("stat_database", 150000,
                         pgtest::TsvLine({"datid", "datname", "numbackends", "blk_read_time",
                                          "checksum_failures", "confl_snapshot", "session_time"}) +
                             pgtest::TsvLine({"16387", "appdb", "6", "12.5", "2", "7", "337.285"}) +
                             pgtest::TsvLine({"5", "postgres", "1", "0", "\\N", "0", "x"}),
                         &st, &errors);
  CHECK(st.ok());
  const std::string appdb = "{datid=\"16387\",datname=\"appdb\"}";
  CHECK(Sample(text, "pg_stat_database_numbackends" + appdb) == 6.0);
  CHECK(Sample(text, "pg_stat_database_blk_read_time" + appdb) == 12.5);
  CHECK(Sample(text, "pg_stat_database_checksum_failures" + appdb) == 2.0);
  CHECK(Sample(text, "pg_stat_database_conflicts_confl_snapshot" + appdb) == 7.0);
  CHECK(Sample(text, "pg_stat_database_session_time" + appdb) == 337.285);
  CHECK(!Sample(text, "pg_stat_database_checksum_failures{datid=\"5\",datname=\"postgres\"}"));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("session_time") != std::string::npos);
  CHECK(text.find("# TYPE pg_stat_database_xact_commit counter") == std::string::npos);
  CHECK(text.find("# TYPE pg_stat_database_numbackends gauge") != std::string::npos);
  CHECK(text.find("# TYPE pg_stat_database_blk_read_time counter") != std::string::npos);
}

}  // namespace postgres_stat_database_test
