#include "libpq_session.h"
#include "resolver.h"
#include "secrets.h"

#include <poll.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

namespace runbook {

namespace {

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

long RemainingMs(Deadline deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : static_cast<long>(left.count());
}

}  // namespace

ErrorReason ClassifyConnectError(std::string_view m) {
  if (Contains(m, "password authentication failed") || Contains(m, "no pg_hba.conf entry") ||
      Contains(m, "authentication failed") || Contains(m, "no password supplied") ||
      Contains(m, "does not exist") || Contains(m, "password is required") ||
      Contains(m, "SASL authentication") || Contains(m, "not permitted to log in"))
    return ErrorReason::kAuth;
  if (Contains(m, "permission denied")) return ErrorReason::kPermission;
  if (Contains(m, "timeout expired") || Contains(m, "timed out")) return ErrorReason::kTimeout;
  if (Contains(m, "invalid") && Contains(m, "protocol")) return ErrorReason::kProtocol;
  return ErrorReason::kNetwork;
}

ErrorReason ClassifySqlState(std::string_view s) {
  if (s == "42501") return ErrorReason::kPermission;  // insufficient_privilege
  if (s == "57014") return ErrorReason::kTimeout;     // query_canceled (statement_timeout)
  if (s == "55P03") return ErrorReason::kTimeout;     // lock_not_available (lock_timeout)
  if (s.starts_with("28")) return ErrorReason::kAuth;
  if (s.starts_with("08") || s.starts_with("57P")) return ErrorReason::kNetwork;  // connection, shutdown
  return ErrorReason::kQuery;
}

LibpqSession::LibpqSession(PgConnParams params) : params_(std::move(params)) {}

LibpqSession::~LibpqSession() {
  Disconnect();
}

void LibpqSession::Disconnect() {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
  version_ = 0;
  prepared_.clear();
}

Status LibpqSession::Fail(ErrorReason reason, std::string message) {
  Disconnect();
  return Status::Error(reason, std::move(message));
}

Status LibpqSession::Wait(bool for_write, Deadline deadline, std::string_view what) {
  pollfd pfd{PQsocket(conn_), static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
  if (pfd.fd < 0) return Fail(ErrorReason::kNetwork, "connection has no socket");
  for (;;) {
    long ms = RemainingMs(deadline);
    if (ms == 0) return Fail(ErrorReason::kTimeout, std::string(what) + ": deadline exceeded");
    int rc = poll(&pfd, 1, static_cast<int>(ms));
    if (rc > 0) return Status::Ok();
    if (rc == 0) return Fail(ErrorReason::kTimeout, std::string(what) + ": deadline exceeded");
    if (errno != EINTR) return Fail(ErrorReason::kNetwork, std::string("poll: ") + std::strerror(errno));
  }
}

Status LibpqSession::Connect(Deadline deadline) {
  if (conn_) return Status::Ok();
  std::string password;
  if (auto st = ReadPassword(params_.password_file, params_.password_env, password); !st.ok()) return st;

  long ms = RemainingMs(deadline);
  if (ms == 0) return Status::Error(ErrorReason::kTimeout, "connect: no time left");
  std::string port = std::to_string(params_.port);
  std::string connect_timeout = std::to_string(std::max(2L, (ms + 999) / 1000));
  std::string options;
  if (params_.send_session_options) {
    options = "-c statement_timeout=" + std::to_string(params_.statement_timeout.count()) +
              " -c lock_timeout=" + std::to_string(params_.lock_timeout.count()) +
              " -c default_transaction_read_only=on";
  }
  // libpq resolves a host name with a blocking getaddrinfo inside PQconnectStart: the name is
  // resolved here within the deadline and handed over as hostaddr (host stays for TLS checks).
  // A leading '/' is a Unix-socket directory, which needs no lookup.
  std::string hosts = params_.host, hostaddrs, ports = port;
  if (!params_.host.empty() && params_.host[0] != '/') {
    std::vector<std::string> addresses;
    if (auto st = HostResolver::Default().Resolve(params_.host, deadline, addresses); !st.ok()) return st;
    hosts.clear();
    ports.clear();
    for (const auto& a : addresses) {
      const char* sep = hostaddrs.empty() ? "" : ",";
      hostaddrs += sep + a;
      hosts += sep + params_.host;
      ports += sep + port;
    }
  }
  std::vector<const char*> keys, values;
  auto add = [&](const char* k, const std::string& v) {
    if (v.empty()) return;
    keys.push_back(k);
    values.push_back(v.c_str());
  };
  add("host", hosts);
  add("hostaddr", hostaddrs);
  add("port", ports);
  add("dbname", params_.database);
  add("user", params_.user);
  add("password", password);
  add("sslmode", params_.sslmode);
  add("application_name", params_.application_name);
  add("connect_timeout", connect_timeout);
  add("options", options);
  keys.push_back(nullptr);
  values.push_back(nullptr);

  conn_ = PQconnectStartParams(keys.data(), values.data(), 0);
  if (!conn_) return Status::Error(ErrorReason::kNetwork, "libpq: out of memory");
  if (PQstatus(conn_) == CONNECTION_BAD) {
    std::string msg = Trim(PQerrorMessage(conn_));
    return Fail(ClassifyConnectError(msg), msg);
  }
  PostgresPollingStatusType poll_status = PGRES_POLLING_WRITING;
  for (;;) {
    if (poll_status == PGRES_POLLING_OK) break;
    if (poll_status == PGRES_POLLING_FAILED) {
      std::string msg = Trim(PQerrorMessage(conn_));
      return Fail(ClassifyConnectError(msg), msg);
    }
    if (auto st = Wait(poll_status == PGRES_POLLING_WRITING, deadline, "connect"); !st.ok()) return st;
    poll_status = PQconnectPoll(conn_);
  }
  if (PQsetnonblocking(conn_, 1) != 0) return Fail(ErrorReason::kNetwork, "cannot set non-blocking mode");
  version_ = PQserverVersion(conn_);
  return Status::Ok();
}

Status LibpqSession::Flush(Deadline deadline, std::string_view what) {
  for (;;) {
    int f = PQflush(conn_);
    if (f == 0) return Status::Ok();
    if (f < 0) return Fail(ErrorReason::kNetwork, std::string(what) + ": " + Trim(PQerrorMessage(conn_)));
    if (auto st = Wait(true, deadline, what); !st.ok()) return st;
  }
}

Status LibpqSession::ReadResults(Deadline deadline, std::string_view what, PgResult* out) {
  Status result_status;
  bool have_rows = false;
  for (;;) {
    while (PQisBusy(conn_)) {
      if (auto st = Wait(false, deadline, what); !st.ok()) return st;
      if (!PQconsumeInput(conn_))
        return Fail(ErrorReason::kNetwork, std::string(what) + ": " + Trim(PQerrorMessage(conn_)));
    }
    std::unique_ptr<PGresult, decltype(&PQclear)> res(PQgetResult(conn_), &PQclear);
    if (!res) break;
    switch (PQresultStatus(res.get())) {
      case PGRES_TUPLES_OK: {
        if (have_rows || !out) break;  // only the first result set of a multi-statement query counts
        have_rows = true;
        int nf = PQnfields(res.get()), nt = PQntuples(res.get());
        out->columns.reserve(nf);
        for (int c = 0; c < nf; ++c) out->columns.emplace_back(PQfname(res.get(), c));
        out->rows.resize(nt);
        for (int r = 0; r < nt; ++r) {
          auto& row = out->rows[r];
          row.reserve(nf);
          for (int c = 0; c < nf; ++c) {
            if (PQgetisnull(res.get(), r, c))
              row.emplace_back(std::nullopt);
            else
              row.emplace_back(std::string(PQgetvalue(res.get(), r, c), PQgetlength(res.get(), r, c)));
          }
        }
        break;
      }
      case PGRES_COMMAND_OK:
      case PGRES_EMPTY_QUERY: break;
      default: {
        const char* state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
        std::string msg = std::string(what) + ": " + Trim(PQresultErrorMessage(res.get()));
        if (result_status.ok()) result_status = Status::Error(ClassifySqlState(state ? state : ""), msg);
      }
    }
  }
  if (PQstatus(conn_) == CONNECTION_BAD) {
    std::string msg = result_status.ok() ? Trim(PQerrorMessage(conn_)) : result_status.message;
    return Fail(ErrorReason::kNetwork, msg);
  }
  return result_status;
}

Status LibpqSession::Prepare(const PgQuery& query, Deadline deadline, std::string& statement) {
  if (auto it = prepared_.find(query.name); it != prepared_.end() && it->second == query.sql) {
    statement = it->first;
    return Status::Ok();
  }
  // A name reused with other SQL (should not happen) gets a fresh statement name.
  statement = std::string(query.name);
  while (prepared_.count(statement)) statement += "_";
  std::string sql(query.sql);
  if (!PQsendPrepare(conn_, statement.c_str(), sql.c_str(), 0, nullptr))
    return Fail(ErrorReason::kNetwork, std::string(query.name) + ": " + Trim(PQerrorMessage(conn_)));
  if (auto st = Flush(deadline, query.name); !st.ok()) return st;
  if (auto st = ReadResults(deadline, query.name, nullptr); !st.ok()) return st;
  prepared_.emplace(statement, sql);
  return Status::Ok();
}

Status LibpqSession::Query(const PgQuery& query, Deadline deadline, PgResult& out) {
  out = {};
  if (!conn_) return Status::Error(ErrorReason::kNetwork, "not connected");
  int sent;
  if (params_.prepare_statements) {
    std::string statement;
    if (auto st = Prepare(query, deadline, statement); !st.ok()) return st;
    sent = PQsendQueryPrepared(conn_, statement.c_str(), 0, nullptr, nullptr, nullptr, 0);
  } else {
    sent = PQsendQuery(conn_, std::string(query.sql).c_str());
  }
  if (!sent) return Fail(ErrorReason::kNetwork, std::string(query.name) + ": " + Trim(PQerrorMessage(conn_)));
  if (auto st = Flush(deadline, query.name); !st.ok()) return st;
  auto st = ReadResults(deadline, query.name, &out);
  if (!st.ok()) out = {};
  return st;
}

}  // namespace runbook
