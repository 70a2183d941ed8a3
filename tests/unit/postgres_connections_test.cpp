#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "pg_fixture.h"
#include "postgres_test_support.h"
#include "runbook/collector.h"

namespace postgres_connections_test {

using namespace runbook;
using pgtest::Sample;

TEST_CASE("connections: reserved_connections is read from PostgreSQL 16 only") {
  auto fixtures = testing::TestsDir() / "fixtures/postgres";
  CHECK(pgtest::SentSql("connections", fixtures / "15/primary").find("'reserved_connections'") ==
        std::string::npos);
  CHECK(pgtest::SentSql("connections", fixtures / "16/primary").find("'reserved_connections'") !=
        std::string::npos);
}

TEST_CASE("connections: utilisation subtracts both reserved pools on 16") {
  Status st;
  std::string text = pgtest::CollectTsv("connections", 160004,
                                        pgtest::TsvLine({"max_connections", "superuser_reserved_connections",
                                                         "reserved_connections", "current_connections"}) +
                                            pgtest::TsvLine({"100", "3", "7", "45"}),
                                        &st, nullptr);
  CHECK(st.ok());
  CHECK(Sample(text, "pg_settings_reserved_connections") == 7.0);
  CHECK(Sample(text, "pg_connections_current") == 45.0);
  CHECK(Sample(text, "pg_connections_utilization_ratio") == doctest::Approx(0.5));
}

TEST_CASE("connections: utilisation before 16 subtracts superuser_reserved_connections") {
  Status st;
  std::string text = pgtest::CollectTsv(
      "connections", 150018,
      pgtest::TsvLine({"max_connections", "superuser_reserved_connections", "current_connections"}) +
          pgtest::TsvLine({"100", "3", "97"}),
      &st, nullptr);
  CHECK(st.ok());
  CHECK(Sample(text, "pg_settings_max_connections") == 100.0);
  CHECK(Sample(text, "pg_settings_superuser_reserved_connections") == 3.0);
  CHECK(Sample(text, "pg_connections_utilization_ratio") == 1.0);
  CHECK(text.find("pg_settings_reserved_connections") == std::string::npos);
}

TEST_CASE("connections: no utilisation when no slot is open to ordinary users") {
  Status st;
  std::string text = pgtest::CollectTsv(
      "connections", 150018,
      pgtest::TsvLine({"max_connections", "superuser_reserved_connections", "current_connections"}) +
          pgtest::TsvLine({"3", "3", "1"}),
      &st, nullptr);
  CHECK(st.ok());
  CHECK(text.find("pg_connections_utilization_ratio") == std::string::npos);
}

TEST_CASE("connections: a setting that is not a number is a sink error") {
  Status st;
  std::vector<std::string> errors;
  std::string text = pgtest::CollectTsv(
      "connections", 150018,
      pgtest::TsvLine({"max_connections", "superuser_reserved_connections", "current_connections"}) +
          pgtest::TsvLine({"lots", "3", "1"}),
      &st, &errors);
  CHECK(st.ok());
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("max_connections") != std::string::npos);
  CHECK(text.find("pg_connections_utilization_ratio") == std::string::npos);
}

}  // namespace postgres_connections_test
