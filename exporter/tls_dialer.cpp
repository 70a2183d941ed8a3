#include "tls_dialer.h"

#include "resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>

namespace runbook {

std::string_view VerifyErrorName(VerifyError e) {
  switch (e) {
    case VerifyError::kExpired: return "expired";
    case VerifyError::kNotYetValid: return "not_yet_valid";
    case VerifyError::kSelfSigned: return "self_signed";
    case VerifyError::kUnknownIssuer: return "unknown_issuer";
    case VerifyError::kHostnameMismatch: return "hostname_mismatch";
    case VerifyError::kOther: return "other";
  }
  return "other";
}

namespace {

struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
  void operator()(BIO* b) const { BIO_free(b); }
  void operator()(X509* x) const { X509_free(x); }
  void operator()(GENERAL_NAMES* g) const { GENERAL_NAMES_free(g); }
};

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

std::string Errno(int e) {
  return std::strerror(e);
}

// The OpenSSL error queue as one line (and cleared).
std::string OpenSslErrors() {
  std::string out;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

Status WaitFd(int fd, short events, Deadline deadline, const std::string& what) {
  for (;;) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return Status::Error(ErrorReason::kTimeout, what + " did not finish before the deadline");
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, static_cast<int>(std::min<long long>(left.count() + 1, INT_MAX)));
    if (r > 0) return Status::Ok();
    if (r < 0 && errno != EINTR)
      return Status::Error(ErrorReason::kNetwork, std::string("poll: ") + Errno(errno));
  }
}

Status ConnectTcp(const TlsEndpoint& ep, Deadline deadline, Fd& out) {
  const std::string where = ep.host + ":" + std::to_string(ep.port);
  std::vector<std::string> addresses;
  if (Status st = HostResolver::Default().Resolve(ep.host, deadline, addresses); !st.ok()) return st;
  std::string last = "no address";
  for (const auto& address : addresses) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* ai = nullptr;
    if (int rc = getaddrinfo(address.c_str(), std::to_string(ep.port).c_str(), &hints, &ai); rc != 0) {
      last = gai_strerror(rc);
      continue;
    }
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(ai, freeaddrinfo);
    Fd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (fd.get() < 0) {
      last = Errno(errno);
      continue;
    }
    if (connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = Errno(errno);
        continue;
      }
      if (Status st = WaitFd(fd.get(), POLLOUT, deadline, "TCP connect to " + where); !st.ok()) return st;
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last = Errno(err);
        continue;
      }
    }
    int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    out = std::move(fd);
    return Status::Ok();
  }
  return Status::Error(ErrorReason::kNetwork, "connect to " + where + ": " + last);
}

// PostgreSQL's SSLRequest: the server answers one byte, 'S' to start TLS on this connection.
Status PostgresSslRequest(int fd, Deadline deadline) {
  static const unsigned char kRequest[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};  // length 8, code 80877103
  std::size_t sent = 0;
  while (sent < sizeof kRequest) {
    ssize_t n = send(fd, kRequest + sent, sizeof kRequest - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (Status st = WaitFd(fd, POLLOUT, deadline, "PostgreSQL SSLRequest"); !st.ok()) return st;
    } else {
      return Status::Error(ErrorReason::kNetwork, "PostgreSQL SSLRequest: " + Errno(errno));
    }
  }
  for (;;) {
    char c = 0;
    ssize_t n = recv(fd, &c, 1, 0);
    if (n == 1) {
      if (c == 'S') return Status::Ok();
      if (c == 'N') return Status::Error(ErrorReason::kProtocol, "the PostgreSQL server does not accept SSL");
      return Status::Error(
          ErrorReason::kProtocol,
          "the server did not answer the PostgreSQL SSLRequest with S or N (not PostgreSQL?)");
    }
    if (n == 0)
      return Status::Error(ErrorReason::kNetwork, "the server closed the connection after SSLRequest");
    if (errno != EAGAIN && errno != EINTR)
      return Status::Error(ErrorReason::kNetwork, "PostgreSQL SSLRequest: " + Errno(errno));
    if (Status st = WaitFd(fd, POLLIN, deadline, "PostgreSQL SSLRequest"); !st.ok()) return st;
  }
}

struct VerifyState {
  std::vector<VerifyError> errors;
};

int VerifyStateIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

