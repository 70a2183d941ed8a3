#include "pg_fixture.h"

#include "exposition.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace runbook::testing {

namespace {

void AppendEscaped(std::string& out, const std::string& v) {
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
}

std::optional<std::string> Unescape(const std::string& field, std::size_t line) {
  if (field == "\\N") return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] != '\\') {
      out += field[i];
      continue;
    }
    if (++i == field.size())
      throw std::runtime_error("line " + std::to_string(line) + ": dangling backslash");
    switch (field[i]) {
      case '\\': out += '\\'; break;
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      default: throw std::runtime_error("line " + std::to_string(line) + ": unknown escape");
    }
  }
  return out;
}

std::vector<std::string> SplitTabs(const std::string& line) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    auto pos = line.find('\t', start);
    out.push_back(line.substr(start, pos - start));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return out;
}

}  // namespace

std::string EncodeTsv(const PgResult& result) {
  std::string out;
  for (std::size_t i = 0; i < result.columns.size(); ++i) {
    if (i) out += '\t';
    AppendEscaped(out, result.columns[i]);
  }
  out += '\n';
  for (const auto& row : result.rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i) out += '\t';
      if (row[i])
        AppendEscaped(out, *row[i]);
      else
        out += "\\N";
    }
    out += '\n';
  }
  return out;
}

PgResult DecodeTsv(const std::string& text) {
  PgResult r;
  std::istringstream in(text);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    auto fields = SplitTabs(line);
    if (n == 1) {
      for (auto& f : fields) r.columns.push_back(*Unescape(f, n));
      continue;
    }
    if (fields.size() != r.columns.size())
      throw std::runtime_error("line " + std::to_string(n) + ": " + std::to_string(fields.size()) +
                               " fields for " + std::to_string(r.columns.size()) + " columns");
    auto& row = r.rows.emplace_back();
    for (auto& f : fields) row.push_back(Unescape(f, n));
  }
  if (n == 0) throw std::runtime_error("empty fixture: no header line");
  return r;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

FixturePgSession::FixturePgSession(std::filesystem::path dir) : dir_(std::move(dir)) {
  version_ = std::stoi(ReadFile(dir_ / "server_version_num"));
}

Status FixturePgSession::Query(const PgQuery& query, Deadline, PgResult& out) {
  out = {};
  queries_.emplace_back(query.name);
  if (auto it = failures_.find(std::string(query.name)); it != failures_.end()) return it->second;
  auto path = dir_ / (std::string(query.name) + ".tsv");
  if (!std::filesystem::exists(path))
    return Status::Error(ErrorReason::kProtocol, "no fixture " + path.string());
  try {
    out = DecodeTsv(ReadFile(path));
  } catch (const std::exception& e) {
    return Status::Error(ErrorReason::kProtocol, path.string() + ": " + e.what());
  }
  return Status::Ok();
}

RecordingPgSession::RecordingPgSession(PgSession& inner, std::filesystem::path dir)
    : inner_(inner), dir_(std::move(dir)) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ / "server_version_num") << inner_.ServerVersionNum() << '\n';
}

Status RecordingPgSession::Query(const PgQuery& query, Deadline deadline, PgResult& out) {
  auto st = inner_.Query(query, deadline, out);
  if (st.ok()) std::ofstream(dir_ / (std::string(query.name) + ".tsv"), std::ios::binary) << EncodeTsv(out);
  return st;
}

std::string Exposition(const std::vector<SampleFamily>& families) {
  return RenderExposition(families);
}

std::string CheckGolden(const std::filesystem::path& golden, const std::string& actual) {
  const char* update = std::getenv("UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    std::filesystem::create_directories(golden.parent_path());
    std::ofstream(golden, std::ios::binary) << actual;
    return {};
  }
  std::string expected;
  try {
    expected = ReadFile(golden);
  } catch (const std::exception&) {
    return "golden file " + golden.string() + " missing (run with UPDATE_GOLDEN=1 to create it)";
  }
  if (expected == actual) return {};
  std::istringstream a(actual), e(expected);
  std::string la, le;
  for (int line = 1;; ++line) {
    bool ga = static_cast<bool>(std::getline(a, la));
    bool ge = static_cast<bool>(std::getline(e, le));
    if (!ga && !ge) break;
    if (!ga || !ge || la != le)
      return golden.string() + ":" + std::to_string(line) + ": expected [" + (ge ? le : "<eof>") + "] got [" +
             (ga ? la : "<eof>") + "] (UPDATE_GOLDEN=1 rewrites it)";
  }
  return golden.string() + ": differs";
}

std::filesystem::path TestsDir() {
  return RUNBOOK_TESTS_DIR;
}

}  // namespace runbook::testing
