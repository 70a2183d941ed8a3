#pragma once
// RedisSession: the seam between Redis collectors and hiredis. The real session keeps one
// persistent connection per target (AUTH, SELECT and CLIENT SETNAME once per connection);
// unit tests replay replies captured verbatim from real servers.
//
// Thread-safety: a session is used by one collection at a time; it is not synchronised.

#include <span>
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

// One command of a round trip and where its outcome goes (all three owned by the caller).
struct RedisCall {
  const std::vector<std::string>* argv = nullptr;
  RedisReply* reply = nullptr;
  Status* status = nullptr;
};

class RedisSession {
 public:
  virtual ~RedisSession() = default;

  // Pipelining: writes every call's command at once, each as an argument vector (never a format
  // string built from configured text), then reads the replies in order, all before `deadline`:
  // one round trip however many calls. Every call gets its reply and its status:
  //  - ok;
  //  - for an error reply, kPermission (NOPERM) or kQuery (others) naming the command, with the
  //    error reply in *reply. An error reply stops nothing: every reply is read, so the
  //    connection stays in step and each later reply goes to its own call;
  //  - for a network failure or timeout, that status, given to the call being read and to every
  //    later one; the connection is closed (the next collection reconnects).
  // Returns the network failure or timeout if there was one, else the first error reply's
  // status, else ok. No calls: nothing is sent.
  virtual Status Exchange(std::span<const RedisCall> calls, Deadline deadline) = 0;

  // One command, one round trip; returns its status.
  Status Command(const std::vector<std::string>& argv, Deadline deadline, RedisReply& out);

  // The shared round trip of a collection (see Collector::Prepare): Queue adds a call to the
  // batch and sends nothing; until the batch is sent, *status says "not sent". `argv`, `reply`
  // and `status` must stay valid and unchanged until Flush returns. Flush exchanges the whole
  // batch as one round trip (Exchange) and empties it.
  void Queue(const std::vector<std::string>& argv, RedisReply& reply, Status& status);
  Status Flush(Deadline deadline);
  std::size_t queued() const { return batch_.size(); }

 private:
  std::vector<RedisCall> batch_;
};

}  // namespace runbook
