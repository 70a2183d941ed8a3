#pragma once
// RedisSession: the seam between Redis collectors and hiredis. The real session keeps one
// persistent connection per target (AUTH, SELECT and CLIENT SETNAME once per connection);
// unit tests replay replies captured verbatim from real servers.
//
// Thread-safety: a session is used by one collection at a time; it is not synchronised.

#include <string>
#include <vector>

#include "runbook/pg_session.h"  // Deadline
#include "runbook/status.h"

namespace runbook {

struct RedisReply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<RedisReply> elements;  // kArray
};

class RedisSession {
 public:
  virtual ~RedisSession() = default;
  // Sends one command as an argument vector (never a format string built from configured text)
  // and reads its reply before `deadline`. A server error reply is returned as a failed Status —
  // kPermission for NOPERM, kQuery otherwise — with `out` holding the error reply; a network
  // failure or timeout closes the connection.
  virtual Status Command(const std::vector<std::string>& argv, Deadline deadline, RedisReply& out) = 0;
  // Pipelining: writes every command at once, then reads the replies in order, all before
  // `deadline` — one round trip instead of one per command. `out` gets one reply per command.
  // An error reply does not stop the batch (every reply is read, so the connection stays in
  // step): its reply is in `out` and the first one is returned as Command returns it. A network
  // failure or timeout closes the connection and returns at once (`out` then holds the replies
  // read so far). An empty batch sends nothing.
  virtual Status Pipeline(const std::vector<std::vector<std::string>>& commands, Deadline deadline,
                          std::vector<RedisReply>& out) = 0;
};

}  // namespace runbook
