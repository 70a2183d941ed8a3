#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "pg_fixture.h"
#include "postgres_test_support.h"
#include "runbook/collector.h"

namespace postgres_stat_activity_test {

using namespace runbook;
using pgtest::Sample;

namespace {

const std::string kHeader = pgtest::TsvLine({"datname", "usename", "state", "wait_event_type", "backends",
                                             "max_xact_age", "max_query_age", "max_state_age"});

std::string Run(const std::string& rows, std::vector<std::string>* errors = nullptr) {
  Status st;
  std::string text = pgtest::CollectTsv("stat_activity", 150000, kHeader + rows, &st, errors);
  CHECK_MESSAGE(st.ok(), st.message);
  return text;
}

std::string Count(std::string_view datname, std::string_view state) {
  return "pg_stat_activity_count{datname=\"" + std::string(datname) + "\",state=\"" + std::string(state) +
         "\"}";
}

std::string MaxTx(std::string_view datname, std::string_view state) {
  return "pg_stat_activity_max_tx_duration{datname=\"" + std::string(datname) + "\",state=\"" +
         std::string(state) + "\"}";
}

constexpr std::string_view kSixStates[] = {
    "active",  "idle", "idle in transaction", "idle in transaction (aborted)", "fastpath function call",
    "disabled"};

}  // namespace

TEST_CASE("stat_activity: a database without client backends is zero-filled and nothing else") {
  std::string text = Run(pgtest::TsvLine({"postgres", "\\N", "\\N", "\\N", "\\N", "\\N", "\\N", "\\N"}));
  for (auto state : kSixStates) {
    CHECK(Sample(text, Count("postgres", state)) == 0.0);
    CHECK(Sample(text, MaxTx("postgres", state)) == 0.0);
  }
  CHECK(text.find("pg_stat_activity_backends") == std::string::npos);
  CHECK(text.find("pg_stat_activity_oldest") == std::string::npos);
  CHECK(text.find("pg_stat_activity_lock_waiting_backends") == std::string::npos);
}

TEST_CASE("stat_activity: groups roll up per database and state") {
  std::string text = Run(
      pgtest::TsvLine({"appdb", "app", "active", "Lock", "2", "30.5", "20.25", "20.25"}) +
      pgtest::TsvLine({"appdb", "batch", "active", "", "3", "90", "60", "60"}) +
      pgtest::TsvLine({"appdb", "app", "idle", "Client", "4", "\\N", "500", "400"}) +
      pgtest::TsvLine({"appdb", "app", "idle in transaction", "Client", "1", "10", "9", "8"}) +
      // xact_start is NULL for aborted transactions (PostgreSQL 15): only state_change tells.
      pgtest::TsvLine({"appdb", "app", "idle in transaction (aborted)", "Client", "1", "\\N", "70", "65"}));
  CHECK(Sample(text, Count("appdb", "active")) == 5.0);
  CHECK(Sample(text, Count("appdb", "idle")) == 4.0);
  CHECK(Sample(text, Count("appdb", "disabled")) == 0.0);
  CHECK(Sample(text, MaxTx("appdb", "active")) == 90.0);
  CHECK(Sample(text, MaxTx("appdb", "idle")) == 0.0);
  CHECK(Sample(text, MaxTx("appdb", "idle in transaction (aborted)")) == 0.0);
  CHECK(Sample(text,
               "pg_stat_activity_backends{datname=\"appdb\",state=\"active\",usename=\"app\","
               "wait_event_type=\"Lock\"}") == 2.0);
  CHECK(Sample(text,
               "pg_stat_activity_backends{datname=\"appdb\",state=\"active\",usename=\"batch\","
               "wait_event_type=\"\"}") == 3.0);
  CHECK(Sample(text, "pg_stat_activity_oldest_query_seconds{datname=\"appdb\"}") == 60.0);
  CHECK(Sample(text, "pg_stat_activity_oldest_idle_seconds{datname=\"appdb\"}") == 400.0);
  CHECK(Sample(text, "pg_stat_activity_oldest_idle_in_transaction_seconds{datname=\"appdb\"}") == 65.0);
  CHECK(Sample(text, "pg_stat_activity_oldest_xact_seconds{datname=\"appdb\"}") == 90.0);
  CHECK(Sample(text, "pg_stat_activity_lock_waiting_backends{datname=\"appdb\"}") == 2.0);
}

TEST_CASE("stat_activity: ages of states that have no backend give no sample") {
  std::string text = Run(pgtest::TsvLine({"appdb", "app", "idle", "Client", "1", "\\N", "5", "5"}));
  CHECK(Sample(text, "pg_stat_activity_oldest_idle_seconds{datname=\"appdb\"}") == 5.0);
  CHECK(Sample(text, "pg_stat_activity_lock_waiting_backends{datname=\"appdb\"}") == 0.0);
  CHECK(text.find("pg_stat_activity_oldest_query_seconds") == std::string::npos);
  CHECK(text.find("pg_stat_activity_oldest_idle_in_transaction_seconds") == std::string::npos);
  CHECK(text.find("pg_stat_activity_oldest_xact_seconds") == std::string::npos);
}

TEST_CASE("stat_activity: a backend that started after our snapshot has age 0") {
  std::string text =
      Run(pgtest::TsvLine({"appdb", "app", "active", "", "1", "-0.0004", "-0.0004", "-0.0004"}));
  CHECK(Sample(text, "pg_stat_activity_oldest_query_seconds{datname=\"appdb\"}") == 0.0);
  CHECK(Sample(text, "pg_stat_activity_oldest_xact_seconds{datname=\"appdb\"}") == 0.0);
  CHECK(Sample(text, MaxTx("appdb", "active")) == 0.0);
}

TEST_CASE("stat_activity: a state outside the six is counted without zero-filling") {
  std::string text = Run(pgtest::TsvLine({"appdb", "app", "starting", "", "1", "\\N", "\\N", "0.1"}));
  CHECK(Sample(text, Count("appdb", "starting")) == 1.0);
  for (auto state : kSixStates) CHECK(Sample(text, Count("appdb", state)) == 0.0);
}

TEST_CASE("stat_activity: a count that is not a number is a sink error") {
  std::vector<std::string> errors;
  std::string text =
      Run(pgtest::TsvLine({"appdb", "app", "idle", "Client", "many", "\\N", "5", "5"}), &errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("backends") != std::string::npos);
  CHECK(Sample(text, Count("appdb", "idle")) == 0.0);
}

}  // namespace postgres_stat_activity_test
