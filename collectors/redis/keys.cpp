// Key checks: the size of configured keys (queue depth) and of keys matching patterns.
// TYPE first, then the length command of that type, so no check ever makes Redis answer with an
// error (WRONGTYPE would count in the server's errorstats). Patterns are expanded with SCAN,
// bounded by scan_max_keys keys and by half of the time left when the collector starts.
// Per database, every TYPE goes out in one pipeline and every length command in a second one:
// two round trips plus the SCAN pages, however many keys.
#include <algorithm>
#include <span>
#include <unordered_set>

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

class KeysCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    const auto& s = *ctx.settings;
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
      status = CheckDb(ctx, sink, db, std::span(checks).subspan(i, end - i));
      i = end;
    }
    if (current != s.redis_db && ctx.redis) {
      RedisReply r;
      auto back = ctx.redis->Command({"SELECT", std::to_string(s.redis_db)}, ctx.deadline, r);
      if (status.ok()) status = back;
    }
    return status;
  }

 private:
  // The keys of one database: configured keys first (a missing one reads 0), then what the
  // patterns found; a key is checked once even when several checks name it.
  Status CheckDb(ScrapeContext& ctx, MetricSink& sink, int db, std::span<const RedisKeyCheck* const> checks) {
    keys_.clear();
    listed_.clear();
    for (const auto* c : checks)
      if (!c->pattern && listed_.insert(c->key).second) keys_.push_back({c->key, true});
    for (const auto* c : checks)
      if (c->pattern)
        if (auto st = Scan(ctx, sink, *c); !st.ok()) return st;
    if (keys_.empty()) return Status::Ok();

    commands_.clear();
    for (const auto& k : keys_) commands_.push_back({"TYPE", k.name});
    if (auto st = ctx.redis->Pipeline(commands_, ctx.deadline, replies_); !st.ok()) return st;
    commands_.clear();
    checked_.clear();
    const std::string db_label = DbLabel(db);
    for (std::size_t i = 0; i < keys_.size(); ++i) {
      const std::string& type = replies_[i].str;
      if (type == "none") {
        // A queue that is empty does not exist in Redis: a configured key reads 0, not "absent".
        if (keys_[i].configured) sink.Add(kKeySize, {db_label, keys_[i].name}, 0);
        continue;
      }
      if (const char* cmd = LengthCommand(type)) {
        commands_.push_back({cmd, keys_[i].name});
        checked_.push_back(i);
      }
    }
    if (auto st = ctx.redis->Pipeline(commands_, ctx.deadline, replies_); !st.ok()) return st;
    for (std::size_t j = 0; j < checked_.size(); ++j) {
      if (replies_[j].type != RedisReply::Type::kInteger)
        return Status::Error(ErrorReason::kProtocol, commands_[j][0] + ": expected an integer");
      sink.Add(kKeySize, {db_label, keys_[checked_[j]].name}, static_cast<double>(replies_[j].integer));
    }
    return Status::Ok();
  }

  // Adds the keys matching the pattern to keys_, bounded by scan_max_keys and scan_deadline_.
  Status Scan(ScrapeContext& ctx, MetricSink& sink, const RedisKeyCheck& c) {
    const auto& s = *ctx.settings;
    std::string cursor = "0";
    long examined = 0;
    bool truncated = false;
    std::unordered_set<std::string> seen;  // SCAN may return a key more than once
    for (;;) {
      RedisReply r;
      auto st = ctx.redis->Command(
          {"SCAN", cursor, "MATCH", c.key, "COUNT", std::to_string(s.redis_scan_count)}, ctx.deadline, r);
      if (!st.ok()) return st;
      if (r.type != RedisReply::Type::kArray || r.elements.size() != 2 ||
          r.elements[1].type != RedisReply::Type::kArray)
        return Status::Error(ErrorReason::kProtocol, "SCAN: expected [cursor, keys]");
      cursor = r.elements[0].str;
      for (auto& k : r.elements[1].elements) {
        if (seen.count(k.str)) continue;
        if (examined >= s.redis_scan_max_keys) {
          truncated = true;
          break;
        }
        ++examined;
        seen.insert(k.str);
        if (listed_.insert(k.str).second) keys_.push_back({std::move(k.str), false});
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

  struct Key {
    std::string name;
    bool configured;
  };
  Deadline scan_deadline_{};
  // Reused between collections to keep their capacity.
  std::vector<Key> keys_;
  std::unordered_set<std::string> listed_;
  std::vector<std::vector<std::string>> commands_;
  std::vector<RedisReply> replies_;
  std::vector<std::size_t> checked_;
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
