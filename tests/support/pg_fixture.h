#pragma once
// Test support for PostgreSQL-protocol collectors: fixture files in PostgreSQL's COPY text
// format with a header line (tab-separated, \N for NULL, backslash escapes), a session that
// replays them, a session that records a real server's answers into them, and golden files.

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runbook/metric_sink.h"

#include "runbook/pg_session.h"

namespace runbook::testing {

std::string EncodeTsv(const PgResult& result);
PgResult DecodeTsv(const std::string& text);  // throws std::runtime_error naming the line

std::string ReadFile(const std::filesystem::path& path);  // throws if unreadable

// Replays <dir>/<query name>.tsv; ServerVersionNum() reads <dir>/server_version_num.
class FixturePgSession : public PgSession {
 public:
  explicit FixturePgSession(std::filesystem::path dir);
  Status Query(const PgQuery& query, Deadline deadline, PgResult& out) override;
  int ServerVersionNum() const override { return version_; }

  // Makes the named query fail with the given status instead of replaying its fixture.
  void FailQuery(std::string name, Status status) { failures_[std::move(name)] = std::move(status); }
  const std::vector<std::string>& queries() const { return queries_; }

 private:
  std::filesystem::path dir_;
  int version_ = 0;
  std::map<std::string, Status> failures_;
  std::vector<std::string> queries_;
};

// Forwards to a real session and writes every successful result to <dir>/<query name>.tsv.
class RecordingPgSession : public PgSession {
 public:
  RecordingPgSession(PgSession& inner, std::filesystem::path dir);
  Status Query(const PgQuery& query, Deadline deadline, PgResult& out) override;
  int ServerVersionNum() const override { return inner_.ServerVersionNum(); }

 private:
  PgSession& inner_;
  std::filesystem::path dir_;
};

std::string Exposition(const std::vector<SampleFamily>& families);

// Compares `actual` with the golden file; with UPDATE_GOLDEN=1 in the environment rewrites it
// instead. Returns an empty string on match, else a readable diff summary.
std::string CheckGolden(const std::filesystem::path& golden, const std::string& actual);

// Absolute path of the source tree's tests/ directory.
std::filesystem::path TestsDir();

}  // namespace runbook::testing