VerifyError Classify(int err) {
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED: return VerifyError::kExpired;
    case X509_V_ERR_CERT_NOT_YET_VALID: return VerifyError::kNotYetValid;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN: return VerifyError::kSelfSigned;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: return VerifyError::kUnknownIssuer;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH: return VerifyError::kHostnameMismatch;
    default: return VerifyError::kOther;
  }
}

// Records every verification error and lets the handshake go on: the chain is what we publish.
int KeepGoing(int ok, X509_STORE_CTX* store) {
  if (ok) return 1;
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* state = ssl ? static_cast<VerifyState*>(SSL_get_ex_data(ssl, VerifyStateIndex())) : nullptr;
  if (!state) return 0;
  VerifyError e = Classify(X509_STORE_CTX_get_error(store));
  if (std::find(state->errors.begin(), state->errors.end(), e) == state->errors.end())
    state->errors.push_back(e);
  return 1;
}

std::string VersionName(int v) {
  switch (v) {
    case TLS1_VERSION: return "TLS 1.0";
    case TLS1_1_VERSION: return "TLS 1.1";
    case TLS1_2_VERSION: return "TLS 1.2";
    case TLS1_3_VERSION: return "TLS 1.3";
    default: return "unknown";
  }
}

double AsnTimeToUnix(const ASN1_TIME* t) {
  tm parts{};
  if (!t || ASN1_TIME_to_tm(t, &parts) != 1) return 0;
  return static_cast<double>(timegm(&parts));
}

std::string AsnString(const ASN1_STRING* s) {
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

// ssl_exporter's list form: ",a,b," (empty when there is none).
void AppendListItem(std::string& list, const std::string& item) {
  if (list.empty()) list = ",";
  list += item + ",";
}

std::string LastEntry(const X509_NAME* name, int nid) {
  std::string out;
  for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, nid, i))
    out = AsnString(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
  return out;
}

std::string FileKey(const std::string& path) {
  if (path.empty()) return "-";
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return path + "@missing";
  return path + "@" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + "/" +
         std::to_string(st.st_size);
}

std::vector<CertInfo> InfosOf(STACK_OF(X509) * chain) {
  std::vector<CertInfo> out;
  if (!chain) return out;
  for (int i = 0; i < sk_X509_num(chain); ++i) out.push_back(CertInfoOf(sk_X509_value(chain, i)));
  return out;
}

}  // namespace

CertInfo CertInfoOf(X509* cert) {
  CertInfo c;
  c.not_before = AsnTimeToUnix(X509_get0_notBefore(cert));
  c.not_after = AsnTimeToUnix(X509_get0_notAfter(cert));
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* dec = BN_bn2dec(bn)) {
      c.serial_no = dec;
      OPENSSL_free(dec);
    }
    BN_free(bn);
  }
  const X509_NAME* subject = X509_get_subject_name(cert);
  c.cn = LastEntry(subject, NID_commonName);
  c.issuer_cn = LastEntry(X509_get_issuer_name(cert), NID_commonName);
  for (int i = X509_NAME_get_index_by_NID(subject, NID_organizationalUnitName, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(subject, NID_organizationalUnitName, i))
    AppendListItem(c.ou, AsnString(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i))));
  std::unique_ptr<GENERAL_NAMES, SslFree> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names.get(), i);
    if (n->type == GEN_DNS) {
      AppendListItem(c.dnsnames, AsnString(n->d.dNSName));
    } else if (n->type == GEN_EMAIL) {
      AppendListItem(c.emails, AsnString(n->d.rfc822Name));
    } else if (n->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = n->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      int len = ASN1_STRING_length(ip);
      const unsigned char* data = ASN1_STRING_get0_data(ip);
      if ((len == 4 && inet_ntop(AF_INET, data, text, sizeof text)) ||
          (len == 16 && inet_ntop(AF_INET6, data, text, sizeof text)))
        AppendListItem(c.ips, text);
    }
  }
  return c;
}

std::string ParsePemCertificates(std::string_view pem, std::vector<CertInfo>& out) {
  std::unique_ptr<BIO, SslFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return "out of memory";
  ERR_clear_error();
  for (;;) {
    std::unique_ptr<X509, SslFree> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    out.push_back(CertInfoOf(cert.get()));
  }
  unsigned long err = ERR_peek_last_error();
  if (err != 0 && !(ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE))
    return "invalid PEM certificate: " + OpenSslErrors();
  ERR_clear_error();
  return {};
}

OpenSslDialer::~OpenSslDialer() {
  SSL_CTX_free(ctx_);
}

