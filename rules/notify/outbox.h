#pragma once
// Outbox: the durable queue of notifications not yet acknowledged by their receiver.
//
// One append-only log file (DIR/outbox.log) of CRC-checked records: "add" with the whole
// notification, "remove" with ids. Put() appends a batch and fsyncs once (group commit) before
// returning, so a notification is on disk before it is sent. Remove() appends without waiting
// (a kill -9 keeps written data; Sync() or the next Put() makes it survive a power loss too).
// Open() replays the log, stops at the first torn or corrupt record, and rewrites the live
// entries compactly; the log is compacted again whenever it grows far beyond its live data.
// Beyond `capacity` entries the oldest are dropped (returned to the caller, who counts them).
//
// Thread-safety: none; the Notifier serialises access. A DIR/lock file (flock) keeps a second
// process from using the same directory.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runbook/clock.h"

namespace runbook::notify {

struct OutboxEntry {
  std::uint64_t id = 0;  // assigned by Put; increasing
  std::string sink;      // "receiver/<name>" or "alertmanager/<name>"
  std::string key;       // idempotency key
  std::string body;
  TimestampMs created = 0;
  int alerts = 0;  // alerts in the body (for the metrics)
};

class Outbox {
 public:
  // `dir` empty: memory only. nullptr and `error` when the directory cannot be used.
  static std::unique_ptr<Outbox> Open(const std::string& dir, std::size_t capacity, bool fsync,
                                      std::string& error);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Assigns ids, writes, fsyncs. Returns the entries dropped to respect the capacity (oldest
  // first; they may include some of `entries` when the batch alone exceeds it). False in
  // `ok` when the write failed (the entries are then kept in memory only).
  std::vector<OutboxEntry> Put(std::vector<OutboxEntry>& entries, bool* ok = nullptr);
  void Remove(const std::vector<std::uint64_t>& ids);
  void Sync();
  // Written but not yet fsynced (Remove does not sync; Sync does).
  bool dirty() const { return dirty_ && fsync_ && fd_ >= 0; }

  const std::map<std::uint64_t, OutboxEntry>& entries() const { return live_; }
  const OutboxEntry* Find(std::uint64_t id) const;
  std::size_t size() const { return live_.size(); }
  std::size_t capacity() const { return capacity_; }
  void set_capacity(std::size_t c) { capacity_ = c; }
  const std::string& dir() const { return dir_; }
  // Records skipped at Open because they were torn or corrupt.
  std::size_t corrupt_records() const { return corrupt_; }

 private:
  Outbox() = default;
  bool Append(const std::string& records, bool sync);
  bool Rewrite();
  std::string dir_;
  int fd_ = -1, lock_fd_ = -1;
  bool fsync_ = true;
  bool dirty_ = false;
  std::size_t capacity_ = 10000;
  std::uint64_t next_id_ = 1;
  std::size_t file_bytes_ = 0, live_bytes_ = 0, corrupt_ = 0;
  std::map<std::uint64_t, OutboxEntry> live_;
};

}  // namespace runbook::notify
