// Certificates seen through the exporter on the stack's openssl s_servers (valid, 10 days,
// expired, wrong host name, self-signed, an intermediate that expires before its leaf), on
// PostgreSQL's own TLS through SSLRequest, on PEM files, and on ports that never speak TLS.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "loopback.h"

namespace certificate_test {

using namespace itest;

namespace {

std::string Endpoint(const std::string& name, const std::string& port, const std::string& server_name,
                     const std::string& extra = "") {
  auto& s = Stack::Get();
  return "    - {name: " + name + ", host: 127.0.0.1, port: " + port + ", server_name: " + server_name +
         ", ca_file: " + s["TLS_CA_FILE"] + extra + "}\n";
}

std::string Config(const std::string& targets) {
  return "global: {interval: 1s, timeout: 800ms}\ntargets:\n  certificates:\n" + targets;
}

std::map<std::string, std::string> T(const std::string& target,
                                     std::map<std::string, std::string> more = {}) {
  more["target"] = target;
  return more;
}

double Num(const std::string& key) {
  return std::stod(Stack::Get()[key]);
}

// Connections the kernel accepts and nobody ever answers.
using SilentPort = runbook::testing::LoopbackSocket;

}  // namespace

TEST_CASE("certificates: expiry of every case is published, verified or not, with the reason") {
  auto& s = Stack::Get();
  const std::string bad_file = s.dir().string() + "/no-such-dir/*.pem";
  Exporter exp(Config(
      Endpoint("web", s["TLS_PORT"], s["TLS_SERVER_NAME"]) +
      Endpoint("soon", s["TLS_SOON_PORT"], "soon.test") +
      Endpoint("expired", s["TLS_PORT"], s["TLS_EXPIRED_SERVER_NAME"]) +
      Endpoint("wronghost", s["TLS_PORT"], "other.test") + Endpoint("self", s["TLS_SOON_PORT"], "self.test") +
      Endpoint("chain", s["TLS_CHAIN_PORT"], s["TLS_CHAIN_SERVER_NAME"]) +
      Endpoint("pg", s["PG_PRIMARY_PORT"], "localhost", ", starttls: postgres") +
      "    - {name: untrusted, host: 127.0.0.1, port: " + s["TLS_SOON_PORT"] + ", server_name: soon.test}\n" +
      "    - {name: files, files: [" + s["TLS_BUNDLE_FILE"] + ", " + s["TLS_DIR"] + "/expired*.pem]}\n" +
      "    - {name: badfiles, files: [" + s["TLS_SELF_CERT_FILE"] + ", " + bad_file + "]}\n"));
  const std::vector<std::string> all{"web",   "soon", "expired",   "wronghost", "self",
                                     "chain", "pg",   "untrusted", "files",     "badfiles"};
  auto m = exp.WaitFor(
      [&](const Scrape& m) {
        for (const auto& t : all)
          if (!m.Has("ssl_probe_success", T(t))) return false;
        return true;
      },
      10s);
  for (const auto& t : all) {
    INFO(t);
    CHECK(m.Value("ssl_up", T(t)) == 1);
  }

  // Valid: verified, the chain to the CA published, not_after exact.
  CHECK(m.Value("ssl_probe_success", T("web")) == 1);
  CHECK(m.Value("ssl_tls_connect_success", T("web")) == 1);
  CHECK(m.Value("ssl_tls_version_info", T("web", {{"version", "TLS 1.3"}})) == 1);
  CHECK(m.Value("ssl_cert_not_after", T("web", {{"cn", "localhost"}, {"dnsnames", ",localhost,"}})) ==
        Num("TLS_CERT_NOT_AFTER"));
  CHECK(m.Value("ssl_verified_cert_not_after", T("web", {{"chain_no", "0"}, {"cn", "runbook-stack CA"}})) ==
        Num("TLS_CA_NOT_AFTER"));
  CHECK(m.Value("ssl_verify_error", T("web", {{"reason", "expired"}})) == 0);

  // Ten days left: published as the certificate says, about 10 days ahead.
  const double soon = m.Value("ssl_cert_not_after", T("soon", {{"cn", "soon.test"}}));
  CHECK(soon == Num("TLS_SOON_NOT_AFTER"));
  CHECK(soon - static_cast<double>(std::time(nullptr)) == doctest::Approx(10 * 86400.0).epsilon(0.01));
  CHECK(m.Value("ssl_probe_success", T("soon")) == 1);

  // Expired (by SNI): not verified, yet its expiry is there.
  CHECK(m.Value("ssl_probe_success", T("expired")) == 0);
  CHECK(m.Value("ssl_tls_connect_success", T("expired")) == 1);
  CHECK(m.Value("ssl_verify_error", T("expired", {{"reason", "expired"}})) == 1);
  CHECK(m.Value("ssl_cert_not_after", T("expired", {{"cn", "expired.test"}})) ==
        Num("TLS_EXPIRED_NOT_AFTER"));
  CHECK_FALSE(m.Has("ssl_verified_cert_not_after", T("expired")));

  // A name the certificate does not carry.
  CHECK(m.Value("ssl_verify_error", T("wronghost", {{"reason", "hostname_mismatch"}})) == 1);
  CHECK(m.Value("ssl_verify_error", T("wronghost", {{"reason", "expired"}})) == 0);
  CHECK(m.Value("ssl_cert_not_after", T("wronghost", {{"cn", "localhost"}})) == Num("TLS_CERT_NOT_AFTER"));

  // Self-signed, and a valid chain checked against the system roots instead of the stack's CA.
  CHECK(m.Value("ssl_verify_error", T("self", {{"reason", "self_signed"}})) == 1);
  CHECK(m.Value("ssl_cert_not_after", T("self", {{"cn", "self.test"}, {"issuer_cn", "self.test"}})) ==
        Num("TLS_SELF_NOT_AFTER"));
  CHECK(m.Value("ssl_verify_error", T("untrusted", {{"reason", "unknown_issuer"}})) == 1);
  CHECK(m.Value("ssl_probe_success", T("untrusted")) == 0);

  // The intermediate expires before the leaf: both presented certificates are published.
  const double leaf = m.Value("ssl_cert_not_after", T("chain", {{"cn", "chain.test"}}));
  const double intermediate =
      m.Value("ssl_cert_not_after", T("chain", {{"cn", "runbook-stack intermediate"}}));
  CHECK(leaf == Num("TLS_CHAIN_LEAF_NOT_AFTER"));
  CHECK(intermediate == Num("TLS_INTERMEDIATE_NOT_AFTER"));
  CHECK(intermediate < leaf);
  CHECK(m.Value("ssl_cert_not_after",
                T("chain", {{"cn", "chain.test"}, {"ou", ",leaf unit,"}, {"emails", ",ops@chain.test,"}})) ==
        leaf);
  CHECK(m.Value("ssl_probe_success", T("chain")) == 1);
  CHECK(m.Value("ssl_verified_cert_not_after", T("chain", {{"cn", "runbook-stack intermediate"}})) ==
        intermediate);

  // PostgreSQL's certificate, read after SSLRequest.
  CHECK(m.Value("ssl_probe_success", T("pg")) == 1);
  CHECK(m.Value("ssl_cert_not_after", T("pg", {{"cn", "localhost"}})) == Num("TLS_CERT_NOT_AFTER"));

  // Files: the bundle's three certificates and the glob's expired one.
  const std::string bundle = s["TLS_BUNDLE_FILE"];
  CHECK(m.Value("ssl_file_cert_not_after", T("files", {{"file", bundle}, {"cn", "chain.test"}})) == leaf);
  CHECK(m.Value("ssl_file_cert_not_after",
                T("files", {{"file", bundle}, {"cn", "runbook-stack intermediate"}})) == intermediate);
  CHECK(m.Value("ssl_file_cert_not_after", T("files", {{"file", bundle}, {"cn", "runbook-stack CA"}})) ==
        Num("TLS_CA_NOT_AFTER"));
  CHECK(m.Value("ssl_file_cert_not_after", T("files", {{"file", s["TLS_EXPIRED_CERT_FILE"]}})) ==
        Num("TLS_EXPIRED_NOT_AFTER"));
  CHECK(m.Value("ssl_probe_success", T("files")) == 1);
  // A pattern matching nothing is not silent; the other file is still read.
  CHECK(m.Value("ssl_probe_success", T("badfiles")) == 0);
  CHECK(m.Value("runbook_exporter_data_errors_total", T("badfiles")) >= 1);
  CHECK(m.Value("ssl_file_cert_not_after", T("badfiles", {{"cn", "self.test"}})) ==
        Num("TLS_SELF_NOT_AFTER"));
}

TEST_CASE("certificates: ports that never speak TLS fail with reason timeout at the deadline") {
  auto& s = Stack::Get();
  SilentPort silent;
  int refused_port;
  {
    SilentPort closed;
    refused_port = closed.port;
  }
  Exporter exp(Config(Endpoint("silent", std::to_string(silent.port), "localhost") +
                      Endpoint("silentpg", std::to_string(silent.port), "localhost", ", starttls: postgres") +
                      Endpoint("redis", s["REDIS_PORT"], "localhost") +
                      Endpoint("refused", std::to_string(refused_port), "localhost") +
                      Endpoint("web", s["TLS_PORT"], "localhost")));
  auto m = exp.WaitFor(
      [](const Scrape& m) {
        for (const auto* t : {"silent", "silentpg", "redis", "refused", "web"})
          if (!m.Has("ssl_up", T(t))) return false;
        return true;
      },
      10s);
  for (const auto* t : {"silent", "silentpg", "redis"}) {
    INFO(t);
    CHECK(m.Value("ssl_up", T(t)) == 0);
    CHECK(m.Value("runbook_exporter_target_error", T(t, {{"reason", "timeout"}})) == 1);
    const double took = m.Value("runbook_exporter_collection_duration_seconds", T(t));
    CHECK(took >= 0.75);
    CHECK(took < 3.0);  // not a benchmark: without a deadline the handshake would wait for good
  }
  CHECK(m.Value("ssl_up", T("refused")) == 0);
  CHECK(m.Value("runbook_exporter_target_error", T("refused", {{"reason", "network"}})) == 1);
  CHECK(m.Value("ssl_up", T("web")) == 1);
  CHECK(m.Value("ssl_probe_success", T("web")) == 1);
  // /metrics does not wait for the probes.
  CHECK(exp.Metrics().duration_s < 0.5);
}

TEST_CASE("certificates: a frozen TLS server is cut at the deadline and found again") {
  auto& s = Stack::Get();
  Exporter exp(Config(Endpoint("web", s["TLS_PORT"], "localhost")));
  CheckFreezeCutAtDeadline(exp, "ssl_up", "web", {s.Port("TLS_SERVER_PID")});
}

}  // namespace certificate_test
