#!/usr/bin/python3
"""Writes the Grafana dashboards of runbook_exporter (dashboards/*.json) from the tables below.

usage: build.py            rewrite dashboards/*.json
       build.py --check    exit 1 if a file differs from what this script would write

Panel thresholds come from rules/runbook/thresholds.rules.yml (`THRESHOLD(...)` below), so a
dashboard never disagrees with the alert it explains. Every query selects
instance=~"$instance" and target=~"$target" (the exporter's `target` label); the datasource is the
`datasource` variable, never a fixed UID.
"""
import json
import pathlib
import re
import sys

import yaml

HERE = pathlib.Path(__file__).resolve().parent
RULES = HERE.parent / "rules" / "runbook"

_thresholds = {}
for rule in yaml.safe_load((RULES / "thresholds.rules.yml").read_text())["groups"][0]["rules"]:
    m = re.search(r"\* 0 \+ (.+)$", rule["expr"].strip())
    # "30 * 86400" style products are evaluated here the way PromQL does.
    value = 1.0
    for factor in m.group(1).split("*"):
        value *= float(factor)
    _thresholds[rule["record"]] = value


def THRESHOLD(name):
    return _thresholds[name]


S = 'instance=~"$instance",target=~"$target"'
I = 'instance=~"$instance"'
RATE = "$__rate_interval"

GREEN, ORANGE, RED, BLUE = "green", "orange", "red", "blue"


def steps(*pairs, base=GREEN):
    out = [{"color": base, "value": None}]
    for value, color in pairs:
        out.append({"color": color, "value": value})
    return out


def above(warning=None, critical=None):
    pairs = []
    if warning is not None:
        pairs.append((warning, ORANGE))
    if critical is not None:
        pairs.append((critical, RED))
    return steps(*pairs)


def below(warning=None, critical=None):
    # red below critical, orange below warning, green above
    pairs = []
    base = GREEN
    if critical is not None and warning is not None:
        base = RED
        pairs = [(critical, ORANGE), (warning, GREEN)]
    elif warning is not None:
        base = ORANGE
        pairs = [(warning, GREEN)]
    return steps(*pairs, base=base)


UPDOWN = [{"type": "value", "options": {"0": {"text": "DOWN", "color": RED, "index": 0},
                                        "1": {"text": "UP", "color": GREEN, "index": 1}}}]
OKBAD = [{"type": "value", "options": {"0": {"text": "FAILED", "color": RED, "index": 0},
                                       "1": {"text": "OK", "color": GREEN, "index": 1}}}]
ROLE = [{"type": "value", "options": {"0": {"text": "primary", "color": BLUE, "index": 0},
                                      "1": {"text": "standby", "color": "purple", "index": 1}}}]
NOYES_BAD = [{"type": "value", "options": {"0": {"text": "no", "color": GREEN, "index": 0},
                                           "1": {"text": "yes", "color": RED, "index": 1}}}]


def q(expr, legend=""):
    return (expr, legend)


def panel(kind, title, queries, unit="short", thresholds=None, mappings=None, width=8, height=8,
          description="", decimals=None, min_zero=True, text_mode=None):
    return {"kind": kind, "title": title, "queries": queries, "unit": unit, "thresholds": thresholds,
            "mappings": mappings, "width": width, "height": height, "description": description,
            "decimals": decimals, "min_zero": min_zero, "text_mode": text_mode}


def ts(title, queries, **kw):
    return panel("timeseries", title, queries, **kw)


def stat(title, queries, **kw):
    kw.setdefault("width", 4)
    kw.setdefault("height", 4)
    return panel("stat", title, queries, **kw)


def table(title, queries, **kw):
    kw.setdefault("width", 12)
    return panel("table", title, queries, **kw)


def row(title):
    return {"kind": "row", "title": title}


def up_stat(title, metric, selector=S):
    return stat(title, [q(f"{metric}{{{selector}}}", "{{target}}")], mappings=UPDOWN,
                thresholds=steps((1, GREEN), base=RED))


# --------------------------------------------------------------------------------------------
# Dashboards. Each: uid, title, the metric whose `target` values fill the target variable,
# tags, panels.

