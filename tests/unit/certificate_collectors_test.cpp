// The certificate collectors on fixtures (tests/fixtures/certificate/, see its NOTE): the endpoint
// collector through a fake TlsDialer, the files collector on real files; each must reproduce
// tests/golden/certificate/<case>/<collector>.prom (UPDATE_GOLDEN=1 rewrites them). Plus the PEM
// parser on the fixture certificates, and the real OpenSSL dialer against sockets of this test.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>
#include <thread>

#include "loopback.h"
#include "pg_fixture.h"
#include "runbook/collector.h"
#include "tls_dialer.h"

namespace certificate_collectors_test {

namespace fs = std::filesystem;
using namespace runbook;
using namespace std::chrono_literals;

namespace {

fs::path FixtureDir() {
  return testing::TestsDir() / "fixtures" / "certificate";
}

std::vector<CertInfo> LoadCerts(const std::string& name) {
  std::vector<CertInfo> out;
  auto err = ParsePemCertificates(testing::ReadFile(FixtureDir() / "certs" / (name + ".pem")), out);
  REQUIRE_MESSAGE(err.empty(), err);
  return out;
}

// Replays <dir>/handshake.txt and records the endpoints it was asked for.
class FakeTlsDialer final : public TlsDialer {
 public:
  explicit FakeTlsDialer(fs::path dir) : dir_(std::move(dir)) {}
  Status Handshake(const TlsEndpoint& endpoint, Deadline, TlsHandshake& out) override {
    asked.push_back(endpoint);
    out = {};
    std::istringstream in(testing::ReadFile(dir_ / "handshake.txt"));
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream words(line);
      std::string key, word;
      words >> key;
      if (key == "status") {
        std::string reason, message;
        words >> reason;
        std::getline(words >> std::ws, message);
        for (auto r : kAllErrorReasons)
          if (ReasonName(r) == reason) return Status::Error(r, message);
        FAIL("unknown reason " << reason);
      }
      if (key == "version") std::getline(words >> std::ws, out.version);
      while (words >> word) {
        if (key == "peer" || key == "verified") {
          auto certs = LoadCerts(word);
          auto& chain = key == "peer" ? out.peer_chain : out.verified_chain;
          chain.insert(chain.end(), certs.begin(), certs.end());
        } else if (key == "verify_errors") {
          bool known = false;
          for (auto e : kAllVerifyErrors)
            if (VerifyErrorName(e) == word) {
              out.verify_errors.push_back(e);
              known = true;
            }
          REQUIRE_MESSAGE(known, word);
        }
      }
    }
    return Status::Ok();
  }
  std::vector<TlsEndpoint> asked;

 private:
  fs::path dir_;
};

std::string Run(const CollectorInfo& info, const TargetSettings& settings, TlsDialer* dialer) {
  MetricSink sink(Labels{{"target", "golden"}});
  ScrapeContext ctx{"golden", std::chrono::steady_clock::now() + 5s, nullptr};
  ctx.settings = &settings;
  ctx.tls = dialer;
  auto st = info.factory()->Update(ctx, sink);
  std::string text =
      st.ok() ? testing::Exposition(sink.Take())
              : "# collector failed: reason=" + std::string(ReasonName(st.reason)) + " " + st.message + "\n";
  for (const auto& e : sink.errors()) text += "# data error: " + e + "\n";
  return text;
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

}  // namespace

TEST_CASE("certificate endpoint golden exposition on every handshake fixture") {
  const auto* info = FindCollector(TargetKind::kCertificates, "endpoint");
  REQUIRE(info);
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(FixtureDir() / "endpoint")) {
    ++cases;
    const auto name = entry.path().filename().string();
    INFO("fixture " << name);
    FakeTlsDialer dialer(entry.path());
    TargetSettings settings;
    settings.tls_endpoint = {"db.example.test",  5432, "www.example.test", "/ca.pem", "", "",
                             StartTls::kPostgres};
    auto text = Run(*info, settings, &dialer);
    REQUIRE(dialer.asked.size() == 1);
    CHECK(dialer.asked[0] == settings.tls_endpoint);
    auto diff =
        testing::CheckGolden(testing::TestsDir() / "golden" / "certificate" / name / "endpoint.prom", text);
    CHECK_MESSAGE(diff.empty(), diff);
  }
  CHECK(cases == 4);
}

