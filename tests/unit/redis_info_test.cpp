// INFO parsing and its mapping to redis_exporter's names, on the captured Redis 7.0 fixture and
// the derived Dragonfly and Valkey ones.
#include <doctest/doctest.h>

#include <cmath>

#include "../../collectors/redis/redis_info.h"
#include "pg_fixture.h"
#include "redis_fixture.h"

namespace redis_info_test {

using namespace runbook;
using runbook::redis::ParseNumber;
using runbook::redis::ParseRedisInfo;

namespace {

std::string Info(const std::string& dir) {
  return testing::ReadFile(testing::TestsDir() / "fixtures" / "redis" / dir / "info.txt");
}

// "name{labels}" → value, from the exposition of the info families.
std::string Published(const std::string& info_text, std::size_t max_commands = 200) {
  MetricSink sink(Labels{{"target", "t"}});
  redis::PublishRedisInfo(ParseRedisInfo(info_text), sink, max_commands);
  for (const auto& e : sink.errors()) FAIL_CHECK(e);
  return testing::Exposition(sink.Take());
}

bool HasLine(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("redis INFO is parsed by section with CRLF lines") {
  auto info = ParseRedisInfo(
      "# Server\r\nredis_version:7.0.15\r\nos:Linux 6.1 x86_64\r\n\r\n# Keyspace\r\n"
      "db0:keys=6,expires=1,avg_ttl=3599796\r\nnot a field\r\n# Empty\r\n");
  REQUIRE(info.Find("server", "redis_version"));
  CHECK(*info.Find("server", "redis_version") == "7.0.15");
  CHECK(*info.Find("server", "os") == "Linux 6.1 x86_64");  // the value keeps its colons and spaces
  CHECK(*info.Find("keyspace", "db0") == "keys=6,expires=1,avg_ttl=3599796");
  CHECK_FALSE(info.Find("server", "missing"));
  auto pairs = redis::ParseInfoPairs("keys=6,expires=1,avg_ttl=3599796");
  REQUIRE(pairs.size() == 3);
  CHECK(pairs[2] == std::pair<std::string_view, std::string_view>{"avg_ttl", "3599796"});
}

TEST_CASE("redis INFO numbers are whole decimal values") {
  CHECK(ParseNumber("12") == 12);
  CHECK(ParseNumber("-1") == -1);
  CHECK(ParseNumber("0.65") == doctest::Approx(0.65));
  CHECK_FALSE(ParseNumber("ok"));
  CHECK_FALSE(ParseNumber("1.19M"));
  CHECK_FALSE(ParseNumber("100.15%"));
  CHECK_FALSE(ParseNumber(""));
  CHECK_FALSE(ParseNumber("0x10"));
  CHECK_FALSE(ParseNumber("inf"));
  CHECK(ParseNumber("+5") == 5);
  CHECK(ParseNumber("1.5e3") == 1500);
  CHECK(ParseNumber(".5") == 0.5);
  CHECK_FALSE(ParseNumber("+-5"));
  CHECK_FALSE(ParseNumber("+"));
  CHECK_FALSE(ParseNumber("-"));
  CHECK_FALSE(ParseNumber("1e"));
  CHECK_FALSE(ParseNumber("1e400"));  // out of range
  CHECK_FALSE(ParseNumber("1-2"));
}

TEST_CASE("redis INFO parsed again into the same object holds only the new text") {
  redis::RedisInfo info;
  const std::string first =
      "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:10\r\n# Clients\r\nconnected_clients:3\r\n"
      "# Stats\r\ntotal_commands_processed:5\r\n# Keyspace\r\ndb0:keys=1\r\ndb3:keys=2\r\n";
  ParseRedisInfo(first, info);
  CHECK(info.sections.size() == 4);
  CHECK(*info.Find("stats", "total_commands_processed") == "5");
  // Fewer sections, a repeated header that continues its section, a repeated field (the first
  // counts), fields out of order, and a field before any header.
  const std::string second =
      "orphan:1\n# KEYSPACE\ndb9:keys=4\ndb1:keys=7\n# Server\nredis_version:7.2.0\n"
      "# Keyspace\ndb5:keys=8\ndb1:keys=99\n";
  ParseRedisInfo(second, info);
  REQUIRE(info.sections.size() == 3);
  CHECK(*info.Find("default", "orphan") == "1");
  CHECK(*info.Find("server", "redis_version") == "7.2.0");
  CHECK_FALSE(info.Find("server", "uptime_in_seconds"));
  CHECK_FALSE(info.FindSection("clients"));
  CHECK_FALSE(info.Find("stats", "total_commands_processed"));
  CHECK(*info.Find("keyspace", "db1") == "keys=7");
  const auto* ks = info.FindSection("keyspace");
  REQUIRE(ks);
  std::vector<std::string_view> dbs;
  for (const auto& [field, value] : ks->fields) dbs.push_back(field);
  CHECK(dbs == std::vector<std::string_view>{"db1", "db5", "db9"});
  // The same as a fresh parse, published.
  MetricSink reused, fresh;
  redis::PublishRedisInfo(info, reused);
  redis::PublishRedisInfo(ParseRedisInfo(second), fresh);
  CHECK(testing::Exposition(reused.Take()) == testing::Exposition(fresh.Take()));
}

TEST_CASE("redis INFO parsed again reuses the previous sort only where it still sorts the fields") {
  // The parser tries the permutation that sorted the previous text's section first.
  auto fields = [](const redis::RedisInfo& info) {
    std::vector<std::string> out;
    for (const auto& s : info.sections)
      for (const auto& [k, v] : s.fields) out.push_back(s.name + "." + std::string(k) + "=" + std::string(v));
    return out;
  };
  const std::string texts[] = {
      "# Stats\nb:1\na:2\nc:3\n",
      "# Stats\nb:4\na:5\nc:6\n",       // the same order: the kept permutation applies
      "# Stats\nc:7\na:8\nb:9\n",       // another order of as many fields
      "# Stats\na:1\na:2\nb:3\n",       // as many lines, one field repeated (the first counts)
      "# Stats\na:1\nb:2\nc:3\n",       // after a text with a repeated field
      "# Stats\nb:1\na:2\nc:3\nd:4\n",  // one field more
  };
  redis::RedisInfo reused;
  for (const auto& text : texts) {
    CAPTURE(text);
    ParseRedisInfo(text, reused);
    CHECK(fields(reused) == fields(ParseRedisInfo(text)));
  }
  CHECK(fields(reused) == std::vector<std::string>{"stats.a=2", "stats.b=1", "stats.c=3", "stats.d=4"});
}

TEST_CASE("redis Redis 7.0 INFO maps to redis_exporter's names in base units") {
  std::string m = Published(Info("7.0/default"));
  // connected_clients:2
  CHECK(HasLine(m, "redis_connected_clients{target=\"t\"} 2"));
  // used_memory:1616728
  CHECK(HasLine(m, "redis_memory_used_bytes{target=\"t\"} 1616728"));
  // rdb_last_bgsave_status:ok
  CHECK(HasLine(m, "redis_rdb_last_bgsave_status{target=\"t\"} 1"));
  // total_connections_received:27, a counter
  CHECK(HasLine(m, "redis_connections_received_total{target=\"t\"} 27"));
  CHECK(m.find("# TYPE redis_connections_received_total counter") != std::string::npos);
  // db0:keys=8,expires=1,avg_ttl=3180550 (milliseconds)
  CHECK(HasLine(m, "redis_db_keys{db=\"db0\",target=\"t\"} 8"));
  CHECK(HasLine(m, "redis_db_keys_expiring{db=\"db0\",target=\"t\"} 1"));
  CHECK(HasLine(m, "redis_db_avg_ttl_seconds{db=\"db0\",target=\"t\"} 3180.55"));
  // errorstat_WRONGTYPE:count=1
  CHECK(HasLine(m, "redis_errors_total{err=\"WRONGTYPE\",target=\"t\"} 1"));
  // cmdstat_llen:calls=325,usec=288,...
  CHECK(HasLine(m, "redis_commands_total{cmd=\"llen\",target=\"t\"} 325"));
  CHECK(HasLine(m, "redis_commands_duration_seconds_total{cmd=\"llen\",target=\"t\"} 0.000288"));
  // Strings and *_human fields are not numbers and give no family.
  CHECK(m.find("used_memory_human") == std::string::npos);
  CHECK(m.find("redis_run_id") == std::string::npos);
  CHECK(m.find("run_id=") == std::string::npos);  // no churning label
}

TEST_CASE("redis commandstats are bounded to the most called commands") {
  std::string m = Published(Info("7.0/default"), 2);
  CHECK(HasLine(m, "redis_commands_total{cmd=\"type\",target=\"t\"} 1146"));
  CHECK(HasLine(m, "redis_commands_total{cmd=\"llen\",target=\"t\"} 325"));
  CHECK(m.find("redis_commands_total{cmd=\"info\"") == std::string::npos);
}

TEST_CASE("redis a failed status field reads 0 and Valkey's server_mode is the mode") {
  std::string m = Published(Info("valkey-8.0/derived"));
  CHECK(HasLine(m, "redis_rdb_last_bgsave_status{target=\"t\"} 0"));  // rdb_last_bgsave_status:err
  CHECK(m.find("redis_mode=\"standalone\",redis_version=\"7.2.4\"") != std::string::npos);
  CHECK(HasLine(m, "redis_db_keys{db=\"db3\",target=\"t\"} 10"));  // subexpiry= is ignored
  CHECK(HasLine(m, "redis_latest_fork_seconds{target=\"t\"} 0.00035"));
}

TEST_CASE("redis Dragonfly INFO parses without made-up values") {
  std::string m = Published(Info("dragonfly-1.x/derived"));
  CHECK(HasLine(m, "redis_memory_used_bytes{target=\"t\"} 2279808"));
  CHECK(HasLine(m, "redis_db_keys{db=\"db0\",target=\"t\"} 3"));
  CHECK(m.find("redis_db_avg_ttl_seconds") == std::string::npos);          // avg_ttl=-1
  CHECK(m.find("redis_rejected_connections_total") == std::string::npos);  // rejected_connections:-1
  CHECK(m.find("redis_instantaneous_input_bytes_per_second") == std::string::npos);
  CHECK(m.find("redis_errors_total") == std::string::npos);  // no errorstat_ prefix
}

TEST_CASE("redis a numeric field that is not a number is a data error and no crash") {
  MetricSink sink;
  redis::PublishRedisInfo(ParseRedisInfo("# Clients\r\nconnected_clients:many\r\n"), sink);
  REQUIRE(sink.errors().size() == 1);
  CHECK(sink.size() == 0);
}

TEST_CASE("redis databases without keys get redis_db_keys 0 up to the configured count, bounded") {
  const std::string info =
      "# Keyspace\r\ndb0:keys=6,expires=1,avg_ttl=5\r\ndb2:keys=3,expires=0,avg_ttl=0\r\n";
  MetricSink sink(Labels{{"target", "t"}});
  redis::PublishRedisInfo(ParseRedisInfo(info), sink, 200, 4);
  auto text = testing::Exposition(sink.Take());
  CHECK(HasLine(text, R"(redis_db_keys{db="db0",target="t"} 6)"));
  CHECK(HasLine(text, R"(redis_db_keys{db="db1",target="t"} 0)"));
  CHECK(HasLine(text, R"(redis_db_keys{db="db2",target="t"} 3)"));
  CHECK(HasLine(text, R"(redis_db_keys_expiring{db="db3",target="t"} 0)"));
  CHECK(text.find("db4") == std::string::npos);
  CHECK(Published(info).find(R"(db="db1")") == std::string::npos);  // without CONFIG: INFO alone

  MetricSink many;
  redis::PublishRedisInfo(ParseRedisInfo(info), many, 200, 1 << 20);
  auto fams = many.Take();
  for (const auto& f : fams)
    if (f.name == "redis_db_keys") CHECK(f.size() == redis::kMaxZeroFilledDatabases);
}

TEST_CASE("redis latencystats become a summary only for commands with commandstats; bad ones are errors") {
  const std::string info =
      "# Commandstats\r\n"
      "cmdstat_get:calls=4,usec=10,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\n"
      "cmdstat_set:calls=2,usec=6,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n"
      "# Latencystats\r\n"
      "latency_percentiles_usec_get:p50=1.003,p99=2.007,p99.9=5.023\r\n"
      "latency_percentiles_usec_del:p50=1.003\r\n"  // no commandstats line: no summary
      "latency_percentiles_usec_set:p50=x\r\n";
  MetricSink sink(Labels{{"target", "t"}});
  redis::PublishRedisInfo(ParseRedisInfo(info), sink);
  REQUIRE(sink.errors().size() == 1);
  CHECK(sink.errors()[0] == "latency_percentiles_usec_set: not a percentile: p50=x");
  auto text = testing::Exposition(sink.Take());
  CHECK(HasLine(text, "# TYPE redis_latency_percentiles_usec summary"));
  CHECK(HasLine(text, R"(redis_latency_percentiles_usec{cmd="get",target="t",quantile="99.9"} 5.023)"));
  CHECK(HasLine(text, R"(redis_latency_percentiles_usec_sum{cmd="get",target="t"} 10)"));
  CHECK(HasLine(text, R"(redis_latency_percentiles_usec_count{cmd="get",target="t"} 4)"));
  CHECK(text.find(R"(redis_latency_percentiles_usec{cmd="del")") == std::string::npos);
  CHECK(text.find(R"(redis_latency_percentiles_usec{cmd="set")") == std::string::npos);
}

}  // namespace redis_info_test