T_PG_CONN_W = THRESHOLD("runbook:pg_connections_utilization_ratio:threshold_warning")
T_PG_CONN_C = THRESHOLD("runbook:pg_connections_utilization_ratio:threshold_critical")
T_PG_LAG_W = THRESHOLD("runbook:pg_replication_lag_seconds:threshold_warning")
T_PG_LAG_C = THRESHOLD("runbook:pg_replication_lag_seconds:threshold_critical")
T_PG_QUERY = THRESHOLD("runbook:pg_stat_activity_oldest_query_seconds:threshold_warning")
T_PG_IIT = THRESHOLD("runbook:pg_stat_activity_oldest_idle_in_transaction_seconds:threshold_warning")
T_PG_IDLE = THRESHOLD("runbook:pg_stat_activity_oldest_idle_seconds:threshold_warning")
T_PG_LOCKS = THRESHOLD("runbook:pg_lock_wait_ratio:threshold_warning")
T_PG_ARCHIVE_AGE = THRESHOLD("runbook:pg_stat_archiver_last_archive_age:threshold_warning")
T_PG_WAL = THRESHOLD("runbook:pg_wal_size_bytes:threshold_warning")
T_PG_GROWTH = THRESHOLD("runbook:pg_database_growth_bytes_per_day:threshold_warning")
T_PG_CACHE = THRESHOLD("runbook:pg_cache_hit_ratio:threshold_warning")
T_PG_ROLLBACK = THRESHOLD("runbook:pg_xact_rollback_ratio:threshold_warning")
T_PGB_WAIT_C = THRESHOLD("runbook:pgbouncer_pools_client_maxwait_seconds:threshold_critical")
T_PGB_SERVER = THRESHOLD("runbook:pgbouncer_databases_server_connections_utilization_ratio:threshold_warning")
T_PGB_CLIENT_W = THRESHOLD("runbook:pgbouncer_client_connections_utilization_ratio:threshold_warning")
T_PGB_CLIENT_C = THRESHOLD("runbook:pgbouncer_client_connections_utilization_ratio:threshold_critical")
T_REDIS_QUEUE_W = THRESHOLD("runbook:redis_key_size:threshold_warning")
T_REDIS_QUEUE_C = THRESHOLD("runbook:redis_key_size:threshold_critical")
T_REDIS_MEM = THRESHOLD("runbook:redis_memory_used_bytes:threshold_warning")
T_REDIS_MAXMEM = THRESHOLD("runbook:redis_memory_used_ratio:threshold_warning")
T_CERT_W = THRESHOLD("runbook:ssl_cert_expiry_seconds:threshold_warning")
T_CERT_C = THRESHOLD("runbook:ssl_cert_expiry_seconds:threshold_critical")

CERT_LEFT = steps((T_CERT_C, ORANGE), (T_CERT_W, GREEN), base=RED)


def xact_rate(sel):
    return (f"sum by (instance, target) (rate(pg_stat_database_xact_commit{{{sel}}}[{RATE}])"
            f" + rate(pg_stat_database_xact_rollback{{{sel}}}[{RATE}]))")


