#pragma once
// TlsDialer: the seam between the certificate collectors and OpenSSL. The real dialer opens one
// TCP connection per handshake (optionally after PostgreSQL's SSLRequest), completes a TLS
// handshake with SNI, verifies the presented chain (system roots or the endpoint's CA file) and
// the host name, and closes the connection. Verification never aborts the handshake: a chain
// that fails verification is still returned with the reasons, so expiry is published for
// expired and untrusted certificates too. Unit tests use a fake that returns stored chains.
//
// Thread-safety: a dialer is used by one collection at a time; it is not synchronised.
// ParsePemCertificates is a pure function.

#include <string>
#include <string_view>
#include <vector>

#include "runbook/pg_session.h"  // Deadline
#include "runbook/status.h"

namespace runbook {

// What a collector publishes of one X.509 certificate (labels as ribbybibby/ssl_exporter).
struct CertInfo {
  double not_before = 0;  // Unix seconds
  double not_after = 0;
  std::string serial_no;  // decimal
  std::string issuer_cn;
  std::string cn;
  std::string dnsnames;  // ",a,b," or empty
  std::string ips;       // ",127.0.0.1," or empty
  std::string emails;    // ",a@b," or empty
  std::string ou;        // ",unit," or empty

  bool operator==(const CertInfo&) const = default;
};

// Why verification failed; a chain may fail for several reasons at once.
enum class VerifyError {
  kExpired,           // a certificate of the chain is past its notAfter
  kNotYetValid,       // a certificate of the chain is before its notBefore
  kSelfSigned,        // the leaf or the chain ends in a self-signed certificate that is not trusted
  kUnknownIssuer,     // no trusted issuer found for a certificate of the chain
  kHostnameMismatch,  // the leaf is not valid for the server name
  kOther,             // anything else (bad signature, wrong purpose, ...)
};
inline constexpr VerifyError kAllVerifyErrors[] = {
    VerifyError::kExpired,       VerifyError::kNotYetValid,      VerifyError::kSelfSigned,
    VerifyError::kUnknownIssuer, VerifyError::kHostnameMismatch, VerifyError::kOther};
// "expired", "not_yet_valid", "self_signed", "unknown_issuer", "hostname_mismatch", "other".
std::string_view VerifyErrorName(VerifyError e);

enum class StartTls { kNone, kPostgres };

struct TlsEndpoint {
  std::string host;
  int port = 443;
  std::string server_name;  // SNI and the name verified; empty: none sent, host verified
  std::string ca_file;      // empty: the system's default roots
  std::string cert_file;    // client certificate chain (PEM), with key_file
  std::string key_file;
  StartTls starttls = StartTls::kNone;

  bool operator==(const TlsEndpoint&) const = default;
};

struct TlsHandshake {
  std::string version;                     // "TLS 1.3", "TLS 1.2", ... (ssl_exporter's spelling)
  std::vector<CertInfo> peer_chain;        // as presented by the server, leaf first
  std::vector<CertInfo> verified_chain;    // leaf to trusted root; empty unless verification passed
  std::vector<VerifyError> verify_errors;  // empty: chain and host name verified; no duplicates
};

class TlsDialer {
 public:
  virtual ~TlsDialer() = default;
  // Connects, handshakes and reads the chain, all before `deadline`. Errors: kTimeout when the
  // deadline passes (a server that accepts TCP and never answers), kNetwork for refused,
  // unreachable, unresolvable or a failed handshake, kProtocol when a PostgreSQL server refuses
  // SSL or answers something else, kAuth when the CA file, client certificate or key cannot be
  // loaded. A verification failure is not an error: it is reported in `out`.
  virtual Status Handshake(const TlsEndpoint& endpoint, Deadline deadline, TlsHandshake& out) = 0;
};

// Every "CERTIFICATE" block of a PEM text, in order. Returns an error message (empty when fine);
// certificates parsed before a bad block are kept in `out`.
std::string ParsePemCertificates(std::string_view pem, std::vector<CertInfo>& out);

}  // namespace runbook
