#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "resolver.h"

namespace resolver_test {

using namespace runbook;
using namespace std::chrono_literals;

namespace {

// A lookup that blocks until released, counting its calls.
struct StuckDns {
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  std::atomic<int> calls{0}, returned{0};
  HostResolver::Answer answer{{"192.0.2.7"}, ""};

  HostResolver::LookupFn Fn() {
    return [this](const std::string&) {
      ++calls;
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return released; });
      HostResolver::Answer a = answer;
      lock.unlock();  // before the count: once the test sees it, *this (and mu) may be gone
      ++returned;
      return a;
    };
  }
  void Release() {
    std::lock_guard lock(mu);
    released = true;
    cv.notify_all();
  }
  void WaitReturned(int n) {
    for (int i = 0; i < 500 && returned < n; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(returned == n);
  }
};

Deadline In(std::chrono::milliseconds ms) {
  return std::chrono::steady_clock::now() + ms;
}

}  // namespace

TEST_CASE("resolver: numeric addresses need no lookup") {
  StuckDns dns;
  HostResolver r(dns.Fn());
  std::vector<std::string> out;
  CHECK(r.Resolve("127.0.0.1", In(10ms), out).ok());
  CHECK(out == std::vector<std::string>{"127.0.0.1"});
  CHECK(r.Resolve("::1", In(10ms), out).ok());
  CHECK(out == std::vector<std::string>{"::1"});
  CHECK(dns.calls == 0);
  CHECK(IsNumericAddress("10.1.2.3"));
  CHECK_FALSE(IsNumericAddress("10.1.2"));  // inet_pton's strict form; libpq would resolve it
  CHECK_FALSE(IsNumericAddress("db.example"));
}

TEST_CASE("resolver: a lookup that does not answer is cut at the deadline and never started twice") {
  StuckDns dns;
  HostResolver r(dns.Fn());
  std::vector<std::string> out;
  auto t0 = std::chrono::steady_clock::now();
  Status st = r.Resolve("db.example", In(100ms), out);
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(st.reason == ErrorReason::kTimeout);
  CHECK(st.message == "resolve db.example: no answer before the deadline");
  CHECK(took >= 100ms);
  CHECK(took < 5s);  // loose: only a hang must fail, not a loaded machine
  CHECK(r.pending() == 1);

  CHECK(r.Resolve("db.example", In(50ms), out).reason == ErrorReason::kTimeout);
  CHECK(dns.calls == 1);

  // A caller still waiting when the answer comes gets it.
  auto waiting = std::async(std::launch::async, [&] {
    std::vector<std::string> a;
    Status s = r.Resolve("db.example", In(5s), a);
    return std::make_pair(s, a);
  });
  std::this_thread::sleep_for(50ms);
  dns.Release();
  auto [s, a] = waiting.get();
  CHECK(s.ok());
  CHECK(a == std::vector<std::string>{"192.0.2.7"});
  CHECK(dns.calls == 1);
  dns.WaitReturned(1);
  for (int i = 0; i < 100 && r.pending() != 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(r.pending() == 0);

  // The next connect looks the name up afresh (no stale cache).
  CHECK(r.Resolve("db.example", In(5s), out).ok());
  CHECK(dns.calls == 2);
}

TEST_CASE("resolver: a name that does not resolve is a network error naming it") {
  HostResolver r([](const std::string&) { return HostResolver::Answer{{}, "Name or service not known"}; });
  std::vector<std::string> out{"stale"};
  Status st = r.Resolve("nowhere.invalid", In(1s), out);
  CHECK(st.reason == ErrorReason::kNetwork);
  CHECK(st.message == "resolve nowhere.invalid: Name or service not known");
  CHECK(out.empty());
}

TEST_CASE("resolver: destroying the resolver while a lookup hangs is safe") {
  StuckDns dns;
  {
    HostResolver r(dns.Fn());
    std::vector<std::string> out;
    CHECK(r.Resolve("db.example", In(20ms), out).reason == ErrorReason::kTimeout);
  }
  dns.Release();
  dns.WaitReturned(1);
}

TEST_CASE("resolver: the system lookup finds localhost") {
  std::vector<std::string> out;
  REQUIRE(HostResolver::Default().Resolve("localhost", In(5s), out).ok());
  CHECK((std::find(out.begin(), out.end(), "127.0.0.1") != out.end() ||
         std::find(out.begin(), out.end(), "::1") != out.end()));
  CHECK(HostResolver::Default().Resolve("no-such-host.invalid", In(5s), out).reason == ErrorReason::kNetwork);
}

}  // namespace resolver_test