POSTGRES = {
    "uid": "runbook-postgres", "title": "runbook_exporter / PostgreSQL", "target_metric": "pg_up",
    "panels": [
        row("Server"),
        up_stat("Up", "pg_up"),
        stat("Role", [q(f"pg_replication_is_replica{{{S}}}", "{{target}}")], mappings=ROLE,
             thresholds=steps()),
        stat("Uptime", [q(f"time() - pg_postmaster_start_time_seconds{{{S}}}", "{{target}}")], unit="s",
             thresholds=steps((300, GREEN), base=ORANGE),
             description="Orange for 5 minutes after a restart (PostgresRestarted)."),
        stat("Version", [q(f"pg_static{{{S}}}", "{{target}}: {{short_version}}")], text_mode="name",
             thresholds=steps(), width=6),
        stat("Connection slots used", [q(f"pg_connections_utilization_ratio{{{S}}}", "{{target}}")],
             unit="percentunit", thresholds=above(T_PG_CONN_W, T_PG_CONN_C), width=6),
        row("Connections"),
        ts("Connection slots used", [q(f"pg_connections_utilization_ratio{{{S}}}", "{{target}}")],
           unit="percentunit", thresholds=above(T_PG_CONN_W, T_PG_CONN_C),
           description="Share of max_connections minus the reserved slots (PostgresConnectionsHigh)."),
        ts("Client backends by state", [q(f"sum by (target, state) (pg_stat_activity_count{{{S}}})",
                                          "{{target}} {{state}}")]),
        ts("Client backends by database and user",
           [q(f"sum by (target, datname, usename) (pg_stat_activity_backends{{{S}}})",
              "{{target}} {{datname}} {{usename}}")]),
        ts("Oldest idle connection", [q(f"pg_stat_activity_oldest_idle_seconds{{{S}}}", "{{target}} {{datname}}")],
           unit="s", thresholds=above(T_PG_IDLE), description="PostgresIdleConnectionHeldLong."),
        ts("Oldest running query", [q(f"pg_stat_activity_oldest_query_seconds{{{S}}}", "{{target}} {{datname}}")],
           unit="s", thresholds=above(T_PG_QUERY), description="PostgresLongRunningQuery."),
        ts("Oldest idle-in-transaction session",
           [q(f"pg_stat_activity_oldest_idle_in_transaction_seconds{{{S}}}", "{{target}} {{datname}}")],
           unit="s", thresholds=above(T_PG_IIT), description="PostgresIdleInTransaction."),
        row("Locks"),
        ts("Backends waiting for a lock, share of active",
           [q(f"sum by (instance, target) (pg_stat_activity_lock_waiting_backends{{{S}}})"
              f" / sum by (instance, target) (pg_stat_activity_count{{{S},state=\"active\"}})", "{{target}}")],
           unit="percentunit", thresholds=above(T_PG_LOCKS), description="PostgresLockWaitsHigh."),
        ts("Waiting lock requests by mode", [q(f"sum by (target, mode) (pg_locks_waiting{{{S}}})",
                                               "{{target}} {{mode}}")],
           description="accessexclusivelock waiting = blocked DDL (PostgresDdlBlocked)."),
        ts("Locks held by mode", [q(f"sum by (target, mode) (pg_locks_count{{{S}}})", "{{target}} {{mode}}")]),
        ts("Deadlocks (5m)", [q(f"sum by (target, datname) (increase(pg_stat_database_deadlocks{{{S}}}[5m]))",
                                "{{target}} {{datname}}")], thresholds=above(critical=1e-9)),
        row("Replication"),
        ts("Standby lag (measured on the standby)",
           [q(f"pg_replication_lag_seconds{{{S}}} and on (instance, target) pg_replication_is_replica{{{S}}} == 1",
              "{{target}}")], unit="s", thresholds=above(T_PG_LAG_W, T_PG_LAG_C),
           description="PostgresReplicationLag."),
        ts("Replay lag per standby (measured on the primary)",
           [q(f"pg_stat_replication_replay_lag_seconds{{{S}}}", "{{target}} → {{application_name}}")],
           unit="s", thresholds=above(T_PG_LAG_W, T_PG_LAG_C), description="PostgresStandbyReplayLag."),
        ts("Replay lag in bytes",
           [q(f"pg_stat_replication_replay_lag_bytes{{{S}}}", "{{target}} → {{application_name}}"),
            q(f"pg_replication_receive_replay_lag_bytes{{{S}}}", "{{target}} received, not replayed")],
           unit="bytes"),
        stat("Standbys connected", [q(f"pg_stat_replication_standbys{{{S}}}", "{{target}}")],
             thresholds=steps()),
        stat("WAL receiver streaming", [q(f"pg_stat_wal_receiver_streaming{{{S}}}", "{{target}}")],
             mappings=OKBAD, thresholds=steps((1, GREEN), base=RED)),
        stat("Replay paused", [q(f"pg_replication_replay_paused{{{S}}}", "{{target}}")], mappings=NOYES_BAD,
             thresholds=steps((1, ORANGE))),
        ts("Replication slots: WAL retained", [q(f"pg_replication_slots_pg_wal_lsn_diff{{{S}}}",
                                                 "{{target}} {{slot_name}}")], unit="bytes", width=6),
        stat("Replication slots active", [q(f"pg_replication_slots_active{{{S}}}", "{{target}} {{slot_name}}")],
             mappings=[{"type": "value", "options": {"0": {"text": "inactive", "color": ORANGE, "index": 0},
                                                     "1": {"text": "active", "color": GREEN, "index": 1}}}],
             width=6),
        row("WAL and archiving"),
        stat("Archiver failing", [q(f"pg_stat_archiver_failing{{{S}}}", "{{target}}")], mappings=NOYES_BAD,
             thresholds=steps((1, RED))),
        stat("Segments waiting for the archive", [q(f"pg_stat_archiver_pending_wal_files{{{S}}}", "{{target}}")],
             thresholds=above(1)),
        ts("Archive failures (5m)", [q(f"increase(pg_stat_archiver_failed_count{{{S}}}[5m])", "{{target}}")],
           thresholds=above(critical=1e-9), description="PostgresWalArchiveFailing."),
        ts("Last successful archive, age", [q(f"pg_stat_archiver_last_archive_age{{{S}}}", "{{target}}")],
           unit="s", thresholds=above(T_PG_ARCHIVE_AGE), description="PostgresWalArchiveOld."),
        ts("pg_wal size", [q(f"pg_wal_size_bytes{{{S}}}", "{{target}}")], unit="bytes",
           thresholds=above(T_PG_WAL), description="PostgresWalSizeHigh."),
        row("Database statistics"),
        ts("Transactions per second",
           [q(xact_rate(S), "{{target}}"),
            q(f"sum by (instance, target) (rate(pg_stat_database_xact_commit{{{S}}}[1h] offset 15m)"
              f" + rate(pg_stat_database_xact_rollback{{{S}}}[1h] offset 15m))", "{{target}} baseline")],
           unit="ops", description="Baseline: the hour before, as PostgresTransactionRateAnomaly compares."),
        ts("Rollback share",
           [q(f"sum by (instance, target) (rate(pg_stat_database_xact_rollback{{{S}}}[{RATE}])) / {xact_rate(S)}",
              "{{target}}")], unit="percentunit", thresholds=above(T_PG_ROLLBACK),
           description="PostgresRollbackRatioHigh."),
        ts("Cache hit ratio",
           [q(f"sum by (target, datname) (rate(pg_stat_database_blks_hit{{{S}}}[{RATE}]))"
              f" / (sum by (target, datname) (rate(pg_stat_database_blks_hit{{{S}}}[{RATE}]))"
              f" + sum by (target, datname) (rate(pg_stat_database_blks_read{{{S}}}[{RATE}])))",
              "{{target}} {{datname}}")], unit="percentunit", thresholds=below(T_PG_CACHE), min_zero=False,
           description="PostgresCacheHitRatioLow (which also requires > 10 blocks/s)."),
        ts("Database size", [q(f"pg_database_size_bytes{{{S}}}", "{{target}} {{datname}}")], unit="bytes"),
        ts("Database growth per day (last hour)",
           [q(f"delta(pg_database_size_bytes{{{S}}}[1h]) * 24", "{{target}} {{datname}}")], unit="bytes",
           thresholds=above(T_PG_GROWTH), min_zero=False, description="PostgresDatabaseGrowthHigh."),
        ts("Temporary files written", [q(f"sum by (target, datname) (rate(pg_stat_database_temp_bytes{{{S}}}[{RATE}]))",
                                         "{{target}} {{datname}}")], unit="Bps"),
        ts("Rows per second", [
            q(f"sum by (target) (rate(pg_stat_database_tup_fetched{{{S}}}[{RATE}]))", "{{target}} fetched"),
            q(f"sum by (target) (rate(pg_stat_database_tup_inserted{{{S}}}[{RATE}]))", "{{target}} inserted"),
            q(f"sum by (target) (rate(pg_stat_database_tup_updated{{{S}}}[{RATE}]))", "{{target}} updated"),
            q(f"sum by (target) (rate(pg_stat_database_tup_deleted{{{S}}}[{RATE}]))", "{{target}} deleted")],
           unit="ops"),
        ts("Recovery conflicts (standby)",
           [q(f"sum by (target, datname) (increase(pg_stat_database_conflicts{{{S}}}[5m]))", "{{target}} {{datname}}")]),
    ],
}

