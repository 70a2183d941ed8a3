#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "pg_fixture.h"
#include "postgres_test_support.h"
#include "runbook/collector.h"

namespace postgres_locks_test {

using namespace runbook;
using pgtest::Sample;

namespace {

const std::string kHeader = pgtest::TsvLine({"datname", "locktype", "mode", "granted", "locks"});

std::string Run(const std::string& rows, std::vector<std::string>* errors = nullptr) {
  Status st;
  std::string text = pgtest::CollectTsv("locks", 150000, kHeader + rows, &st, errors);
  CHECK_MESSAGE(st.ok(), st.message);
  return text;
}

constexpr std::string_view kModes[] = {
    "accesssharelock", "rowsharelock",          "rowexclusivelock", "shareupdateexclusivelock",
    "sharelock",       "sharerowexclusivelock", "exclusivelock",    "accessexclusivelock",
    "sireadlock"};

}  // namespace

TEST_CASE("locks: no locks gives zero-filled counts and 0 blocked backends") {
  std::string text = Run(pgtest::TsvLine({"postgres", "\\N", "\\N", "\\N", "\\N"}));
  for (auto mode : kModes)
    CHECK(Sample(text, "pg_locks_count{datname=\"postgres\",mode=\"" + std::string(mode) + "\"}") == 0.0);
  CHECK(Sample(text, "pg_locks_blocked_backends") == 0.0);
  CHECK(text.find("pg_locks_granted") == std::string::npos);
  CHECK(text.find("pg_locks_waiting") == std::string::npos);
}

TEST_CASE("locks: transactionid locks count as granted or waiting but not per database") {
  std::string text = Run(pgtest::TsvLine({"\\N", "transactionid", "exclusivelock", "t", "2"}) +
                         pgtest::TsvLine({"\\N", "transactionid", "sharelock", "f", "3"}) +
                         pgtest::TsvLine({"appdb", "relation", "rowexclusivelock", "t", "4"}) +
                         pgtest::TsvLine({"appdb", "relation", "accessexclusivelock", "f", "1"}) +
                         pgtest::TsvLine({"appdb", "tuple", "accessexclusivelock", "t", "1"}));
  CHECK(Sample(text, "pg_locks_granted{locktype=\"transactionid\",mode=\"exclusivelock\"}") == 2.0);
  CHECK(Sample(text, "pg_locks_waiting{locktype=\"transactionid\",mode=\"sharelock\"}") == 3.0);
  CHECK(Sample(text, "pg_locks_waiting{locktype=\"relation\",mode=\"accessexclusivelock\"}") == 1.0);
  CHECK(!Sample(text, "pg_locks_waiting{locktype=\"relation\",mode=\"rowexclusivelock\"}"));
  CHECK(Sample(text, "pg_locks_count{datname=\"appdb\",mode=\"accessexclusivelock\"}") == 2.0);
  CHECK(Sample(text, "pg_locks_count{datname=\"appdb\",mode=\"rowexclusivelock\"}") == 4.0);
  CHECK(Sample(text, "pg_locks_count{datname=\"appdb\",mode=\"sharelock\"}") == 0.0);
  CHECK(text.find("pg_locks_count{datname=\"\"") == std::string::npos);
  CHECK(Sample(text, "pg_locks_blocked_backends") == 4.0);
}

TEST_CASE("locks: a granted flag that is not a boolean is a sink error") {
  std::vector<std::string> errors;
  std::string text = Run(pgtest::TsvLine({"appdb", "relation", "rowexclusivelock", "maybe", "4"}), &errors);
  CHECK(errors.size() == 1);
  CHECK(Sample(text, "pg_locks_count{datname=\"appdb\",mode=\"rowexclusivelock\"}") == 0.0);
}

TEST_CASE("locks: a result without the expected columns fails the collection") {
  Status st;
  pgtest::CollectTsv("locks", 150000, pgtest::TsvLine({"datname", "mode", "count"}), &st, nullptr);
  CHECK(st.reason == ErrorReason::kProtocol);
}

}  // namespace postgres_locks_test
