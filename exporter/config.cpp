#include "config.h"

#include "runbook/rules.h"

#include <yaml-cpp/yaml.h>

#include <fnmatch.h>
#include <glob.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "runbook/promql.h"

namespace runbook {

bool TargetConfig::operator==(const TargetConfig& o) const {
  auto pg_tuple = [](const PgConnParams& p) {
    return std::tie(p.host, p.port, p.database, p.user, p.password_file, p.password_env, p.sslmode,
                    p.application_name, p.send_session_options, p.statement_timeout, p.lock_timeout,
                    p.prepare_statements);
  };
  return kind == o.kind && name == o.name && labels == o.labels && interval == o.interval &&
         timeout == o.timeout && slow_interval == o.slow_interval && collectors == o.collectors &&
         pg_tuple(pg) == pg_tuple(o.pg) && redis == o.redis && settings == o.settings;
}

std::optional<Millis> ParseDuration(std::string_view s) {
  auto ms = promql::ParseDuration(s);
  if (!ms) return std::nullopt;
  return Millis(*ms);
}

std::string FormatDuration(Millis d) {
  long long ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  struct Unit {
    const char* name;
    long long ms;
  };
  static constexpr Unit kUnits[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
  for (const auto& u : kUnits) {
    if (ms >= u.ms) {
      out += std::to_string(ms / u.ms) + u.name;
      ms %= u.ms;
    }
  }
  return out;
}

std::string ValidateListenAddress(std::string_view addr) {
  std::size_t colon;
  if (addr.starts_with("[")) {
    auto close = addr.find(']');
    if (close == std::string_view::npos || close + 1 >= addr.size() || addr[close + 1] != ':')
      return "expected \"[ipv6]:port\"";
    colon = close + 1;
  } else {
    colon = addr.rfind(':');
    if (colon == std::string_view::npos) return "expected \"host:port\" or \":port\"";
    if (addr.substr(0, colon).find(':') != std::string_view::npos)
      return "an IPv6 address needs brackets: \"[::1]:9187\"";
    for (char c : addr.substr(0, colon))
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') return "invalid host name";
  }
  auto port = addr.substr(colon + 1);
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      }))
    return "expected a port number after ':'";
  int p = std::stoi(std::string(port));
  if (p < 1 || p > 65535) return "port must be between 1 and 65535";
  return {};
}

namespace {

const char* kEmbeddedDefault =
    R"(# Embedded default: local servers on their standard ports, the shipped rule pack.
targets:
  postgres:
    - name: local
      host: 127.0.0.1
      port: 5432
      database: postgres
      user: postgres
  pgbouncer: []
  redis: []
  certificates: []
rules:
  files: ["embedded:*.rules.yml"]
)";

class Parser {
 public:
  explicit Parser(std::string source) : source_(std::move(source)) {}

  void Error(const YAML::Node& node, const std::string& path, const std::string& what) {
    auto m = node.Mark();
    std::ostringstream ss;
    ss << source_;
    if (!m.is_null()) ss << ':' << m.line + 1 << ':' << m.column + 1;
    ss << ": " << path << ": " << what;
    errors_.push_back(ss.str());
  }

