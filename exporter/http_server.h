#pragma once
// HttpServer: CivetWeb serving the exporter's endpoints — /metrics (gzip when asked), /,
// /-/healthy, /-/ready, POST /-/reload. Plain HTTP only (Debian's CivetWeb crashes on HTTPS
// with OpenSSL 3; see TOOLCHAIN.md). Handlers run on CivetWeb's own threads and only read
// published snapshots, so a frozen server never delays a response.

#include <memory>
#include <string>

struct mg_context;

namespace runbook {

class App;

class HttpServer {
 public:
  // Starts listening; on failure returns nullptr and sets `error`.
  static std::unique_ptr<HttpServer> Start(App& app, const std::string& listen_address, std::string& error);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  // The TCP port actually bound (useful with port 0).
  int port() const { return port_; }

 private:
  HttpServer() = default;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
  std::string wake_host_ = "127.0.0.1";  // an address of ours that reaches the listener
};

}  // namespace runbook
