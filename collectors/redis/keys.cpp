// Key checks: the size of configured keys (queue depth) and of keys matching patterns.
// TYPE first, then the length command of that type, in the same collection, so no check ever
// makes Redis answer with an error (WRONGTYPE would count in the server's errorstats). Patterns
// are expanded with SCAN, bounded by scan_max_keys keys and by half of the time left when the
// collector starts.
// Round trips, however many keys: in the session's own database, the TYPE of the configured keys
// and of the keys the patterns found in the previous collection, and each pattern's first SCAN
// page, ride in the collection's shared round trip; then one pipeline sends the length commands
// of the keys whose type is known and the TYPE of the keys found for the first time, and only if
// there were such keys a last pipeline sends their length commands. Other databases: a TYPE
// pipeline, then a length pipeline.
#include <algorithm>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "runbook/collector.h"

namespace runbook::redis {
namespace {

const MetricDesc kKeySize{"redis_key_size",
                          MetricKind::kGauge,
                          "Length of the key: elements of a list, set, sorted set, hash or stream, "
                          "bytes of a string; 0 for a configured key that does not exist.",
                          {"db", "key"}};
const MetricDesc kTruncated{"redis_key_scan_truncated",
                            MetricKind::kGauge,
                            "1 if the pattern's SCAN stopped at scan_max_keys keys or at its time "
                            "bound in the latest collection, else 0.",
                            {"db", "pattern"}};
const MetricDesc kScanned{"redis_key_scan_keys",
                          MetricKind::kGauge,
                          "Keys matching the pattern that were examined in the latest collection.",
                          {"db", "pattern"}};

// The length command for a TYPE answer; nullptr for types without one (module types, "none").
// PFCOUNT is never sent: a HyperLogLog is a string to TYPE and STRLEN gives its size.
const char* LengthCommand(std::string_view type) {
  if (type == "list") return "LLEN";
  if (type == "set") return "SCARD";
  if (type == "zset") return "ZCARD";
  if (type == "hash") return "HLEN";
  if (type == "stream") return "XLEN";
  if (type == "string") return "STRLEN";
  return nullptr;
}

std::string DbLabel(int db) {
  return "db" + std::to_string(db);
}

// Commands of one round trip, with their replies and statuses; kept between collections so the
// strings and replies keep their capacity. Commands are added before any is sent (stable addresses).
class Round {
 public:
  void Clear() { size_ = 0; }
  std::size_t size() const { return size_; }
  void Add(std::string_view command, std::string_view arg) {
    if (size_ == commands_.size()) commands_.emplace_back(2);
    auto& c = commands_[size_++];
    c.resize(2);
    c[0].assign(command);
    c[1].assign(arg);
  }
  void AddScan(std::string_view pattern, int count) {
    if (size_ == commands_.size()) commands_.emplace_back();
    commands_[size_++] = {"SCAN", "0", "MATCH", std::string(pattern), "COUNT", std::to_string(count)};
  }
  const std::vector<std::string>& command(std::size_t i) const { return commands_[i]; }
  const RedisReply& reply(std::size_t i) const { return replies_[i]; }
  RedisReply& reply(std::size_t i) { return replies_[i]; }
  const Status& status(std::size_t i) const { return statuses_[i]; }
  // Into the session's shared round trip (sent by the runtime).
  void Queue(RedisSession& session) {
    Grow();
    for (std::size_t i = 0; i < size_; ++i) session.Queue(commands_[i], replies_[i], statuses_[i]);
  }
  // As a round trip of its own.
  Status Exchange(RedisSession& session, Deadline deadline) {
    Grow();
    calls_.clear();
    for (std::size_t i = 0; i < size_; ++i) calls_.push_back({&commands_[i], &replies_[i], &statuses_[i]});
    return session.Exchange(calls_, deadline);
  }

