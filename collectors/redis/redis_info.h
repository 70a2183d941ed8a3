#pragma once
// INFO parsing shared by the Redis collectors and their unit tests. Pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runbook/metric_sink.h"

namespace runbook::redis {

// "# Section" headers and "field:value" lines (CRLF or LF). Section names are lower-cased;
// fields keep their case (errorstat_ERR). Lines without ':' and empty sections are skipped; a
// repeated header continues its section and of a repeated field the first is kept.
// Fields and values are views into the text given to ParseRedisInfo, which must outlive them.
struct RedisInfo {
  struct Section {
    std::string name;
    std::vector<std::pair<std::string_view, std::string_view>> fields;  // (field, value) sorted by field
    const std::string_view* Find(std::string_view field) const;
    // Kept by ParseRedisInfo for the next text: the permutation that sorted these fields (INFO
    // lists a section's fields in the same order every time) and a buffer.
    std::vector<std::uint32_t> order;
    std::vector<std::pair<std::string_view, std::string_view>> scratch;
  };
  std::vector<Section> sections;  // in the order of the text
  const Section* FindSection(std::string_view name) const;
  const std::string_view* Find(std::string_view section, std::string_view field) const;
};
RedisInfo ParseRedisInfo(std::string_view text);
// The same into `info`, whose buffers are reused (a collector keeps one from one INFO to the next).
void ParseRedisInfo(std::string_view text, RedisInfo& info);

// "keys=6,expires=1,avg_ttl=3599796" → {keys: 6, ...}, in order (views into text).
std::vector<std::pair<std::string_view, std::string_view>> ParseInfoPairs(std::string_view text);

// A whole value as a number ("0.65", "-1", "12"); nullopt for "ok", "1.19M", "100.15%", "".
std::optional<double> ParseNumber(std::string_view text);

// Key of ScrapeContext::shared: the `databases` setting, from the config collector.
inline constexpr std::string_view kSharedDatabases = "redis.databases";
// At most this many databases get zero-filled redis_db_keys series.
inline constexpr int kMaxZeroFilledDatabases = 1024;

// Writes the families of the `info` collector. At most `max_commands` commands (by calls)
// get commandstats series. With `databases` > 0 (CONFIG GET databases), every database below it
// that INFO keyspace does not list gets redis_db_keys and redis_db_keys_expiring 0, as
// redis_exporter publishes them (up to kMaxZeroFilledDatabases).
void PublishRedisInfo(const RedisInfo& info, MetricSink& sink, std::size_t max_commands = 200,
                      int databases = 0);

}  // namespace runbook::redis
