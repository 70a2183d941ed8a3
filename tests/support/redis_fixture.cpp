#include "redis_fixture.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "pg_fixture.h"
#include "redis_session.h"

namespace runbook::testing {

namespace {

std::string Line(std::string_view text, std::size_t& pos) {
  auto end = text.find("\r\n", pos);
  if (end == std::string_view::npos)
    throw std::runtime_error("RESP: missing CRLF at offset " + std::to_string(pos));
  std::string line(text.substr(pos, end - pos));
  pos = end + 2;
  return line;
}

long long Integer(const std::string& s, std::size_t pos) {
  try {
    std::size_t used = 0;
    long long v = std::stoll(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  throw std::runtime_error("RESP: bad integer \"" + s + "\" before offset " + std::to_string(pos));
}

}  // namespace

std::string EncodeResp(const RedisReply& r) {
  switch (r.type) {
    case RedisReply::Type::kNil: return "$-1\r\n";
    case RedisReply::Type::kString: return "$" + std::to_string(r.str.size()) + "\r\n" + r.str + "\r\n";
    case RedisReply::Type::kStatus: return "+" + r.str + "\r\n";
    case RedisReply::Type::kError: return "-" + r.str + "\r\n";
    case RedisReply::Type::kInteger: return ":" + std::to_string(r.integer) + "\r\n";
    case RedisReply::Type::kArray: {
      std::string out = "*" + std::to_string(r.elements.size()) + "\r\n";
      for (const auto& e : r.elements) out += EncodeResp(e);
      return out;
    }
  }
  return {};
}

std::string EncodeRequest(const std::vector<std::string>& argv) {
  RedisReply r{RedisReply::Type::kArray, {}, 0, {}};
  for (const auto& a : argv) r.elements.push_back({RedisReply::Type::kString, a, 0, {}});
  return EncodeResp(r);
}

RedisReply DecodeResp(std::string_view text, std::size_t& pos) {
  if (pos >= text.size()) throw std::runtime_error("RESP: unexpected end");
  char tag = text[pos++];
  std::string line = Line(text, pos);
  RedisReply r;
  switch (tag) {
    case '+':
      r.type = RedisReply::Type::kStatus;
      r.str = line;
      break;
    case '-':
      r.type = RedisReply::Type::kError;
      r.str = line;
      break;
    case ':':
      r.type = RedisReply::Type::kInteger;
      r.integer = Integer(line, pos);
      break;
    case '$': {
      long long n = Integer(line, pos);
      if (n < 0) break;  // nil
      if (pos + static_cast<std::size_t>(n) + 2 > text.size())
        throw std::runtime_error("RESP: short bulk string");
      r.type = RedisReply::Type::kString;
      r.str = std::string(text.substr(pos, static_cast<std::size_t>(n)));
      pos += static_cast<std::size_t>(n) + 2;
      break;
    }
    case '*': {
      long long n = Integer(line, pos);
      if (n < 0) break;  // nil array
      r.type = RedisReply::Type::kArray;
      for (long long i = 0; i < n; ++i) r.elements.push_back(DecodeResp(text, pos));
      break;
    }
    default: throw std::runtime_error("RESP: unknown type byte at offset " + std::to_string(pos - 1));
  }
  return r;
}

TargetSettings LoadRedisSettings(const std::filesystem::path& dir) {
  TargetSettings s;
  auto path = dir / "settings.txt";
  if (!std::filesystem::exists(path)) return s;
  std::istringstream in(ReadFile(path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string what;
    ls >> what;
    if (what == "key" || what == "pattern") {
      RedisKeyCheck c;
      ls >> c.db >> std::ws;
      std::getline(ls, c.key);
      c.pattern = what == "pattern";
      s.redis_keys.push_back(c);
    } else if (what == "db") {
      ls >> s.redis_db;
    } else if (what == "scan_count") {
      ls >> s.redis_scan_count;
    } else if (what == "scan_max_keys") {
      ls >> s.redis_scan_max_keys;
    } else {
      throw std::runtime_error(path.string() + ": unknown line: " + line);
    }
  }
  return s;
}

std::string EncodeRedisSettings(const TargetSettings& s) {
  std::ostringstream out;
  out << "db " << s.redis_db << "\nscan_count " << s.redis_scan_count << "\nscan_max_keys "
      << s.redis_scan_max_keys << "\n";
  for (const auto& c : s.redis_keys) out << (c.pattern ? "pattern " : "key ") << c.db << ' ' << c.key << "\n";
  return out.str();
}

std::vector<std::filesystem::path> RedisFixtureDirs() {
  std::vector<std::filesystem::path> dirs;
  auto root = TestsDir() / "fixtures" / "redis";
  if (!std::filesystem::exists(root)) return dirs;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root))
    if (e.is_regular_file() && e.path().filename() == "info.txt") dirs.push_back(e.path().parent_path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

FixtureRedisSession::FixtureRedisSession(std::filesystem::path dir) {
  if (std::filesystem::exists(dir / "info.txt"))
    replies_[{"INFO", "ALL"}] = {RedisReply::Type::kString, ReadFile(dir / "info.txt"), 0, {}};
  if (std::filesystem::exists(dir / "replies.resp")) {
    std::string text = ReadFile(dir / "replies.resp");
    std::size_t pos = 0;
    while (pos < text.size()) {
      RedisReply req = DecodeResp(text, pos);
      if (req.type != RedisReply::Type::kArray)
        throw std::runtime_error("replies.resp: request is not an array");
      std::vector<std::string> argv;
      for (const auto& e : req.elements) argv.push_back(e.str);
      replies_[argv] = DecodeResp(text, pos);
    }
  }
}

Status FixtureRedisSession::Exchange(std::span<const RedisCall> calls, Deadline) {
  if (!calls.empty()) {
    ++round_trips_;
    exchanges_.push_back(calls.size());
  }
  Status first;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    Status st = Reply(*calls[i].argv, *calls[i].reply);
    if (st.reason == ErrorReason::kNetwork || st.reason == ErrorReason::kTimeout) {
      for (std::size_t j = i; j < calls.size(); ++j) {
        *calls[j].reply = {};
        *calls[j].status = st;
      }
      return st;
    }
    if (!st.ok() && first.ok()) first = st;
    *calls[i].status = std::move(st);
  }
  return first;
}

Status FixtureRedisSession::Reply(const std::vector<std::string>& argv, RedisReply& out) {
  out = {};
  commands_.push_back(argv);
  if (!argv.empty())
    if (auto f = failures_.find(argv[0]); f != failures_.end()) return f->second;
  auto it = replies_.find(argv);
  std::string joined;
  for (const auto& a : argv) joined += (joined.empty() ? "" : " ") + a;
  if (it == replies_.end()) return Status::Error(ErrorReason::kQuery, "ERR not in fixture: " + joined);
  out = it->second;
  if (out.type == RedisReply::Type::kError)
    return Status::Error(ClassifyRedisError(out.str), argv[0] + ": " + out.str);
  return Status::Ok();
}

RecordingRedisSession::RecordingRedisSession(RedisSession& inner, std::filesystem::path dir)
    : inner_(inner), dir_(std::move(dir)) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ / "replies.resp", std::ios::binary | std::ios::trunc);
}

Status RecordingRedisSession::Exchange(std::span<const RedisCall> calls, Deadline deadline) {
  auto st = inner_.Exchange(calls, deadline);
  for (const auto& call : calls) {
    // A call without a reply (connection lost) was not answered: nothing to record.
    if (!call.status->ok() && call.reply->type != RedisReply::Type::kError) continue;
    Record(*call.argv, *call.reply);
  }
  return st;
}

void RecordingRedisSession::Record(const std::vector<std::string>& argv, const RedisReply& reply) {
  if (argv == std::vector<std::string>{"INFO", "ALL"})
    std::ofstream(dir_ / "info.txt", std::ios::binary) << reply.str;
  else
    std::ofstream(dir_ / "replies.resp", std::ios::binary | std::ios::app)
        << EncodeRequest(argv) << EncodeResp(reply);
}

}  // namespace runbook::testing
