#pragma once
// HiredisSession: one persistent hiredis connection per Redis target. Connect() opens it, sends
// AUTH (ACL user + password, or password only), SELECT (db != 0) and CLIENT SETNAME, all through
// redisCommandArgv. Before every command the socket timeout is set to the time left until the
// caller's deadline, so a frozen server (SIGSTOP) cuts the command at the deadline; a timeout or
// I/O error frees the context and the next Connect() opens a new one. An error reply keeps the
// connection. Exchange() appends every command to hiredis' output buffer, and the first read
// writes them all; the timeout is set again before each reply that is not buffered yet is read.
//
// Thread-safety: not synchronised; one collection uses it at a time.

#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <string_view>

#include "config.h"
#include "runbook/redis_session.h"
#include "target_runtime.h"

namespace runbook {

// Maps an error reply ("WRONGPASS ...", "NOPERM ...", "ERR ...") to a reason.
ErrorReason ClassifyRedisError(std::string_view error_reply);
// Converts a hiredis reply tree (nullptr gives kNil).
RedisReply ConvertReply(const redisReply* reply);

class HiredisSession final : public RedisSession {
 public:
  explicit HiredisSession(RedisConnParams params);
  ~HiredisSession() override;
  HiredisSession(const HiredisSession&) = delete;
  HiredisSession& operator=(const HiredisSession&) = delete;

  Status Connect(Deadline deadline);  // Ok when connected
  bool connected() const { return ctx_ != nullptr; }
  void Disconnect();

  Status Exchange(std::span<const RedisCall> calls, Deadline deadline) override;

 private:
  Status Fail(ErrorReason reason, std::string message);
  Status Append(const std::vector<std::string>& argv);
  Status Read(const std::vector<std::string>& argv, Deadline deadline, RedisReply& out);
  Status Convert(const std::vector<std::string>& argv, void* raw, RedisReply& out);  // frees raw

  RedisConnParams params_;
  redisContext* ctx_ = nullptr;
};

std::unique_ptr<TargetConnection> MakeRedisConnection(const TargetConfig& cfg);

}  // namespace runbook
