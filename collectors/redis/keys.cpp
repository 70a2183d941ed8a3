// Key checks: the size of configured keys (queue depth) and of keys matching patterns.
// TYPE first, then the length command of that type, so no check ever makes Redis answer with an
// error (WRONGTYPE would count in the server's errorstats). Patterns are expanded with SCAN,
// bounded by scan_max_keys keys and by half of the time left when the collector starts.
#include <algorithm>
#include <set>

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
    published_.clear();
    // The session's own database first, then the others in order: one SELECT per database.
    std::vector<const RedisKeyCheck*> checks;
    for (const auto& c : s.redis_keys) checks.push_back(&c);
    std::stable_sort(checks.begin(), checks.end(), [&](const RedisKeyCheck* a, const RedisKeyCheck* b) {
      return std::make_pair(a->db != s.redis_db, a->db) < std::make_pair(b->db != s.redis_db, b->db);
    });
    int current = s.redis_db;
    Status status;
    for (const auto* c : checks) {
      if (c->db != current) {
        RedisReply r;
        status = ctx.redis->Command({"SELECT", std::to_string(c->db)}, ctx.deadline, r);
        if (!status.ok()) break;
        current = c->db;
      }
      status = c->pattern ? Scan(ctx, sink, *c) : Single(ctx, sink, c->db, c->key, true);
      if (!status.ok()) break;
    }
    if (current != s.redis_db) {
      RedisReply r;
      auto back = ctx.redis->Command({"SELECT", std::to_string(s.redis_db)}, ctx.deadline, r);
      if (status.ok()) status = back;
    }
    return status;
  }

 private:
  Status Single(ScrapeContext& ctx, MetricSink& sink, int db, const std::string& key, bool configured) {
    if (!published_.insert({db, key}).second) return Status::Ok();  // a pattern found it again
    RedisReply type;
    if (auto st = ctx.redis->Command({"TYPE", key}, ctx.deadline, type); !st.ok()) return st;
    if (type.str == "none") {
      // A queue that is empty does not exist in Redis: a configured key reads 0, not "absent".
      if (configured) sink.Add(kKeySize, {DbLabel(db), key}, 0);
      return Status::Ok();
    }
    const char* cmd = LengthCommand(type.str);
    if (!cmd) return Status::Ok();
    RedisReply len;
    if (auto st = ctx.redis->Command({cmd, key}, ctx.deadline, len); !st.ok()) return st;
    if (len.type != RedisReply::Type::kInteger)
      return Status::Error(ErrorReason::kProtocol, std::string(cmd) + ": expected an integer");
    sink.Add(kKeySize, {DbLabel(db), key}, static_cast<double>(len.integer));
    return Status::Ok();
  }

  Status Scan(ScrapeContext& ctx, MetricSink& sink, const RedisKeyCheck& c) {
    const auto& s = *ctx.settings;
    std::string cursor = "0";
    long examined = 0;
    bool truncated = false;
    std::set<std::string> seen;  // SCAN may return a key more than once
    for (;;) {
      RedisReply r;
      auto st = ctx.redis->Command(
          {"SCAN", cursor, "MATCH", c.key, "COUNT", std::to_string(s.redis_scan_count)}, ctx.deadline, r);
      if (!st.ok()) return st;
      if (r.type != RedisReply::Type::kArray || r.elements.size() != 2 ||
          r.elements[1].type != RedisReply::Type::kArray)
        return Status::Error(ErrorReason::kProtocol, "SCAN: expected [cursor, keys]");
      cursor = r.elements[0].str;
      for (const auto& k : r.elements[1].elements) {
        if (!seen.insert(k.str).second) continue;
        if (examined >= s.redis_scan_max_keys) {
          truncated = true;
          break;
        }
        ++examined;
        if (auto st2 = Single(ctx, sink, c.db, k.str, false); !st2.ok()) return st2;
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
  std::set<std::pair<int, std::string>> published_;
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