PGBOUNCER = {
    "uid": "runbook-pgbouncer", "title": "runbook_exporter / PgBouncer", "target_metric": "pgbouncer_up",
    "panels": [
        row("Server"),
        up_stat("Up", "pgbouncer_up"),
        stat("Version", [q(f"pgbouncer_version_info{{{S}}}", "{{target}}: {{version}}")], text_mode="name",
             thresholds=steps()),
        stat("Clients waiting", [q(f"sum by (target) (pgbouncer_pools_client_waiting_connections{{{S}}})",
                                   "{{target}}")], thresholds=above(1)),
        stat("Longest wait", [q(f"max by (target) (pgbouncer_pools_client_maxwait_seconds{{{S}}})", "{{target}}")],
             unit="s", thresholds=above(1e-9, T_PGB_WAIT_C)),
        stat("Client connections used", [q(f"pgbouncer_client_connections_utilization_ratio{{{S}}}", "{{target}}")],
             unit="percentunit", thresholds=above(T_PGB_CLIENT_W, T_PGB_CLIENT_C), width=8),
        row("Pools"),
        ts("Clients waiting per pool", [q(f"pgbouncer_pools_client_waiting_connections{{{S}}}",
                                          "{{target}} {{database}}/{{user}}")],
           thresholds=above(1), description="PgBouncerClientsWaiting (warning): waiting for 2 minutes."),
        ts("Longest wait per pool (maxwait)", [q(f"pgbouncer_pools_client_maxwait_seconds{{{S}}}",
                                                 "{{target}} {{database}}/{{user}}")],
           unit="s", thresholds=above(critical=T_PGB_WAIT_C), description="PgBouncerClientsWaiting (critical)."),
        ts("Server connection utilisation per database",
           [q(f"pgbouncer_databases_server_connections_utilization_ratio{{{S}}}", "{{target}} {{name}}")],
           unit="percentunit", thresholds=above(T_PGB_SERVER), description="PgBouncerServerPoolUtilizationHigh."),
        ts("Client connections", [
            q(f"sum by (target, database) (pgbouncer_pools_client_active_connections{{{S}}})", "{{target}} {{database}} active"),
            q(f"sum by (target, database) (pgbouncer_pools_client_waiting_connections{{{S}}})", "{{target}} {{database}} waiting")]),
        ts("Server connections", [
            q(f"sum by (target, database) (pgbouncer_pools_server_active_connections{{{S}}})", "{{target}} {{database}} active"),
            q(f"sum by (target, database) (pgbouncer_pools_server_idle_connections{{{S}}})", "{{target}} {{database}} idle"),
            q(f"sum by (target, database) (pgbouncer_pools_server_used_connections{{{S}}})", "{{target}} {{database}} used"),
            q(f"pgbouncer_databases_pool_size{{{S}}}", "{{target}} {{name}} pool_size")]),
        ts("Client connections vs max_client_conn",
           [q(f"pgbouncer_client_connections_utilization_ratio{{{S}}}", "{{target}}")], unit="percentunit",
           thresholds=above(T_PGB_CLIENT_W, T_PGB_CLIENT_C), description="PgBouncerClientConnectionsHigh."),
        row("Traffic"),
        ts("Transactions and queries per second", [
            q(f"sum by (target, database) (rate(pgbouncer_stats_sql_transactions_pooled_total{{{S}}}[{RATE}]))",
              "{{target}} {{database}} transactions"),
            q(f"sum by (target, database) (rate(pgbouncer_stats_queries_pooled_total{{{S}}}[{RATE}]))",
              "{{target}} {{database}} queries")], unit="ops"),
        ts("Average query time", [
            q(f"rate(pgbouncer_stats_queries_duration_seconds_total{{{S}}}[{RATE}])"
              f" / rate(pgbouncer_stats_queries_pooled_total{{{S}}}[{RATE}])", "{{target}} {{database}}")], unit="s"),
        ts("Client wait time per second", [
            q(f"rate(pgbouncer_stats_client_wait_seconds_total{{{S}}}[{RATE}])", "{{target}} {{database}}")],
           unit="s", description="Seconds clients spent waiting for a server, per second."),
        ts("Network traffic", [
            q(f"sum by (target) (rate(pgbouncer_stats_received_bytes_total{{{S}}}[{RATE}]))", "{{target}} received"),
            q(f"sum by (target) (rate(pgbouncer_stats_sent_bytes_total{{{S}}}[{RATE}]))", "{{target}} sent")],
           unit="Bps"),
    ],
}

