#include "resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace runbook {

namespace {

HostResolver::Answer SystemLookup(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  HostResolver::Answer answer;
  if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0) {
    answer.error = gai_strerror(rc);
    return answer;
  }
  for (auto* ai = res; ai; ai = ai->ai_next) {
    char buf[INET6_ADDRSTRLEN] = {};
    const void* addr =
        ai->ai_family == AF_INET6
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr);
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    if (!inet_ntop(ai->ai_family, addr, buf, sizeof buf)) continue;
    if (std::find(answer.addresses.begin(), answer.addresses.end(), buf) == answer.addresses.end())
      answer.addresses.emplace_back(buf);
  }
  freeaddrinfo(res);
  if (answer.addresses.empty()) answer.error = "no address";
  return answer;
}

}  // namespace

bool IsNumericAddress(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

struct HostResolver::Shared {
  struct Lookup {
    bool done = false;
    Answer answer;
  };
  LookupFn lookup;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::shared_ptr<Lookup>> running;
};

HostResolver::HostResolver(LookupFn lookup) : shared_(std::make_shared<Shared>()) {
  shared_->lookup = lookup ? std::move(lookup) : LookupFn(SystemLookup);
}

HostResolver::~HostResolver() = default;

HostResolver& HostResolver::Default() {
  static HostResolver resolver;
  return resolver;
}

std::size_t HostResolver::pending() const {
  std::lock_guard lock(shared_->mu);
  return shared_->running.size();
}

Status HostResolver::Resolve(const std::string& host, Deadline deadline,
                             std::vector<std::string>& addresses) {
  addresses.clear();
  if (IsNumericAddress(host)) {
    addresses.push_back(host);
    return Status::Ok();
  }
  std::unique_lock lock(shared_->mu);
  auto& slot = shared_->running[host];
  auto lookup = slot;
  if (!lookup) {
    lookup = slot = std::make_shared<Shared::Lookup>();
    // The thread owns what it touches, so neither this call returning at its deadline nor the
    // resolver being destroyed leaves it with dangling state.
    std::thread([shared = shared_, lookup, host] {
      Answer answer = shared->lookup(host);
      std::lock_guard lock(shared->mu);
      lookup->answer = std::move(answer);
      lookup->done = true;
      if (auto it = shared->running.find(host); it != shared->running.end() && it->second == lookup)
        shared->running.erase(it);
      shared->cv.notify_all();
    }).detach();
  }
  if (!shared_->cv.wait_until(lock, deadline, [&] { return lookup->done; }))
    return Status::Error(ErrorReason::kTimeout, "resolve " + host + ": no answer before the deadline");
  if (!lookup->answer.error.empty())
    return Status::Error(ErrorReason::kNetwork, "resolve " + host + ": " + lookup->answer.error);
  addresses = lookup->answer.addresses;
  return Status::Ok();
}

}  // namespace runbook
