#pragma once
// Host-name lookups bounded by a deadline. getaddrinfo has no timeout of its own: a DNS server
// that does not answer holds the caller for resolv.conf's timeout x attempts x servers, far past
// a collection's deadline. Each lookup therefore runs on a thread of its own and the caller waits
// only until its deadline. A lookup that is still running when the same host is asked for again
// is waited on again, never started twice, so a dead DNS server costs one stuck thread per host
// name, not one per collection.
//
// Numeric addresses are returned as they are, without a thread. Thread-safe.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runbook/pg_session.h"  // Deadline
#include "runbook/status.h"

namespace runbook {

class HostResolver {
 public:
  // Numeric addresses of `host` (IPv4 and IPv6, in the resolver's order) or the error text.
  struct Answer {
    std::vector<std::string> addresses;
    std::string error;  // empty on success
  };
  using LookupFn = std::function<Answer(const std::string& host)>;

  // `lookup` is getaddrinfo by default; tests pass a fake.
  explicit HostResolver(LookupFn lookup = {});
  ~HostResolver();

  // The process-wide resolver used by the sessions and the TLS dialer.
  static HostResolver& Default();

  // Addresses of `host`. Errors: kTimeout when the lookup has not finished by `deadline` (it
  // goes on in the background and a later call picks its answer up), kNetwork when the name
  // does not resolve.
  Status Resolve(const std::string& host, Deadline deadline, std::vector<std::string>& addresses);

  // Lookups currently running (for tests).
  std::size_t pending() const;

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

// Whether `host` is an IPv4 or IPv6 address literal.
bool IsNumericAddress(const std::string& host);

}  // namespace runbook
