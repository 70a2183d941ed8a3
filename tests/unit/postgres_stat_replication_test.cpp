#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "pg_fixture.h"
#include "postgres_test_support.h"
#include "runbook/collector.h"

namespace postgres_stat_replication_test {

using namespace runbook;
using pgtest::Sample;

namespace {

const std::string kHeader =
    pgtest::TsvLine({"application_name", "client_addr", "state", "sync_state", "current_wal_lsn_bytes",
                     "wal_lsn_diff", "sent_lag_bytes", "write_lag_bytes", "flush_lag_bytes",
                     "replay_lag_bytes", "write_lag_seconds", "flush_lag_seconds", "replay_lag_seconds"});
const std::string kLabels =
    "{application_name=\"s1\",client_addr=\"10.0.0.2\",state=\"streaming\",sync_state=\"async\"}";

std::string Run(const std::string& rows) {
  Status st;
  std::vector<std::string> errors;
  std::string text = pgtest::CollectTsv("stat_replication", 150000, kHeader + rows, &st, &errors);
  CHECK_MESSAGE(st.ok(), st.message);
  CHECK(errors.empty());
  return text;
}

}  // namespace

TEST_CASE("stat_replication: NULL lag intervals are 0 when caught up up to sent_lsn") {
  // Idle and caught up: PostgreSQL has cleared all three intervals.
  std::string text = Run(pgtest::TsvLine(
      {"s1", "10.0.0.2", "streaming", "async", "50348032", "0", "0", "0", "0", "0", "\\N", "\\N", "\\N"}));
  CHECK(Sample(text, "pg_stat_replication_write_lag_seconds" + kLabels) == 0.0);
  CHECK(Sample(text, "pg_stat_replication_flush_lag_seconds" + kLabels) == 0.0);
  CHECK(Sample(text, "pg_stat_replication_replay_lag_seconds" + kLabels) == 0.0);
}

TEST_CASE("stat_replication: a NULL lag interval behind sent_lsn gives no sample") {
  // Written and flushed up to sent_lsn (128 bytes not yet sent), replay 4096 bytes behind sent_lsn.
  std::string text = Run(pgtest::TsvLine({"s1", "10.0.0.2", "streaming", "async", "50348032", "4224", "128",
                                          "128", "128", "4224", "\\N", "\\N", "\\N"}));
  CHECK(Sample(text, "pg_stat_replication_write_lag_seconds" + kLabels) == 0.0);
  CHECK(Sample(text, "pg_stat_replication_flush_lag_seconds" + kLabels) == 0.0);
  CHECK(!Sample(text, "pg_stat_replication_replay_lag_seconds" + kLabels));
  CHECK(Sample(text, "pg_stat_replication_replay_lag_bytes" + kLabels) == 4224.0);
  CHECK(Sample(text, "pg_stat_replication_pg_wal_lsn_diff" + kLabels) == 4224.0);
  CHECK(Sample(text, "pg_stat_replication_sent_lag_bytes" + kLabels) == 128.0);
}

TEST_CASE("stat_replication: lag intervals that are set are published as they are") {
  std::string text = Run(pgtest::TsvLine({"s1", "10.0.0.2", "streaming", "async", "50348032", "8936", "0",
                                          "8192", "8192", "8936", "0.000494", "0.000759", "0.000971"}));
  CHECK(Sample(text, "pg_stat_replication_write_lag_seconds" + kLabels) == 0.000494);
  CHECK(Sample(text, "pg_stat_replication_flush_lag_seconds" + kLabels) == 0.000759);
  CHECK(Sample(text, "pg_stat_replication_replay_lag_seconds" + kLabels) == 0.000971);
  CHECK(Sample(text, "pg_stat_replication_pg_current_wal_lsn_bytes" + kLabels) == 50348032.0);
}

TEST_CASE("stat_replication: a walsender without positions has no lag samples") {
  // A standby in state startup or a base backup: no LSNs, no intervals; unix socket client.
  std::string text = Run(pgtest::TsvLine({"pg_basebackup", "", "backup", "async", "50348032", "\\N", "\\N",
                                          "\\N", "\\N", "\\N", "\\N", "\\N", "\\N"}));
  const std::string labels =
      "{application_name=\"pg_basebackup\",client_addr=\"\",state=\"backup\",sync_state=\"async\"}";
  CHECK(Sample(text, "pg_stat_replication_pg_current_wal_lsn_bytes" + labels) == 50348032.0);
  CHECK(text.find("_lag_seconds") == std::string::npos);
  CHECK(text.find("_lag_bytes") == std::string::npos);
  CHECK(Sample(text, "pg_stat_replication_standbys") == 1.0);
}

TEST_CASE("stat_replication: the number of standbys is always published") {
  CHECK(Sample(Run(""), "pg_stat_replication_standbys") == 0.0);
  std::string two = Run(pgtest::TsvLine({"s1", "10.0.0.2", "streaming", "async", "1", "0", "0", "0", "0", "0",
                                         "\\N", "\\N", "\\N"}) +
                        pgtest::TsvLine({"s2", "10.0.0.3", "streaming", "sync", "1", "0", "0", "0", "0", "0",
                                         "\\N", "\\N", "\\N"}));
  CHECK(Sample(two, "pg_stat_replication_standbys") == 2.0);
}

TEST_CASE("stat_replication: a lag that is not a number is a sink error") {
  Status st;
  std::vector<std::string> errors;
  std::string text =
      pgtest::CollectTsv("stat_replication", 150000,
                         kHeader + pgtest::TsvLine({"s1", "10.0.0.2", "streaming", "async", "1", "0", "0",
                                                    "0", "0", "0", "00:00:01", "\\N", "\\N"}),
                         &st, &errors);
  CHECK(st.ok());
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("write_lag_seconds") != std::string::npos);
  CHECK(!Sample(text, "pg_stat_replication_write_lag_seconds" + kLabels));
}

}  // namespace postgres_stat_replication_test
