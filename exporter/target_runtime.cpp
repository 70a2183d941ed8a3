#include "target_runtime.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>

#include "exposition.h"
#include "libpq_session.h"
#include "redis_session.h"
#include "tls_dialer.h"

namespace runbook {

namespace {

using SteadyClock = std::chrono::steady_clock;

class PgConnection final : public TargetConnection {
 public:
  explicit PgConnection(const PgConnParams& p) : session_(p) {}
  Status Connect(Deadline d) override { return session_.Connect(d); }
  bool connected() const override { return session_.connected(); }
  void Disconnect() override { session_.Disconnect(); }
  void Bind(ScrapeContext& ctx) override { ctx.pg = &session_; }

 private:
  LibpqSession session_;
};

const MetricDesc kCollectorSuccess{"runbook_exporter_collector_success",
                                   MetricKind::kGauge,
                                   "1 if the collector's latest run succeeded, else 0.",
                                   {"collector"}};
const MetricDesc kCollectorDuration{"runbook_exporter_collector_duration_seconds",
                                    MetricKind::kGauge,
                                    "Duration of the collector's latest run.",
                                    {"collector"}};
const MetricDesc kTargetError{"runbook_exporter_target_error",
                              MetricKind::kGauge,
                              "1 for the reason the target's latest collection failed, 0 for the others.",
                              {"reason"}};
const MetricDesc kCollectionDuration{"runbook_exporter_collection_duration_seconds",
                                     MetricKind::kGauge,
                                     "Duration of the target's latest collection.",
                                     {}};
const MetricDesc kLastCollection{"runbook_exporter_last_collection_timestamp_seconds",
                                 MetricKind::kGauge,
                                 "Unix time at which the target's latest collection ended.",
                                 {}};
const MetricDesc kLastSuccess{"runbook_exporter_last_success_timestamp_seconds",
                              MetricKind::kGauge,
                              "Unix time of the target's latest successful collection.",
                              {}};
const MetricDesc kCollections{"runbook_exporter_collections_total",
                              MetricKind::kCounter,
                              "Collections of the target since the exporter started.",
                              {}};
const MetricDesc kFailures{"runbook_exporter_collection_failures_total",
                           MetricKind::kCounter,
                           "Failed collections of the target, by reason.",
                           {"reason"}};
const MetricDesc kConnectAttempts{"runbook_exporter_connection_attempts_total",
                                  MetricKind::kCounter,
                                  "Connections the exporter opened (or tried to) to the target.",
                                  {}};
const MetricDesc kDataErrors{
    "runbook_exporter_data_errors_total",
    MetricKind::kCounter,
    "Values the target sent that could not be published (not a number, duplicate series).",
    {}};

MetricDesc UpDesc(TargetKind kind) {
  // The peers' names: pg_up (postgres_exporter), pgbouncer_up, redis_up, ssl_* (ssl_exporter).
  std::string k(KindName(kind));
  if (kind == TargetKind::kPostgres) k = "pg";
  if (kind == TargetKind::kCertificates) k = "ssl";
  return {k + "_up",
          MetricKind::kGauge,
          "1 if the exporter could connect to the " + std::string(KindName(kind)) +
              " target and read from it in its latest collection, else 0.",
          {}};
}

double UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

bool IsConnectionLevel(ErrorReason r) {
  return r == ErrorReason::kNetwork || r == ErrorReason::kTimeout || r == ErrorReason::kAuth;
}

}  // namespace

std::unique_ptr<TargetConnection> MakeConnection(const TargetConfig& cfg) {
  switch (cfg.kind) {
    case TargetKind::kPostgres:
    case TargetKind::kPgBouncer: return std::make_unique<PgConnection>(cfg.pg);
    case TargetKind::kRedis: return MakeRedisConnection(cfg);
    case TargetKind::kCertificates: return MakeCertificateConnection(cfg);
  }
  return nullptr;
}

std::vector<RenderedFamily> RenderFamilies(const std::vector<prometheus::MetricFamily>& families) {
  std::vector<RenderedFamily> out;
  out.reserve(families.size());
  for (const auto& f : families) {
    RenderedFamily& r = out.emplace_back();
    r.name = f.name;
    AppendFamilyHeader(r.header, f);
    AppendFamilySamples(r.body, f);
  }
  return out;
}

std::vector<RenderedFamily> RenderFamilies(const std::vector<SampleFamily>& families) {
  std::vector<RenderedFamily> out;
  RenderFamiliesInto(families, out);
  return out;
}

void RenderFamiliesInto(const std::vector<SampleFamily>& families, std::vector<RenderedFamily>& out) {
  std::size_t used = 0;
  for (const auto& f : families) {
    if (used == 0 || out[used - 1].name != f.name) {
      if (used == out.size()) out.emplace_back();
      RenderedFamily& r = out[used++];
      r.name = f.name;
      r.header.clear();
      r.body.clear();
      AppendFamilyHeader(r.header, f);
    }
    AppendFamilySamples(out[used - 1].body, f);
  }
  out.erase(out.begin() + static_cast<std::ptrdiff_t>(used), out.end());
}

TargetRuntime::TargetRuntime(TargetConfig cfg, const ConnectionFactory& factory,
                             const std::vector<CollectorInfo>& registry)
    : cfg_(std::move(cfg)), conn_(factory(cfg_)) {
  const_labels_.emplace_back("target", cfg_.name);
  for (const auto& l : cfg_.labels) const_labels_.push_back(l);
  self_sink_ = MetricSink(const_labels_);
  for (const auto& info : registry) {
    if (info.kind != cfg_.kind || !cfg_.collectors.count(info.name)) continue;
    CollectorSlot slot{&info, info.factory(), MetricSink(const_labels_), {}, false, false, false, {}};
    slot.report.name = info.name;
    slots_.push_back(std::move(slot));
  }
}

const std::vector<RenderedFamily>& TargetSnapshot::Rendered() const {
  std::call_once(rendered_once_, [this] { RenderFamiliesInto(families, rendered_); });
  return rendered_;
}

std::shared_ptr<const TargetSnapshot> TargetRuntime::Snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

std::shared_ptr<TargetSnapshot> TargetRuntime::NewSnapshot() {
  auto recycled = recycled_;
  std::shared_ptr<TargetSnapshot> snap(new TargetSnapshot, [recycled](TargetSnapshot* s) {
    {
      std::lock_guard lock(recycled->mu);
      // Two: the snapshot being built and the published one; a third is rarely free.
      if (recycled->free.size() < 2)
        recycled->free.emplace_back(std::move(s->families), std::move(s->rendered_));
    }
    delete s;
  });
  std::lock_guard lock(recycled_->mu);
  if (!recycled_->free.empty()) {
    snap->families = std::move(recycled_->free.back().first);
    snap->rendered_ = std::move(recycled_->free.back().second);
    recycled_->free.pop_back();
  }
  return snap;
}

void TargetRuntime::Publish(std::shared_ptr<TargetSnapshot> snap) {
  std::lock_guard lock(mu_);
  snapshot_ = std::move(snap);
}

void TargetRuntime::Collect() {
  const auto start = SteadyClock::now();
  const Deadline deadline = start + cfg_.timeout;
  auto snap = NewSnapshot();
  merge_.clear();
  collections_total_ += 1;

  Status status;
  if (!conn_) {
    status = Status::Error(ErrorReason::kProtocol, "no connection type for this kind of target");
  } else if (!conn_->connected()) {
    if (start < next_connect_) {
      status =
          last_status_.ok() ? Status::Error(ErrorReason::kNetwork, "waiting to reconnect") : last_status_;
    } else {
      connect_attempts_total_ += 1;
      status = conn_->Connect(deadline);
      if (status.ok()) {
        connect_failures_ = 0;
      } else {
        // Backoff doubles from one interval up to max(interval, 1 min): a wrong password costs the
        // server at most one failed login per step, and a restarted server is found quickly.
        auto cap = std::max<Millis>(cfg_.interval, Millis(60000));
        auto backoff = cfg_.interval * (1LL << std::min(connect_failures_, 16));
        // Less a tenth of an interval, so scheduling jitter does not skip the collection that is due.
        next_connect_ =
            start + std::min<Millis>(std::chrono::duration_cast<Millis>(backoff), cap) - cfg_.interval / 10;
        ++connect_failures_;
      }
    }
  }

  for (auto& slot : slots_) slot.report.ran = false;
  ScrapeContext ctx{cfg_.name, deadline, nullptr};
  if (status.ok()) {
    ctx.settings = &cfg_.settings;
    ctx.shared = &shared_;
    conn_->Bind(ctx);
    // A slow collector runs again after slow_interval whether its last run succeeded (its output
    // is served from the cache meanwhile) or was refused (CONFIG on a managed service: asking
    // every collection would only add to the server's error statistics).
    for (auto& slot : slots_) {
      slot.due = slot.info->tier != Tier::kSlow || !slot.tried || start - slot.last_run >= cfg_.slow_interval;
      if (slot.due) slot.collector->Prepare(ctx);
    }
    // A connection lost in the shared round trip fails the target at once, with its reason (a
    // frozen server: timeout), rather than each collector finding it closed.
    if (auto st = ctx.SendPrepared(); !st.ok() && (IsConnectionLevel(st.reason) || !conn_->connected()))
      status = st;
  }
  if (status.ok()) {
    for (auto& slot : slots_) {
      auto& rep = slot.report;
      const bool slow = slot.info->tier == Tier::kSlow;
      if (!slot.due) {
        if (slot.cache_valid) MergeRun(slot.sink.Families());
        continue;
      }
      MetricSink& sink = slot.sink;
      sink.Reset();
      const auto t0 = SteadyClock::now();
      Status st = ctx.Expired()
                      ? Status::Error(ErrorReason::kTimeout, "deadline reached before this collector ran")
                      : slot.collector->Update(ctx, sink);
      rep.ran = true;
      slot.tried = true;
      slot.last_run = start;
      rep.duration_s = std::chrono::duration<double>(SteadyClock::now() - t0).count();
      // A collector failing on its own (a refused command, a missing privilege) is logged when
      // its failure starts or changes and when it recovers, not every cycle.
      if (!st.ok() && !IsConnectionLevel(st.reason) && st.message != rep.error)
        spdlog::warn("target {}: collector {} failed: reason={} {}", cfg_.name, slot.info->name,
                     ReasonName(st.reason), st.message);
      if (st.ok() && !rep.success && !rep.error.empty())
        spdlog::info("target {}: collector {} succeeds again", cfg_.name, slot.info->name);
      rep.success = st.ok();
      rep.error = st.message;
      for (const auto& e : sink.errors()) snap->data_errors.push_back(slot.info->name + ": " + e);
      if (st.ok()) {
        MergeRun(sink.Families());
        slot.cache_valid = slow;
      } else {
        slot.cache_valid = false;
        if (IsConnectionLevel(st.reason) || !conn_->connected()) {
          status = st;
          break;
        }
      }
    }
    if (ctx.reconnect && status.ok()) conn_->Disconnect();
  }
  if (!status.ok()) {
    merge_.clear();
    shared_.clear();
    for (auto& slot : slots_) {
      slot.cache_valid = false;
      slot.tried = false;
      if (!slot.report.ran || slot.report.success) slot.report.error = status.message;
      slot.report.success = false;
    }
    if (conn_) conn_->Disconnect();
    failures_total_[status.reason] += 1;
  }
  // Two collectors publishing one family name with different types: the later one's samples are
  // dropped, and said so, rather than making the exposition invalid.
  const std::size_t dropped = OrderForMerge(merge_, merge_.size());
  if (dropped > 0)
    snap->data_errors.push_back(std::to_string(dropped) +
                                " samples dropped: a family was published with two different types");
  data_errors_total_ += static_cast<double>(snap->data_errors.size());

  const auto now_sys = std::chrono::system_clock::now();
  snap->up = status.ok();
  snap->status = status;
  snap->collected_at = now_sys;
  snap->duration_s = std::chrono::duration<double>(SteadyClock::now() - start).count();
  if (status.ok()) last_success_ = now_sys;
  snap->last_success = last_success_;
  for (const auto& slot : slots_) snap->collectors.push_back(slot.report);

  self_sink_.Reset();
  AddSelfMetrics(self_sink_, *snap);
  // Stable: a collector's family goes before a self-metric family of the same name.
  MergeRun(self_sink_.Families());
  OrderForMerge(merge_, merge_.size());
  MergeOrderedInto(merge_, snap->families);

  // Log transitions only: a target that stays down is not logged every cycle.
  if (first_ || status.reason != last_status_.reason) {
    if (status.ok()) {
      if (!first_) spdlog::info("target {} is up again", cfg_.name);
    } else {
      spdlog::warn("target {} is down: reason={} {}", cfg_.name, ReasonName(status.reason), status.message);
    }
  }
  first_ = false;
  last_status_ = status;
  Publish(std::move(snap));
}

void TargetRuntime::MergeRun(const std::vector<const SampleFamily*>& run) {
  merge_scratch_.clear();
  std::merge(merge_.begin(), merge_.end(), run.begin(), run.end(), std::back_inserter(merge_scratch_),
             [](const SampleFamily* a, const SampleFamily* b) { return a->name < b->name; });
  merge_.swap(merge_scratch_);
}

void TargetRuntime::AddSelfMetrics(MetricSink& sink, const TargetSnapshot& snap) const {
  sink.Add(UpDesc(cfg_.kind), {}, snap.up ? 1 : 0);
  for (auto r : kAllErrorReasons) {
    sink.Add(kTargetError, {ReasonName(r)}, snap.status.reason == r ? 1 : 0);
    auto it = failures_total_.find(r);
    sink.Add(kFailures, {ReasonName(r)}, it == failures_total_.end() ? 0 : it->second);
  }
  for (const auto& rep : snap.collectors) {
    sink.Add(kCollectorSuccess, {rep.name}, rep.success ? 1 : 0);
    if (rep.duration_s > 0) sink.Add(kCollectorDuration, {rep.name}, rep.duration_s);
  }
  sink.Add(kCollectionDuration, {}, snap.duration_s);
  sink.Add(kLastCollection, {}, UnixSeconds(snap.collected_at));
  if (snap.last_success.time_since_epoch().count() != 0)
    sink.Add(kLastSuccess, {}, UnixSeconds(snap.last_success));
  sink.Add(kCollections, {}, collections_total_);
  sink.Add(kConnectAttempts, {}, connect_attempts_total_);
  sink.Add(kDataErrors, {}, data_errors_total_);
}

}  // namespace runbook
