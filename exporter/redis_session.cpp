#include "redis_session.h"
#include "resolver.h"
#include "secrets.h"

#include <strings.h>
#include <sys/time.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace runbook {

namespace {

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

long long RemainingUs(Deadline deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : left.count();
}

timeval ToTimeval(long long us) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(us / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
  return tv;
}

// Names a command in messages without its arguments (AUTH carries the password; keys are data).
std::string CommandName(const std::vector<std::string>& argv) {
  if (argv.empty()) return "(empty command)";
  std::string name = argv[0];
  static const char* kContainers[] = {"INFO", "SLOWLOG", "LATENCY", "CLIENT", "CONFIG", "MEMORY", "XINFO"};
  if (argv.size() > 1)
    for (const char* c : kContainers)
      if (strcasecmp(name.c_str(), c) == 0) name += " " + argv[1];
  return name;
}

// hiredis reports a socket timeout as an I/O error with EAGAIN ("Resource temporarily
// unavailable"), a connect timeout as ETIMEDOUT.
ErrorReason ClassifyIoError(const redisContext* c, int saved_errno) {
  std::string_view msg = c->errstr;
  if (c->err == REDIS_ERR_IO &&
      (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == ETIMEDOUT ||
       saved_errno == EINPROGRESS || Contains(msg, "temporarily unavailable") || Contains(msg, "timed out")))
    return ErrorReason::kTimeout;
  if (c->err == REDIS_ERR_PROTOCOL) return ErrorReason::kProtocol;
  return ErrorReason::kNetwork;
}

class RedisConnection final : public TargetConnection {
 public:
  explicit RedisConnection(const RedisConnParams& p) : session_(p) {}
  Status Connect(Deadline d) override { return session_.Connect(d); }
  bool connected() const override { return session_.connected(); }
  void Disconnect() override { session_.Disconnect(); }
  void Bind(ScrapeContext& ctx) override { ctx.redis = &session_; }

 private:
  HiredisSession session_;
};

}  // namespace

ErrorReason ClassifyRedisError(std::string_view e) {
  if (e.starts_with("WRONGPASS") || e.starts_with("NOAUTH") || Contains(e, "invalid password") ||
      Contains(e, "invalid username-password"))
    return ErrorReason::kAuth;
  if (e.starts_with("NOPERM")) return ErrorReason::kPermission;
  return ErrorReason::kQuery;
}

void ClearReply(RedisReply& out) {
  out.type = RedisReply::Type::kNil;
  out.str.clear();
  out.integer = 0;
  out.elements.clear();
}

// Into `out`, whose buffers are reused: a collector that keeps its reply (INFO ALL is ~20 kB)
// allocates nothing for it from one collection to the next.
void ConvertReply(const redisReply* r, RedisReply& out) {
  ClearReply(out);
  if (!r) return;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, static_cast<std::size_t>(r->len));
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, static_cast<std::size_t>(r->len));
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, static_cast<std::size_t>(r->len));
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.resize(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) ConvertReply(r->element[i], out.elements[i]);
      break;
    default: break;
  }
}

HiredisSession::HiredisSession(RedisConnParams params) : params_(std::move(params)) {}

HiredisSession::~HiredisSession() {
  Disconnect();
}

void HiredisSession::Disconnect() {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
}

Status HiredisSession::Fail(ErrorReason reason, std::string message) {
  Disconnect();
  return Status::Error(reason, std::move(message));
}

Status HiredisSession::Connect(Deadline deadline) {
  if (ctx_) return Status::Ok();
  std::string password;
  if (auto st = ReadPassword(params_.password_file, params_.password_env, password); !st.ok()) return st;
  // hiredis resolves host names with a blocking getaddrinfo; resolving first keeps the deadline.
  std::vector<std::string> addresses;
  if (auto st = HostResolver::Default().Resolve(params_.host, deadline, addresses); !st.ok()) return st;
  Status failed = Status::Error(ErrorReason::kNetwork, "connect: no address");
  for (const auto& address : addresses) {
    long long us = RemainingUs(deadline);
    if (us < 1000) return Status::Error(ErrorReason::kTimeout, "connect: no time left");
    redisContext* c = redisConnectWithTimeout(address.c_str(), params_.port, ToTimeval(us));
    if (!c) return Status::Error(ErrorReason::kNetwork, "connect: out of memory");
    if (!c->err) {
      ctx_ = c;
      break;
    }
    int saved_errno = errno;
    failed = Status::Error(ClassifyIoError(c, saved_errno), std::string("connect: ") + c->errstr);
    redisFree(c);
  }
  if (!ctx_) return failed;
  // Keep the reader's buffer between replies: by default hiredis frees it after each reply that
  // left more than 16 kB free, and every INFO ALL (~20 kB) would grow it anew.
  ctx_->reader->maxbuf = 0;
  RedisReply reply;
  if (!password.empty()) {
    std::vector<std::string> argv{"AUTH"};
    if (!params_.user.empty()) argv.push_back(params_.user);
    argv.push_back(std::move(password));
    if (auto st = Command(argv, deadline, reply); !st.ok()) {
      // "ERR AUTH <password> called without any password configured" is a configuration
      // mismatch of the same kind as a wrong password.
      if (st.reason == ErrorReason::kQuery) st.reason = ErrorReason::kAuth;
      return Fail(st.reason, st.message);
    }
  }
  if (params_.db != 0) {
    if (auto st = Command({"SELECT", std::to_string(params_.db)}, deadline, reply); !st.ok())
      return Fail(st.reason, st.message);
  }
  if (!params_.client_name.empty()) {
    // A server that refuses CLIENT SETNAME (ACL, proxy) is still monitored.
    auto st = Command({"CLIENT", "SETNAME", params_.client_name}, deadline, reply);
    if (!st.ok() && !ctx_) return st;
  }
  return Status::Ok();
}

