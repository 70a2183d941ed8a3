// The rule engine's benchmark (issue 5 §8): ~100k series shaped like our collectors' output and
// 1,000 rules shaped like the rule pack, generated deterministically from a seed. Prints figures;
// asserts nothing. tests/bench/bench_rules.sh drives it and puts Prometheus next to it.
//
//   bench_rules gen WORKDIR [SEED]     writes WORKDIR/rules.yml, rules_plain.yml (annotations
//                                      without templates) and series.prom (collection 0)
//   bench_rules run RULE_FILE [SEED]   ours: ingest + evaluation rounds on a fake clock
//   bench_rules serve PORT [SEED]      /metrics: the same series, one collection per scrape
//
// Environment for `run`: WARMUP (collections before measuring, default 45: ranges up to 10m are
// full), ROUNDS (measured rounds, default 15), STEP_MS (simulated interval, default 15000).
#include <civetweb.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "runbook/rules.h"
#include "runbook/series_store.h"

using namespace runbook;

namespace {

std::uint64_t Mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
double Unit(std::uint64_t a, std::uint64_t b) {
  return static_cast<double>(Mix(a * 1000003ULL ^ Mix(b)) >> 11) / 9007199254740992.0;
}

enum class Product { kPostgres, kRedis, kPgBouncer };
enum class Kind { kGauge, kCounter, kUp };

struct Family {
  const char* name;
  Product product;
  const char* dims;  // which label combination each target has (see Dims)
  Kind kind;
  double scale;  // gauges: typical value; counters: typical rate per second
};

// Our collectors' families (names as collectors/*/README.md export them), ~1,100 series per
// PostgreSQL target, ~200 per Redis and ~220 per PgBouncer target.
const std::vector<Family>& Families() {
  static const std::vector<Family> f = {
      {"pg_up", Product::kPostgres, "", Kind::kUp, 1},
      {"pg_connections_utilization_ratio", Product::kPostgres, "", Kind::kGauge, 0.5},
      {"pg_replication_lag_seconds", Product::kPostgres, "", Kind::kGauge, 5},
      {"pg_settings_max_connections", Product::kPostgres, "", Kind::kGauge, 100},
      {"pg_postmaster_start_time_seconds", Product::kPostgres, "", Kind::kGauge, 1e9},
      {"pg_replication_is_replica", Product::kPostgres, "", Kind::kGauge, 0.5},
      {"runbook_exporter_collection_duration_seconds", Product::kPostgres, "", Kind::kGauge, 0.01},
      {"pg_stat_database_numbackends", Product::kPostgres, "db", Kind::kGauge, 10},
      {"pg_stat_database_xact_commit", Product::kPostgres, "db", Kind::kCounter, 100},
      {"pg_stat_database_xact_rollback", Product::kPostgres, "db", Kind::kCounter, 2},
      {"pg_stat_database_blks_read", Product::kPostgres, "db", Kind::kCounter, 50},
      {"pg_stat_database_blks_hit", Product::kPostgres, "db", Kind::kCounter, 5000},
      {"pg_stat_database_tup_returned", Product::kPostgres, "db", Kind::kCounter, 3000},
      {"pg_stat_database_tup_fetched", Product::kPostgres, "db", Kind::kCounter, 1000},
      {"pg_stat_database_tup_inserted", Product::kPostgres, "db", Kind::kCounter, 100},
      {"pg_stat_database_tup_updated", Product::kPostgres, "db", Kind::kCounter, 80},
      {"pg_stat_database_tup_deleted", Product::kPostgres, "db", Kind::kCounter, 10},
      {"pg_stat_database_conflicts", Product::kPostgres, "db", Kind::kCounter, 0.01},
      {"pg_stat_database_temp_files", Product::kPostgres, "db", Kind::kCounter, 0.1},
      {"pg_stat_database_temp_bytes", Product::kPostgres, "db", Kind::kCounter, 1e5},
      {"pg_stat_database_deadlocks", Product::kPostgres, "db", Kind::kCounter, 0.01},
      {"pg_database_size_bytes", Product::kPostgres, "db", Kind::kGauge, 1e9},
      {"pg_stat_activity_count", Product::kPostgres, "db_state", Kind::kGauge, 20},
      {"pg_stat_activity_max_tx_duration", Product::kPostgres, "db_state", Kind::kGauge, 60},
      {"pg_stat_activity_oldest_query_seconds", Product::kPostgres, "db", Kind::kGauge, 60},
      {"pg_stat_activity_oldest_idle_in_transaction_seconds", Product::kPostgres, "db", Kind::kGauge, 30},
      {"pg_stat_activity_oldest_idle_seconds", Product::kPostgres, "db", Kind::kGauge, 600},
      {"pg_stat_activity_lock_waiting_backends", Product::kPostgres, "db", Kind::kGauge, 1},
      {"pg_locks_count", Product::kPostgres, "db_mode", Kind::kGauge, 10},
      {"pg_stat_user_tables_n_live_tup", Product::kPostgres, "db_table", Kind::kGauge, 1e6},
      {"pg_stat_user_tables_n_dead_tup", Product::kPostgres, "db_table", Kind::kGauge, 1e4},
      {"pg_stat_user_tables_seq_scan", Product::kPostgres, "db_table", Kind::kCounter, 1},
      {"pg_stat_user_tables_idx_scan", Product::kPostgres, "db_table", Kind::kCounter, 50},
      {"pg_stat_user_tables_n_tup_ins", Product::kPostgres, "db_table", Kind::kCounter, 10},
      {"redis_up", Product::kRedis, "", Kind::kUp, 1},
      {"redis_connected_clients", Product::kRedis, "", Kind::kGauge, 100},
      {"redis_blocked_clients", Product::kRedis, "", Kind::kGauge, 2},
      {"redis_memory_used_bytes", Product::kRedis, "", Kind::kGauge, 1e9},
      {"redis_memory_max_bytes", Product::kRedis, "", Kind::kGauge, 4e9},
      {"redis_connected_slaves", Product::kRedis, "", Kind::kGauge, 1},
      {"redis_uptime_in_seconds", Product::kRedis, "", Kind::kGauge, 1e6},
      {"redis_rdb_last_bgsave_status", Product::kRedis, "", Kind::kGauge, 1},
      {"redis_rejected_connections_total", Product::kRedis, "", Kind::kCounter, 0.01},
      {"redis_evicted_keys_total", Product::kRedis, "", Kind::kCounter, 1},
      {"redis_expired_keys_total", Product::kRedis, "", Kind::kCounter, 10},
      {"redis_keyspace_hits_total", Product::kRedis, "", Kind::kCounter, 1000},
      {"redis_keyspace_misses_total", Product::kRedis, "", Kind::kCounter, 50},
      {"redis_master_repl_offset", Product::kRedis, "", Kind::kCounter, 1e5},
      {"redis_commands_total", Product::kRedis, "cmd", Kind::kCounter, 20},
      {"redis_commands_duration_seconds_total", Product::kRedis, "cmd", Kind::kCounter, 0.01},
      {"redis_db_keys", Product::kRedis, "redis_db", Kind::kGauge, 1e5},
      {"redis_db_keys_expiring", Product::kRedis, "redis_db", Kind::kGauge, 1e4},
      {"redis_key_size", Product::kRedis, "key", Kind::kGauge, 1000},
      {"pgbouncer_up", Product::kPgBouncer, "", Kind::kUp, 1},
      {"pgbouncer_pools_client_active_connections", Product::kPgBouncer, "pool", Kind::kGauge, 20},
      {"pgbouncer_pools_client_waiting_connections", Product::kPgBouncer, "pool", Kind::kGauge, 1},
      {"pgbouncer_pools_server_active_connections", Product::kPgBouncer, "pool", Kind::kGauge, 10},
      {"pgbouncer_pools_server_idle_connections", Product::kPgBouncer, "pool", Kind::kGauge, 5},
      {"pgbouncer_pools_client_maxwait_seconds", Product::kPgBouncer, "pool", Kind::kGauge, 0.1},
      {"pgbouncer_stats_queries_pooled_total", Product::kPgBouncer, "database", Kind::kCounter, 100},
      {"pgbouncer_stats_queries_duration_seconds_total", Product::kPgBouncer, "database", Kind::kCounter, 1},
      {"pgbouncer_stats_client_wait_seconds_total", Product::kPgBouncer, "database", Kind::kCounter, 0.1},
      {"pgbouncer_stats_received_bytes_total", Product::kPgBouncer, "database", Kind::kCounter, 1e5},
      {"pgbouncer_stats_sent_bytes_total", Product::kPgBouncer, "database", Kind::kCounter, 1e6},
      {"pgbouncer_databases_current_connections", Product::kPgBouncer, "database", Kind::kGauge, 20},
      {"pgbouncer_databases_max_connections", Product::kPgBouncer, "database", Kind::kGauge, 100},
  };
  return f;
}

// The label combinations of one target for a family's `dims`; the first label of each is the
// one rules group by besides target.
std::vector<Labels> Dims(const std::string& dims) {
  static const char* kStates[] = {
      "active",  "idle", "idle in transaction", "idle in transaction (aborted)", "fastpath function call",
      "disabled"};
  static const char* kModes[] = {
      "accesssharelock", "rowsharelock",          "rowexclusivelock", "shareupdateexclusivelock",
      "sharelock",       "sharerowexclusivelock", "exclusivelock",    "accessexclusivelock"};
  auto datname = [](int d) { return d == 0 ? std::string("postgres") : "app_" + std::to_string(d); };
  std::vector<Labels> out;
  if (dims.empty()) {
    out.push_back({});
  } else if (dims == "db") {
    for (int d = 0; d < 8; ++d)
      out.push_back({{"datname", datname(d)}, {"datid", std::to_string(16384 + d)}});
  } else if (dims == "db_state") {
    for (int d = 0; d < 8; ++d)
      for (const char* s : kStates) out.push_back({{"datname", datname(d)}, {"state", s}});
  } else if (dims == "db_mode") {
    for (int d = 0; d < 8; ++d)
      for (const char* m : kModes) out.push_back({{"datname", datname(d)}, {"mode", m}});
  } else if (dims == "db_table") {
    for (int d = 0; d < 8; ++d)
      for (int t = 0; t < 20; ++t)
        out.push_back(
            {{"datname", datname(d)}, {"schemaname", "public"}, {"relname", "table_" + std::to_string(t)}});
  } else if (dims == "cmd") {
    for (int c = 0; c < 60; ++c) out.push_back({{"cmd", "cmd" + std::to_string(c)}});
  } else if (dims == "redis_db") {
    for (int d = 0; d < 16; ++d) out.push_back({{"db", "db" + std::to_string(d)}});
  } else if (dims == "key") {
    for (int k = 0; k < 30; ++k) out.push_back({{"db", "db0"}, {"key", "queue:" + std::to_string(k)}});
  } else if (dims == "pool") {
    for (int d = 0; d < 10; ++d)
      for (const char* u : {"app", "report", "admin"})
        out.push_back({{"database", "db_" + std::to_string(d)}, {"user", u}});
  } else if (dims == "database") {
    for (int d = 0; d < 10; ++d) out.push_back({{"database", "db_" + std::to_string(d)}});
  }
  return out;
}

struct Target {
  std::string name;
  Product product;
};

std::vector<Target> Targets() {
  std::vector<Target> t;
  for (int i = 0; i < 70; ++i) t.push_back({"pg-" + std::to_string(i), Product::kPostgres});
  for (int i = 0; i < 60; ++i) t.push_back({"redis-" + std::to_string(i), Product::kRedis});
  for (int i = 0; i < 45; ++i) t.push_back({"pgbouncer-" + std::to_string(i), Product::kPgBouncer});
  return t;
}

struct SeriesSpec {
  std::size_t target;
  const Family* family;
  Labels metric;  // sorted by name, as a collection hands them to the store (label_order)
  std::uint64_t id;
};

std::vector<SeriesSpec> MakeSeries() {
  std::vector<SeriesSpec> out;
  auto targets = Targets();
  std::map<std::string, std::vector<Labels>> dims;
  for (std::size_t ti = 0; ti < targets.size(); ++ti) {
    for (const auto& f : Families()) {
      if (f.product != targets[ti].product) continue;
      auto [it, fresh] = dims.try_emplace(f.dims);
      if (fresh) it->second = Dims(f.dims);
      for (const auto& d : it->second) {
        SeriesSpec s{ti, &f, {{"__name__", f.name}, {"target", targets[ti].name}}, out.size()};
        s.metric.insert(s.metric.end(), d.begin(), d.end());
        SortLabels(s.metric);
        out.push_back(std::move(s));
      }
    }
  }
  return out;
}

// Value of series `s` at collection k (time t0 + k * step). One series in 2,000 is "hot": above
// every threshold the rules compare it with, so a realistic handful of alerts fire.
double Value(const SeriesSpec& s, std::uint64_t seed, long k, double step_s, double t0_s) {
  const Family& f = *s.family;
  const std::uint64_t id = s.id ^ (seed << 32);
  const bool hot = Mix(id) % 2000 == 0;
  const double base = hot ? 1.5 * f.scale : f.scale * Unit(id, 1);
  if (f.kind == Kind::kUp) return Mix(id ^ 77) % 40 == 0 ? 0 : 1;
  if (std::string_view(f.name) == "pg_postmaster_start_time_seconds")
    return std::floor(t0_s - 86400 * (1 + Unit(id, 2)));
  if (std::string_view(f.name) == "pg_replication_is_replica") return Mix(id) % 3 == 0 ? 1 : 0;
  if (f.kind == Kind::kGauge) return base * (0.99 + 0.02 * Unit(id, static_cast<std::uint64_t>(k) + 10));
  return std::floor(base *
                        (static_cast<double>(k) * step_s + 3 * Unit(id, static_cast<std::uint64_t>(k) + 10)) +
                    1000 * Unit(id, 3));
}

// ------------------------------------------------------------------ rules

struct RuleText {
  std::string group;
  std::string yaml;
};

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string Camel(std::string_view name) {
  std::string out;
  bool up = true;
  for (char c : name) {
    if (c == '_') {
      up = true;
      continue;
    }
    out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    up = false;
  }
  return out;
}

std::string Fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// 1,000 rules in groups of 20, per product, shaped like rules/runbook/*.rules.yml: thresholds
// as recording rules (with per-target overrides), rate recordings with `sum by`, comparisons
// one-to-one and with on()/group_left, max_over_time, increase, absent() per target, alerts
// with `for`, labels and annotations. `templates` false: annotations are plain text.
std::string MakeRules(bool templates) {
  const auto targets = Targets();
  std::map<Product, std::vector<std::string>> by_product;
  auto prefix = [](Product p) {
    return p == Product::kPostgres ? "postgres" : p == Product::kRedis ? "redis" : "pgbouncer";
  };
  auto first_target = [&](Product p, int n) {
    std::vector<std::string> out;
    for (const auto& t : targets)
      if (t.product == p) out.push_back(t.name);
    return out[static_cast<std::size_t>(n) % out.size()];
  };
  int pass = 0;
  auto alert = [&](const std::string& name, const std::string& expr, const char* for_, const char* severity,
                   const std::string& what) {
    std::string summary =
        templates ? "{{ $labels.target }}: " + what + " is {{ $value | humanize }}" : what + " is high";
    std::string description =
        templates ? "{{ $labels.target }} reports " + what + " = {{ printf \"%.2f\" $value }}."
                  : what + " crossed its threshold.";
    std::string y = "      - alert: " + name + "\n        expr: " + expr + "\n";
    if (for_[0]) y += std::string("        for: ") + for_ + "\n";
    y += std::string("        labels:\n          severity: ") + severity +
         "\n          team: dba\n          variant: p" + std::to_string(pass) + "\n";
    y += "        annotations:\n          summary: " + Quote(summary) +
         "\n          description: " + Quote(description) +
         "\n          runbook_url: " + Quote("rules/runbook/" + name + ".md") + "\n";
    return y;
  };
  auto record = [](const std::string& name, const std::string& expr) {
    return "      - record: " + name + "\n        expr: " + expr + "\n";
  };
  const char* severities[] = {"warning", "critical", "info"};
  const char* fors[] = {"5m", "1m", "", "10m"};
  const char* ranges[] = {"5m", "10m", "5m"};
  int total = 0;
  for (; total < 1000; ++pass) {
    const std::string p = "_p" + std::to_string(pass);
    const char* sev = severities[pass % 3];
    const char* range = ranges[pass % 3];
    for (const auto& f : Families()) {
      if (total >= 1000) break;
      auto& out = by_product[f.product];
      const std::string n = f.name;
      const auto dims = Dims(f.dims);
      // Sums keep the database (or pool) when a target has a few, as the rule pack's do.
      const std::string by =
          dims.front().empty() || dims.size() > 10 ? "target" : "target, " + dims.front().front().first;
      const std::string over = first_target(f.product, pass * 7 + 3);
      const std::string t = Fmt(1.2 * f.scale * (1 + pass * 0.1));
      auto add = [&](std::string y) {
        if (total < 1000) out.push_back(std::move(y)), ++total;
      };
      if (f.kind == Kind::kUp) {
        if (pass == 0) add(alert(Camel(n) + "Down", n + " == 0", "1m", "critical", n));
        add(alert(Camel(n) + "Absent", "absent(" + n + "{target=\"" + over + "\"})", "5m", "critical", n));
        continue;
      }
      if (f.kind == Kind::kGauge) {
        // Recorded warning and critical thresholds (passes 0 and 1), which later alerts reuse,
        // for families with a few series per target, as in thresholds.rules.yml.
        if (dims.size() <= 10) {
          const std::string thr = "runbook:" + n + ":threshold_p" + std::to_string(pass % 2);
          if (pass < 2)
            add(record(
                thr, n + "{target=\"" + over + "\"} * 0 + " + Fmt(2 * f.scale) + " or " + n + " * 0 + " + t));
          add(alert(Camel(n) + "High", n + " > " + thr, fors[pass % 4], sev, n));
        } else {
          add(alert(Camel(n) + "High", n + " > " + t, fors[pass % 4], sev, n));
        }
        add(alert(Camel(n) + "PeakHigh", "max_over_time(" + n + "[" + range + "]) > " + Fmt(1.3 * f.scale),
                  "", sev, n + " peak"));
        add(record("runbook:" + n + ":sum" + p, "sum by (" + by + ") (" + n + ")"));
      } else {
        const std::string rate = "runbook:" + n + ":rate" + range + p;
        const std::string thr = "runbook:" + n + ":rate_threshold" + p;
        add(record(rate, "sum by (" + by + ") (rate(" + n + "[" + range + "]))"));
        add(record(thr, "max by (target) (" + n + ") * 0 + " + Fmt(1.2 * f.scale * double(dims.size()))));
        add(alert(Camel(n) + "RateHigh", rate + " > on(target) group_left() " + thr, fors[pass % 4], sev,
                  n + " rate"));
        add(alert(Camel(n) + "IncreaseHigh",
                  "increase(" + n + "{target!=\"" + over + "\"}[" + range + "]) > " +
                      Fmt(1.3 * f.scale * (range[0] == '1' ? 600 : 300)),
                  "", sev, n + " increase"));
      }
    }
  }
  std::string yaml = "# Generated by tests/bench/bench_rules.cpp (deterministic).\ngroups:\n";
  for (auto& [product, rules] : by_product) {
    for (std::size_t i = 0; i < rules.size(); i += 20) {
      yaml +=
          "  - name: bench-" + std::string(prefix(product)) + "-" + std::to_string(i / 20) + "\n    rules:\n";
      for (std::size_t j = i; j < std::min(rules.size(), i + 20); ++j) yaml += rules[j];
    }
  }
  return yaml;
}

void AppendNumber(std::string& out, double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

std::string Exposition(const std::vector<SeriesSpec>& series, std::uint64_t seed, long k, double step_s,
                       double t0_s) {
  std::string out;
  out.reserve(series.size() * 110);
  for (const auto& s : series) {
    out += s.metric.front().second;
    out += '{';
    for (std::size_t i = 1; i < s.metric.size(); ++i) {
      if (i > 1) out += ',';
      out += s.metric[i].first;
      out += "=\"";
      out += s.metric[i].second;
      out += '"';
    }
    out += "} ";
    AppendNumber(out, Value(s, seed, k, step_s, t0_s));
    out += '\n';
  }
  return out;
}

// ------------------------------------------------------------------ measuring ours

long RssKb() {
  std::ifstream in("/proc/self/statm");
  long size = 0, resident = 0;
  in >> size >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  auto i = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

long EnvLong(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atol(v) : fallback;
}

// A rule's expression with numbers, quoted strings and metric-specific names folded, so that rules
// of the same shape add up (VERBOSE's time by shape).
std::string Shape(const std::string& expr) {
  std::string out;
  for (std::size_t i = 0; i < expr.size();) {
    const char c = expr[i];
    if (c == '"') {
      const std::size_t end = expr.find('"', i + 1);
      out += "S";
      i = end == std::string::npos ? expr.size() : end + 1;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      while (i < expr.size() && (std::isdigit(static_cast<unsigned char>(expr[i])) || expr[i] == '.')) ++i;
      out += "N";
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':') {
      std::size_t j = i;
      while (j < expr.size() &&
             (std::isalnum(static_cast<unsigned char>(expr[j])) || expr[j] == '_' || expr[j] == ':'))
        ++j;
      const std::string word = expr.substr(i, j - i);
      out += word.find('_') != std::string::npos || word.find(':') != std::string::npos ? "m" : word;
      i = j;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

int Run(const std::string& rule_file, std::uint64_t seed) {
  const long warmup = EnvLong("WARMUP", 45), rounds = EnvLong("ROUNDS", 15), step = EnvLong("STEP_MS", 15000);
  const TimestampMs t0 = 1'700'000'000'000;
  auto loaded = rules::LoadRuleFile(rule_file);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.c_str());
    return 1;
  }
  std::size_t nrules = 0;
  std::vector<const promql::Expr*> exprs;
  for (auto& g : loaded.groups) {
    g.interval_ms = step;
    nrules += g.rules.size();
    for (const auto& r : g.rules) exprs.push_back(r.expr.get());
  }
  const auto series = MakeSeries();
  const auto targets = Targets();
  std::vector<std::vector<const SeriesSpec*>> per_target(targets.size());
  for (const auto& s : series) per_target[s.target].push_back(&s);

  const long rss0 = RssKb();
  SeriesStore store;
  store.SetRetention(RetentionFor(exprs));
  long alerts_sent = 0;
  rules::ManagerOptions o;
  o.queryable = &store;
  o.appender = &store;
  o.notify = [&](const std::vector<Alert>& a) { alerts_sent += static_cast<long>(a.size()); };
  o.external_url = "http://bench:9187";
  o.default_interval_ms = step;
  rules::RuleManager manager(o);
  const std::size_t ngroups = loaded.groups.size();
  manager.Update(std::move(loaded.groups), t0);

  std::vector<double> wall, cpu, ingest, ingest_cpu;
  std::size_t samples_per_collection = 0;
  std::map<std::string, std::vector<double>> group_seconds;
  const bool verbose = std::getenv("VERBOSE") != nullptr;
  std::map<std::string, double> shape_seconds;  // VERBOSE: wall time by rule shape, all rounds
  for (long k = 0; k < warmup + rounds; ++k) {
    const TimestampMs t = t0 + k * step;
    auto i0 = std::chrono::steady_clock::now();
    double store_cpu = 0;  // the store's Ingest alone, without building the samples
    samples_per_collection = 0;
    for (std::size_t ti = 0; ti < targets.size(); ++ti) {
      std::vector<StoreSample> samples;
      samples.reserve(per_target[ti].size());
      for (const auto* s : per_target[ti])
        samples.push_back({s->metric, Value(*s, seed, k, double(step) / 1000, double(t0) / 1000)});
      const double s0 = CpuSeconds();
      store.Ingest(targets[ti].name, t, samples);
      store_cpu += CpuSeconds() - s0;
      samples_per_collection += samples.size();
    }
    auto i1 = std::chrono::steady_clock::now();
    const double c0 = CpuSeconds();
    manager.EvalDue(t);
    const double c1 = CpuSeconds();
    auto i2 = std::chrono::steady_clock::now();
    store.Compact(t);
    if (std::getenv("VERBOSE"))
      std::fprintf(stderr, "collection %ld: ingest %.1f ms, evaluation %.1f ms\n", k,
                   std::chrono::duration<double>(i1 - i0).count() * 1e3,
                   std::chrono::duration<double>(i2 - i1).count() * 1e3);
    if (k < warmup) continue;
    ingest.push_back(std::chrono::duration<double>(i1 - i0).count());
    ingest_cpu.push_back(store_cpu);
    wall.push_back(std::chrono::duration<double>(i2 - i1).count());
    cpu.push_back(c1 - c0);
    for (const auto& g : manager.Groups()) {
      group_seconds[g.name].push_back(g.evaluation_seconds);
      if (verbose)
        for (const auto& r : g.rules) shape_seconds[Shape(r.def.expr_text)] += r.evaluation_seconds;
    }
  }
  const long rss1 = RssKb();
  const auto st = store.stats();
  long firing = 0, pending = 0, errors = 0;
  for (const auto& g : manager.Groups()) {
    for (const auto& r : g.rules) {
      if (r.health == "err") {
        if (errors++ < 3) std::fprintf(stderr, "rule %s: %s\n", r.def.name.c_str(), r.last_error.c_str());
      }
      for (const auto& a : r.alerts) {
        firing += a.state == rules::AlertState::kFiring;
        pending += a.state == rules::AlertState::kPending;
      }
    }
  }
  if (std::getenv("VERBOSE")) {
    std::string err;
    std::map<std::string, long> per_name;
    store.Select({*promql::Matcher::Make(promql::Matcher::Op::kRegexMatch, "__name__", ".+", &err)}, 0,
                 std::numeric_limits<TimestampMs>::max(),
                 [&](const Labels& m, std::span<const promql::Point>) {
                   ++per_name[std::string(LabelValue(m, "__name__"))];
                 });
    std::vector<std::pair<double, std::string>> shapes;
    for (const auto& [shape, secs] : shape_seconds) shapes.emplace_back(secs / double(rounds), shape);
    std::sort(shapes.rbegin(), shapes.rend());
    for (const auto& [ms, shape] : shapes)
      std::fprintf(stderr, "%8.2f ms/round %s\n", ms * 1e3, shape.c_str());
    std::vector<std::pair<long, std::string>> top;
    for (const auto& [n, c] : per_name) top.emplace_back(c, n);
    std::sort(top.rbegin(), top.rend());
    for (std::size_t i = 0; i < top.size(); ++i)
      std::fprintf(stderr, "%8ld %s\n", top[i].first, top[i].second.c_str());
  }
  std::vector<std::pair<double, std::string>> slowest;
  for (const auto& [name, v] : group_seconds) slowest.emplace_back(Quantile(v, 0.5), name);
  std::sort(slowest.rbegin(), slowest.rend());
  // key=value lines: bench_rules.sh turns them into the report.
  std::printf(
      "series_generated=%zu\ntargets=%zu\nrules=%zu\ngroups=%zu\nwarmup=%ld\nrounds=%ld\nstep_ms=%ld\n",
      series.size(), targets.size(), nrules, ngroups, warmup, rounds, step);
  std::printf("round_wall_median_ms=%.2f\nround_wall_p90_ms=%.2f\nround_wall_max_ms=%.2f\n",
              Quantile(wall, 0.5) * 1e3, Quantile(wall, 0.9) * 1e3, Quantile(wall, 1) * 1e3);
  std::printf("round_cpu_median_ms=%.2f\nround_cpu_min_ms=%.2f\ningest_all_targets_median_ms=%.2f\n",
              Quantile(cpu, 0.5) * 1e3, cpu.empty() ? 0.0 : *std::min_element(cpu.begin(), cpu.end()) * 1e3,
              Quantile(ingest, 0.5) * 1e3);
  std::printf("ingest_store_cpu_all_targets_median_ms=%.2f\ningest_store_cpu_per_sample_ns=%.1f\n",
              Quantile(ingest_cpu, 0.5) * 1e3,
              Quantile(ingest_cpu, 0.5) * 1e9 / double(samples_per_collection));
  std::printf("store_series=%zu\nstore_samples=%zu\nstore_bytes=%zu\n", st.series, st.samples, st.bytes);
  std::printf("store_bytes_per_sample=%.1f\nstore_bytes_per_series=%.1f\n",
              double(st.bytes) / double(st.samples), double(st.bytes) / double(st.series));
  std::printf("rss_delta_kb=%ld\nrss_bytes_per_sample=%.1f\n", rss1 - rss0,
              double(rss1 - rss0) * 1024 / double(st.samples));
  std::printf("alerts_firing=%ld\nalerts_pending=%ld\nalerts_sent=%ld\nrule_errors=%ld\n", firing, pending,
              alerts_sent, errors);
  for (std::size_t i = 0; i < std::min<std::size_t>(5, slowest.size()); ++i)
    std::printf("slow_group=%s %.2f\n", slowest[i].second.c_str(), slowest[i].first * 1e3);
  return 0;
}

// ------------------------------------------------------------------ serving Prometheus

struct Server {
  std::vector<SeriesSpec> series;
  std::uint64_t seed;
  std::atomic<long> scrapes{0};
  double t0_s;
};

int HandleMetrics(mg_connection* conn, void* data) {
  auto* s = static_cast<Server*>(data);
  const long k = s->scrapes++;
  std::string body = Exposition(s->series, s->seed, k, 15, s->t0_s);
  mg_printf(conn, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %zu\r\n\r\n",
            body.size());
  mg_write(conn, body.data(), body.size());
  return 200;
}

std::atomic<bool> g_stop{false};

int Serve(const std::string& port, std::uint64_t seed) {
  Server server{MakeSeries(),
                seed,
                {},
                std::floor(double(std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count()))};
  std::string listen = "127.0.0.1:" + port;
  const char* options[] = {"listening_ports", listen.c_str(), "num_threads", "2", nullptr};
  mg_init_library(0);
  mg_context* ctx = mg_start(nullptr, nullptr, options);
  if (!ctx) {
    std::fprintf(stderr, "cannot listen on %s\n", listen.c_str());
    return 1;
  }
  mg_set_request_handler(ctx, "/metrics", HandleMetrics, &server);
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGINT, [](int) { g_stop = true; });
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  mg_stop(ctx);
  std::printf("scrapes=%ld\n", server.scrapes.load());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: bench_rules gen WORKDIR [SEED] | run RULE_FILE [SEED] | serve PORT [SEED]\n");
    return 2;
  }
  const std::string mode = argv[1], arg = argv[2];
  const std::uint64_t seed = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1;
  if (mode == "gen") {
    std::ofstream(arg + "/rules.yml") << MakeRules(true);
    std::ofstream(arg + "/rules_plain.yml") << MakeRules(false);
    std::ofstream(arg + "/series.prom") << Exposition(MakeSeries(), seed, 0, 15, 1'700'000'000);
    return 0;
  }
  if (mode == "run") return Run(arg, seed);
  if (mode == "serve") return Serve(arg, seed);
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