Status OpenSslDialer::Context(const TlsEndpoint& ep) {
  std::string key = FileKey(ep.ca_file) + "|" + FileKey(ep.cert_file) + "|" + FileKey(ep.key_file);
  if (ctx_ && key == ctx_key_) return Status::Ok();
  SSL_CTX_free(ctx_);
  ctx_ = nullptr;
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return Status::Error(ErrorReason::kProtocol, "SSL_CTX_new: " + OpenSslErrors());
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> guard(ctx, SSL_CTX_free);
  if (ep.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx) != 1
                         : SSL_CTX_load_verify_locations(ctx, ep.ca_file.c_str(), nullptr) != 1)
    return Status::Error(ErrorReason::kAuth, "cannot load the CA file " +
                                                 (ep.ca_file.empty() ? "(system roots)" : ep.ca_file) + ": " +
                                                 OpenSslErrors());
  if (!ep.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, ep.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, ep.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
      return Status::Error(ErrorReason::kAuth, "cannot load the client certificate " + ep.cert_file +
                                                   " / key " + ep.key_file + ": " + OpenSslErrors());
  }
  ctx_ = guard.release();
  ctx_key_ = std::move(key);
  return Status::Ok();
}

Status OpenSslDialer::Handshake(const TlsEndpoint& ep, Deadline deadline, TlsHandshake& out) {
  out = {};
  if (Status st = Context(ep); !st.ok()) return st;
  Fd fd;
  if (Status st = ConnectTcp(ep, deadline, fd); !st.ok()) return st;
  if (ep.starttls == StartTls::kPostgres)
    if (Status st = PostgresSslRequest(fd.get(), deadline); !st.ok()) return st;

  ERR_clear_error();
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx_));
  if (!ssl || SSL_set_fd(ssl.get(), fd.get()) != 1)
    return Status::Error(ErrorReason::kProtocol, "SSL_new: " + OpenSslErrors());
  const std::string& name = ep.server_name.empty() ? ep.host : ep.server_name;
  const bool ip = IsNumericAddress(name);
  // SNI carries host names only (RFC 6066).
  if (!ip && !name.empty()) SSL_set_tlsext_host_name(ssl.get(), name.c_str());
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  if (ip)
    X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
  else
    X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
  VerifyState state;
  SSL_set_ex_data(ssl.get(), VerifyStateIndex(), &state);
  SSL_set_verify(ssl.get(), SSL_VERIFY_PEER, KeepGoing);

  for (;;) {
    ERR_clear_error();
    int r = SSL_connect(ssl.get());
    if (r == 1) break;
    int e = SSL_get_error(ssl.get(), r);
    Status st;
    if (e == SSL_ERROR_WANT_READ) {
      st = WaitFd(fd.get(), POLLIN, deadline, "TLS handshake");
    } else if (e == SSL_ERROR_WANT_WRITE) {
      st = WaitFd(fd.get(), POLLOUT, deadline, "TLS handshake");
    } else {
      std::string why = OpenSslErrors();
      if (why.empty())
        why = e == SSL_ERROR_SYSCALL ? "connection closed by the server" : "error " + std::to_string(e);
      return Status::Error(ErrorReason::kNetwork,
                           "TLS handshake with " + ep.host + ":" + std::to_string(ep.port) + ": " + why);
    }
    if (!st.ok()) return st;
  }

  out.version = VersionName(SSL_version(ssl.get()));
  out.peer_chain = InfosOf(SSL_get_peer_cert_chain(ssl.get()));
  out.verify_errors = std::move(state.errors);
  if (out.verify_errors.empty()) out.verified_chain = InfosOf(SSL_get0_verified_chain(ssl.get()));
  // close_notify, without waiting for the server's.
  SSL_shutdown(ssl.get());
  ERR_clear_error();
  return Status::Ok();
}

namespace {

class CertificateConnection final : public TargetConnection {
 public:
  // Every collection makes its own handshakes: there is no connection to keep.
  Status Connect(Deadline) override { return Status::Ok(); }
  bool connected() const override { return true; }
  void Disconnect() override {}
  void Bind(ScrapeContext& ctx) override { ctx.tls = &dialer_; }

 private:
  OpenSslDialer dialer_;
};

}  // namespace

std::unique_ptr<TargetConnection> MakeCertificateConnection(const TargetConfig&) {
  return std::make_unique<CertificateConnection>();
}

}  // namespace runbook
