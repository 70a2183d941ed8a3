#pragma once
// OpenSslDialer: the real TlsDialer (include/runbook/tls_dialer.h). Every step is bounded by
// the caller's deadline: the TCP connect and the handshake run on a non-blocking socket driven
// by poll(2); only the name lookup (getaddrinfo) is not, so give IP addresses where that
// matters. The SSL_CTX (trust store, client certificate) is kept between handshakes and built
// again when the endpoint's files or their modification times change: loading the system roots
// costs milliseconds, far more than a handshake on loopback.
//
// Thread-safety: not synchronised; one collection uses it at a time.

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "config.h"
#include "runbook/tls_dialer.h"
#include "target_runtime.h"

namespace runbook {

class OpenSslDialer final : public TlsDialer {
 public:
  OpenSslDialer() = default;
  ~OpenSslDialer() override;
  OpenSslDialer(const OpenSslDialer&) = delete;
  OpenSslDialer& operator=(const OpenSslDialer&) = delete;

  Status Handshake(const TlsEndpoint& endpoint, Deadline deadline, TlsHandshake& out) override;

 private:
  Status Context(const TlsEndpoint& endpoint);  // ensures ctx_ fits the endpoint

  SSL_CTX* ctx_ = nullptr;
  std::string ctx_key_;  // files and modification times ctx_ was built from
};

// Fields of a certificate as published (labels and validity).
CertInfo CertInfoOf(X509* cert);

std::unique_ptr<TargetConnection> MakeCertificateConnection(const TargetConfig& cfg);

}  // namespace runbook
