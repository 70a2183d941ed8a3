#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "pg_fixture.h"
#include "postgres_test_support.h"
#include "runbook/collector.h"

namespace postgres_replica_test {

using namespace runbook;
using pgtest::Sample;

namespace {

const std::string kHeader =
    pgtest::TsvLine({"in_recovery", "receive_replay_lag_bytes", "last_replay_age_seconds",
                     "last_replay_timestamp_seconds", "replay_paused", "wal_receiver_streaming"});

std::string Run(const std::string& row, std::vector<std::string>* errors = nullptr) {
  Status st;
  std::string text = pgtest::CollectTsv("replica", 150000, kHeader + row, &st, errors);
  CHECK_MESSAGE(st.ok(), st.message);
  return text;
}

}  // namespace

TEST_CASE("replica: a primary reports lag 0 and nothing else") {
  std::string text = Run(pgtest::TsvLine({"f", "\\N", "\\N", "\\N", "\\N", "\\N"}));
  CHECK(Sample(text, "pg_replication_lag_seconds") == 0.0);
  CHECK(text.find("pg_replication_receive_replay_lag_bytes") == std::string::npos);
  CHECK(text.find("pg_replication_replay_paused") == std::string::npos);
  CHECK(text.find("pg_stat_wal_receiver_streaming") == std::string::npos);
}

TEST_CASE("replica: lag is 0 when all received WAL is replayed however old the last commit") {
  // An idle primary: the last replayed commit is an hour old but nothing waits for replay.
  std::string text = Run(pgtest::TsvLine({"t", "0", "3600.5", "1795250000.1", "f", "t"}));
  CHECK(Sample(text, "pg_replication_lag_seconds") == 0.0);
  CHECK(Sample(text, "pg_replication_receive_replay_lag_bytes") == 0.0);
  CHECK(Sample(text, "pg_replication_last_replay_timestamp_seconds") == 1795250000.1);
  CHECK(Sample(text, "pg_replication_replay_paused") == 0.0);
  CHECK(Sample(text, "pg_stat_wal_receiver_streaming") == 1.0);
}

TEST_CASE("replica: lag is the last commit's age while received WAL waits for replay") {
  std::string text = Run(pgtest::TsvLine({"t", "3096576", "42.25", "1795258703.881579", "t", "t"}));
  CHECK(Sample(text, "pg_replication_lag_seconds") == 42.25);
  CHECK(Sample(text, "pg_replication_receive_replay_lag_bytes") == 3096576.0);
  CHECK(Sample(text, "pg_replication_replay_paused") == 1.0);
}

TEST_CASE("replica: without a received position the lag is the last commit's age") {
  // Archive recovery only or the WAL receiver never started: pg_last_wal_receive_lsn() is NULL.
  std::string text = Run(pgtest::TsvLine({"t", "\\N", "7.5", "1795258703.5", "f", "f"}));
  CHECK(Sample(text, "pg_replication_lag_seconds") == 7.5);
  CHECK(text.find("pg_replication_receive_replay_lag_bytes") == std::string::npos);
  CHECK(Sample(text, "pg_stat_wal_receiver_streaming") == 0.0);
}

TEST_CASE("replica: a negative commit age is reported as 0") {
  std::string text = Run(pgtest::TsvLine({"t", "128", "-0.002", "1795258703.5", "f", "t"}));
  CHECK(Sample(text, "pg_replication_lag_seconds") == 0.0);
}

TEST_CASE("replica: no lag sample when WAL waits and no transaction was replayed yet") {
  std::string text = Run(pgtest::TsvLine({"t", "128", "\\N", "\\N", "f", "t"}));
  CHECK(text.find("pg_replication_lag_seconds") == std::string::npos);
  CHECK(text.find("pg_replication_last_replay_timestamp_seconds") == std::string::npos);
}

TEST_CASE("replica: a value that is not a number is a sink error") {
  std::vector<std::string> errors;
  std::string text = Run(pgtest::TsvLine({"t", "0/3000000", "1", "2", "f", "t"}), &errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("receive_replay_lag_bytes") != std::string::npos);
  CHECK(text.find("pg_replication_receive_replay_lag_bytes") == std::string::npos);
}

TEST_CASE("replica: without in_recovery the collection fails") {
  Status st;
  pgtest::CollectTsv("replica", 150000, kHeader + pgtest::TsvLine({"\\N", "0", "1", "2", "f", "t"}), &st,
                     nullptr);
  CHECK(st.reason == ErrorReason::kProtocol);
}

TEST_CASE("replica: replay pause state function from 14 and pg_is_wal_replay_paused before") {
  auto fixtures = testing::TestsDir() / "fixtures/postgres";
  std::string v13 = pgtest::SentSql("replica", fixtures / "13/replica");
  std::string v15 = pgtest::SentSql("replica", fixtures / "15/replica");
  CHECK(v13.find("pg_is_wal_replay_paused()") != std::string::npos);
  CHECK(v13.find("pg_get_wal_replay_pause_state") == std::string::npos);
  CHECK(v15.find("pg_get_wal_replay_pause_state() <> 'not paused'") != std::string::npos);
  CHECK(v15.find("pg_is_wal_replay_paused") == std::string::npos);
}

}  // namespace postgres_replica_test