REDIS = {
    "uid": "runbook-redis", "title": "runbook_exporter / Redis", "target_metric": "redis_up",
    "panels": [
        row("Server"),
        up_stat("Up", "redis_up"),
        stat("Version and role", [q(f"redis_instance_info{{{S}}}", "{{target}}: {{redis_version}} {{role}}")],
             text_mode="name", thresholds=steps(), width=6),
        stat("Uptime", [q(f"redis_uptime_in_seconds{{{S}}}", "{{target}}")], unit="s",
             thresholds=steps((300, GREEN), base=ORANGE)),
        stat("Memory used", [q(f"redis_memory_used_bytes{{{S}}}", "{{target}}")], unit="bytes",
             thresholds=above(T_REDIS_MEM), width=5),
        stat("Longest queue", [q(f"max by (target) (redis_key_size{{{S}}})", "{{target}}")],
             thresholds=above(T_REDIS_QUEUE_W, T_REDIS_QUEUE_C), width=5),
        row("Queues"),
        ts("Queue depth", [q(f"redis_key_size{{{S}}}", "{{target}} {{db}} {{key}}")],
           thresholds=above(T_REDIS_QUEUE_W, T_REDIS_QUEUE_C), width=16,
           description="RedisQueueDepthHigh: the configured keys (keys: in the exporter's config)."),
        ts("Queue growth", [q(f"deriv(redis_key_size{{{S}}}[5m])", "{{target}} {{key}}")], unit="ops",
           min_zero=False, description="Items per second; negative = draining."),
        row("Memory"),
        ts("Memory used", [q(f"redis_memory_used_bytes{{{S}}}", "{{target}} used"),
                           q(f"redis_memory_used_rss_bytes{{{S}}}", "{{target}} RSS")],
           unit="bytes", thresholds=above(T_REDIS_MEM), description="RedisMemoryHigh."),
        ts("Memory used of maxmemory",
           [q(f"redis_memory_used_bytes{{{S}}} / on (instance, target) (redis_memory_max_bytes{{{S}}} > 0)",
              "{{target}}")], unit="percentunit", thresholds=above(T_REDIS_MAXMEM),
           description="RedisMemoryNearMaxmemory; empty without maxmemory."),
        ts("Fragmentation ratio", [q(f"redis_mem_fragmentation_ratio{{{S}}}", "{{target}}")], min_zero=False),
        row("Clients and commands"),
        ts("Clients", [q(f"redis_connected_clients{{{S}}}", "{{target}} connected"),
                       q(f"redis_blocked_clients{{{S}}}", "{{target}} blocked")]),
        ts("Commands per second", [q(f"rate(redis_commands_processed_total{{{S}}}[{RATE}])", "{{target}}")],
           unit="ops"),
        ts("Keyspace hit ratio",
           [q(f"rate(redis_keyspace_hits_total{{{S}}}[{RATE}]) / (rate(redis_keyspace_hits_total{{{S}}}[{RATE}])"
              f" + rate(redis_keyspace_misses_total{{{S}}}[{RATE}]))", "{{target}}")], unit="percentunit"),
        ts("Keys per database", [q(f"redis_db_keys{{{S}}}", "{{target}} {{db}}")]),
        ts("Expired and evicted keys", [
            q(f"rate(redis_expired_keys_total{{{S}}}[{RATE}])", "{{target}} expired"),
            q(f"rate(redis_evicted_keys_total{{{S}}}[{RATE}])", "{{target}} evicted")], unit="ops"),
        ts("Slow log", [q(f"redis_slowlog_length{{{S}}}", "{{target}} entries"),
                        q(f"increase(redis_slowlog_last_id{{{S}}}[10m])", "{{target}} new in 10m")],
           description="RedisSlowlogGrowing."),
        row("Persistence"),
        stat("Last RDB save", [q(f"redis_rdb_last_bgsave_status{{{S}}}", "{{target}}")], mappings=OKBAD,
             thresholds=steps((1, GREEN), base=RED), description="RedisRdbSaveFailed."),
        stat("AOF writes", [q(f"redis_aof_last_write_status{{{S}}}", "{{target}}")], mappings=OKBAD,
             thresholds=steps((1, GREEN), base=RED), description="RedisAofWriteFailed."),
        stat("Last AOF rewrite", [q(f"redis_aof_last_bgrewrite_status{{{S}}}", "{{target}}")], mappings=OKBAD,
             thresholds=steps((1, GREEN), base=RED), description="RedisAofRewriteFailed."),
        ts("Time since last save", [q(f"time() - redis_rdb_last_save_timestamp_seconds{{{S}}}", "{{target}}")],
           unit="s", width=6),
        ts("Changes since last save", [q(f"redis_rdb_changes_since_last_save{{{S}}}", "{{target}}")], width=6),
    ],
}