Status HiredisSession::Append(const std::vector<std::string>& argv) {
  if (!ctx_) return Status::Error(ErrorReason::kNetwork, "not connected");
  if (argv.empty()) return Status::Error(ErrorReason::kQuery, "empty command");
  constexpr std::size_t kInline = 8;
  const char* args_inline[kInline];
  size_t lens_inline[kInline];
  std::vector<const char*> args_heap;
  std::vector<size_t> lens_heap;
  const char** args = args_inline;
  size_t* lens = lens_inline;
  if (argv.size() > kInline) {
    args_heap.resize(argv.size());
    lens_heap.resize(argv.size());
    args = args_heap.data();
    lens = lens_heap.data();
  }
  for (std::size_t i = 0; i < argv.size(); ++i) {
    args[i] = argv[i].data();
    lens[i] = argv[i].size();
  }
  if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), args, lens) != REDIS_OK)
    return Fail(ErrorReason::kNetwork, CommandName(argv) + ": out of memory");
  return Status::Ok();
}

Status HiredisSession::Read(const std::vector<std::string>& argv, Deadline deadline, RedisReply& out) {
  ClearReply(out);
  void* raw = nullptr;
  // A pipeline's later replies are often in hiredis' buffer already: no timeout, no syscall.
  if (redisGetReplyFromReader(ctx_, &raw) == REDIS_OK && raw) return Convert(argv, raw, out);
  long long us = RemainingUs(deadline);
  // A zero timeval would mean "wait forever".
  if (us < 1000) return Fail(ErrorReason::kTimeout, CommandName(argv) + ": deadline exceeded");
  if (redisSetTimeout(ctx_, ToTimeval(us)) != REDIS_OK)
    return Fail(ErrorReason::kNetwork, CommandName(argv) + ": cannot set the socket timeout");
  errno = 0;
  if (redisGetReply(ctx_, &raw) != REDIS_OK || !raw) {
    if (raw) freeReplyObject(raw);
    int saved_errno = errno;
    ErrorReason reason = ClassifyIoError(ctx_, saved_errno);
    std::string msg =
        CommandName(argv) + ": " + (reason == ErrorReason::kTimeout ? "deadline exceeded" : ctx_->errstr);
    return Fail(reason, msg);
  }
  return Convert(argv, raw, out);
}

Status HiredisSession::Convert(const std::vector<std::string>& argv, void* raw, RedisReply& out) {
  ConvertReply(static_cast<redisReply*>(raw), out);
  freeReplyObject(raw);
  if (out.type == RedisReply::Type::kError)
    return Status::Error(ClassifyRedisError(out.str), CommandName(argv) + ": " + out.str);
  return Status::Ok();
}

Status HiredisSession::Exchange(std::span<const RedisCall> calls, Deadline deadline) {
  Status first;
  // Once the connection is lost, the calls not answered get that failure.
  auto lost = [&](std::size_t from, const Status& st) {
    for (std::size_t j = from; j < calls.size(); ++j) {
      ClearReply(*calls[j].reply);
      *calls[j].status = st;
    }
    return st;
  };
  for (std::size_t i = 0; i < calls.size(); ++i)
    if (auto st = Append(*calls[i].argv); !st.ok()) {
      // Commands already appended would be answered out of step: start over on a new connection.
      if (ctx_) Disconnect();
      return lost(0, st);
    }
  for (std::size_t i = 0; i < calls.size(); ++i) {
    Status st = Read(*calls[i].argv, deadline, *calls[i].reply);
    if (!ctx_) return lost(i, st);
    if (!st.ok() && first.ok()) first = st;
    *calls[i].status = std::move(st);
  }
  return first;
}

Status RedisSession::Command(const std::vector<std::string>& argv, Deadline deadline, RedisReply& out) {
  Status status;
  const RedisCall call{&argv, &out, &status};
  Exchange({&call, 1}, deadline);
  return status;
}

void RedisSession::Queue(const std::vector<std::string>& argv, RedisReply& reply, Status& status) {
  status = Status::Error(ErrorReason::kProtocol, "not sent");
  batch_.push_back({&argv, &reply, &status});
}

Status RedisSession::Flush(Deadline deadline) {
  Status st = Exchange(batch_, deadline);
  batch_.clear();
  return st;
}

std::unique_ptr<TargetConnection> MakeRedisConnection(const TargetConfig& cfg) {
  return std::make_unique<RedisConnection>(cfg.redis);
}

}  // namespace runbook
