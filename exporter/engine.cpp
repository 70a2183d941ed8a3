#include "engine.h"

#include <spdlog/spdlog.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <sstream>

#include "app.h"
#include "exposition.h"

namespace runbook {
namespace {

using Json = nlohmann::ordered_json;

TimestampMs ToMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Go's time.Time RFC3339Nano in UTC: fraction without trailing zeros; the zero time for kNoTime.
std::string Rfc3339(TimestampMs ms) {
  if (ms == rules::kNoTime) return "0001-01-01T00:00:00Z";
  std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  int frac = static_cast<int>(ms - static_cast<TimestampMs>(secs) * 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (frac != 0) {
    char f[8];
    std::snprintf(f, sizeof f, ".%03d", frac);
    std::string fs(f);
    while (fs.back() == '0') fs.pop_back();
    out += fs;
  }
  return out + "Z";
}

// strconv.FormatFloat(v, fmt, -1, 64) for fmt 'e' (alerts' value) and 'f' (query results).
std::string GoFloat(double v, std::chars_format fmt) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[400];
  auto r = std::to_chars(buf, buf + sizeof buf, v, fmt);
  return std::string(buf, r.ptr);
}

Json LabelsJson(const Labels& labels) {
  Json j = Json::object();
  for (const auto& [n, v] : labels) j[n] = v;
  return j;
}

double Seconds(TimestampMs ms) {
  return static_cast<double>(ms) / 1000.0;
}

Json AlertJson(const rules::AlertStatus& a) {
  Json j;
  j["labels"] = LabelsJson(a.labels);
  j["annotations"] = LabelsJson(a.annotations);
  j["state"] = std::string(rules::AlertStateName(a.state));
  j["activeAt"] = Rfc3339(a.active_at);
  if (a.keep_firing_since != rules::kNoTime) j["keepFiringSince"] = Rfc3339(a.keep_firing_since);
  j["value"] = GoFloat(a.value, std::chars_format::scientific);
  return j;
}

// Alerts the APIs list: pending and firing (resolved ones are kept only for notification).
std::vector<const rules::AlertStatus*> ActiveAlerts(const rules::RuleStatus& r) {
  std::vector<const rules::AlertStatus*> out;
  for (const auto& a : r.alerts)
    if (a.state != rules::AlertState::kInactive) out.push_back(&a);
  return out;
}

std::string RuleState(const rules::RuleStatus& r) {
  auto state = rules::AlertState::kInactive;
  for (const auto* a : ActiveAlerts(r)) state = std::max(state, a->state);
  return std::string(rules::AlertStateName(state));
}

std::string Hostname() {
  char buf[256] = "";
  if (gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "localhost";
  return buf;
}

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void AddSample(prometheus::MetricFamily& f, const Labels& labels, double v) {
  prometheus::ClientMetric m;
  for (const auto& [n, val] : labels)
    if (n != "__name__") m.label.push_back({n, val});
  if (f.type == prometheus::MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  f.metric.push_back(std::move(m));
}

}  // namespace

std::string DefaultExternalUrl(const std::string& listen_address) {
  auto colon = listen_address.rfind(':');
  std::string host = listen_address.substr(0, colon == std::string::npos ? 0 : colon);
  std::string port = colon == std::string::npos ? listen_address : listen_address.substr(colon + 1);
  if (host.empty() || host == "0.0.0.0" || host == "[::]") host = Hostname();
  return "http://" + host + ":" + port;
}

std::vector<std::string> LoadRuleFiles(const RulesConfig& cfg, std::vector<rules::GroupDef>& groups) {
  std::vector<std::string> errors;
  groups.clear();
  for (const auto& file : cfg.files) {
    auto r = rules::LoadRuleFile(file);
    errors.insert(errors.end(), r.errors.begin(), r.errors.end());
    for (auto& g : r.groups) groups.push_back(std::move(g));
  }
  return errors;
}

Engine::Engine(const Clock& clock) : clock_(clock), thread_([this] { Loop(); }) {}

Engine::~Engine() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Engine::SetNotify(NotifyFunc notify) {
  std::lock_guard lock(notify_mu_);
  notify_ = std::move(notify);
}

void Engine::Apply(const RulesConfig& cfg, std::vector<rules::GroupDef> groups,
                   const std::vector<std::string>& targets, const std::string& url,
                   TimestampMs resend_delay_ms) {
  const TimestampMs now = clock_.NowMs();
  std::vector<const promql::Expr*> exprs;
  for (const auto& g : groups)
    for (const auto& r : g.rules) exprs.push_back(r.expr.get());
  store_.SetRetention(RetentionFor(exprs));
  {
    std::lock_guard lock(targets_mu_);
    active_ = !cfg.files.empty();
    std::set<std::string> next(targets.begin(), targets.end());
    for (const auto& t : targets_)
      if (!next.count(t)) store_.RemoveSource(t, now);
    targets_ = std::move(next);
  }
  std::lock_guard lock(mu_);
  rules::ManagerOptions o;
  o.queryable = &store_;
  o.appender = &store_;
  o.notify = [this](const std::vector<Alert>& alerts) {
    NotifyFunc notify;
    {
      std::lock_guard l(notify_mu_);
      notify = notify_;
    }
    if (notify) notify(alerts);
  };
  o.external_labels = cfg.external_labels;
  o.external_url = url;
  o.default_interval_ms = cfg.evaluation_interval.count();
  o.resend_delay_ms = resend_delay_ms;
  o.state_file = cfg.state_file;
  if (!manager_) {
    manager_ = std::make_shared<rules::RuleManager>(std::move(o));
  } else {
    manager_->SetOptions(std::move(o), now);
  }
  manager_->Update(std::move(groups), now);
  ++generation_;
  cv_.notify_all();
}

bool Engine::active() const {
  std::lock_guard lock(targets_mu_);
  return active_;
}

void Engine::OnCollected(const TargetRuntime& target) {
  const std::string& name = target.config().name;
  std::lock_guard lock(targets_mu_);
  if (!active_ || !targets_.count(name)) return;
  auto snap = target.Snapshot();
  if (!snap) return;
  std::vector<StoreSample> samples;
  for (const auto& f : snap->families) {
    for (std::size_t i = 0; i < f.size(); ++i) {
      auto add = [&](std::string_view suffix, double value, const std::string* quantile) {
        StoreSample& s = samples.emplace_back();
        s.metric.reserve(f.label_names.size() + 2);
        s.metric.emplace_back("__name__", f.name + std::string(suffix));
        for (auto j : f.label_order) s.metric.emplace_back(f.label_names[j], f.LabelValue(i, j));
        if (quantile) s.metric.emplace_back("quantile", *quantile);
        s.value = value;
      };
      if (f.kind != MetricKind::kSummary) {
        add({}, f.values[i], nullptr);
        continue;
      }
      for (const auto& [q, v] : f.summaries[i].quantiles) {
        std::string text;
        AppendQuantile(text, q);
        add({}, v, &text);
      }
      add("_sum", f.values[i], nullptr);
      add("_count", f.summaries[i].count, nullptr);
    }
  }
  store_.Ingest(name, ToMs(snap->collected_at), samples);
}

void Engine::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto manager = manager_;
    const auto generation = generation_;
    lock.unlock();
    const TimestampMs now = clock_.NowMs();
    TimestampMs next = now + 60'000;
    if (manager) next = manager->EvalDue(now);
    store_.Compact(now);
    lock.lock();
    const auto wait = std::clamp<TimestampMs>(next - clock_.NowMs(), 1, 60'000);
    cv_.wait_for(lock, std::chrono::milliseconds(wait),
                 [&] { return stopping_ || generation_ != generation; });
  }
}

std::vector<RenderedFamily> Engine::RenderMetrics() const {
  std::shared_ptr<rules::RuleManager> manager;
  {
    std::lock_guard lock(mu_);
    manager = manager_;
  }
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> fams;
  auto alerts =
      Family("ALERTS", "Pending and firing alerts of the embedded rule engine, as Prometheus records them.",
             MetricType::Gauge);
  auto for_state =
      Family("ALERTS_FOR_STATE", "Unix time each pending or firing alert became active.", MetricType::Gauge);
  auto evals = Family("prometheus_rule_evaluations_total", "The total number of rule evaluations.",
                      MetricType::Counter);
  auto failures = Family("prometheus_rule_evaluation_failures_total",
                         "The total number of rule evaluation failures.", MetricType::Counter);
  auto interval =
      Family("prometheus_rule_group_interval_seconds", "The interval of a rule group.", MetricType::Gauge);
  auto duration = Family("prometheus_rule_group_last_duration_seconds",
                         "The duration of the last rule group evaluation.", MetricType::Gauge);
  auto last = Family("prometheus_rule_group_last_evaluation_timestamp_seconds",
                     "The timestamp of the last rule group evaluation in seconds.", MetricType::Gauge);
  auto nrules = Family("prometheus_rule_group_rules", "The number of rules.", MetricType::Gauge);
  auto remembered = Family("runbook_exporter_rule_group_remembered_series",
                           "Label sets and input series the group's rules keep from their last evaluation "
                           "to skip work in the next (about 24 bytes each, outside the series store).",
                           MetricType::Gauge);
  auto state_failures =
      Family("runbook_exporter_rule_state_file_write_failures_total",
             "Failed writes of rules.state_file (alert state saved for restarts).", MetricType::Counter);
  auto state_success =
      Family("runbook_exporter_rule_state_file_last_success_timestamp_seconds",
             "Time the rule state file last held the current alert state (written or unchanged).",
             MetricType::Gauge);
  if (manager) {
    for (const auto& s : manager->AlertSeries()) {
      auto name = LabelValue(s.metric, "__name__");
      AddSample(name == "ALERTS" ? alerts : for_state, s.metric, s.v);
    }
    for (const auto& g : manager->Groups()) {
      Labels l{{"rule_group", g.file + ";" + g.name}};
      AddSample(evals, l, static_cast<double>(g.evaluations));
      AddSample(failures, l, static_cast<double>(g.failures));
      AddSample(interval, l, Seconds(g.interval_ms));
      AddSample(duration, l, g.evaluation_seconds);
      AddSample(last, l, g.last_evaluation == rules::kNoTime ? 0 : Seconds(g.last_evaluation));
      AddSample(nrules, l, static_cast<double>(g.rules.size()));
      AddSample(remembered, l, static_cast<double>(g.remembered));
    }
    auto sf = manager->StateFile();
    AddSample(state_failures, {}, static_cast<double>(sf.write_failures));
    if (sf.last_success != rules::kNoTime) AddSample(state_success, {}, Seconds(sf.last_success));
  }
  auto st = store_.stats();
  auto series =
      Family("runbook_exporter_series_store_series", "Series held for the rule engine.", MetricType::Gauge);
  auto samples =
      Family("runbook_exporter_series_store_samples", "Samples held for the rule engine.", MetricType::Gauge);
  auto bytes = Family("runbook_exporter_series_store_bytes",
                      "Estimated heap memory of the rule engine's series store.", MetricType::Gauge);
  AddSample(series, {}, static_cast<double>(st.series));
  AddSample(samples, {}, static_cast<double>(st.samples));
  AddSample(bytes, {}, static_cast<double>(st.bytes));
  for (auto* f : {&alerts, &for_state, &evals, &failures, &interval, &duration, &last, &nrules, &remembered,
                  &state_failures, &state_success, &series, &samples, &bytes})
    if (!f->metric.empty()) fams.push_back(std::move(*f));
  std::sort(fams.begin(), fams.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return RenderFamilies(fams);
}

std::string Engine::RulesJson() const {
  std::shared_ptr<rules::RuleManager> manager;
  {
    std::lock_guard lock(mu_);
    manager = manager_;
  }
  Json groups = Json::array();
  if (manager) {
    for (const auto& g : manager->Groups()) {
      Json jg;
      jg["name"] = g.name;
      jg["file"] = g.file;
      Json jr = Json::array();
      for (const auto& r : g.rules) {
        Json j;
        const bool alerting = r.def.kind == rules::RuleDef::Kind::kAlerting;
        if (alerting) j["state"] = RuleState(r);
        j["name"] = r.def.name;
        j["query"] = r.def.expr_text;
        if (alerting) {
          j["duration"] = Seconds(r.def.for_ms);
          j["keepFiringFor"] = Seconds(r.def.keep_firing_for_ms);
        }
        if (alerting || !r.def.labels.empty()) j["labels"] = LabelsJson(r.def.labels);
        if (alerting) {
          j["annotations"] = LabelsJson(r.def.annotations);
          Json ja = Json::array();
          for (const auto* a : ActiveAlerts(r)) ja.push_back(AlertJson(*a));
          j["alerts"] = ja;
        }
        j["health"] = r.health;
        if (!r.last_error.empty()) j["lastError"] = r.last_error;
        j["evaluationTime"] = r.evaluation_seconds;
        j["lastEvaluation"] = Rfc3339(r.last_evaluation);
        j["type"] = alerting ? "alerting" : "recording";
        jr.push_back(std::move(j));
      }
      jg["rules"] = std::move(jr);
      jg["interval"] = Seconds(g.interval_ms);
      jg["limit"] = g.limit;
      jg["evaluationTime"] = g.evaluation_seconds;
      jg["lastEvaluation"] = Rfc3339(g.last_evaluation);
      groups.push_back(std::move(jg));
    }
  }
  Json out;
  out["status"] = "success";
  out["data"]["groups"] = std::move(groups);
  return out.dump();
}

std::string Engine::AlertsJson() const {
  std::shared_ptr<rules::RuleManager> manager;
  {
    std::lock_guard lock(mu_);
    manager = manager_;
  }
  Json alerts = Json::array();
  if (manager)
    for (const auto& g : manager->Groups())
      for (const auto& r : g.rules)
        for (const auto* a : ActiveAlerts(r)) alerts.push_back(AlertJson(*a));
  Json out;
  out["status"] = "success";
  out["data"]["alerts"] = std::move(alerts);
  return out.dump();
}

std::string Engine::QueryJson(std::string_view query, std::string_view time, int* status) const {
  auto fail = [&](int code, std::string_view type, std::string msg) {
    *status = code;
    Json out;
    out["status"] = "error";
    out["errorType"] = type;
    out["error"] = std::move(msg);
    return out.dump();
  };
  TimestampMs t = clock_.NowMs();
  if (!time.empty()) {
    double secs = 0;
    auto [p, ec] = std::from_chars(time.data(), time.data() + time.size(), secs);
    if (ec != std::errc() || p != time.data() + time.size() || !std::isfinite(secs))
      return fail(
          400, "bad_data",
          "invalid parameter \"time\": cannot parse \"" + std::string(time) + "\" to a valid timestamp");
    t = static_cast<TimestampMs>(std::llround(secs * 1000));
  }
  auto parsed = promql::Parse(query);
  if (!parsed.expr) return fail(400, "bad_data", "invalid parameter \"query\": " + parsed.error.ToString());
  auto r = promql::EvalInstant(*parsed.expr, store_, t);
  if (r.error) return fail(422, "execution", r.error->ToString());
  auto point = [](TimestampMs ts, double v) {
    return Json::array({Seconds(ts), GoFloat(v, std::chars_format::fixed)});
  };
  Json data;
  data["resultType"] = std::string(promql::ValueTypeName(r.value.type));
  switch (r.value.type) {
    case promql::ValueType::kScalar: data["result"] = point(t, r.value.scalar); break;
    case promql::ValueType::kString: data["result"] = Json::array({Seconds(t), r.value.string}); break;
    case promql::ValueType::kVector: {
      Json res = Json::array();
      for (const auto& s : r.value.vector)
        res.push_back(Json{{"metric", LabelsJson(s.metric)}, {"value", point(s.t, s.v)}});
      data["result"] = std::move(res);
      break;
    }
    case promql::ValueType::kMatrix: {
      Json res = Json::array();
      for (const auto& s : r.value.matrix) {
        Json values = Json::array();
        for (const auto& p : s.points) values.push_back(point(p.t, p.v));
        res.push_back(Json{{"metric", LabelsJson(s.metric)}, {"values", std::move(values)}});
      }
      data["result"] = std::move(res);
      break;
    }
    case promql::ValueType::kNone: data["result"] = Json::array(); break;
  }
  *status = 200;
  Json out;
  out["status"] = "success";
  out["data"] = std::move(data);
  return out.dump();
}

std::string Engine::RulesPage() const {
  std::shared_ptr<rules::RuleManager> manager;
  {
    std::lock_guard lock(mu_);
    manager = manager_;
  }
  std::ostringstream h;
  h << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>runbook_exporter rules</title>"
       "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1em}"
       "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
       ".firing{color:#b00}.pending{color:#a60}.err{color:#b00}code{font-size:90%}</style></head><body>"
       "<h1>Rules and alerts</h1><p><a href=\"/\">&larr; runbook_exporter</a> &middot; "
       "<a href=\"/api/v1/rules\">/api/v1/rules</a> &middot; <a "
       "href=\"/api/v1/alerts\">/api/v1/alerts</a></p>";
  if (!manager) h << "<p>No rule files are configured (<code>rules.files</code>).</p>";
  if (manager) {
    for (const auto& g : manager->Groups()) {
      h << "<h2>" << HtmlEscape(g.name) << "</h2><p><code>" << HtmlEscape(g.file) << "</code> &middot; every "
        << Seconds(g.interval_ms) << " s &middot; last evaluation took " << g.evaluation_seconds
        << " s</p><table><tr><th>rule</th><th>state</th><th>health</th><th>alerts</th></tr>";
      for (const auto& r : g.rules) {
        const bool alerting = r.def.kind == rules::RuleDef::Kind::kAlerting;
        std::string state = alerting ? RuleState(r) : "";
        h << "<tr><td><b>" << HtmlEscape(r.def.name) << "</b><br><code>" << HtmlEscape(r.def.expr_text)
          << "</code></td><td class=\"" << state << "\">" << state << "</td><td class=\"" << r.health << "\">"
          << r.health;
        if (!r.last_error.empty()) h << ": " << HtmlEscape(r.last_error);
        h << "</td><td>";
        for (const auto* a : ActiveAlerts(r)) {
          h << "<div class=\"" << rules::AlertStateName(a->state) << "\">" << rules::AlertStateName(a->state)
            << " since " << Rfc3339(a->active_at) << ": <code>";
          for (const auto& [n, v] : a->labels) h << HtmlEscape(n) << "=\"" << HtmlEscape(v) << "\" ";
          h << "</code> value " << GoFloat(a->value, std::chars_format::general) << "</div>";
        }
        h << "</td></tr>";
      }
      h << "</table>";
    }
  }
  h << "</body></html>";
  return h.str();
}

std::string Engine::GraphPage(std::string_view expr) const {
  int status = 0;
  std::string json = QueryJson(expr, "", &status);
  std::ostringstream h;
  h << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>runbook_exporter query</title>"
       "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px 8px}"
       "table{border-collapse:collapse}</style></head><body><h1>Query</h1>"
       "<p><a href=\"/rules\">&larr; rules</a></p><form action=\"/graph\"><input name=\"g0.expr\" "
       "size=\"100\" value=\""
    << HtmlEscape(expr) << "\"> <input type=\"submit\" value=\"Execute\"></form>";
  auto j = Json::parse(json);
  if (j["status"] != "success") {
    h << "<p>" << HtmlEscape(j["error"].get<std::string>()) << "</p>";
  } else if (j["data"]["resultType"] == "vector") {
    h << "<table><tr><th>series</th><th>value</th></tr>";
    for (const auto& s : j["data"]["result"]) {
      std::string labels;
      for (const auto& [n, v] : s["metric"].items()) labels += n + "=\"" + v.get<std::string>() + "\" ";
      h << "<tr><td><code>" << HtmlEscape(labels) << "</code></td><td>"
        << HtmlEscape(s["value"][1].get<std::string>()) << "</td></tr>";
    }
    h << "</table>";
  } else {
    h << "<pre>" << HtmlEscape(j["data"].dump(2)) << "</pre>";
  }
  h << "</body></html>";
  return h.str();
}

}  // namespace runbook
