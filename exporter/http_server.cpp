#include "http_server.h"

#include <civetweb.h>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "app.h"

namespace runbook {

namespace {

void Send(mg_connection* conn, int code, const char* content_type, const std::string& body,
          const char* extra_headers = "") {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n%s\r\n",
            code, mg_get_response_code_text(conn, code), content_type, body.size(), extra_headers);
  if (std::strcmp(mg_get_request_info(conn)->request_method, "HEAD") != 0)
    mg_write(conn, body.data(), body.size());
}

bool IsMethod(mg_connection* conn, const char* method) {
  return std::strcmp(mg_get_request_info(conn)->request_method, method) == 0;
}

bool AcceptsGzip(mg_connection* conn) {
  const char* ae = mg_get_header(conn, "Accept-Encoding");
  return ae && std::strstr(ae, "gzip");
}

void SendMetrics(mg_connection* conn, const std::string& body) {
  const char* type = "text/plain; version=0.0.4; charset=utf-8";
  if (AcceptsGzip(conn)) {
    std::string gz = Gzip(body);
    if (!gz.empty()) {
      Send(conn, 200, type, gz, "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
      return;
    }
  }
  Send(conn, 200, type, body, "Vary: Accept-Encoding\r\n");
}

int HandleMetrics(mg_connection* conn, void* data) {
  auto* app = static_cast<App*>(data);
  if (!IsMethod(conn, "GET") && !IsMethod(conn, "HEAD")) {
    Send(conn, 405, "text/plain", "use GET\n", "Allow: GET, HEAD\r\n");
    return 405;
  }
  SendMetrics(conn, app->RenderMetrics());
  return 200;
}

int HandleProbe(mg_connection* conn, void* data) {
  auto* app = static_cast<App*>(data);
  const char* query = mg_get_request_info(conn)->query_string;
  char target[256] = "";
  if (!query || mg_get_var(query, std::strlen(query), "target", target, sizeof target) <= 0) {
    Send(conn, 400, "text/plain", "missing ?target=NAME (a configured target name)\n");
    return 400;
  }
  auto body = app->RenderProbe(target);
  if (!body) {
    Send(conn, 404, "text/plain", std::string("no target named \"") + target + "\" is configured\n");
    return 404;
  }
  SendMetrics(conn, *body);
  return 200;
}

int HandleRoot(mg_connection* conn, void* data) {
  auto* app = static_cast<App*>(data);
  const char* uri = mg_get_request_info(conn)->local_uri;
  if (std::strcmp(uri, "/") != 0) {
    Send(conn, 404, "text/plain", "not found\n");
    return 404;
  }
  Send(conn, 200, "text/html; charset=utf-8", app->RenderLandingPage());
  return 200;
}

int HandleHealthy(mg_connection* conn, void*) {
  Send(conn, 200, "text/plain", "OK\n");
  return 200;
}

int HandleReady(mg_connection* conn, void* data) {
  auto* app = static_cast<App*>(data);
  if (app->Ready()) {
    Send(conn, 200, "text/plain", "ready\n");
    return 200;
  }
  Send(conn, 503, "text/plain", "not ready: waiting for the first collection of every target\n");
  return 503;
}

int HandleReload(mg_connection* conn, void* data) {
  auto* app = static_cast<App*>(data);
  if (!IsMethod(conn, "POST") && !IsMethod(conn, "PUT")) {
    Send(conn, 405, "text/plain", "use POST\n", "Allow: POST, PUT\r\n");
    return 405;
  }
  auto r = app->Reload();
  if (r.ok) {
    Send(conn, 200, "text/plain", "config reloaded\n");
    return 200;
  }
  std::string body = "config reload failed; the previous config keeps running:\n";
  for (const auto& e : r.errors) body += e + "\n";
  Send(conn, 500, "text/plain", body);
  return 500;
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// POST /api/v1/notify/test?receiver=NAME[&resolved=true]: queues a test notification.
int HandleNotifyTest(mg_connection* conn, void* data) {
  auto* app = static_cast<App*>(data);
  if (!IsMethod(conn, "POST")) {
    Send(conn, 405, "text/plain", "use POST\n", "Allow: POST\r\n");
    return 405;
  }
  const char* query = mg_get_request_info(conn)->query_string;
  char receiver[256] = "", resolved[16] = "";
  if (!query || mg_get_var(query, std::strlen(query), "receiver", receiver, sizeof receiver) <= 0) {
    Send(conn, 400, "application/json",
         R"({"status":"error","error":"missing ?receiver=NAME: a configured receiver or alertmanager"})"
         "\n");
    return 400;
  }
  mg_get_var(query, std::strlen(query), "resolved", resolved, sizeof resolved);
  auto r = app->SendTestNotification(receiver, std::strcmp(resolved, "true") == 0);
  if (!r.ok) {
    Send(conn, 404, "application/json", R"({"status":"error","error":)" + JsonString(r.error) + "}\n");
    return 404;
  }
  Send(conn, 202, "application/json",
       R"({"status":"success","data":{"idempotencyKey":)" + JsonString(r.idempotency_key) + "}}\n");
  return 202;
}

std::string QueryParam(mg_connection* conn, const char* name) {
  const char* query = mg_get_request_info(conn)->query_string;
  if (!query) return {};
  std::string buf(8192, '\0');
  int n = mg_get_var(query, std::strlen(query), name, buf.data(), buf.size());
  return n > 0 ? buf.substr(0, static_cast<std::size_t>(n)) : std::string();
}

bool GetOnly(mg_connection* conn) {
  if (IsMethod(conn, "GET") || IsMethod(conn, "HEAD")) return true;
  Send(conn, 405, "text/plain", "use GET\n", "Allow: GET, HEAD\r\n");
  return false;
}

int HandleApiRules(mg_connection* conn, void* data) {
  if (!GetOnly(conn)) return 405;
  Send(conn, 200, "application/json", static_cast<App*>(data)->engine().RulesJson());
  return 200;
}

int HandleApiAlerts(mg_connection* conn, void* data) {
  if (!GetOnly(conn)) return 405;
  Send(conn, 200, "application/json", static_cast<App*>(data)->engine().AlertsJson());
  return 200;
}

int HandleApiQuery(mg_connection* conn, void* data) {
  if (!GetOnly(conn)) return 405;
  int status = 200;
  auto body = static_cast<App*>(data)->engine().QueryJson(QueryParam(conn, "query"), QueryParam(conn, "time"),
                                                          &status);
  Send(conn, status, "application/json", body);
  return status;
}

int HandleRulesPage(mg_connection* conn, void* data) {
  if (!GetOnly(conn)) return 405;
  Send(conn, 200, "text/html; charset=utf-8", static_cast<App*>(data)->engine().RulesPage());
  return 200;
}

int HandleGraphPage(mg_connection* conn, void* data) {
  if (!GetOnly(conn)) return 405;
  Send(conn, 200, "text/html; charset=utf-8",
       static_cast<App*>(data)->engine().GraphPage(QueryParam(conn, "g0.expr")));
  return 200;
}

int LogMessage(const mg_connection*, const char* message) {
  spdlog::warn("http: {}", message);
  return 1;
}

}  // namespace

std::unique_ptr<HttpServer> HttpServer::Start(App& app, const std::string& listen_address,
                                              std::string& error) {
  // CivetWeb spells "all interfaces" as a bare port.
  std::string ports = listen_address.starts_with(":") ? listen_address.substr(1) : listen_address;
  const char* options[] = {
      "listening_ports", ports.c_str(),       "num_threads", "4",    "request_timeout_ms",
      "10000",           "enable_keep_alive", "yes",         nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = LogMessage;
  mg_init_data init{&callbacks, &app, options};
  char error_text[256] = "";
  unsigned error_code = 0;
  mg_error_data err{&error_code, error_text, sizeof error_text};
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->ctx_ = mg_start2(&init, &err);
  if (!server->ctx_) {
    error = "cannot listen on " + listen_address + ": " + (error_text[0] ? error_text : "unknown error");
    return nullptr;
  }
  mg_set_request_handler(server->ctx_, "/metrics$", HandleMetrics, &app);
  mg_set_request_handler(server->ctx_, "/probe$", HandleProbe, &app);
  mg_set_request_handler(server->ctx_, "/-/healthy$", HandleHealthy, &app);
  mg_set_request_handler(server->ctx_, "/-/ready$", HandleReady, &app);
  mg_set_request_handler(server->ctx_, "/-/reload$", HandleReload, &app);
  mg_set_request_handler(server->ctx_, "/api/v1/notify/test$", HandleNotifyTest, &app);
  mg_set_request_handler(server->ctx_, "/api/v1/rules$", HandleApiRules, &app);
  mg_set_request_handler(server->ctx_, "/api/v1/alerts$", HandleApiAlerts, &app);
  mg_set_request_handler(server->ctx_, "/api/v1/query$", HandleApiQuery, &app);
  mg_set_request_handler(server->ctx_, "/rules$", HandleRulesPage, &app);
  mg_set_request_handler(server->ctx_, "/graph$", HandleGraphPage, &app);
  mg_set_request_handler(server->ctx_, "/", HandleRoot, &app);
  mg_server_port ports_out[4];
  int n = mg_get_server_ports(server->ctx_, 4, ports_out);
  if (n > 0) server->port_ = ports_out[0].port;
  auto colon = listen_address.rfind(':');
  std::string host = colon == std::string::npos ? "" : listen_address.substr(0, colon);
  in_addr probe{};
  server->wake_host_ = (host.empty() || host == "0.0.0.0" || inet_pton(AF_INET, host.c_str(), &probe) != 1)
                           ? "127.0.0.1"
                           : host;
  return server;
}

HttpServer::~HttpServer() {
  if (!ctx_) return;
  // CivetWeb's master thread sees the stop flag only when its poll() wakes (a 2 s quantum);
  // connecting to our own port wakes it, so shutdown takes milliseconds instead of seconds.
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    mg_stop(ctx_);
    stopped = true;
  });
  for (int i = 0; i < 40 && !stopped; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    inet_pton(AF_INET, wake_host_.c_str(), &addr.sin_addr);
    connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    close(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stopper.join();
}

}  // namespace runbook
