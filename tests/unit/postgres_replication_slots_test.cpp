#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "pg_fixture.h"
#include "postgres_test_support.h"
#include "runbook/collector.h"

namespace postgres_replication_slots_test {

using namespace runbook;
using pgtest::Sample;

TEST_CASE("replication_slots: a slot without restart_lsn has no lsn_diff sample") {
  Status st;
  std::string text = pgtest::CollectTsv("replication_slots", 150000,
                                        pgtest::TsvLine({"slot_name", "database", "active", "wal_lsn_diff"}) +
                                            pgtest::TsvLine({"replica1", "", "t", "4096"}) +
                                            pgtest::TsvLine({"cdc", "appdb", "f", "\\N"}),
                                        &st, nullptr);
  CHECK(st.ok());
  CHECK(Sample(text, "pg_replication_slots_active{database=\"\",slot_name=\"replica1\"}") == 1.0);
  CHECK(Sample(text, "pg_replication_slots_pg_wal_lsn_diff{database=\"\",slot_name=\"replica1\"}") == 4096.0);
  CHECK(Sample(text, "pg_replication_slots_active{database=\"appdb\",slot_name=\"cdc\"}") == 0.0);
  CHECK(!Sample(text, "pg_replication_slots_pg_wal_lsn_diff{database=\"appdb\",slot_name=\"cdc\"}"));
}

}  // namespace postgres_replication_slots_test