 private:
  void Grow() {
    if (replies_.size() < size_) replies_.resize(size_);
    if (statuses_.size() < size_) statuses_.resize(size_);
  }
  std::size_t size_ = 0;
  std::vector<std::vector<std::string>> commands_;
  std::vector<RedisReply> replies_;
  std::vector<Status> statuses_;
  std::vector<RedisCall> calls_;
};

class KeysCollector final : public Collector {
 public:
  void Prepare(ScrapeContext& ctx) override {
    const auto& s = *ctx.settings;
    prepared_.Clear();
    prepared_types_.clear();
    prepared_scans_ = 0;
    if (s.redis_keys.empty()) return;
    // Keyed on prepared_'s own copy of the key (Update rewrites found_before_), which stays put
    // until the next Prepare.
    auto add_type = [&](const std::string& key) {
      if (prepared_types_.count(key)) return;
      prepared_.Add("TYPE", key);
      prepared_types_.emplace(prepared_.command(prepared_.size() - 1)[1], prepared_.size() - 1);
    };
    for (const auto& c : s.redis_keys)
      if (c.db == s.redis_db && !c.pattern) add_type(c.key);
    for (const auto& key : found_before_) add_type(key);
    first_scan_ = prepared_.size();
    for (const auto& c : s.redis_keys)
      if (c.db == s.redis_db && c.pattern) {
        prepared_.AddScan(c.key, s.redis_scan_count);
        ++prepared_scans_;
      }
    prepared_.Queue(*ctx.redis);
    prepared_db_ = s.redis_db;
    has_prepared_ = true;
  }

  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    const auto& s = *ctx.settings;
    const bool prepared = std::exchange(has_prepared_, false);
    if (s.redis_keys.empty()) return Status::Ok();
    const auto start = std::chrono::steady_clock::now();
    scan_deadline_ = start + (ctx.deadline - start) / 2;
    // The session's own database first, then the others in order: one SELECT per database.
    std::vector<const RedisKeyCheck*> checks;
    for (const auto& c : s.redis_keys) checks.push_back(&c);
    std::stable_sort(checks.begin(), checks.end(), [&](const RedisKeyCheck* a, const RedisKeyCheck* b) {
      return std::make_pair(a->db != s.redis_db, a->db) < std::make_pair(b->db != s.redis_db, b->db);
    });
    int current = s.redis_db;
    Status status;
    for (std::size_t i = 0; i < checks.size() && status.ok();) {
      std::size_t end = i;
      while (end < checks.size() && checks[end]->db == checks[i]->db) ++end;
      const int db = checks[i]->db;
      if (db != current) {
        RedisReply r;
        status = ctx.redis->Command({"SELECT", std::to_string(db)}, ctx.deadline, r);
        if (!status.ok()) break;
        current = db;
      }
      status = CheckDb(ctx, sink, db, std::span(checks).subspan(i, end - i),
                       prepared && db == prepared_db_ && db == s.redis_db);
      i = end;
    }
    if (current != s.redis_db && ctx.redis) {
      RedisReply r;
      auto back = ctx.redis->Command({"SELECT", std::to_string(s.redis_db)}, ctx.deadline, r);
      if (!back.ok()) ctx.reconnect = true;
      if (status.ok()) status = back;
    }
    return status;
  }

 private:
  struct Key {
    std::string name;
    bool configured;
    const char* length = nullptr;  // its length command, once its type is known
    bool typed = false;
    bool done = false;
  };

  // The keys of one database: configured keys first (a missing one reads 0), then what the
  // patterns found; a key is checked once even when several checks name it. `prepared`: the
  // shared round trip carried this database's TYPEs and first SCAN pages.
  Status CheckDb(ScrapeContext& ctx, MetricSink& sink, int db, std::span<const RedisKeyCheck* const> checks,
                 bool prepared) {
    keys_.clear();
    listed_.clear();
    for (const auto* c : checks)
      if (!c->pattern && listed_.insert(c->key).second) keys_.push_back({c->key, true});
    std::size_t scan = first_scan_;
    for (const auto* c : checks)
      if (c->pattern) {
        const bool first_page = prepared && scan < first_scan_ + prepared_scans_;
        if (auto st = Scan(ctx, sink, *c, first_page ? scan++ : kNoPage); !st.ok()) return st;
      }
    if (prepared) {
      found_before_.clear();
      for (const auto& k : keys_)
        if (!k.configured) found_before_.push_back(k.name);
    }
    const std::string db_label = DbLabel(db);
    if (prepared)
      for (auto& k : keys_)
        if (auto it = prepared_types_.find(k.name); it != prepared_types_.end()) {
          if (!prepared_.status(it->second).ok()) return prepared_.status(it->second);
          Typed(sink, db_label, k, prepared_.reply(it->second).str);
        }
    // Until every key is done: the length command of each key whose type is known, the TYPE of
    // the others (their length command then goes in the next round).
    for (;;) {
      round_.Clear();
      pending_.clear();
      for (std::size_t i = 0; i < keys_.size(); ++i) {
        if (keys_[i].done) continue;
        round_.Add(keys_[i].typed ? keys_[i].length : "TYPE", keys_[i].name);
        pending_.push_back(i);
      }
      if (round_.size() == 0) return Status::Ok();
      if (auto st = round_.Exchange(*ctx.redis, ctx.deadline); !st.ok()) return st;
      for (std::size_t j = 0; j < pending_.size(); ++j) {
        Key& k = keys_[pending_[j]];
        const RedisReply& r = round_.reply(j);
        if (!k.typed) {
          Typed(sink, db_label, k, r.str);
          continue;
        }
        if (r.type != RedisReply::Type::kInteger)
          return Status::Error(ErrorReason::kProtocol, std::string(k.length) + ": expected an integer");
        sink.Add(kKeySize, {db_label, k.name}, static_cast<double>(r.integer));
        k.done = true;
      }
    }
  }