CERTIFICATES = {
    "uid": "runbook-certificates", "title": "runbook_exporter / Certificates", "target_metric": "ssl_up",
    "panels": [
        row("Expiry"),
        table("Time left per certificate",
              [q(f"ssl_cert_not_after{{{S}}} - time()", ""), q(f"ssl_file_cert_not_after{{{S}}} - time()", "")],
              unit="s", thresholds=CERT_LEFT, width=24,
              description="Every certificate of each presented chain and of each file (CertificateExpiringSoon)."),
        ts("Time left, shortest per target",
           [q(f"min by (target) (ssl_cert_not_after{{{S}}} - time())", "{{target}}")], unit="s",
           thresholds=CERT_LEFT, min_zero=False),
        ts("Time left, verified chains", [q(f"ssl_verified_cert_not_after{{{S}}} - time()",
                                            "{{target}} chain {{chain_no}} {{cn}}")], unit="s",
           thresholds=CERT_LEFT, min_zero=False),
        row("Verification"),
        stat("Target up", [q(f"ssl_up{{{S}}}", "{{target}}")], mappings=UPDOWN,
             thresholds=steps((1, GREEN), base=RED), width=6),
        stat("TLS handshake", [q(f"ssl_tls_connect_success{{{S}}}", "{{target}}")], mappings=OKBAD,
             thresholds=steps((1, GREEN), base=RED), width=6, description="CertificateProbeFailed."),
        stat("Chain verifies",
             [q(f"(count by (instance, target) (ssl_verified_cert_not_after{{{S}}}) > bool 0)"
                f" or on (instance, target) (ssl_tls_connect_success{{{S}}} * 0)", "{{target}}")],
             mappings=OKBAD, thresholds=steps((1, GREEN), base=RED), width=6,
             description="CertificateVerificationFailed."),
        stat("TLS version", [q(f"ssl_tls_version_info{{{S}}}", "{{target}}: {{version}}")], text_mode="name",
             thresholds=steps(), width=6),
    ],
}

