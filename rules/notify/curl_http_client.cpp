#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

#include "runbook/notify.h"

namespace runbook {

namespace {

struct Capture {
  std::string body;
  std::optional<std::chrono::milliseconds> retry_after;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* c = static_cast<Capture*>(user);
  std::size_t len = size * n;
  if (c->body.size() < 65536) c->body.append(data, std::min(len, 65536 - c->body.size()));
  return len;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* c = static_cast<Capture*>(user);
  std::string line(data, size * n);
  static const std::string kName = "retry-after:";
  if (line.size() > kName.size()) {
    std::string head = line.substr(0, kName.size());
    std::transform(head.begin(), head.end(), head.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (head == kName) {
      std::string v = line.substr(kName.size());
      v.erase(0, v.find_first_not_of(" \t"));
      while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
      if (!v.empty() && std::all_of(v.begin(), v.end(), [](unsigned char ch) { return std::isdigit(ch); })) {
        c->retry_after = std::chrono::seconds(std::stoll(v.substr(0, 9)));
      } else if (time_t t = curl_getdate(v.c_str(), nullptr); t > 0) {
        time_t now = time(nullptr);
        c->retry_after = std::chrono::seconds(t > now ? t - now : 0);
      }
    }
  }
  return size * n;
}

class CurlHttpClient final : public HttpClient {
 public:
  CurlHttpClient() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }

  HttpResponse Post(const HttpRequest& req) override {
    // One handle per thread keeps connections alive between requests of a delivery thread.
    thread_local std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> handle(curl_easy_init(),
                                                                            curl_easy_cleanup);
    CURL* h = handle.get();
    curl_easy_reset(h);
    Capture cap;
    curl_slist* headers = nullptr;
    for (const auto& [n, v] : req.headers) headers = curl_slist_append(headers, (n + ": " + v).c_str());
    headers = curl_slist_append(headers, "Expect:");
    static const NotifyHttpConfig kDefaults;
    const NotifyHttpConfig& cfg = req.http ? *req.http : kDefaults;
    curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(cfg.timeout.count()));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(cfg.timeout.count()));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &cap);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &cap);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!cfg.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, cfg.ca_file.c_str());
    if (!cfg.cert_file.empty()) curl_easy_setopt(h, CURLOPT_SSLCERT, cfg.cert_file.c_str());
    if (!cfg.key_file.empty()) curl_easy_setopt(h, CURLOPT_SSLKEY, cfg.key_file.c_str());
    if (cfg.insecure_skip_verify) {
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    // An empty proxy disables the *_proxy environment variables, as Prometheus' client does.
    curl_easy_setopt(h, CURLOPT_PROXY, cfg.proxy_url.c_str());
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    HttpResponse resp;
    if (rc != CURLE_OK) {
      resp.error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
      return resp;
    }
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    resp.status = static_cast<int>(code);
    resp.body = std::move(cap.body);
    resp.retry_after = cap.retry_after;
    return resp;
  }
};

}  // namespace

std::shared_ptr<HttpClient> MakeCurlHttpClient() {
  return std::make_shared<CurlHttpClient>();
}

}  // namespace runbook
