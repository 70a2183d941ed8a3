#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "pg_fixture.h"
#include "postgres_test_support.h"
#include "runbook/collector.h"

namespace postgres_stat_archiver_test {

using namespace runbook;
using pgtest::Sample;

namespace {

const std::string kHeader =
    pgtest::TsvLine({"archived_count", "failed_count", "last_archive_age", "last_archived_timestamp_seconds",
                     "last_failed_timestamp_seconds", "pending_wal_files"});

std::string Run(std::string_view archived_ts, std::string_view failed_ts, std::string_view pending = "0") {
  Status st;
  std::vector<std::string> errors;
  std::string age = archived_ts == "\\N" ? "\\N" : "12.5";
  std::string text = pgtest::CollectTsv(
      "stat_archiver", 150000, kHeader + pgtest::TsvLine({"3", "4", age, archived_ts, failed_ts, pending}),
      &st, &errors);
  CHECK_MESSAGE(st.ok(), st.message);
  CHECK(errors.empty());
  return text;
}

}  // namespace

TEST_CASE("stat_archiver: failing is 0 when nothing ever failed") {
  CHECK(Sample(Run("1795258702.318066", "\\N"), "pg_stat_archiver_failing") == 0.0);
  CHECK(Sample(Run("\\N", "\\N"), "pg_stat_archiver_failing") == 0.0);
}

TEST_CASE("stat_archiver: failing is 1 when the last failure is later than the last success") {
  CHECK(Sample(Run("1795258702.318066", "1795258702.318067"), "pg_stat_archiver_failing") == 1.0);
}

TEST_CASE("stat_archiver: failing is 0 once a later archive succeeded") {
  // last_failed_time keeps its old value after archiving recovers.
  CHECK(Sample(Run("1795258799.5", "1795258702.318066"), "pg_stat_archiver_failing") == 0.0);
}

TEST_CASE("stat_archiver: failing is 1 when it failed and never succeeded") {
  CHECK(Sample(Run("\\N", "1795258702.318066"), "pg_stat_archiver_failing") == 1.0);
}

TEST_CASE("stat_archiver: NULL times and a standby's backlog give no samples") {
  std::string text = Run("\\N", "\\N", "\\N");
  CHECK(Sample(text, "pg_stat_archiver_archived_count") == 3.0);
  CHECK(Sample(text, "pg_stat_archiver_failed_count") == 4.0);
  CHECK(text.find("pg_stat_archiver_last_archive_age") == std::string::npos);
  CHECK(text.find("pg_stat_archiver_last_archived_timestamp_seconds") == std::string::npos);
  CHECK(text.find("pg_stat_archiver_last_failed_timestamp_seconds") == std::string::npos);
  CHECK(text.find("pg_stat_archiver_pending_wal_files") == std::string::npos);
}

TEST_CASE("stat_archiver: ages timestamps and backlog are published") {
  std::string text = Run("1795258702.318066", "1795258705.898321", "5");
  CHECK(Sample(text, "pg_stat_archiver_last_archive_age") == 12.5);
  CHECK(Sample(text, "pg_stat_archiver_last_archived_timestamp_seconds") == 1795258702.318066);
  CHECK(Sample(text, "pg_stat_archiver_last_failed_timestamp_seconds") == 1795258705.898321);
  CHECK(Sample(text, "pg_stat_archiver_pending_wal_files") == 5.0);
}

TEST_CASE("stat_archiver: a timestamp that is not a number is a sink error") {
  Status st;
  std::vector<std::string> errors;
  std::string text = pgtest::CollectTsv(
      "stat_archiver", 150000,
      kHeader + pgtest::TsvLine({"3", "4", "1", "2026-11-21 10:41:03+00", "\\N", "0"}), &st, &errors);
  CHECK(st.ok());
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("last_archived_timestamp_seconds") != std::string::npos);
  CHECK(Sample(text, "pg_stat_archiver_failing") == 0.0);
}

}  // namespace postgres_stat_archiver_test