ALERTS = {
    "uid": "runbook-alerts", "title": "runbook_exporter / Alerts and the exporter itself",
    "target_metric": "runbook_exporter_collections_total",
    "panels": [
        row("Alerts"),
        table("Firing alerts", [q('sum by (alertname, severity, target) (ALERTS{alertstate="firing"})', "")],
              thresholds=steps(), width=12),
        table("Pending alerts", [q('sum by (alertname, severity, target) (ALERTS{alertstate="pending"})', "")],
              thresholds=steps(), width=12),
        ts("Firing alerts by severity", [q('sum by (severity) (ALERTS{alertstate="firing"})', "{{severity}}")],
           width=12),
        ts("Notification errors and drops", [
            q(f"sum by (alertmanager) (rate(prometheus_notifications_errors_total{{{I}}}[{RATE}]))", "{{alertmanager}} errors"),
            q(f"rate(prometheus_notifications_dropped_total{{{I}}}[{RATE}])", "{{instance}} dropped")], unit="ops",
           thresholds=above(critical=1e-9), width=12, description="AlertNotificationsFailing, AlertNotificationsDropped."),
        ts("Notification queue", [
            q(f"prometheus_notifications_queue_length{{{I}}} / prometheus_notifications_queue_capacity{{{I}}}",
              "{{instance}}")], unit="percentunit", thresholds=above(0.5), width=12,
           description="AlertNotificationQueueFilling."),
        ts("Rule group duration vs interval", [
            q(f"prometheus_rule_group_last_duration_seconds{{{I}}} / prometheus_rule_group_interval_seconds{{{I}}}",
              "{{rule_group}}")], unit="percentunit", thresholds=above(critical=1), width=12,
           description="RuleGroupSlow; RuleEvaluationFailures below."),
        ts("Rule evaluation failures", [
            q(f"sum by (rule_group) (increase(prometheus_rule_evaluation_failures_total{{{I}}}[5m]))", "{{rule_group}}"),
            q(f"sum by (rule_group) (increase(prometheus_rule_group_iterations_missed_total{{{I}}}[5m]))",
              "{{rule_group}} missed")], thresholds=above(critical=1e-9), width=24),
        row("runbook_exporter"),
        stat("Build", [q(f"runbook_exporter_build_info{{{I}}}", "{{instance}}: {{version}} ({{revision}})")],
             text_mode="name", thresholds=steps(), width=8),
        stat("Configuration reload", [q(f"runbook_exporter_config_last_reload_successful{{{I}}}", "{{instance}}")],
             mappings=OKBAD, thresholds=steps((1, GREEN), base=RED), description="RunbookExporterConfigReloadFailed."),
        stat("Targets", [q(f"sum by (kind) (runbook_exporter_targets{{{I}}})", "{{kind}}")], thresholds=steps(),
             width=12),
        table("Collectors that fail", [q(f"runbook_exporter_collector_success{{{S}}} == 0", "")],
              thresholds=steps(), description="RunbookExporterCollectorFailing (empty when all succeed)."),
        table("Targets down, by reason", [q(f"runbook_exporter_target_error{{{S}}} == 1", "")], thresholds=steps(),
              description="network, auth, timeout, permission, protocol, query."),
        ts("Age of the last successful collection",
           [q(f"time() - runbook_exporter_last_success_timestamp_seconds{{{S}}}", "{{target}}")], unit="s",
           thresholds=above(300), description="RunbookExporterCollectionStale."),
        ts("Collection duration", [q(f"runbook_exporter_collection_duration_seconds{{{S}}}", "{{target}}")], unit="s"),
        ts("Slowest collectors", [q(f"topk(10, runbook_exporter_collector_duration_seconds{{{S}}})",
                                    "{{target}} {{collector}}")], unit="s"),
        ts("Collection failures by reason",
           [q(f"sum by (target, reason) (rate(runbook_exporter_collection_failures_total{{{S}}}[{RATE}]))",
              "{{target}} {{reason}}")], unit="ops"),
        ts("Data errors", [q(f"rate(runbook_exporter_data_errors_total{{{S}}}[{RATE}])", "{{target}}")], unit="ops"),
    ],
}

OVERVIEW = {
    "uid": "runbook-overview", "title": "runbook_exporter / Overview", "target_metric": "runbook_exporter_collections_total",
    "panels": [
        row("Reachability"),
        up_stat("PostgreSQL", "pg_up"),
        up_stat("PgBouncer", "pgbouncer_up"),
        up_stat("Redis", "redis_up"),
        up_stat("Certificate targets", "ssl_up"),
        stat("Firing alerts", [q('sum by (severity) (ALERTS{alertstate="firing"})', "{{severity}}")],
             thresholds=steps(), width=8),
        row("Runbook signals"),
        stat("PostgreSQL connection slots used", [q(f"pg_connections_utilization_ratio{{{S}}}", "{{target}}")],
             unit="percentunit", thresholds=above(T_PG_CONN_W, T_PG_CONN_C), width=6),
        stat("Standby lag", [q(f"pg_replication_lag_seconds{{{S}}} and on (instance, target)"
                               f" pg_replication_is_replica{{{S}}} == 1", "{{target}}")],
             unit="s", thresholds=above(T_PG_LAG_W, T_PG_LAG_C), width=6),
        stat("WAL archiver failing", [q(f"pg_stat_archiver_failing{{{S}}}", "{{target}}")], mappings=NOYES_BAD,
             thresholds=steps((1, RED)), width=6),
        stat("Oldest running query", [q(f"max by (target) (pg_stat_activity_oldest_query_seconds{{{S}}})",
                                        "{{target}}")], unit="s", thresholds=above(T_PG_QUERY), width=6),
        stat("PgBouncer clients waiting", [q(f"sum by (target) (pgbouncer_pools_client_waiting_connections{{{S}}})",
                                             "{{target}}")], thresholds=above(1), width=6),
        stat("Redis queue depth", [q(f"redis_key_size{{{S}}}", "{{key}}")],
             thresholds=above(T_REDIS_QUEUE_W, T_REDIS_QUEUE_C), width=6),
        stat("Redis memory", [q(f"redis_memory_used_bytes{{{S}}}", "{{target}}")], unit="bytes",
             thresholds=above(T_REDIS_MEM), width=6),
        stat("Certificate time left", [q(f"min by (target) (ssl_cert_not_after{{{S}}} - time())", "{{target}}")],
             unit="s", thresholds=CERT_LEFT, width=6),
        row("Activity"),
        ts("PostgreSQL transactions per second", [q(xact_rate(S), "{{target}}")], unit="ops"),
        ts("PgBouncer queries per second",
           [q(f"sum by (target) (rate(pgbouncer_stats_queries_pooled_total{{{S}}}[{RATE}]))", "{{target}}")],
           unit="ops"),
        ts("Redis commands per second", [q(f"rate(redis_commands_processed_total{{{S}}}[{RATE}])", "{{target}}")],
           unit="ops"),
    ],
}

