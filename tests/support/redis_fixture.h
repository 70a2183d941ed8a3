#pragma once
// Test support for Redis collectors. A fixture directory (tests/fixtures/redis/<version>/<role>/)
// holds:
//   info.txt      the INFO ALL reply, byte for byte (CRLF lines), answered to `INFO ALL`;
//   replies.resp  every other command and its reply as RESP: a request (array of bulk strings)
//                 followed by the server's reply, repeated; written by tools/capture_redis;
//   settings.txt  the key checks the replies were captured with ("key DB NAME",
//                 "pattern DB GLOB", "db N", "scan_count N", "scan_max_keys N"; '#' comments).

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runbook/collector.h"
#include "runbook/redis_session.h"

namespace runbook::testing {

std::string EncodeResp(const RedisReply& reply);
std::string EncodeRequest(const std::vector<std::string>& argv);
// Decodes one RESP value starting at `pos` and advances `pos`; throws std::runtime_error.
RedisReply DecodeResp(std::string_view text, std::size_t& pos);

TargetSettings LoadRedisSettings(const std::filesystem::path& dir);  // defaults when absent
std::string EncodeRedisSettings(const TargetSettings& settings);

// Every fixture directory of redis (those holding info.txt), sorted.
std::vector<std::filesystem::path> RedisFixtureDirs();

// Replays a fixture directory. A command that was not captured fails with kQuery
// ("not in fixture"); an error reply fails as the real session would (kPermission for NOPERM).
class FixtureRedisSession : public RedisSession {
 public:
  explicit FixtureRedisSession(std::filesystem::path dir);
  // Replies to each call; a non-empty exchange counts as one round trip. A failure of the
  // connection (FailCommand with kNetwork or kTimeout) is given to the later calls too, as the
  // real session gives it.
  Status Exchange(std::span<const RedisCall> calls, Deadline deadline) override;

  // Replaces the reply of one command (argv as sent).
  void SetReply(std::vector<std::string> argv, RedisReply reply) {
    replies_[std::move(argv)] = std::move(reply);
  }
  // Makes every command whose first word is `command` fail with `status` (no reply).
  void FailCommand(std::string command, Status status) { failures_[std::move(command)] = std::move(status); }
  const std::vector<std::vector<std::string>>& commands() const { return commands_; }
  // Non-empty exchanges: what the real session would wait for.
  int round_trips() const { return round_trips_; }
  // The number of commands of each non-empty exchange, in order (commands() holds them all).
  const std::vector<std::size_t>& exchanges() const { return exchanges_; }

 private:
  Status Reply(const std::vector<std::string>& argv, RedisReply& out);

  std::map<std::vector<std::string>, RedisReply> replies_;
  std::map<std::string, Status> failures_;
  std::vector<std::vector<std::string>> commands_;
  int round_trips_ = 0;
  std::vector<std::size_t> exchanges_;
};

// Forwards to a real session; writes INFO ALL to <dir>/info.txt and appends every other command
// with its reply (error replies included) to <dir>/replies.resp.
class RecordingRedisSession : public RedisSession {
 public:
  RecordingRedisSession(RedisSession& inner, std::filesystem::path dir);
  Status Exchange(std::span<const RedisCall> calls, Deadline deadline) override;

 private:
  void Record(const std::vector<std::string>& argv, const RedisReply& reply);
  RedisSession& inner_;
  std::filesystem::path dir_;
};

}  // namespace runbook::testing
