#include <doctest/doctest.h>

#include "config.h"
#include "target_runtime.h"

namespace certificate_config_test {

using namespace runbook;

namespace {
std::string Errors(const ConfigResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e + "\n";
  return out;
}
}  // namespace

TEST_CASE("certificates targets: endpoints, PostgreSQL STARTTLS and files, each with its collector") {
  auto r = ParseConfig(R"(targets:
  certificates:
    - name: web
      host: www.example.com
      labels: {team: edge}
    - name: pg
      host: 10.0.0.5
      starttls: postgres
      server_name: db.example.com
      ca_file: /etc/ssl/internal-ca.pem
      cert_file: /etc/exporter/client.pem
      key_file: /etc/exporter/client.key
      timeout: 2s
    - name: local
      files: [/etc/ssl/private/*.pem, /etc/haproxy/bundle.pem]
)",
                       "c.yml");
  REQUIRE_MESSAGE(r.config, Errors(r));
  REQUIRE(r.config->targets.size() == 3);
  const auto& web = r.config->targets[0];
  CHECK(web.kind == TargetKind::kCertificates);
  CHECK(web.settings.tls_endpoint == TlsEndpoint{"www.example.com", 443, "www.example.com", "", "", "", {}});
  CHECK(web.collectors == std::set<std::string>{"endpoint"});
  const auto& pg = r.config->targets[1];
  CHECK(pg.settings.tls_endpoint == TlsEndpoint{"10.0.0.5", 5432, "db.example.com",
                                                "/etc/ssl/internal-ca.pem", "/etc/exporter/client.pem",
                                                "/etc/exporter/client.key", StartTls::kPostgres});
  CHECK(pg.timeout == Millis(2000));
  const auto& local = r.config->targets[2];
  CHECK(local.collectors == std::set<std::string>{"files"});
  CHECK(local.settings.cert_files ==
        std::vector<std::string>{"/etc/ssl/private/*.pem", "/etc/haproxy/bundle.pem"});
  CHECK(local.settings.tls_endpoint.host.empty());
  for (const auto& t : r.config->targets) CHECK(MakeConnection(t) != nullptr);
}

TEST_CASE("bad certificates targets name file line column and field") {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"targets:\n  certificates:\n    - {name: a, host: h, user: u}\n",
       "bad.yml:3:26: targets.certificates[0].user: unknown key"},
      {"targets:\n  certificates:\n    - {name: a, host: h, starttls: smtp}\n",
       "bad.yml:3:36: targets.certificates[0].starttls: expected postgres, got \"smtp\""},
      {"targets:\n  certificates:\n    - {name: a, host: h, files: [x]}\n",
       "bad.yml:3:33: targets.certificates[0].files: give either host (an endpoint) or files, not both"},
      {"targets:\n  certificates:\n    - {name: a}\n",
       "bad.yml:3:7: targets.certificates[0]: missing required key \"host\" (an endpoint) or \"files\""},
      {"targets:\n  certificates:\n    - {name: a, host: h, cert_file: c}\n",
       "bad.yml:3:37: targets.certificates[0].key_file: cert_file needs key_file"},
      {"targets:\n  certificates:\n    - {name: a, files: [x], port: 443}\n",
       "bad.yml:3:35: targets.certificates[0].port: only for an endpoint (with host)"},
      {"targets:\n  certificates:\n    - {name: a, files: []}\n",
       "bad.yml:3:24: targets.certificates[0].files: expected at least one file or glob pattern"},
      {"targets:\n  certificates:\n    - {name: a, files: x}\n",
       "bad.yml:3:24: targets.certificates[0].files: expected a list of strings"},
      {"targets:\n  certificates:\n    - {name: a, host: h, port: 0}\n",
       "bad.yml:3:32: targets.certificates[0].port: expected an integer between 1 and 65535"},
      {"targets:\n  certificates:\n    - {name: a, host: h, collectors: {disable: [endpoint]}}\n",
       "bad.yml:3:26: targets.certificates[0].collectors: unknown key"},
  };
  for (const auto& c : cases) {
    auto r = ParseConfig(c.yaml, "bad.yml");
    INFO(std::string(c.yaml));
    CHECK_FALSE(r.config);
    REQUIRE(!r.errors.empty());
    CHECK_MESSAGE(r.errors[0].starts_with(c.expected), r.errors[0]);
  }
}

}  // namespace certificate_config_test
