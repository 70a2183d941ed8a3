#include "app.h"
#include "build_info.h"

#include <spdlog/spdlog.h>
#include <zlib.h>

#include <algorithm>
#include <ctime>
#include <sstream>

namespace runbook {

namespace {

double NowUnix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string FormatTime(std::chrono::system_clock::time_point t) {
  if (t.time_since_epoch().count() == 0) return "never";
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string Gzip(const std::string& in) {
  z_stream zs{};
  // windowBits 15 + 16 selects the gzip wrapper; level 1 because scrapes are frequent and small.
  if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out(deflateBound(&zs, in.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return rc == Z_STREAM_END ? out : std::string();
}

std::string ConcatenateRendered(const std::vector<const std::vector<RenderedFamily>*>& sources) {
  std::vector<const RenderedFamily*> all;
  std::size_t bytes = 0;
  for (const auto* src : sources)
    for (const auto& f : *src) {
      all.push_back(&f);
      bytes += f.header.size() + f.body.size();
    }
  std::stable_sort(all.begin(), all.end(), [](const auto* a, const auto* b) { return a->name < b->name; });
  std::string out;
  out.reserve(bytes);
  const std::string* last = nullptr;
  for (const auto* f : all) {
    if (!last || *last != f->name) out += f->header;
    out += f->body;
    last = &f->name;
  }
  return out;
}

namespace {
std::vector<std::string> TargetNames(const Config& cfg) {
  std::vector<std::string> names;
  for (const auto& t : cfg.targets) names.push_back(t.name);
  return names;
}
}  // namespace

App::App(std::string config_path, Config initial, std::vector<rules::GroupDef> groups,
         std::string listen_address, ConnectionFactory factory)
    : config_path_(std::move(config_path)),
      config_(std::make_shared<const Config>(std::move(initial))),
      last_reload_success_time_(NowUnix()),
      listen_address_(listen_address.empty() ? config_->listen_address : std::move(listen_address)),
      default_external_url_(DefaultExternalUrl(listen_address_)),
      scheduler_(config_->workers, std::move(factory)) {
  engine_.SetNotify(notify_func());
  ApplyEngine(*config_, std::move(groups), default_external_url_);
  scheduler_.SetOnCollected([this](const TargetRuntime& t) { engine_.OnCollected(t); });
  scheduler_.Apply(config_->targets);
}

App::~App() {
  scheduler_.Stop();
}

std::shared_ptr<const Config> App::config() const {
  std::lock_guard lock(mu_);
  return config_;
}

ReloadResult App::Reload() {
  std::lock_guard reload_lock(reload_mu_);
  ConfigResult r = config_path_.empty() ? EmbeddedDefaultConfig() : LoadConfigFile(config_path_);
  ReloadResult result;
  std::vector<rules::GroupDef> groups;
  if (r.config) {
    auto rule_errors = LoadRuleFiles(r.config->rules, groups);
    if (!rule_errors.empty()) {
      r.errors = std::move(rule_errors);
      r.config.reset();
    }
  }
  if (!r.config) {
    result.errors = r.errors;
    for (const auto& e : r.errors) spdlog::error("config reload failed, keeping the running config: {}", e);
    std::lock_guard lock(mu_);
    last_reload_ok_ = false;
    last_reload_errors_ = r.errors;
    return result;
  }
  auto next = std::make_shared<const Config>(std::move(*r.config));
  {
    std::lock_guard lock(mu_);
    if (next->listen_address != config_->listen_address)
      spdlog::warn("web.listen_address changed to {}; it takes effect at the next restart",
                   next->listen_address);
    if (next->workers != config_->workers)
      spdlog::warn("global.workers changed to {}; it takes effect at the next restart", next->workers);
  }
  std::string default_url;
  {
    std::lock_guard lock(mu_);
    default_url = default_external_url_;
  }
  if (auto notifier = Notifier_()) {
    if (auto errors = notifier->Apply(WithDefaults(next->alerting, default_url)); !errors.empty()) {
      for (const auto& e : errors) spdlog::error("config reload failed, keeping the running config: {}", e);
      std::lock_guard lock(mu_);
      last_reload_ok_ = false;
      last_reload_errors_ = errors;
      result.errors = errors;
      return result;
    }
  }
  ApplyEngine(*next, std::move(groups), default_url);
  scheduler_.Apply(next->targets);
  {
    std::lock_guard lock(mu_);
    config_ = next;
    last_reload_ok_ = true;
    last_reload_errors_.clear();
    last_reload_success_time_ = NowUnix();
  }
  spdlog::info("config reloaded from {}: {} targets, {} rule files", next->source, next->targets.size(),
               next->rules.files.size());
  result.ok = true;
  return result;
}

void App::ApplyEngine(const Config& cfg, std::vector<rules::GroupDef> groups,
                      const std::string& default_url) {
  auto alerting = WithDefaults(cfg.alerting, default_url);
  engine_.Apply(cfg.rules, std::move(groups), TargetNames(cfg), alerting.external_url,
                alerting.resend_delay.count());
}

NotifierConfig App::WithDefaults(NotifierConfig c, const std::string& default_external_url) {
  if (c.external_url.empty()) c.external_url = default_external_url;
  return c;
}

std::shared_ptr<Notifier> App::Notifier_() const {
  std::lock_guard lock(mu_);
  return notifier_;
}

std::vector<std::string> App::AttachNotifier(std::shared_ptr<Notifier> notifier,
                                             std::string default_external_url) {
  std::lock_guard reload_lock(reload_mu_);
  auto errors = notifier->Apply(WithDefaults(config()->alerting, default_external_url));
  std::lock_guard lock(mu_);
  default_external_url_ = std::move(default_external_url);
  notifier_ = std::move(notifier);
  return errors;
}

NotifyFunc App::notify_func() {
  return [this](const std::vector<Alert>& alerts) {
    if (auto notifier = Notifier_()) notifier->Notify(alerts);
  };
}

NotifyTestResult App::SendTestNotification(const std::string& name, bool resolved) {
  auto notifier = Notifier_();
  if (!notifier) return {false, "alert delivery is not running", ""};
  return notifier->SendTest(name, resolved);
}

std::string App::RenderMetrics() const {
  auto targets = scheduler_.Targets();
  std::vector<std::shared_ptr<const TargetSnapshot>> snaps;
  snaps.reserve(targets.size());
  for (const auto& t : targets)
    if (auto s = t->Snapshot()) snaps.push_back(std::move(s));

  static const MetricDesc kBuildInfo{"runbook_exporter_build_info",
                                     MetricKind::kGauge,
                                     "Version of runbook_exporter; constant 1.",
                                     {"version", "revision", "compiler"}};
  static const MetricDesc kReloadOk{"runbook_exporter_config_last_reload_successful",
                                    MetricKind::kGauge,
                                    "1 if the latest configuration reload succeeded, else 0.",
                                    {}};
  static const MetricDesc kReloadTime{"runbook_exporter_config_last_reload_success_timestamp_seconds",
                                      MetricKind::kGauge,
                                      "Unix time of the latest successful configuration load.",
                                      {}};
  static const MetricDesc kTargets{
      "runbook_exporter_targets", MetricKind::kGauge, "Configured targets, by kind.", {"kind"}};
  MetricSink global;
  global.Add(kBuildInfo, {RUNBOOK_VERSION, BuildRevision(), "gcc " __VERSION__}, 1);
  {
    std::lock_guard lock(mu_);
    global.Add(kReloadOk, {}, last_reload_ok_ ? 1 : 0);
    global.Add(kReloadTime, {}, last_reload_success_time_);
    std::map<std::string, double> kinds{{"postgres", 0}, {"pgbouncer", 0}, {"redis", 0}, {"certificates", 0}};
    for (const auto& t : config_->targets) kinds[std::string(KindName(t.kind))] += 1;
    for (const auto& [k, n] : kinds) global.Add(kTargets, {k}, n);
  }
  auto global_families = global.Take();
  auto global_rendered = RenderFamilies(global_families);
  auto engine_rendered = engine_.RenderMetrics();
  std::vector<const std::vector<RenderedFamily>*> sources{&global_rendered, &engine_rendered};
  std::vector<RenderedFamily> notifier_rendered;
  if (auto notifier = Notifier_()) {
    auto families = notifier->Metrics();
    notifier_rendered = RenderFamilies(families);
    sources.push_back(&notifier_rendered);
  }
  for (const auto& s : snaps) sources.push_back(&s->Rendered());
  return ConcatenateRendered(sources);
}

std::optional<std::string> App::RenderProbe(std::string_view target) const {
  for (const auto& t : scheduler_.Targets()) {
    if (t->config().name != target) continue;
    auto snap = t->Snapshot();
    if (!snap) return std::string();  // configured, first collection still running
    return ConcatenateRendered({&snap->Rendered()});
  }
  return std::nullopt;
}

std::string App::RenderLandingPage() const {
  auto targets = scheduler_.Targets();
  auto cfg = config();
  std::ostringstream h;
  h << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>runbook_exporter</title>"
       "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
       "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
       ".up{color:#070}.down{color:#b00}code{font-size:90%}</style></head><body>"
       "<h1>runbook_exporter</h1><p>Version " RUNBOOK_VERSION " ("
    << BuildRevision() << ") &middot; config: <code>" << HtmlEscape(cfg->source) << "</code>";
  {
    std::lock_guard lock(mu_);
    if (!last_reload_ok_) {
      h << "<p class=\"down\">The latest configuration reload failed; the previous configuration is "
           "running:</p><ul>";
      for (const auto& e : last_reload_errors_) h << "<li><code>" << HtmlEscape(e) << "</code></li>";
      h << "</ul>";
    }
  }
  h << "<p><a href=\"/metrics\">/metrics</a> &middot; <a href=\"/rules\">rules and alerts</a> &middot; <a "
       "href=\"/-/healthy\">/-/healthy</a> &middot; "
       "<a href=\"/-/ready\">/-/ready</a></p><table><tr><th>target</th><th>kind</th><th>state</th>"
       "<th>last collection</th><th>last success</th><th>collectors</th><th>last error</th></tr>";
  for (const auto& t : targets) {
    const auto& c = t->config();
    auto s = t->Snapshot();
    h << "<tr><td><a href=\"/probe?target=" << HtmlEscape(c.name) << "\">" << HtmlEscape(c.name)
      << "</a></td><td>" << KindName(c.kind) << "</td>";
    if (!s) {
      h << "<td>pending</td><td>never</td><td>never</td><td></td><td></td></tr>";
      continue;
    }
    h << "<td class=\"" << (s->up ? "up\">up" : "down\">down: " + std::string(ReasonName(s->status.reason)))
      << "</td><td>" << FormatTime(s->collected_at) << " (" << static_cast<int>(s->duration_s * 1000)
      << " ms)</td><td>" << FormatTime(s->last_success) << "</td><td>";
    for (const auto& rep : s->collectors) {
      h << "<span class=\"" << (rep.success ? "up" : "down") << "\" title=\"" << HtmlEscape(rep.error)
        << "\">" << HtmlEscape(rep.name) << "</span> ";
    }
    h << "</td><td><code>" << HtmlEscape(s->status.message);
    for (const auto& rep : s->collectors)
      if (!rep.success && !rep.error.empty() && rep.error != s->status.message)
        h << "<br>" << HtmlEscape(rep.name) << ": " << HtmlEscape(rep.error);
    for (const auto& e : s->data_errors) h << "<br>" << HtmlEscape(e);
    h << "</code></td></tr>";
  }
  h << "</table></body></html>\n";
  return h.str();
}

}  // namespace runbook