TEST_CASE("certificate files golden exposition: bundles, duplicates, unreadable and unmatched patterns") {
  const auto* info = FindCollector(TargetKind::kCertificates, "files");
  REQUIRE(info);
  const auto dir = (FixtureDir() / "files").string();
  TargetSettings settings;
  settings.cert_files = {dir + "/*.pem", dir + "/bundle.pem", dir + "/missing-*.crt"};
  auto text = ReplaceAll(Run(*info, settings, nullptr), dir, "FIXTURES");
  auto diff =
      testing::CheckGolden(testing::TestsDir() / "golden" / "certificate" / "files" / "files.prom", text);
  CHECK_MESSAGE(diff.empty(), diff);

  settings.cert_files = {dir + "/bundle.pem"};
  MetricSink sink;
  ScrapeContext ctx{"t", std::chrono::steady_clock::now() + 5s, nullptr};
  ctx.settings = &settings;
  REQUIRE(info->factory()->Update(ctx, sink).ok());
  CHECK(sink.errors().empty());
  auto fams = sink.Take();
  auto probe = std::find_if(fams.begin(), fams.end(), [](auto& f) { return f.name == "ssl_probe_success"; });
  REQUIRE(probe != fams.end());
  REQUIRE(probe->size() == 1);
  CHECK(probe->values[0] == 1);
}

TEST_CASE("PEM parsing reads every certificate of a bundle with ssl_exporter's label forms") {
  std::vector<CertInfo> certs;
  auto err = ParsePemCertificates(testing::ReadFile(FixtureDir() / "files" / "bundle.pem"), certs);
  CHECK(err.empty());
  REQUIRE(certs.size() == 4);
  const CertInfo& leaf = certs[0];
  CHECK(leaf.cn == "www.example.test");
  CHECK(leaf.issuer_cn == "Fixture Intermediate");
  CHECK(leaf.serial_no == "4098");  // 0x1002
  CHECK(leaf.dnsnames == ",www.example.test,example.test,");
  CHECK(leaf.ips == ",192.0.2.7,2001:db8::7,");
  CHECK(leaf.emails == ",ops@example.test,");
  CHECK(leaf.ou == ",web,edge,");
  CHECK(leaf.not_before == 1735689600);     // 2025-01-01T00:00:00Z
  CHECK(leaf.not_after == 1798761600);      // 2027-01-01T00:00:00Z
  CHECK(certs[1].not_after == 1767225600);  // the intermediate expires first: 2026-01-01
  CHECK(certs[2].cn == "Fixture Root CA");
  CHECK(certs[2].dnsnames.empty());
  CHECK(certs[3] == leaf);

  std::vector<CertInfo> none;
  CHECK(ParsePemCertificates("no certificate here\n", none).empty());
  CHECK(none.empty());
  CHECK_FALSE(ParsePemCertificates(testing::ReadFile(FixtureDir() / "files" / "broken.pem"), none).empty());
}

namespace {

using Listener = testing::LoopbackSocket;

TlsEndpoint Local(int port, StartTls starttls = StartTls::kNone) {
  return {"127.0.0.1", port, "localhost", "", "", "", starttls};
}

}  // namespace

TEST_CASE("the OpenSSL dialer stops at the deadline when the server accepts TCP and never speaks") {
  Listener never;  // the kernel completes the TCP handshake; nobody ever accepts or answers
  OpenSslDialer dialer;
  for (auto starttls : {StartTls::kNone, StartTls::kPostgres}) {
    TlsHandshake hs;
    const auto t0 = std::chrono::steady_clock::now();
    Status st = dialer.Handshake(Local(never.port, starttls), t0 + 300ms, hs);
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(st.reason == ErrorReason::kTimeout);
    CHECK(took >= 290ms);
    // Not a benchmark: a dialer without a deadline would hang for good. The bound is loose because a
    // sanitizer build on a loaded 2-core CI machine once took 1.1 s here.
    CHECK(took < 5s);
  }
}

TEST_CASE("the OpenSSL dialer reports refused connections, PostgreSQL without SSL and bad client keys") {
  OpenSslDialer dialer;
  TlsHandshake hs;
  int closed_port;
  {
    Listener l;
    closed_port = l.port;
  }
  CHECK(dialer.Handshake(Local(closed_port), std::chrono::steady_clock::now() + 2s, hs).reason ==
        ErrorReason::kNetwork);

  Listener pg;
  std::thread server([&] {
    int c = accept(pg.fd, nullptr, nullptr);
    char request[8];
    CHECK(recv(c, request, sizeof request, MSG_WAITALL) == 8);
    CHECK(std::string(request + 4, 4) == std::string("\x04\xd2\x16\x2f", 4));
    CHECK(send(c, "N", 1, 0) == 1);
    close(c);
  });
  Status st =
      dialer.Handshake(Local(pg.port, StartTls::kPostgres), std::chrono::steady_clock::now() + 2s, hs);
  server.join();
  CHECK(st.reason == ErrorReason::kProtocol);
  CHECK(st.message.find("does not accept SSL") != std::string::npos);

  TlsEndpoint with_key = Local(closed_port);
  with_key.cert_file = (FixtureDir() / "certs" / "leaf.pem").string();
  with_key.key_file = (FixtureDir() / "certs" / "no-such.key").string();
  st = dialer.Handshake(with_key, std::chrono::steady_clock::now() + 2s, hs);
  CHECK(st.reason == ErrorReason::kAuth);
  CHECK(st.message.find("no-such.key") != std::string::npos);
}

}  // namespace certificate_collectors_test