DASHBOARDS = [OVERVIEW, POSTGRES, PGBOUNCER, REDIS, CERTIFICATES, ALERTS]


# --------------------------------------------------------------------------------------------
def datasource():
    return {"type": "prometheus", "uid": "${datasource}"}


def render_panel(p, pid, x, y):
    if p["kind"] == "row":
        return {"type": "row", "id": pid, "title": p["title"], "collapsed": False, "panels": [],
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}}
    defaults = {"unit": p["unit"], "thresholds": {"mode": "absolute", "steps": p["thresholds"] or steps()}}
    if p["mappings"]:
        defaults["mappings"] = p["mappings"]
    if p["decimals"] is not None:
        defaults["decimals"] = p["decimals"]
    out = {
        "type": p["kind"], "id": pid, "title": p["title"], "datasource": datasource(),
        "gridPos": {"h": p["height"], "w": p["width"], "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [],
    }
    if p["description"]:
        out["description"] = p["description"]
    for i, (expr, legend) in enumerate(p["queries"]):
        target = {"datasource": datasource(), "refId": chr(ord("A") + i), "expr": expr, "range": True,
                  "legendFormat": legend or "__auto", "editorMode": "code"}
        if p["kind"] in ("table",):
            target.update({"range": False, "instant": True, "format": "table"})
        if p["kind"] == "stat":
            target.update({"range": False, "instant": True})
        out["targets"].append(target)
    if p["kind"] == "timeseries":
        custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
                  "spanNulls": False}
        if p["thresholds"] and len(p["thresholds"]) > 1:
            custom["thresholdsStyle"] = {"mode": "line"}
        defaults["custom"] = custom
        defaults["color"] = {"mode": "palette-classic"}
        if p["min_zero"]:
            defaults["min"] = 0
        out["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                          "tooltip": {"mode": "multi", "sort": "desc"}}
    elif p["kind"] == "stat":
        defaults["color"] = {"mode": "thresholds"}
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                          "colorMode": "background", "graphMode": "none", "justifyMode": "auto",
                          "orientation": "auto", "textMode": p["text_mode"] or "value_and_name"}
    elif p["kind"] == "table":
        defaults["color"] = {"mode": "thresholds"}
        defaults["custom"] = {"cellOptions": {"type": "color-background"} if p["unit"] == "s" else {"type": "auto"}}
        out["options"] = {"showHeader": True, "cellHeight": "sm"}
        out["transformations"] = [{"id": "merge", "options": {}},
                                  {"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True}}}]
    return out


def render(d):
    panels, pid, x, y, row_h = [], 1, 0, 0, 0
    for p in d["panels"]:
        if p["kind"] == "row":
            if x:
                y += row_h
            x, row_h = 0, 0
            panels.append(render_panel(p, pid, 0, y))
            y += 1
        else:
            if x + p["width"] > 24:
                x, y, row_h = 0, y + row_h, 0
            panels.append(render_panel(p, pid, x, y))
            x += p["width"]
            row_h = max(row_h, p["height"])
        pid += 1
    target_metric = d["target_metric"]
    variables = [
        {"type": "datasource", "name": "datasource", "label": "Data source", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []},
        {"type": "query", "name": "instance", "label": "Exporter", "datasource": datasource(),
         "query": {"query": "label_values(runbook_exporter_build_info, instance)", "refId": "instance"},
         "definition": "label_values(runbook_exporter_build_info, instance)",
         "includeAll": True, "multi": True, "allValue": ".*", "current": {}, "refresh": 2, "sort": 1,
         "hide": 0, "regex": "", "options": []},
        {"type": "query", "name": "target", "label": "Target", "datasource": datasource(),
         "query": {"query": f'label_values({target_metric}{{instance=~"$instance"}}, target)', "refId": "target"},
         "definition": f'label_values({target_metric}{{instance=~"$instance"}}, target)',
         "includeAll": True, "multi": True, "allValue": ".*", "current": {}, "refresh": 2, "sort": 1,
         "hide": 0, "regex": "", "options": []},
    ]
    links = [{"type": "dashboards", "tags": ["runbook_exporter"], "asDropdown": True, "title": "Dashboards",
              "includeVars": True, "keepTime": True, "icon": "external link", "targetBlank": False,
              "tooltip": "", "url": ""}]
    return {
        "__inputs": [], "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}],
        "uid": d["uid"], "title": d["title"], "tags": ["runbook_exporter"], "editable": True,
        "schemaVersion": 39, "version": 1, "graphTooltip": 1, "timezone": "", "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"}, "timepicker": {}, "fiscalYearStartMonth": 0,
        "liveNow": False, "weekStart": "", "links": links,
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                  "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                  "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": {"list": variables},
        "panels": panels,
    }


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for d in DASHBOARDS:
        path = HERE / f"{d['uid']}.json"
        text = json.dumps(render(d), indent=2, ensure_ascii=False) + "\n"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        print("out of date (run dashboards/build.py):", " ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
