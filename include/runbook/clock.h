#pragma once
// Clock: the one source of wall-clock time for the rule engine and alert delivery.
// Time is passed into evaluation and state machines, never read inside them; tests inject a
// fake clock. Timestamps are Unix milliseconds, as Prometheus stores them.
//
// Thread-safety: implementations must be safe to call from any thread.

#include <cstdint>

namespace runbook {

using TimestampMs = std::int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimestampMs NowMs() const = 0;
};

// The process-wide real clock (std::chrono::system_clock).
const Clock& SystemClock();

}  // namespace runbook