  // Rejects keys outside `allowed`; returns false if `node` is not a mapping.
  bool CheckMap(const YAML::Node& node, const std::string& path,
                const std::vector<std::string_view>& allowed) {
    if (!node.IsMap()) {
      Error(node, path, "expected a mapping");
      return false;
    }
    for (const auto& kv : node) {
      auto key = kv.first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        Error(kv.first, path.empty() ? key : path + "." + key, "unknown key (expected one of: " + list + ")");
      }
    }
    return true;
  }

  std::optional<std::string> String(const YAML::Node& node, const std::string& path) {
    if (!node.IsScalar()) {
      Error(node, path, "expected a string");
      return std::nullopt;
    }
    return node.Scalar();
  }

  std::optional<long long> Integer(const YAML::Node& node, const std::string& path, long long lo,
                                   long long hi) {
    if (node.IsScalar()) {
      const auto& s = node.Scalar();
      bool digits = !s.empty() && s.size() < 12 && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      });
      if (digits) {
        long long v = std::stoll(s);
        if (v >= lo && v <= hi) return v;
      }
    }
    Error(node, path,
          "expected an integer between " + std::to_string(lo) + " and " + std::to_string(hi) +
              (node.IsScalar() ? ", got \"" + node.Scalar() + "\"" : ""));
    return std::nullopt;
  }

  std::optional<Millis> Duration(const YAML::Node& node, const std::string& path) {
    if (node.IsScalar()) {
      if (auto d = ParseDuration(node.Scalar()); d && d->count() > 0) return d;
    }
    Error(node, path,
          "expected a positive duration like 15s, 1m30s or 500ms" +
              (node.IsScalar() ? std::string(", got \"") + node.Scalar() + "\"" : std::string()));
    return std::nullopt;
  }

  std::vector<std::string> StringList(const YAML::Node& node, const std::string& path) {
    std::vector<std::string> out;
    if (!node.IsSequence()) {
      Error(node, path, "expected a list of strings");
      return out;
    }
    for (std::size_t i = 0; i < node.size(); ++i)
      if (auto s = String(node[i], path + "[" + std::to_string(i) + "]")) out.push_back(*s);
    return out;
  }

  struct Defaults {
    Millis interval{15000}, timeout{10000}, slow_interval{300000};
  };

  void ParseGlobal(const YAML::Node& g, Config& cfg, Defaults& d) {
    if (!CheckMap(g, "global", {"interval", "timeout", "slow_interval", "workers"})) return;
    if (g["interval"])
      if (auto v = Duration(g["interval"], "global.interval")) d.interval = *v;
    if (g["timeout"])
      if (auto v = Duration(g["timeout"], "global.timeout")) d.timeout = *v;
    if (g["slow_interval"])
      if (auto v = Duration(g["slow_interval"], "global.slow_interval")) d.slow_interval = *v;
    if (g["workers"])
      if (auto v = Integer(g["workers"], "global.workers", 1, 64)) cfg.workers = static_cast<int>(*v);
    if (g["timeout"] && d.timeout > d.interval)
      Error(g["timeout"], "global.timeout",
            "must not exceed global.interval (" + FormatDuration(d.interval) + ")");
  }

  void ParseRules(const YAML::Node& node, RulesConfig& rules) {
    if (!CheckMap(node, "rules", {"files", "evaluation_interval", "external_labels", "state_file"})) return;
    if (node["evaluation_interval"])
      if (auto v = Duration(node["evaluation_interval"], "rules.evaluation_interval"))
        rules.evaluation_interval = *v;
    if (node["external_labels"])
      ParseLabels(node["external_labels"], "rules.external_labels", rules.external_labels, false);
    if (node["state_file"])
      if (auto v = String(node["state_file"], "rules.state_file")) rules.state_file = ResolvePath(*v);
    if (!node["files"]) return;
    const auto& list = node["files"];
    auto patterns = StringList(list, "rules.files");
    for (std::size_t i = 0; i < patterns.size(); ++i) {
      const std::string path = "rules.files[" + std::to_string(i) + "]";
      if (patterns[i].starts_with(rules::kEmbeddedRulePrefix)) {
        auto found = rules::MatchEmbeddedRuleFiles(patterns[i]);
        if (found.empty())
          Error(list[i], path,
                "no embedded rule file matches " + patterns[i] +
                    " (embedded: " + rules::EmbeddedRuleFileNames() + ")");
        for (auto& f : found)
          if (std::find(rules.files.begin(), rules.files.end(), f) == rules.files.end())
            rules.files.push_back(f);
        continue;
      }
      const std::string pattern = ResolvePath(patterns[i]);
      glob_t g{};
      int rc = glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g);
      std::vector<std::string> found(g.gl_pathv, g.gl_pathv + (rc == 0 ? g.gl_pathc : 0));
      globfree(&g);
      bool is_glob = pattern.find_first_of("*?[") != std::string::npos;
      if (found.empty() && !is_glob) {
        Error(list[i], path, "no such file: " + pattern);
        continue;
      }
      std::sort(found.begin(), found.end());
      for (auto& f : found)
        if (std::find(rules.files.begin(), rules.files.end(), f) == rules.files.end())
          rules.files.push_back(f);
    }
  }

  // Relative paths in a config file are relative to the file's folder, as in Prometheus.
  std::string ResolvePath(const std::string& p) const {
    if (p.empty() || p[0] == '/' || source_.empty() || source_[0] == '<') return p;
    auto dir = std::filesystem::path(source_).parent_path();
    return dir.empty() ? p : (dir / p).string();
  }

  void ParseLabels(const YAML::Node& node, const std::string& path, Labels& out, bool target_labels = true) {
    if (!node.IsMap()) {
      Error(node, path, "expected a mapping of label names to values");
      return;
    }
    for (const auto& kv : node) {
      auto name = kv.first.Scalar();
      bool valid = !name.empty() && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
                   std::all_of(name.begin(), name.end(), [](char c) {
                     return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                   });
      if (!valid || name.starts_with("__")) {
        Error(kv.first, path + "." + name,
              "invalid label name (expected [a-zA-Z_][a-zA-Z0-9_]*, not starting with __)");
        continue;
      }
      if (target_labels && (name == "target" || name == "collector" || name == "reason")) {
        Error(kv.first, path + "." + name, "label name is reserved by the exporter");
        continue;
      }
      if (auto v = String(kv.second, path + "." + name)) out.emplace_back(name, *v);
    }
    std::sort(out.begin(), out.end());
  }

  void ParseCollectors(const YAML::Node& node, const std::string& path, TargetConfig& t) {
    for (const auto& c : RegisteredCollectors())
      if (c.kind == t.kind && c.enabled_by_default) t.collectors.insert(c.name);
    if (!CheckMap(node, path, {"enable", "disable"})) return;
    for (auto which : {"enable", "disable"}) {
      if (!node[which]) continue;
      auto list_path = path + "." + which;
      const auto& list = node[which];
      auto names = StringList(list, list_path);
      for (std::size_t i = 0; i < names.size(); ++i) {
        if (!FindCollector(t.kind, names[i])) {
          std::string known;
          for (const auto& c : RegisteredCollectors())
            if (c.kind == t.kind) known += (known.empty() ? "" : ", ") + c.name;
          Error(list[i], list_path + "[" + std::to_string(i) + "]",
                "unknown " + std::string(KindName(t.kind)) + " collector \"" + names[i] +
                    "\" (known: " + known + ")");
          continue;
        }
        if (std::string_view(which) == "enable")
          t.collectors.insert(names[i]);
        else
          t.collectors.erase(names[i]);
      }
    }
  }

  // Keys every kind of target accepts, then each kind's own.
  static inline const std::vector<std::string_view> kPgKeys = {
      "name",    "host",   "port",     "database", "user",          "password_file", "password_env",
      "sslmode", "labels", "interval", "timeout",  "slow_interval", "collectors"};
  static inline const std::vector<std::string_view> kRedisKeys = {
      "name",          "host",       "port",   "user",       "password_file",
      "password_env",  "db",         "labels", "interval",   "timeout",
      "slow_interval", "collectors", "keys",   "scan_count", "scan_max_keys"};
  static inline const std::vector<std::string_view> kCertificateKeys = {
      "name",     "host",     "port",  "server_name", "ca_file",  "cert_file",
      "key_file", "starttls", "files", "labels",      "interval", "timeout"};

  const std::vector<std::string_view>& KeysOf(TargetKind kind) {
    switch (kind) {
      case TargetKind::kRedis: return kRedisKeys;
      case TargetKind::kCertificates: return kCertificateKeys;
      default: return kPgKeys;
    }
  }

  // A certificates target probes one endpoint (host) or reads files; its collector follows.
  void ParseCertificates(const YAML::Node& node, const std::string& path, TargetConfig& t) {
    TlsEndpoint& ep = t.settings.tls_endpoint;
    auto text = [&](const char* key, std::string& out) {
      if (node[key])
        if (auto v = String(node[key], path + "." + key)) out = *v;
    };
    text("server_name", ep.server_name);
    text("ca_file", ep.ca_file);
    text("cert_file", ep.cert_file);
    text("key_file", ep.key_file);
    if (node["starttls"]) {
      if (auto v = String(node["starttls"], path + ".starttls")) {
        if (*v == "postgres")
          ep.starttls = StartTls::kPostgres;
        else
          Error(node["starttls"], path + ".starttls", "expected postgres, got \"" + *v + "\"");
      }
    }
    if (node["cert_file"] && !node["key_file"])
      Error(node["cert_file"], path + ".key_file", "cert_file needs key_file");
    if (node["key_file"] && !node["cert_file"])
      Error(node["key_file"], path + ".cert_file", "key_file needs cert_file");
    if (node["files"]) {
      const auto& files = node["files"];
      t.settings.cert_files = StringList(files, path + ".files");
      if (files.IsSequence() && t.settings.cert_files.empty())
        Error(files, path + ".files", "expected at least one file or glob pattern");
    }
    const bool endpoint = static_cast<bool>(node["host"]);
    if (endpoint && node["files"]) {
      Error(node["files"], path + ".files", "give either host (an endpoint) or files, not both");
    } else if (!endpoint && !node["files"]) {
      Error(node, path, "missing required key \"host\" (an endpoint) or \"files\"");
    } else if (!endpoint) {
      for (const char* key : {"port", "server_name", "ca_file", "cert_file", "key_file", "starttls"})
        if (node[key]) Error(node[key], path + "." + key, "only for an endpoint (with host)");
    }
    if (endpoint) {
      if (!node["port"]) ep.port = ep.starttls == StartTls::kPostgres ? 5432 : 443;
      if (ep.server_name.empty()) ep.server_name = ep.host;
    }
    t.collectors = {endpoint ? "endpoint" : "files"};
  }

  void ParseKeyChecks(const YAML::Node& node, const std::string& path, TargetSettings& s) {
    if (!node.IsSequence()) {
      Error(node, path, "expected a list of {db, key} or {db, pattern}");
      return;
    }
    for (std::size_t i = 0; i < node.size(); ++i) {
      auto item_path = path + "[" + std::to_string(i) + "]";
      const auto& item = node[i];
      if (!CheckMap(item, item_path, {"db", "key", "pattern"})) continue;
      RedisKeyCheck check;
      if (item["db"])
        if (auto v = Integer(item["db"], item_path + ".db", 0, 1023)) check.db = static_cast<int>(*v);
      if (item["key"] && item["pattern"]) {
        Error(item["pattern"], item_path + ".pattern", "give either key or pattern, not both");
      } else if (item["key"]) {
        if (auto v = String(item["key"], item_path + ".key")) check.key = *v;
      } else if (item["pattern"]) {
        if (auto v = String(item["pattern"], item_path + ".pattern")) check.key = *v;
        check.pattern = true;
      } else {
        Error(item, item_path, "missing key or pattern");
        continue;
      }
      s.redis_keys.push_back(std::move(check));
    }
  }

  void ParseTarget(TargetKind kind, const YAML::Node& node, const std::string& path, const Defaults& d,
                   Config& cfg) {
    TargetConfig t;
    t.kind = kind;
    t.interval = d.interval;
    t.timeout = d.timeout;
    t.slow_interval = d.slow_interval;
    const bool redis = kind == TargetKind::kRedis;
    const bool certificates = kind == TargetKind::kCertificates;
    if (!CheckMap(node, path, KeysOf(kind))) return;
    if (kind == TargetKind::kPgBouncer) {
      // PgBouncer's admin console: the virtual database "pgbouncer", simple queries only.
      t.pg.port = 6432;
      t.pg.database = "pgbouncer";
      t.pg.send_session_options = false;
      t.pg.prepare_statements = false;
    }
    if (!node["name"])
      Error(node, path, "missing required key \"name\"");
    else if (auto v = String(node["name"], path + ".name")) {
      bool valid = !v->empty() && std::all_of(v->begin(), v->end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
      });
      if (!valid) Error(node["name"], path + ".name", "expected letters, digits, '_', '-' or '.'");
      for (const auto& other : cfg.targets)
        if (other.name == *v) Error(node["name"], path + ".name", "duplicate target name \"" + *v + "\"");
      t.name = *v;
    }
    std::string& host = redis ? t.redis.host : certificates ? t.settings.tls_endpoint.host : t.pg.host;
    int& port = redis ? t.redis.port : certificates ? t.settings.tls_endpoint.port : t.pg.port;
    std::string& user = redis ? t.redis.user : t.pg.user;
    std::string& password_file = redis ? t.redis.password_file : t.pg.password_file;
    std::string& password_env = redis ? t.redis.password_env : t.pg.password_env;
    if (node["host"])
      if (auto v = String(node["host"], path + ".host")) host = *v;
    if (node["port"])
      if (auto v = Integer(node["port"], path + ".port", 1, 65535)) port = static_cast<int>(*v);
    if (node["user"]) {
      if (auto v = String(node["user"], path + ".user")) user = *v;
    } else if (!redis && !certificates) {
      Error(node, path, "missing required key \"user\"");
    }
    if (node["password_file"])
      if (auto v = String(node["password_file"], path + ".password_file")) password_file = *v;
    if (node["password_env"])
      if (auto v = String(node["password_env"], path + ".password_env")) password_env = *v;
    if (node["password_file"] && node["password_env"])
      Error(node["password_env"], path + ".password_env",
            "give either password_file or password_env, not both");
    if (node["database"])
      if (auto v = String(node["database"], path + ".database")) t.pg.database = *v;
    if (node["sslmode"]) {
      if (auto v = String(node["sslmode"], path + ".sslmode")) {
        static const std::set<std::string> kModes{"disable", "allow",     "prefer",
                                                  "require", "verify-ca", "verify-full"};
        if (!kModes.count(*v))
          Error(node["sslmode"], path + ".sslmode",
                "expected one of disable, allow, prefer, require, verify-ca, verify-full");
        t.pg.sslmode = *v;
      }
    }
    if (node["db"])
      if (auto v = Integer(node["db"], path + ".db", 0, 1023)) t.redis.db = static_cast<int>(*v);
    if (node["keys"]) ParseKeyChecks(node["keys"], path + ".keys", t.settings);
    if (node["scan_count"])
      if (auto v = Integer(node["scan_count"], path + ".scan_count", 1, 100000))
        t.settings.redis_scan_count = static_cast<int>(*v);
    if (node["scan_max_keys"])
      if (auto v = Integer(node["scan_max_keys"], path + ".scan_max_keys", 1, 10000000))
        t.settings.redis_scan_max_keys = static_cast<int>(*v);
    if (node["labels"]) ParseLabels(node["labels"], path + ".labels", t.labels);
    if (node["interval"])
      if (auto v = Duration(node["interval"], path + ".interval")) t.interval = *v;
    if (node["timeout"])
      if (auto v = Duration(node["timeout"], path + ".timeout")) t.timeout = *v;
    if (node["slow_interval"])
      if (auto v = Duration(node["slow_interval"], path + ".slow_interval")) t.slow_interval = *v;
    if (t.timeout > t.interval)
      Error(node["timeout"] ? node["timeout"] : node, path + ".timeout",
            "must not exceed the interval (" + FormatDuration(t.interval) + ")");
    if (certificates)
      ParseCertificates(node, path, t);
    else
      ParseCollectors(node["collectors"] ? node["collectors"] : YAML::Node(YAML::NodeType::Map),
                      path + ".collectors", t);
    t.pg.statement_timeout = t.timeout;
    t.pg.lock_timeout = std::min(t.timeout, Millis(1000));
    t.settings.redis_db = t.redis.db;
    cfg.targets.push_back(std::move(t));
  }

  ConfigResult Parse(const std::string& text) {
    ConfigResult result;
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      std::ostringstream ss;
      ss << source_ << ':' << e.mark.line + 1 << ':' << e.mark.column + 1 << ": invalid YAML: " << e.msg;
      result.errors.push_back(ss.str());
      return result;
    }
    Config cfg;
    cfg.source = source_;
    Defaults d;
    if (root.IsNull()) {
      errors_.push_back(source_ + ": the file is empty (expected at least \"targets:\")");
      result.errors = errors_;
      return result;
    }
    if (!CheckMap(root, "", {"global", "web", "targets", "rules", "alerting"})) {
      result.errors = errors_;
      return result;
    }
    if (root["global"]) ParseGlobal(root["global"], cfg, d);
    if (const auto& web = root["web"]) {
      if (CheckMap(web, "web", {"listen_address"}) && web["listen_address"]) {
        if (auto v = String(web["listen_address"], "web.listen_address")) {
          if (auto err = ValidateListenAddress(*v); !err.empty())
            Error(web["listen_address"], "web.listen_address", err);
          cfg.listen_address = *v;
        }
      }
    }
    if (root["rules"]) ParseRules(root["rules"], cfg.rules);
    const auto& targets = root["targets"];
    if (!targets) {
      Error(root, "targets", "missing required key");
    } else if (CheckMap(targets, "targets", {"postgres", "pgbouncer", "redis", "certificates"})) {
      static const std::pair<const char*, TargetKind> kKinds[] = {
          {"postgres", TargetKind::kPostgres},
          {"pgbouncer", TargetKind::kPgBouncer},
          {"redis", TargetKind::kRedis},
          {"certificates", TargetKind::kCertificates}};
      for (const auto& [key, kind] : kKinds) {
        const auto& list = targets[key];
        const std::string path = std::string("targets.") + key;
        if (!list) continue;
        if (!list.IsSequence()) {
          Error(list, path, "expected a list of targets");
        } else {
          for (std::size_t i = 0; i < list.size(); ++i)
            ParseTarget(kind, list[i], path + "[" + std::to_string(i) + "]", d, cfg);
        }
      }
    }
    if (root["alerting"]) ParseAlerting(root["alerting"], cfg.alerting);
    result.errors = errors_;
    if (errors_.empty()) result.config = std::move(cfg);
    return result;
  }

  // ---- alerting: ----------------------------------------------------------------------------

  std::optional<bool> Bool(const YAML::Node& node, const std::string& path) {
    if (node.IsScalar() && (node.Scalar() == "true" || node.Scalar() == "false"))
      return node.Scalar() == "true";
    Error(node, path, "expected true or false");
    return std::nullopt;
  }

  std::optional<std::string> Url(const YAML::Node& node, const std::string& path) {
    auto v = String(node, path);
    if (v && !v->starts_with("http://") && !v->starts_with("https://")) {
      Error(node, path, "expected an http:// or https:// URL");
      return std::nullopt;
    }
    return v;
  }

  bool ValidLabelName(const std::string& name) {
    return !name.empty() && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
           std::all_of(name.begin(), name.end(),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
  }

  static inline const std::vector<std::string_view> kHttpKeys = {
      "timeout", "bearer_token_file", "basic_auth", "headers", "tls", "proxy_url", "hmac_secret_file"};

  void ParseNotifyHttp(const YAML::Node& node, const std::string& path, NotifyHttpConfig& h) {
    if (node["timeout"])
      if (auto v = Duration(node["timeout"], path + ".timeout")) h.timeout = *v;
    if (node["bearer_token_file"])
      if (auto v = String(node["bearer_token_file"], path + ".bearer_token_file")) h.bearer_token_file = *v;
    if (const auto& b = node["basic_auth"]) {
      if (CheckMap(b, path + ".basic_auth", {"username", "password_file"})) {
        if (!b["username"]) Error(b, path + ".basic_auth", "missing required key \"username\"");
        if (b["username"])
          if (auto v = String(b["username"], path + ".basic_auth.username")) h.basic_auth_username = *v;
        if (b["password_file"])
          if (auto v = String(b["password_file"], path + ".basic_auth.password_file"))
            h.basic_auth_password_file = *v;
      }
      if (node["bearer_token_file"])
        Error(b, path + ".basic_auth", "give either bearer_token_file or basic_auth, not both");
    }
    if (const auto& hd = node["headers"]) {
      if (!hd.IsMap()) {
        Error(hd, path + ".headers", "expected a mapping of header names to values");
      } else {
        static const std::set<std::string> kReserved{"content-type",        "idempotency-key",
                                                     "x-runbook-signature", "x-runbook-timestamp",
                                                     "content-length",      "host"};
        for (const auto& kv : hd) {
          std::string name = kv.first.Scalar(), lower = name;
          std::transform(lower.begin(), lower.end(), lower.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
          bool token = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
          });
          if (!token || kReserved.count(lower)) {
            Error(kv.first, path + ".headers." + name,
                  token ? "header is set by the exporter itself" : "invalid header name");
            continue;
          }
          if (auto v = String(kv.second, path + ".headers." + name)) {
            if (v->find_first_of("\r\n") != std::string::npos)
              Error(kv.second, path + ".headers." + name, "header values cannot contain line breaks");
            h.headers.emplace_back(name, *v);
          }
        }
      }
    }
    if (const auto& t = node["tls"]) {
      if (CheckMap(t, path + ".tls", {"ca_file", "cert_file", "key_file", "insecure_skip_verify"})) {
        if (t["ca_file"])
          if (auto v = String(t["ca_file"], path + ".tls.ca_file")) h.ca_file = *v;
        if (t["cert_file"])
          if (auto v = String(t["cert_file"], path + ".tls.cert_file")) h.cert_file = *v;
        if (t["key_file"])
          if (auto v = String(t["key_file"], path + ".tls.key_file")) h.key_file = *v;
        if (t["insecure_skip_verify"])
          if (auto v = Bool(t["insecure_skip_verify"], path + ".tls.insecure_skip_verify"))
            h.insecure_skip_verify = *v;
        if (t["cert_file"].IsDefined() != t["key_file"].IsDefined())
          Error(t, path + ".tls", "give cert_file and key_file together");
      }
    }
    if (node["proxy_url"])
      if (auto v = Url(node["proxy_url"], path + ".proxy_url")) h.proxy_url = *v;
    if (node["hmac_secret_file"])
      if (auto v = String(node["hmac_secret_file"], path + ".hmac_secret_file")) h.hmac_secret_file = *v;
  }

  std::vector<LabelMatcher> ParseMatchers(const YAML::Node& node, const std::string& path) {
    std::vector<LabelMatcher> out;
    auto list = StringList(node, path);
    for (std::size_t i = 0; i < list.size(); ++i) {
      std::string error;
      if (auto m = ParseLabelMatcher(list[i], error))
        out.push_back(*m);
      else
        Error(node[i], path + "[" + std::to_string(i) + "]", error);
    }
    return out;
  }

  void ParseRoute(const YAML::Node& node, const std::string& path, NotifyRoute& r,
                  const std::set<std::string>& receivers) {
    if (!CheckMap(node, path,
                  {"receiver", "matchers", "group_by", "group_wait", "group_interval", "repeat_interval",
                   "continue", "routes"}))
      return;
    if (node["receiver"])
      if (auto v = String(node["receiver"], path + ".receiver")) {
        if (!receivers.count(*v))
          Error(node["receiver"], path + ".receiver", "no receiver named \"" + *v + "\"");
        r.receiver = *v;
      }
    if (r.receiver.empty()) Error(node, path, "missing required key \"receiver\"");
    if (node["matchers"]) r.matchers = ParseMatchers(node["matchers"], path + ".matchers");
    if (node["group_by"]) {
      r.group_by.clear();
      r.group_by_all = false;
      auto names = StringList(node["group_by"], path + ".group_by");
      for (std::size_t i = 0; i < names.size(); ++i) {
        if (names[i] == "...") {
          r.group_by_all = true;
        } else if (!ValidLabelName(names[i])) {
          Error(node["group_by"][i], path + ".group_by[" + std::to_string(i) + "]",
                "expected a label name or '...'");
        } else {
          r.group_by.push_back(names[i]);
        }
      }
      if (r.group_by_all && !r.group_by.empty())
        Error(node["group_by"], path + ".group_by", "'...' groups by all labels; list nothing else with it");
    }
    if (node["group_wait"])
      if (auto v = Duration(node["group_wait"], path + ".group_wait")) r.group_wait = *v;
    if (node["group_interval"])
      if (auto v = Duration(node["group_interval"], path + ".group_interval")) r.group_interval = *v;
    if (node["repeat_interval"])
      if (auto v = Duration(node["repeat_interval"], path + ".repeat_interval")) r.repeat_interval = *v;
    if (node["continue"])
      if (auto v = Bool(node["continue"], path + ".continue")) r.continue_matching = *v;
    if (const auto& routes = node["routes"]) {
      if (!routes.IsSequence()) {
        Error(routes, path + ".routes", "expected a list of routes");
      } else {
        for (std::size_t i = 0; i < routes.size(); ++i) {
          NotifyRoute child;  // inherits the parent's receiver, grouping and timers
          child.receiver = r.receiver;
          child.group_by = r.group_by;
          child.group_by_all = r.group_by_all;
          child.group_wait = r.group_wait;
          child.group_interval = r.group_interval;
          child.repeat_interval = r.repeat_interval;
          ParseRoute(routes[i], path + ".routes[" + std::to_string(i) + "]", child, receivers);
          r.routes.push_back(std::move(child));
        }
      }
    }
  }

  void ParseAlerting(const YAML::Node& node, NotifierConfig& a) {
    if (!CheckMap(node, "alerting",
                  {"external_url", "resend_delay", "outbox", "retry", "alertmanagers", "receivers", "route",
                   "inhibit_rules"}))
      return;
    if (node["external_url"])
      if (auto v = Url(node["external_url"], "alerting.external_url")) a.external_url = *v;
    if (node["resend_delay"])
      if (auto v = Duration(node["resend_delay"], "alerting.resend_delay")) a.resend_delay = *v;
    if (const auto& o = node["outbox"]) {
      if (CheckMap(o, "alerting.outbox", {"dir", "capacity", "fsync"})) {
        if (o["dir"])
          if (auto v = String(o["dir"], "alerting.outbox.dir")) a.outbox_dir = *v;
        if (o["capacity"])
          if (auto v = Integer(o["capacity"], "alerting.outbox.capacity", 1, 10000000))
            a.outbox_capacity = static_cast<std::size_t>(*v);
        if (o["fsync"])
          if (auto v = Bool(o["fsync"], "alerting.outbox.fsync")) a.outbox_fsync = *v;
      }
    }
    if (const auto& r = node["retry"]) {
      if (CheckMap(
              r, "alerting.retry",
              {"initial_backoff", "max_backoff", "give_up_after", "breaker_failures", "breaker_open_for"})) {
        if (r["initial_backoff"])
          if (auto v = Duration(r["initial_backoff"], "alerting.retry.initial_backoff"))
            a.retry.initial_backoff = *v;
        if (r["max_backoff"])
          if (auto v = Duration(r["max_backoff"], "alerting.retry.max_backoff")) a.retry.max_backoff = *v;
        if (r["give_up_after"])
          if (auto v = Duration(r["give_up_after"], "alerting.retry.give_up_after"))
            a.retry.give_up_after = *v;
        if (r["breaker_failures"])
          if (auto v = Integer(r["breaker_failures"], "alerting.retry.breaker_failures", 1, 1000))
            a.retry.breaker_failures = static_cast<int>(*v);
        if (r["breaker_open_for"])
          if (auto v = Duration(r["breaker_open_for"], "alerting.retry.breaker_open_for"))
            a.retry.breaker_open_for = *v;
        if (a.retry.max_backoff < a.retry.initial_backoff)
          Error(r, "alerting.retry.max_backoff", "must not be below initial_backoff");
      }
    }
    std::set<std::string> names;
    if (const auto& list = node["alertmanagers"]) {
      if (!list.IsSequence()) Error(list, "alerting.alertmanagers", "expected a list of alertmanagers");
      for (std::size_t i = 0; list.IsSequence() && i < list.size(); ++i) {
        const std::string path = "alerting.alertmanagers[" + std::to_string(i) + "]";
        std::vector<std::string_view> keys = kHttpKeys;
        keys.insert(keys.end(), {"name", "url"});
        if (!CheckMap(list[i], path, keys)) continue;
        AlertmanagerTarget am;
        if (!list[i]["url"]) Error(list[i], path, "missing required key \"url\"");
        if (list[i]["url"])
          if (auto v = Url(list[i]["url"], path + ".url")) {
            am.url = *v;
            while (am.url.ends_with("/")) am.url.pop_back();
          }
        am.name = am.url;
        if (list[i]["name"])
          if (auto v = String(list[i]["name"], path + ".name")) am.name = *v;
        if (!names.insert(am.name).second)
          Error(list[i], path + ".name", "duplicate alertmanager or receiver name \"" + am.name + "\"");
        ParseNotifyHttp(list[i], path, am.http);
        a.alertmanagers.push_back(std::move(am));
      }
    }
    std::set<std::string> receivers;
    if (const auto& list = node["receivers"]) {
      if (!list.IsSequence()) Error(list, "alerting.receivers", "expected a list of receivers");
      for (std::size_t i = 0; list.IsSequence() && i < list.size(); ++i) {
        const std::string path = "alerting.receivers[" + std::to_string(i) + "]";
        std::vector<std::string_view> keys = kHttpKeys;
        keys.insert(keys.end(), {"name", "url", "send_resolved", "max_alerts"});
        if (!CheckMap(list[i], path, keys)) continue;
        WebhookReceiver r;
        if (!list[i]["name"]) Error(list[i], path, "missing required key \"name\"");
        if (list[i]["name"])
          if (auto v = String(list[i]["name"], path + ".name")) {
            r.name = *v;
            if (v->empty()) Error(list[i]["name"], path + ".name", "must not be empty");
            if (!names.insert(*v).second)
              Error(list[i]["name"], path + ".name",
                    "duplicate alertmanager or receiver name \"" + *v + "\"");
          }
        if (!list[i]["url"]) Error(list[i], path, "missing required key \"url\"");
        if (list[i]["url"])
          if (auto v = Url(list[i]["url"], path + ".url")) r.url = *v;
        if (list[i]["send_resolved"])
          if (auto v = Bool(list[i]["send_resolved"], path + ".send_resolved")) r.send_resolved = *v;
        if (list[i]["max_alerts"])
          if (auto v = Integer(list[i]["max_alerts"], path + ".max_alerts", 0, 1000000))
            r.max_alerts = static_cast<int>(*v);
        ParseNotifyHttp(list[i], path, r.http);
        receivers.insert(r.name);
        a.receivers.push_back(std::move(r));
      }
    }
    if (node["route"]) {
      ParseRoute(node["route"], "alerting.route", a.route, receivers);
      if (node["route"].IsMap() && node["route"]["matchers"])
        Error(node["route"]["matchers"], "alerting.route.matchers", "the root route matches every alert");
    } else if (!receivers.empty()) {
      Error(node, "alerting.route", "missing: receivers need a route (at least {receiver: NAME})");
    }
    if (const auto& list = node["inhibit_rules"]) {
      if (!list.IsSequence()) Error(list, "alerting.inhibit_rules", "expected a list of inhibit rules");
      for (std::size_t i = 0; list.IsSequence() && i < list.size(); ++i) {
        const std::string path = "alerting.inhibit_rules[" + std::to_string(i) + "]";
        if (!CheckMap(list[i], path, {"source_matchers", "target_matchers", "equal"})) continue;
        InhibitRule rule;
        if (list[i]["source_matchers"])
          rule.source_matchers = ParseMatchers(list[i]["source_matchers"], path + ".source_matchers");
        if (list[i]["target_matchers"])
          rule.target_matchers = ParseMatchers(list[i]["target_matchers"], path + ".target_matchers");
        if (rule.source_matchers.empty() || rule.target_matchers.empty())
          Error(list[i], path, "needs source_matchers and target_matchers");
        if (list[i]["equal"]) rule.equal = StringList(list[i]["equal"], path + ".equal");
        a.inhibit_rules.push_back(std::move(rule));
      }
    }
  }

 private:
  std::string source_;
  std::vector<std::string> errors_;
};

}  // namespace

ConfigResult ParseConfig(const std::string& yaml_text, const std::string& source_name) {
  return Parser(source_name).Parse(yaml_text);
}

ConfigResult LoadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ConfigResult r;
    r.errors.push_back(path + ": cannot read the config file");
    return r;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path);
}

ConfigResult EmbeddedDefaultConfig() {
  return ParseConfig(kEmbeddedDefault, "<embedded default>");
}

}  // namespace runbook