  // Records a key's TYPE answer: done at once when there is nothing to measure.
  static void Typed(MetricSink& sink, const std::string& db_label, Key& k, std::string_view type) {
    k.typed = true;
    k.length = LengthCommand(type);
    if (k.length) return;
    k.done = true;
    // A queue that is empty does not exist in Redis: a configured key reads 0, not "absent".
    if (type == "none" && k.configured) sink.Add(kKeySize, {db_label, k.name}, 0);
  }

  static constexpr std::size_t kNoPage = ~std::size_t{0};

  // Adds the keys matching the pattern to keys_, bounded by scan_max_keys and scan_deadline_.
  // `first_page`: the index of the pattern's first SCAN page in prepared_ (or kNoPage).
  Status Scan(ScrapeContext& ctx, MetricSink& sink, const RedisKeyCheck& c, std::size_t first_page) {
    const auto& s = *ctx.settings;
    std::string cursor = "0";
    long examined = 0;
    bool truncated = false;
    std::unordered_set<std::string> seen;  // SCAN may return a key more than once
    for (bool first = true;; first = false) {
      RedisReply fetched;
      Status st;
      RedisReply* r = &fetched;
      if (first && first_page != kNoPage) {
        st = prepared_.status(first_page);
        r = &prepared_.reply(first_page);
      } else {
        st = ctx.redis->Command({"SCAN", cursor, "MATCH", c.key, "COUNT", std::to_string(s.redis_scan_count)},
                                ctx.deadline, fetched);
      }
      if (!st.ok()) return st;
      if (r->type != RedisReply::Type::kArray || r->elements.size() != 2 ||
          r->elements[1].type != RedisReply::Type::kArray)
        return Status::Error(ErrorReason::kProtocol, "SCAN: expected [cursor, keys]");
      cursor = r->elements[0].str;
      for (auto& k : r->elements[1].elements) {
        if (seen.count(k.str)) continue;
        if (examined >= s.redis_scan_max_keys) {
          truncated = true;
          break;
        }
        ++examined;
        seen.insert(k.str);
        if (listed_.insert(k.str).second) keys_.push_back({k.str, false});
      }
      if (truncated || cursor == "0") break;
      if (std::chrono::steady_clock::now() >= scan_deadline_) {
        truncated = true;
        break;
      }
    }
    sink.Add(kTruncated, {DbLabel(c.db), c.key}, truncated ? 1 : 0);
    sink.Add(kScanned, {DbLabel(c.db), c.key}, static_cast<double>(examined));
    return Status::Ok();
  }

  Deadline scan_deadline_{};
  // The shared round trip: TYPE of the configured keys and of found_before_, then the first SCAN
  // page of each pattern (from first_scan_ on), all in database prepared_db_.
  Round prepared_;
  std::unordered_map<std::string_view, std::size_t> prepared_types_;  // key → its TYPE in prepared_
  std::size_t first_scan_ = 0;
  std::size_t prepared_scans_ = 0;
  int prepared_db_ = 0;
  bool has_prepared_ = false;
  std::vector<std::string> found_before_;  // keys the patterns found in the previous collection
  // Reused between collections to keep their capacity.
  std::vector<Key> keys_;
  std::unordered_set<std::string> listed_;
  Round round_;
  std::vector<std::size_t> pending_;
};

const CollectorRegistration kRegistration{{
    .name = "keys",
    .kind = TargetKind::kRedis,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "Configured key checks: TYPE then the matching length command (LLEN, SCARD, ZCARD, "
            "HLEN, XLEN, STRLEN) per key; patterns via bounded SCAN.",
    .factory = [] { return std::make_unique<KeysCollector>(); },
}};

}  // namespace
}  // namespace runbook::redis
