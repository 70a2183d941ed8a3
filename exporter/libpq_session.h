#pragma once
// LibpqSession: one persistent libpq connection, driven in non-blocking mode so that connect and
// every query return by their deadline even when the server is frozen (SIGSTOP) or the network
// drops packets. On a timeout or a broken connection the connection is closed (never cancelled:
// PQcancel blocks on a frozen postmaster) and the next Connect() opens a new one.
//
// Thread-safety: not synchronised; one collection uses it at a time.

#include <libpq-fe.h>

#include <chrono>
#include <map>
#include <string>

#include "runbook/pg_session.h"

namespace runbook {

struct PgConnParams {
  std::string host = "127.0.0.1";
  int port = 5432;
  std::string database = "postgres";
  std::string user;
  std::string password_file;  // read at every connect, so a rotated password needs no reload
  std::string password_env;   // name of an environment variable holding the password
  std::string sslmode = "prefer";
  std::string application_name = "runbook_exporter";
  // PostgreSQL only (PgBouncer's console rejects startup options): per-session settings.
  bool send_session_options = true;
  std::chrono::milliseconds statement_timeout{5000};
  std::chrono::milliseconds lock_timeout{1000};
  // Prepare each query once per connection and execute it by name: PostgreSQL then skips
  // parsing and planning on every collection. PgBouncer's console only speaks simple queries.
  bool prepare_statements = true;
};

// Maps a libpq connection error message to a reason (messages are the C locale's).
ErrorReason ClassifyConnectError(std::string_view message);
// Maps a SQLSTATE to a reason.
ErrorReason ClassifySqlState(std::string_view sqlstate);

class LibpqSession final : public PgSession {
 public:
  explicit LibpqSession(PgConnParams params);
  ~LibpqSession() override;
  LibpqSession(const LibpqSession&) = delete;
  LibpqSession& operator=(const LibpqSession&) = delete;

  // Opens the connection if there is none. Ok when connected.
  Status Connect(Deadline deadline);
  bool connected() const { return conn_ != nullptr; }
  void Disconnect();

  Status Query(const PgQuery& query, Deadline deadline, PgResult& out) override;
  int ServerVersionNum() const override { return version_; }

 private:
  Status Wait(bool for_write, Deadline deadline, std::string_view what);
  Status Fail(ErrorReason reason, std::string message);
  Status Flush(Deadline deadline, std::string_view what);
  // Reads every result of the command just sent; the first result set goes to `out`.
  Status ReadResults(Deadline deadline, std::string_view what, PgResult* out);
  Status Prepare(const PgQuery& query, Deadline deadline, std::string& statement);

  PgConnParams params_;
  PGconn* conn_ = nullptr;
  int version_ = 0;
  std::map<std::string, std::string, std::less<>> prepared_;  // query name → SQL it was prepared with
};

}  // namespace runbook
