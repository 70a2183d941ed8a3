// Helpers shared by the postgres_*_test.cpp files (postgres_test_support.h), and the properties
// every PostgreSQL collector must have: one query per collection, a failed query returns its
// status, and no value in a fixture can crash a collector.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "pg_fixture.h"
#include "postgres_test_support.h"
#include "runbook/collector.h"

namespace fs = std::filesystem;

namespace runbook::pgtest {

fs::path WriteFixtureDir(int version_num, const std::map<std::string, std::string>& files) {
  static std::atomic<int> counter{0};
  fs::path dir = fs::temp_directory_path() /
                 ("runbook-pgtest-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "server_version_num") << version_num << '\n';
  for (const auto& [name, text] : files) std::ofstream(dir / name, std::ios::binary) << text;
  return dir;
}

std::string Collect(std::string_view collector, PgSession& session, Status* status,
                    std::vector<std::string>* errors) {
  const CollectorInfo* info = FindCollector(TargetKind::kPostgres, collector);
  REQUIRE_MESSAGE(info != nullptr, "no collector " << collector);
  MetricSink sink;
  ScrapeContext ctx{"test", std::chrono::steady_clock::now() + std::chrono::seconds(5), &session};
  Status st = info->factory()->Update(ctx, sink);
  if (status) *status = st;
  if (errors) *errors = sink.errors();
  return testing::Exposition(sink.Take());
}

std::string CollectTsv(std::string_view collector, int version_num, const std::string& tsv, Status* status,
                       std::vector<std::string>* errors) {
  auto dir = WriteFixtureDir(version_num, {{std::string(collector) + ".tsv", tsv}});
  testing::FixturePgSession session(dir);
  std::string text = Collect(collector, session, status, errors);
  fs::remove_all(dir);
  return text;
}

std::string TsvLine(std::initializer_list<std::string_view> fields) {
  std::string line;
  bool first = true;
  for (auto f : fields) {
    if (!first) line += '\t';
    line += f;
    first = false;
  }
  return line + '\n';
}

std::optional<double> Sample(const std::string& exposition, std::string_view series) {
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line))
    if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  return std::nullopt;
}

namespace {
// Forwards to a fixture session and keeps the SQL text of every query.
class SqlRecorder final : public PgSession {
 public:
  explicit SqlRecorder(PgSession& inner) : inner_(inner) {}
  Status Query(const PgQuery& query, Deadline deadline, PgResult& out) override {
    sql.emplace_back(query.sql);
    return inner_.Query(query, deadline, out);
  }
  int ServerVersionNum() const override { return inner_.ServerVersionNum(); }
  std::vector<std::string> sql;

 private:
  PgSession& inner_;
};
}  // namespace

std::string SentSql(std::string_view collector, const fs::path& fixture_dir) {
  testing::FixturePgSession fixture(fixture_dir);
  SqlRecorder recorder(fixture);
  Collect(collector, recorder, nullptr, nullptr);
  REQUIRE(recorder.sql.size() == 1);
  return recorder.sql.front();
}

std::vector<fs::path> CapturedFixtureDirs() {
  std::vector<fs::path> dirs;
  for (const auto& e : fs::recursive_directory_iterator(testing::TestsDir() / "fixtures/postgres"))
    if (e.is_regular_file() && e.path().filename() == "server_version_num")
      dirs.push_back(e.path().parent_path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

}  // namespace runbook::pgtest

namespace postgres_support_test {

namespace {

using namespace runbook;

// Columns that the collectors use as label values.
const std::set<std::string> kLabelColumns = {"datid",           "datname",    "usename",   "state",
                                             "wait_event_type", "locktype",   "mode",      "application_name",
                                             "client_addr",     "sync_state", "slot_name", "database",
                                             "version"};

std::vector<const CollectorInfo*> PostgresCollectors() {
  std::vector<const CollectorInfo*> out;
  for (const auto& info : RegisteredCollectors())
    if (info.kind == TargetKind::kPostgres) out.push_back(&info);
  return out;
}

}  // namespace

TEST_CASE("every postgres collector runs exactly one query per collection") {
  for (const auto& dir : pgtest::CapturedFixtureDirs()) {
    for (const auto* info : PostgresCollectors()) {
      INFO(dir.string() << " " << info->name);
      testing::FixturePgSession session(dir);
      Status st;
      pgtest::Collect(info->name, session, &st, nullptr);
      CHECK(st.ok());
      CHECK(session.queries().size() == 1);
    }
  }
}

TEST_CASE("only database_size and wal and replication_slots are slow-tier") {
  for (const auto* info : PostgresCollectors()) {
    INFO(info->name);
    bool slow = info->name == "database_size" || info->name == "wal" || info->name == "replication_slots";
    CHECK((info->tier == Tier::kSlow) == slow);
  }
}

TEST_CASE("a failed query is returned as the collector's status") {
  auto dir = pgtest::CapturedFixtureDirs().front();
  for (const auto* info : PostgresCollectors()) {
    INFO(info->name);
    testing::FixturePgSession session(dir);
    // Query names equal collector names (fixture files are named after them).
    session.FailQuery(info->name, Status::Error(ErrorReason::kPermission, "permission denied"));
    Status st;
    std::string text = pgtest::Collect(info->name, session, &st, nullptr);
    CHECK(st.reason == ErrorReason::kPermission);
    CHECK(st.message == "permission denied");
    CHECK(text.empty());
  }
}

TEST_CASE("no single garbage value in a captured fixture crashes a collector") {
  // Replaces each field of each data row, one at a time, with text that is not a number.
  for (std::string version_role : {"15/primary", "15/replica"}) {
    fs::path src = testing::TestsDir() / "fixtures/postgres" / version_role;
    int version = std::stoi(testing::ReadFile(src / "server_version_num"));
    for (const auto* info : PostgresCollectors()) {
      auto original = testing::DecodeTsv(testing::ReadFile(src / (info->name + ".tsv")));
      for (std::size_t row = 0; row < original.rows.size(); ++row) {
        for (std::size_t col = 0; col < original.columns.size(); ++col) {
          auto mutated = original;
          mutated.rows[row][col] = "garbage";
          auto dir = pgtest::WriteFixtureDir(version, {{info->name + ".tsv", testing::EncodeTsv(mutated)}});
          testing::FixturePgSession session(dir);
          Status st;
          std::vector<std::string> errors;
          pgtest::Collect(info->name, session, &st, &errors);
          fs::remove_all(dir);
          // A label takes any text; a value that was not NULL is reported as a sink error or a
          // failed status (NULL cells of rows a collector skips may stay unread).
          INFO(version_role << " " << info->name << " row " << row << " column " << original.columns[col]);
          CHECK((st.ok() || st.reason == ErrorReason::kProtocol));
          if (original.rows[row][col] && !kLabelColumns.contains(original.columns[col]))
            CHECK((!st.ok() || !errors.empty()));
        }
      }
    }
  }
}

}  // namespace postgres_support_test
