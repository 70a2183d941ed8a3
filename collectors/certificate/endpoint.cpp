// A TLS endpoint (optionally PostgreSQL through its SSLRequest): one handshake with SNI per
// collection. The presented chain is published whether or not it verifies; the verification
// result and its reasons are metrics of their own. Connection failures (refused, timeout,
// handshake error) fail the collection with that reason.
#include <algorithm>

#include "cert_metrics.h"
#include "runbook/collector.h"

namespace runbook::certificate {
namespace {

const MetricDesc kNotAfter =
    CertDesc("ssl_cert_not_after", "NotAfter of a certificate the server presented, as Unix time.");
const MetricDesc kNotBefore =
    CertDesc("ssl_cert_not_before", "NotBefore of a certificate the server presented, as Unix time.");
const MetricDesc kVerifiedNotAfter =
    CertDesc("ssl_verified_cert_not_after", "NotAfter of a certificate in the verified chain, as Unix time.",
             {"chain_no"});
const MetricDesc kVerifiedNotBefore =
    CertDesc("ssl_verified_cert_not_before",
             "NotBefore of a certificate in the verified chain, as Unix time.", {"chain_no"});
const MetricDesc kConnectSuccess{"ssl_tls_connect_success",
                                 MetricKind::kGauge,
                                 "1 if the TLS handshake completed (whether or not the chain verified).",
                                 {}};
const MetricDesc kVersion{
    "ssl_tls_version_info", MetricKind::kGauge, "The TLS version used. Always 1.", {"version"}};
const MetricDesc kVerifyError{
    "ssl_verify_error",
    MetricKind::kGauge,
    "1 for each reason the chain or the host name failed verification, 0 for the others.",
    {"reason"}};

class EndpointCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    const TlsEndpoint& ep = ctx.settings->tls_endpoint;
    if (!ctx.tls) return Status::Error(ErrorReason::kProtocol, "no TLS dialer for this target");
    TlsHandshake hs;
    if (Status st = ctx.tls->Handshake(ep, ctx.deadline, hs); !st.ok()) return st;
    sink.Add(kConnectSuccess, {}, 1);
    sink.Add(kProbeSuccess, {}, hs.verify_errors.empty() && !hs.peer_chain.empty() ? 1 : 0);
    sink.Add(kVersion, {hs.version}, 1);
    for (VerifyError e : kAllVerifyErrors) {
      bool has = std::find(hs.verify_errors.begin(), hs.verify_errors.end(), e) != hs.verify_errors.end();
      sink.Add(kVerifyError, {VerifyErrorName(e)}, has ? 1 : 0);
    }
    AddCertificates(sink, kNotAfter, kNotBefore, {}, hs.peer_chain);
    // OpenSSL builds one chain: chain_no is always "0" (ssl_exporter's chain that expires last).
    AddCertificates(sink, kVerifiedNotAfter, kVerifiedNotBefore, {"0"}, hs.verified_chain);
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "endpoint",
    .kind = TargetKind::kCertificates,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "Certificates a TLS endpoint (or PostgreSQL via SSLRequest) presents, and their verification.",
    .factory = [] { return std::make_unique<EndpointCollector>(); },
}};

}  // namespace
}  // namespace runbook::certificate
