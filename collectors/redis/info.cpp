// INFO ALL: every numeric field of server, clients, memory, persistence, stats, replication, cpu,
// cluster, keyspace, errorstats and commandstats, named as oliver006/redis_exporter names them
// where it publishes the field (see collectors/redis/README.md for the mapping with examples).
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>

#include "redis_info.h"
#include "runbook/collector.h"

namespace runbook::redis {

namespace {

std::string_view TrimCr(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

constexpr auto G = MetricKind::kGauge;
constexpr auto C = MetricKind::kCounter;

enum class Conv {
  kNumber,  // the value as it is, times `scale`
  kOk,      // "ok" → 1, anything else → 0 (rdb_last_bgsave_status:ok)
  kUp,      // "up" → 1, anything else → 0 (master_link_status:up)
};

struct Field {
  const char* section;
  const char* field;
  const char* name;  // without the redis_ prefix
  MetricKind kind;
  const char* help;
  double scale = 1;
  Conv conv = Conv::kNumber;
};

// Example lines are from tests/fixtures/redis/7.0/default/info.txt.
const Field kFields[] = {
    // # Server
    {"server", "uptime_in_seconds", "uptime_in_seconds", G, "Seconds since the server started."},
    {"server", "process_id", "process_id", G, "PID of the server process."},
    {"server", "io_threads_active", "io_threads_active", G, "1 if I/O threads are active."},
    {"server", "hz", "server_hz", G, "Current frequency of the server's background tasks."},
    {"server", "configured_hz", "server_configured_hz", G, "Configured frequency of background tasks."},
    // # Clients
    {"clients", "connected_clients", "connected_clients", G, "Client connections (excluding replicas)."},
    {"clients", "cluster_connections", "cluster_connections", G, "Sockets used by the cluster bus."},
    {"clients", "maxclients", "config_maxclients", G, "The maxclients setting."},
    {"clients", "client_recent_max_input_buffer", "client_recent_max_input_buffer_bytes", G,
     "Biggest input buffer among current client connections."},
    {"clients", "client_recent_max_output_buffer", "client_recent_max_output_buffer_bytes", G,
     "Biggest output buffer among current client connections."},
    {"clients", "blocked_clients", "blocked_clients", G, "Clients blocked in BLPOP, BRPOP, XREAD, WAIT..."},
    {"clients", "tracking_clients", "tracking_clients", G, "Clients being tracked (CLIENT TRACKING)."},
    {"clients", "clients_in_timeout_table", "clients_in_timeout_table", G,
     "Clients in the clients timeout table."},
    // # Memory
    {"memory", "used_memory", "memory_used_bytes", G, "Bytes allocated by the server's allocator."},
    {"memory", "used_memory_rss", "memory_used_rss_bytes", G, "Resident set size of the server process."},
    {"memory", "used_memory_peak", "memory_used_peak_bytes", G, "Peak of used_memory."},
    {"memory", "used_memory_overhead", "memory_used_overhead_bytes", G,
     "Bytes used for internal data structures."},
    {"memory", "used_memory_startup", "memory_used_startup_bytes", G, "Bytes used at startup."},
    {"memory", "used_memory_dataset", "memory_used_dataset_bytes", G, "Bytes used by the dataset."},
    {"memory", "allocator_allocated", "allocator_allocated_bytes", G, "Bytes allocated by the allocator."},
    {"memory", "allocator_active", "allocator_active_bytes", G, "Bytes in the allocator's active pages."},
    {"memory", "allocator_resident", "allocator_resident_bytes", G, "Bytes resident in the allocator."},
    {"memory", "total_system_memory", "total_system_memory_bytes", G, "Memory of the host."},
    {"memory", "used_memory_lua", "memory_used_lua_bytes", G, "Bytes used by the Lua engine."},
    {"memory", "used_memory_vm_eval", "memory_used_vm_eval_bytes", G, "Bytes used by the EVAL engine."},
    {"memory", "used_memory_scripts_eval", "memory_used_scripts_eval_bytes", G,
     "Bytes used by EVAL scripts."},
    {"memory", "number_of_cached_scripts", "number_of_cached_scripts", G, "Cached EVAL scripts."},
    {"memory", "number_of_functions", "number_of_functions", G, "Loaded functions."},
    {"memory", "number_of_libraries", "number_of_libraries", G, "Loaded function libraries."},
    {"memory", "used_memory_vm_functions", "memory_used_vm_functions_bytes", G,
     "Bytes used by the functions engine."},
    {"memory", "used_memory_vm_total", "memory_used_vm_total_bytes", G, "Bytes used by script engines."},
    {"memory", "used_memory_functions", "memory_used_functions_bytes", G, "Bytes used by functions."},
    {"memory", "used_memory_scripts", "memory_used_scripts_bytes", G, "Bytes used by scripts."},
    {"memory", "maxmemory", "memory_max_bytes", G, "The maxmemory setting (0: no limit)."},
    {"memory", "maxmemory", "config_maxmemory", G, "The maxmemory setting (0: no limit)."},
    {"memory", "allocator_frag_ratio", "allocator_frag_ratio", G, "allocator_active / allocator_allocated."},
    {"memory", "allocator_frag_bytes", "allocator_frag_bytes", G, "allocator_active - allocator_allocated."},
    {"memory", "allocator_rss_ratio", "allocator_rss_ratio", G, "allocator_resident / allocator_active."},
    {"memory", "allocator_rss_bytes", "allocator_rss_bytes", G, "allocator_resident - allocator_active."},
    {"memory", "rss_overhead_ratio", "rss_overhead_ratio", G, "used_memory_rss / allocator_resident."},
    {"memory", "rss_overhead_bytes", "rss_overhead_bytes", G, "used_memory_rss - allocator_resident."},
    {"memory", "mem_fragmentation_ratio", "mem_fragmentation_ratio", G, "used_memory_rss / used_memory."},
    {"memory", "mem_fragmentation_bytes", "mem_fragmentation_bytes", G, "used_memory_rss - used_memory."},
    {"memory", "mem_not_counted_for_evict", "mem_not_counted_for_eviction_bytes", G,
     "Bytes not counted for eviction (replication and AOF buffers)."},
    {"memory", "mem_replication_backlog", "mem_replication_backlog_bytes", G,
     "Bytes used by the replication backlog."},
    {"memory", "mem_total_replication_buffers", "mem_total_replication_buffers_bytes", G,
     "Bytes used by replication buffers."},
    {"memory", "mem_clients_slaves", "mem_clients_slaves", G, "Bytes used by replica clients."},
    {"memory", "mem_clients_normal", "mem_clients_normal", G, "Bytes used by normal clients."},
    {"memory", "mem_cluster_links", "mem_cluster_links_bytes", G, "Bytes used by cluster bus links."},
    {"memory", "mem_aof_buffer", "mem_aof_buffer_bytes", G, "Bytes used by the AOF buffers."},
    {"memory", "active_defrag_running", "active_defrag_running", G, "1 while active defragmentation runs."},
    {"memory", "lazyfree_pending_objects", "lazyfree_pending_objects", G, "Objects waiting to be freed."},
    {"memory", "lazyfreed_objects", "lazyfreed_objects_total", C, "Objects freed lazily."},
    // # Persistence
    {"persistence", "loading", "loading_dump_file", G, "1 while a dump file is loading."},
    {"persistence", "async_loading", "async_loading", G, "1 while loading asynchronously (replica)."},
    {"persistence", "current_cow_peak", "current_cow_peak_bytes", G, "Peak copy-on-write size of the child."},
    {"persistence", "current_cow_size", "current_cow_size_bytes", G, "Copy-on-write size of the child."},
    {"persistence", "current_cow_size_age", "current_cow_size_age_seconds", G, "Age of current_cow_size."},
    {"persistence", "current_fork_perc", "current_fork_perc", G, "Progress of the fork child, percent."},
    {"persistence", "current_save_keys_processed", "current_save_keys_processed", G,
     "Keys processed by the current save."},
    {"persistence", "current_save_keys_total", "current_save_keys", G,
     "Keys at the start of the current save."},
    {"persistence", "rdb_changes_since_last_save", "rdb_changes_since_last_save", G,
     "Changes since the last dump."},
    {"persistence", "rdb_bgsave_in_progress", "rdb_bgsave_in_progress", G, "1 while an RDB save runs."},
    {"persistence", "rdb_last_save_time", "rdb_last_save_timestamp_seconds", G,
     "Unix time of the last successful RDB save."},
    {"persistence", "rdb_last_bgsave_status", "rdb_last_bgsave_status", G,
     "1 if the last RDB save succeeded (ok), else 0.", 1, Conv::kOk},
    {"persistence", "rdb_last_bgsave_time_sec", "rdb_last_bgsave_duration_sec", G,
     "Duration of the last RDB save in seconds (-1: none)."},
    {"persistence", "rdb_current_bgsave_time_sec", "rdb_current_bgsave_duration_sec", G,
     "Duration of the running RDB save in seconds (-1: none)."},
    {"persistence", "rdb_saves", "rdb_saves_total", C, "RDB saves since startup."},
    {"persistence", "rdb_last_cow_size", "rdb_last_cow_size_bytes", G,
     "Copy-on-write size of the last RDB save."},
    {"persistence", "rdb_last_load_keys_expired", "rdb_last_load_expired_keys", G,
     "Expired keys skipped by the last load."},
    {"persistence", "rdb_last_load_keys_loaded", "rdb_last_load_loaded_keys", G,
     "Keys loaded by the last load."},
    {"persistence", "aof_enabled", "aof_enabled", G, "1 if AOF is on."},
    {"persistence", "aof_rewrite_in_progress", "aof_rewrite_in_progress", G, "1 while an AOF rewrite runs."},
    {"persistence", "aof_rewrite_scheduled", "aof_rewrite_scheduled", G, "1 if an AOF rewrite is scheduled."},
    {"persistence", "aof_last_rewrite_time_sec", "aof_last_rewrite_duration_sec", G,
     "Duration of the last AOF rewrite in seconds (-1: none)."},
    {"persistence", "aof_current_rewrite_time_sec", "aof_current_rewrite_duration_sec", G,
     "Duration of the running AOF rewrite in seconds (-1: none)."},
    {"persistence", "aof_last_bgrewrite_status", "aof_last_bgrewrite_status", G,
     "1 if the last AOF rewrite succeeded (ok), else 0.", 1, Conv::kOk},
    {"persistence", "aof_rewrites", "aof_rewrites_total", C, "AOF rewrites since startup."},
    {"persistence", "aof_rewrites_consecutive_failures", "aof_rewrites_consecutive_failures", G,
     "Consecutive failed AOF rewrites."},
    {"persistence", "aof_last_write_status", "aof_last_write_status", G,
     "1 if the last AOF write succeeded (ok), else 0.", 1, Conv::kOk},
    {"persistence", "aof_last_cow_size", "aof_last_cow_size_bytes", G,
     "Copy-on-write size of the last AOF rewrite."},
    {"persistence", "aof_current_size", "aof_current_size_bytes", G, "Current AOF size."},
    {"persistence", "aof_base_size", "aof_base_size_bytes", G, "AOF size at the last rewrite."},
    {"persistence", "aof_pending_rewrite", "aof_pending_rewrite", G, "1 if a rewrite waits for a save."},
    {"persistence", "aof_buffer_length", "aof_buffer_length", G, "Size of the AOF buffer."},
    {"persistence", "aof_pending_bio_fsync", "aof_pending_bio_fsync", G, "fsync jobs waiting in the queue."},
    {"persistence", "aof_delayed_fsync", "aof_delayed_fsync", G, "Delayed fsync count."},
    {"persistence", "module_fork_in_progress", "module_fork_in_progress", G, "1 while a module fork runs."},
    {"persistence", "module_fork_last_cow_size", "module_fork_last_cow_size", G,
     "Copy-on-write size of the last module fork."},
    // # Stats
    {"stats", "total_connections_received", "connections_received_total", C, "Connections accepted."},
    {"stats", "total_commands_processed", "commands_processed_total", C, "Commands processed."},
    {"stats", "instantaneous_ops_per_sec", "instantaneous_ops_per_second", G,
     "Commands per second (sampled)."},
    {"stats", "total_net_input_bytes", "net_input_bytes_total", C, "Bytes read from the network."},
    {"stats", "total_net_output_bytes", "net_output_bytes_total", C, "Bytes written to the network."},
    {"stats", "total_net_repl_input_bytes", "net_repl_input_bytes_total", C,
     "Bytes read from the network for replication."},
    {"stats", "total_net_repl_output_bytes", "net_repl_output_bytes_total", C,
     "Bytes written to the network for replication."},
    {"stats", "instantaneous_input_kbps", "instantaneous_input_bytes_per_second", G,
     "Network read rate (sampled).", 1024},
    {"stats", "instantaneous_output_kbps", "instantaneous_output_bytes_per_second", G,
     "Network write rate (sampled).", 1024},
    {"stats", "instantaneous_input_repl_kbps", "instantaneous_input_repl_bytes_per_second", G,
     "Replication read rate (sampled).", 1024},
    {"stats", "instantaneous_output_repl_kbps", "instantaneous_output_repl_bytes_per_second", G,
     "Replication write rate (sampled).", 1024},
    {"stats", "rejected_connections", "rejected_connections_total", C, "Connections rejected (maxclients)."},
    {"stats", "sync_full", "replica_resyncs_full", C, "Full resynchronisations with replicas."},
    {"stats", "sync_partial_ok", "replica_partial_resync_accepted", C, "Accepted partial resync requests."},
    {"stats", "sync_partial_err", "replica_partial_resync_denied", C, "Denied partial resync requests."},
    {"stats", "expired_keys", "expired_keys_total", C, "Keys expired."},
    {"stats", "expired_stale_perc", "expired_stale_percentage", G, "Estimated percentage of expired keys."},
    {"stats", "expired_time_cap_reached_count", "expired_time_cap_reached_total", C,
     "Active expire cycles stopped early."},
    {"stats", "expire_cycle_cpu_milliseconds", "expire_cycle_cpu_seconds_total", C,
     "CPU time spent on active expiry.", 0.001},
    {"stats", "evicted_keys", "evicted_keys_total", C, "Keys evicted (maxmemory)."},
    {"stats", "evicted_clients", "evicted_clients_total", C, "Clients evicted (maxmemory-clients)."},
    {"stats", "total_eviction_exceeded_time", "eviction_exceeded_time_seconds_total", C,
     "Time used_memory was above maxmemory.", 0.001},
    {"stats", "current_eviction_exceeded_time", "current_eviction_exceeded_time_seconds", G,
     "Time since used_memory went above maxmemory.", 0.001},
    {"stats", "keyspace_hits", "keyspace_hits_total", C, "Successful key lookups."},
    {"stats", "keyspace_misses", "keyspace_misses_total", C, "Failed key lookups."},
    {"stats", "pubsub_channels", "pubsub_channels", G, "Pub/sub channels with subscribers."},
    {"stats", "pubsub_patterns", "pubsub_patterns", G, "Pub/sub patterns with subscribers."},
    {"stats", "pubsubshard_channels", "pubsubshard_channels", G, "Shard channels with subscribers."},
    {"stats", "latest_fork_usec", "latest_fork_seconds", G, "Duration of the latest fork.", 1e-6},
    {"stats", "total_forks", "forks_total", C, "Forks since startup."},
    {"stats", "migrate_cached_sockets", "migrate_cached_sockets_total", G, "Sockets open for MIGRATE."},
    {"stats", "slave_expires_tracked_keys", "slave_expires_tracked_keys", G,
     "Keys tracked for expiry (writable replicas)."},
    {"stats", "active_defrag_hits", "defrag_hits", G, "Value reallocations by active defragmentation."},
    {"stats", "active_defrag_misses", "defrag_misses", G, "Aborted value reallocations."},
    {"stats", "active_defrag_key_hits", "defrag_key_hits", G, "Keys actively defragmented."},
    {"stats", "active_defrag_key_misses", "defrag_key_misses", G, "Keys skipped by defragmentation."},
    {"stats", "total_active_defrag_time", "active_defrag_time_seconds_total", C, "Time spent defragmenting.",
     0.001},
    {"stats", "current_active_defrag_time", "current_active_defrag_time_seconds", G,
     "Time of the running defragmentation.", 0.001},
    {"stats", "tracking_total_keys", "tracking_total_keys", G, "Keys tracked for client-side caching."},
    {"stats", "tracking_total_items", "tracking_total_items", G, "Items tracked for client-side caching."},
    {"stats", "tracking_total_prefixes", "tracking_total_prefixes", G, "Prefixes tracked (broadcast mode)."},
    {"stats", "unexpected_error_replies", "unexpected_error_replies", C,
     "Unexpected error replies (AOF load, replication)."},
    {"stats", "total_error_replies", "total_error_replies", C, "Error replies sent."},
    {"stats", "dump_payload_sanitizations", "dump_payload_sanitizations", C, "Deep payload sanitizations."},
    {"stats", "total_reads_processed", "total_reads_processed", C, "Read events processed."},
    {"stats", "total_writes_processed", "total_writes_processed", C, "Write events processed."},
    {"stats", "io_threaded_reads_processed", "io_threaded_reads_processed", C, "Reads done by I/O threads."},
    {"stats", "io_threaded_writes_processed", "io_threaded_writes_processed", C,
     "Writes done by I/O threads."},
    {"stats", "reply_buffer_shrinks", "reply_buffer_shrinks_total", C, "Output buffer shrinks."},
    {"stats", "reply_buffer_expands", "reply_buffer_expands_total", C, "Output buffer expansions."},
    // # Replication
    {"replication", "connected_slaves", "connected_slaves", G, "Connected replicas."},
    {"replication", "master_repl_offset", "master_repl_offset", G, "Replication offset of the server."},
    {"replication", "second_repl_offset", "second_repl_offset", G, "Offset up to which replid2 is accepted."},
    {"replication", "repl_backlog_active", "repl_backlog_is_active", G, "1 if the backlog is active."},
    {"replication", "repl_backlog_size", "replication_backlog_bytes", G, "Size of the replication backlog."},
    {"replication", "repl_backlog_first_byte_offset", "repl_backlog_first_byte_offset", G,
     "Master offset of the backlog's first byte."},
    {"replication", "repl_backlog_histlen", "repl_backlog_history_bytes", G, "Bytes of data in the backlog."},
    {"replication", "master_link_status", "master_link_up", G, "1 if the link to the master is up (replica).",
     1, Conv::kUp},
    {"replication", "master_last_io_seconds_ago", "master_last_io_seconds_ago", G,
     "Seconds since the last interaction with the master (replica)."},
    {"replication", "master_sync_in_progress", "master_sync_in_progress", G,
     "1 while the replica syncs with its master."},
    {"replication", "slave_repl_offset", "slave_repl_offset", G, "Replication offset of the replica."},
    {"replication", "slave_priority", "slave_priority", G, "Priority of the replica for failover."},
    {"replication", "slave_read_only", "slave_read_only", G, "1 if the replica is read-only."},
    // # CPU
    {"cpu", "used_cpu_sys", "cpu_sys_seconds_total", C, "System CPU of the server."},
    {"cpu", "used_cpu_user", "cpu_user_seconds_total", C, "User CPU of the server."},
    {"cpu", "used_cpu_sys_children", "cpu_sys_children_seconds_total", C, "System CPU of child processes."},
    {"cpu", "used_cpu_user_children", "cpu_user_children_seconds_total", C, "User CPU of child processes."},
    {"cpu", "used_cpu_sys_main_thread", "cpu_sys_main_thread_seconds_total", C,
     "System CPU of the main thread."},
    {"cpu", "used_cpu_user_main_thread", "cpu_user_main_thread_seconds_total", C,
     "User CPU of the main thread."},
    // # Cluster
    {"cluster", "cluster_enabled", "cluster_enabled", G, "1 if cluster mode is on."},
};

const MetricDesc kInstanceInfo{"redis_instance_info",
                               G,
                               "Information about the Redis instance (value 1).",
                               {"redis_version", "redis_mode", "os", "role", "maxmemory_policy"}};
const MetricDesc kStartTime{"redis_start_time_seconds", G, "Unix time at which the server started.", {}};
const MetricDesc kDbKeys{"redis_db_keys", G, "Keys in the database.", {"db"}};
const MetricDesc kDbExpiring{"redis_db_keys_expiring", G, "Keys with an expiry in the database.", {"db"}};
const MetricDesc kDbAvgTtl{"redis_db_avg_ttl_seconds", G, "Average TTL of keys with an expiry.", {"db"}};
const MetricDesc kErrors{"redis_errors_total", C, "Error replies by error prefix (errorstats).", {"err"}};
const MetricDesc kCmdCalls{"redis_commands_total", C, "Calls of the command (commandstats).", {"cmd"}};
const MetricDesc kCmdDuration{
    "redis_commands_duration_seconds_total", C, "Time spent executing the command (commandstats).", {"cmd"}};
const MetricDesc kCmdRejected{"redis_commands_rejected_calls_total",
                              C,
                              "Calls of the command rejected before execution (commandstats).",
                              {"cmd"}};
const MetricDesc kCmdFailed{"redis_commands_failed_calls_total",
                            C,
                            "Calls of the command that failed during execution (commandstats).",
                            {"cmd"}};
const MetricDesc kLatency{"redis_latency_percentiles_usec",
                          MetricKind::kSummary,
                          "Latency percentiles of the command in microseconds (latencystats); count and sum "
                          "from commandstats.",
                          {"cmd"}};

// The descriptions, built once from the table.
const std::vector<MetricDesc>& Descs() {
  static const std::vector<MetricDesc> descs = [] {
    std::vector<MetricDesc> out;
    for (const auto& f : kFields)
      out.push_back({std::string("redis_") + f.name,
                     f.kind,
                     std::string(f.help) + " (INFO " + f.section + " " + f.field + ")",
                     {}});
    return out;
  }();
  return descs;
}

void Num(MetricSink& sink, const MetricDesc& d, std::initializer_list<std::string_view> labels,
         std::string_view v, double scale, std::string_view what) {
  if (auto n = ParseNumber(v))
    sink.Add(d, labels, *n * scale);
  else
    sink.RecordError(std::string(what) + ": not a number: " + std::string(v));
}

}  // namespace

const std::string_view* RedisInfo::Section::Find(std::string_view field) const {
  auto it = std::lower_bound(fields.begin(), fields.end(), field,
                             [](const auto& kv, std::string_view f) { return kv.first < f; });
  return it != fields.end() && it->first == field ? &it->second : nullptr;
}

const RedisInfo::Section* RedisInfo::FindSection(std::string_view name) const {
  for (const auto& s : sections)
    if (s.name == name) return &s;
  return nullptr;
}

const std::string_view* RedisInfo::Find(std::string_view section, std::string_view field) const {
  const Section* s = FindSection(section);
  return s ? s->Find(field) : nullptr;
}

namespace {

// Sorts a section's fields by name, keeping the first of a repeated field. The previous text's
// permutation is tried first: if it yields strictly increasing names, it is this text's sort too.
void SortFields(RedisInfo::Section& s) {
  auto& fields = s.fields;
  auto& out = s.scratch;
  out.clear();
  if (s.order.size() == fields.size()) {
    for (auto i : s.order) out.push_back(fields[i]);
    std::size_t i = 1;
    while (i < out.size() && out[i - 1].first < out[i].first) ++i;
    if (i >= out.size()) {
      fields.swap(out);
      return;
    }
    out.clear();
  }
  auto& order = s.order;
  order.resize(fields.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::uint32_t>(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::uint32_t a, std::uint32_t b) { return fields[a].first < fields[b].first; });
  for (auto i : order)
    if (out.empty() || out.back().first != fields[i].first) out.push_back(fields[i]);
  if (out.size() != fields.size()) order.clear();  // repeated fields: not a permutation to reuse
  fields.swap(out);
}

}  // namespace

RedisInfo ParseRedisInfo(std::string_view text) {
  RedisInfo info;
  ParseRedisInfo(text, info);
  return info;
}

void ParseRedisInfo(std::string_view text, RedisInfo& info) {
  std::size_t used = 0;            // sections of info in use
  std::string name = "default";    // of the current header
  std::size_t current = SIZE_MAX;  // its index, once it has a field
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = TrimCr(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty()) continue;
    if (line.front() == '#') {
      line.remove_prefix(1);
      while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
      name.assign(line);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      current = SIZE_MAX;
      continue;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    if (current == SIZE_MAX) {
      auto begin = info.sections.begin();
      current = static_cast<std::size_t>(std::find_if(begin, begin + static_cast<std::ptrdiff_t>(used),
                                                      [&](const auto& s) { return s.name == name; }) -
                                         begin);
      if (current == used) {
        if (used == info.sections.size()) info.sections.emplace_back();
        info.sections[used].name = name;
        info.sections[used].fields.clear();
        ++used;
      }
    }
    info.sections[current].fields.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  info.sections.resize(used);
  for (auto& s : info.sections) SortFields(s);
}

namespace {

// Calls fn(key, value) for each pair of "keys=6,expires=1" in order, until fn returns false.
template <typename F>
void ForEachInfoPair(std::string_view text, F&& fn) {
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    auto eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    if (!fn(item.substr(0, eq), item.substr(eq + 1))) return;
  }
}

}  // namespace

std::vector<std::pair<std::string_view, std::string_view>> ParseInfoPairs(std::string_view text) {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  ForEachInfoPair(text, [&](std::string_view k, std::string_view v) {
    out.emplace_back(k, v);
    return true;
  });
  return out;
}

std::optional<double> ParseNumber(std::string_view text) {
  // INFO numbers are decimal; from_chars would also take "inf" and "nan", strtod hex too.
  if (text.empty() || text.size() > 64) return std::nullopt;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E'))
      return std::nullopt;
  if (text.front() == '+') {  // from_chars takes no plus sign
    text.remove_prefix(1);
    if (text.empty() || text.front() == '-') return std::nullopt;
  }
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

void PublishRedisInfo(const RedisInfo& info, MetricSink& sink, std::size_t max_commands, int databases) {
  const auto& descs = Descs();
  // kFields lists each section's fields together: its section is looked up once.
  std::string_view section;
  const RedisInfo::Section* found = nullptr;
  for (std::size_t i = 0; i < std::size(kFields); ++i) {
    const auto& f = kFields[i];
    if (i == 0 || section != f.section) {
      section = f.section;
      found = info.FindSection(section);
    }
    const std::string_view* v = found ? found->Find(f.field) : nullptr;
    if (!v) continue;
    switch (f.conv) {
      case Conv::kOk: sink.Add(descs[i], {}, *v == "ok" ? 1 : 0); break;
      case Conv::kUp: sink.Add(descs[i], {}, *v == "up" ? 1 : 0); break;
      case Conv::kNumber:
        // Dragonfly sends -1 for figures it does not keep (rejected_connections:-1,
        // instantaneous_input_kbps:-1); a negative counter or converted rate means nothing.
        if ((f.kind == MetricKind::kCounter || f.scale != 1) && v->starts_with('-')) break;
        Num(sink, descs[i], {}, *v, f.scale, f.field);
        break;
    }
  }

  auto str = [&](std::string_view section, std::string_view field) {
    const std::string_view* v = info.Find(section, field);
    return v ? *v : std::string_view();
  };
  if (info.FindSection("server"))
    sink.Add(kInstanceInfo,
             {str("server", "redis_version"),
              // Valkey 8 renamed redis_mode to server_mode.
              info.Find("server", "redis_mode") ? str("server", "redis_mode") : str("server", "server_mode"),
              str("server", "os"), str("replication", "role"), str("memory", "maxmemory_policy")},
             1);
  // The server's own clock, so the value does not move between collections.
  const std::string_view* now_us = info.Find("server", "server_time_usec");
  const std::string_view* uptime = info.Find("server", "uptime_in_seconds");
  if (now_us && uptime) {
    auto n = ParseNumber(*now_us);
    auto u = ParseNumber(*uptime);
    if (n && u) sink.Add(kStartTime, {}, std::floor(*n / 1e6 - *u));
  }

  const RedisInfo::Section* ks = info.FindSection("keyspace");
  for (int i = 0; i < std::min(databases, kMaxZeroFilledDatabases); ++i) {
    std::string db = "db" + std::to_string(i);
    if (ks && ks->Find(db)) continue;
    sink.Add(kDbKeys, {db}, 0);
    sink.Add(kDbExpiring, {db}, 0);
  }
  if (ks) {
    for (const auto& [db, value] : ks->fields) {
      if (!db.starts_with("db")) continue;
      ForEachInfoPair(value, [&](std::string_view k, std::string_view v) {
        if (k == "keys") Num(sink, kDbKeys, {db}, v, 1, db);
        if (k == "expires") Num(sink, kDbExpiring, {db}, v, 1, db);
        // Dragonfly sends avg_ttl=-1 (not tracked).
        if (k == "avg_ttl" && !v.starts_with('-')) Num(sink, kDbAvgTtl, {db}, v, 0.001, db);
        return true;
      });
    }
  }

  if (const auto* es = info.FindSection("errorstats")) {
    for (const auto& [field, value] : es->fields) {
      if (!field.starts_with("errorstat_")) continue;
      ForEachInfoPair(value, [&](std::string_view k, std::string_view v) {
        if (k == "count") Num(sink, kErrors, {field.substr(10)}, v, 1, field);
        return true;
      });
    }
  }

  if (const auto* cs = info.FindSection("commandstats")) {
    struct Cmd {
      std::string_view name;
      std::string_view stats;  // "calls=…,usec=…,…"
      double calls = 0;
    };
    // In name order, as the section's fields are sorted: the series arrive sorted in the sink.
    std::vector<Cmd> cmds;
    cmds.reserve(cs->fields.size());
    for (const auto& [field, value] : cs->fields) {
      if (!field.starts_with("cmdstat_")) continue;
      Cmd& c = cmds.emplace_back(Cmd{field.substr(8), value, 0});
      ForEachInfoPair(value, [&](std::string_view k, std::string_view v) {
        if (k == "calls") c.calls = ParseNumber(v).value_or(0);
        return true;
      });
    }
    // Bounded: the most called commands (a server may know several hundred), then back in name order.
    auto by_name = [](const Cmd& a, const Cmd& b) { return a.name < b.name; };
    if (cmds.size() > max_commands) {
      std::stable_sort(cmds.begin(), cmds.end(),
                       [](const Cmd& a, const Cmd& b) { return a.calls > b.calls; });
      cmds.resize(max_commands);
      std::stable_sort(cmds.begin(), cmds.end(), by_name);
    }
    for (const auto& c : cmds) {
      ForEachInfoPair(c.stats, [&](std::string_view k, std::string_view v) {
        if (k == "calls") Num(sink, kCmdCalls, {c.name}, v, 1, c.name);
        if (k == "usec") Num(sink, kCmdDuration, {c.name}, v, 1e-6, c.name);
        if (k == "rejected_calls") Num(sink, kCmdRejected, {c.name}, v, 1, c.name);
        if (k == "failed_calls") Num(sink, kCmdFailed, {c.name}, v, 1, c.name);
        return true;
      });
    }
    // latencystats (Redis 7): a summary per command as redis_exporter builds it, with the
    // commandstats calls as count and usec as sum, for the commands published above.
    const auto* ls = info.FindSection("latencystats");
    if (!ls) return;
    constexpr std::string_view kPrefix = "latency_percentiles_usec_";
    for (const auto& [field, value] : ls->fields) {
      if (!field.starts_with(kPrefix)) continue;
      const std::string_view cmd = field.substr(kPrefix.size());
      auto c = std::lower_bound(cmds.begin(), cmds.end(), Cmd{cmd, {}, 0}, by_name);
      if (c == cmds.end() || c->name != cmd) continue;
      std::optional<double> usec;
      ForEachInfoPair(c->stats, [&](std::string_view k, std::string_view v) {
        if (k == "usec") usec = ParseNumber(v);
        return true;
      });
      if (!usec) continue;
      SummaryValue s{c->calls, {}};
      bool ok = true;
      ForEachInfoPair(value, [&](std::string_view k, std::string_view v) {
        const double q = k.starts_with('p') ? ParseNumber(k.substr(1)).value_or(-1) : -1;
        auto n = ParseNumber(v);
        if (q < 0 || !n) {
          sink.RecordError(std::string(field) + ": not a percentile: " + std::string(k) + "=" +
                           std::string(v));
          ok = false;
          return false;
        }
        s.quantiles.emplace_back(q, *n);
        return true;
      });
      const std::string_view labels[] = {cmd};
      if (ok) sink.AddSummary(kLatency, labels, *usec, std::move(s));
    }
  }
}

namespace {

class InfoCollector final : public Collector {
 public:
  void Prepare(ScrapeContext& ctx) override {
    static const std::vector<std::string> kInfoAll{"INFO", "ALL"};
    ctx.redis->Queue(kInfoAll, reply_, status_);
  }

  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    if (!status_.ok()) return status_;
    if (reply_.type != RedisReply::Type::kString && reply_.type != RedisReply::Type::kStatus)
      return Status::Error(ErrorReason::kProtocol, "INFO ALL: expected a bulk string");
    int databases = 0;
    if (ctx.shared)
      if (auto it = ctx.shared->find(kSharedDatabases); it != ctx.shared->end())
        databases = static_cast<int>(std::clamp(it->second, 0.0, double{kMaxZeroFilledDatabases}));
    ParseRedisInfo(reply_.str, info_);
    PublishRedisInfo(info_, sink, 200, databases);
    return Status::Ok();
  }

 private:
  // Kept between collections for their buffers; info_ points into reply_.
  RedisReply reply_;
  Status status_;
  RedisInfo info_;
};

const CollectorRegistration kRegistration{{
    .name = "info",
    .kind = TargetKind::kRedis,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "INFO ALL: server, clients, memory, persistence, stats, replication, cpu, keyspace, "
            "errorstats and the 200 most called commands' commandstats.",
    .factory = [] { return std::make_unique<InfoCollector>(); },
}};

}  // namespace
}  // namespace runbook::redis
