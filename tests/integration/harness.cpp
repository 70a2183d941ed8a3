#include "harness.h"
#include "loopback.h"

#include <curl/curl.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace itest {

namespace fs = std::filesystem;

namespace {

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t WriteBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t WriteHeader(char* data, size_t size, size_t n, void* user) {
  std::string line(data, size * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    (*static_cast<std::map<std::string, std::string>*>(user))[name] = value;
  }
  return size * n;
}

bool LabelsMatch(const std::string& key, const std::string& name,
                 const std::map<std::string, std::string>& labels) {
  if (key.compare(0, name.size(), name) != 0) return false;
  if (key.size() > name.size() && key[name.size()] != '{') return false;
  for (const auto& [k, v] : labels) {
    std::string needle = k + "=\"" + v + "\"";
    auto pos = key.find(needle);
    if (pos == std::string::npos) return false;
    char before = key[pos - 1];
    if (before != '{' && before != ',') return false;
  }
  return true;
}

}  // namespace

Stack& Stack::Get() {
  static Stack stack = [] {
    Stack s;
    const char* dir = std::getenv("RUNBOOK_STACK_DIR");
    REQUIRE_MESSAGE(dir, "RUNBOOK_STACK_DIR is not set: run through ctest, which starts the stack");
    s.dir_ = dir;
    s.Reload();
    return s;
  }();
  return stack;
}

void Stack::Reload() {
  env_.clear();
  std::istringstream in(ReadAll(dir_ / "stack.env"));
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos && line[0] != '#') env_[line.substr(0, eq)] = line.substr(eq + 1);
  }
  REQUIRE_MESSAGE(!env_.empty(), "cannot read " << (dir_ / "stack.env"));
}

std::string Stack::operator[](const std::string& key) const {
  auto it = env_.find(key);
  REQUIRE_MESSAGE(it != env_.end(), "stack.env has no " << key);
  return it->second;
}

std::string Stack::Password(const std::string& file_key) const {
  return ReadAll((*this)[file_key]);
}

int Stack::Control(const std::string& subcommand, const std::string& args) const {
  std::string cmd = std::string(RUNBOOK_SOURCE_DIR) + "/scripts/stack.sh " + subcommand + " " +
                    dir_.string() + " " + args + " >> " + (dir_ / "logs" / "control.log").string() + " 2>&1";
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

double Scrape::Value(const std::string& name, const std::map<std::string, std::string>& labels) const {
  double found = std::nan("");
  int n = 0;
  for (const auto& [key, v] : samples)
    if (LabelsMatch(key, name, labels)) {
      found = v;
      ++n;
    }
  return n == 1 ? found : std::nan("");
}

bool Scrape::Has(const std::string& name, const std::map<std::string, std::string>& labels) const {
  for (const auto& [key, v] : samples)
    if (LabelsMatch(key, name, labels)) return true;
  return false;
}

std::map<std::string, double> ParseExposition(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    std::string v = line.substr(sp + 1);
    double d = v == "NaN"    ? std::nan("")
               : v == "+Inf" ? HUGE_VAL
               : v == "-Inf" ? -HUGE_VAL
                             : std::strtod(v.c_str(), nullptr);
    out[line.substr(0, sp)] = d;
  }
  return out;
}

HttpResponse Http(const std::string& method, const std::string& url, const std::vector<std::string>& headers,
                  bool decode_gzip) {
  HttpResponse r;
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "POST") curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
  if (method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, WriteHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
  if (decode_gzip) curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "gzip");
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  if (list) curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  if (curl_easy_perform(c) == CURLE_OK) {
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    r.status = static_cast<int>(code);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r.duration_s);
  }
  curl_slist_free_all(list);
  curl_easy_cleanup(c);
  return r;
}

std::string ExporterBinary() {
  return RUNBOOK_EXPORTER_BINARY;
}

std::pair<int, std::string> Run(const std::string& command) {
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

int FreePort() {
  return runbook::testing::LoopbackSocket(false).port;
}

std::string PgTarget(const std::string& name, int port, const std::string& extra) {
  auto& s = Stack::Get();
  return "    - name: " + name + "\n      host: 127.0.0.1\n      port: " + std::to_string(port) +
         "\n      user: exporter\n      password_file: " + s["PG_EXPORTER_PASSWORD_FILE"] +
         "\n      sslmode: disable\n" + extra;
}

Child::Child(std::vector<std::string> args, const std::filesystem::path& log) {
  pid_ = fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {
    FILE* f = std::fopen(log.c_str(), "w");
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    Stop();
    pid_ = std::exchange(other.pid_, -1);
  }
  return *this;
}

Child::Exit Child::Stop(std::chrono::milliseconds grace) {
  Exit exit;
  if (pid_ <= 0) return exit;
  kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (!(exit.graceful = waitpid(pid_, &exit.status, WNOHANG) == pid_) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  if (!exit.graceful) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &exit.status, 0);
  }
  pid_ = -1;
  return exit;
}

void Child::Kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

bool Child::Alive() {
  if (pid_ <= 0) return false;
  if (waitpid(pid_, nullptr, WNOHANG) != pid_) return true;
  pid_ = -1;
  return false;
}

Exporter::Exporter(const std::string& config_yaml, std::vector<std::string> extra_args) {
  static int counter = 0;
  auto dir =
      fs::temp_directory_path() / ("rbx-itest-" + std::to_string(getpid()) + "-" + std::to_string(++counter));
  fs::create_directories(dir);
  config_ = dir / "config.yml";
  log_ = dir / "exporter.log";
  WriteConfig(config_yaml);
  port_ = FreePort();
  std::string listen = "127.0.0.1:" + std::to_string(port_);
  std::vector<std::string> args{ExporterBinary(), "--config", config_.string(), "--web.listen-address",
                                listen};
  for (auto& a : extra_args) args.push_back(a);
  process_ = Child(args, log_);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Http("GET", url("/-/healthy")).status == 200) return;
    if (!process_.Alive()) FAIL("exporter exited at start: " << Log());
    std::this_thread::sleep_for(50ms);
  }
  FAIL("exporter did not answer /-/healthy within 10 s: " << Log());
}

Exporter::~Exporter() {
  if (process_.pid() > 0) {
    auto exit = process_.Stop();
    // Sanitizer builds report into the exporter's own log and exit non-zero.
    auto log = Log();
    CHECK_MESSAGE(exit.graceful, "exporter did not stop within 10 s of SIGTERM");
    CHECK_MESSAGE((exit.graceful && WIFEXITED(exit.status) && WEXITSTATUS(exit.status) == 0),
                  "exporter exit status " << exit.status << "; log:\n"
                                          << log);
    for (const char* report : {"Sanitizer", "runtime error:"})
      CHECK_MESSAGE(log.find(report) == std::string::npos, "sanitizer report in the exporter log:\n" << log);
  }
  std::error_code ec;
  fs::remove_all(config_.parent_path(), ec);
}

void Exporter::WriteConfig(const std::string& yaml) const {
  std::ofstream(config_) << yaml;
}

std::string Exporter::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

Scrape Exporter::Metrics() const {
  auto r = Http("GET", url("/metrics"));
  Scrape s;
  s.status = r.status;
  s.body = r.body;
  s.duration_s = r.duration_s;
  s.samples = ParseExposition(r.body);
  return s;
}

Scrape Exporter::WaitFor(const std::function<bool(const Scrape&)>& pred,
                         std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Scrape s;
  do {
    s = Metrics();
    if (pred(s)) return s;
    std::this_thread::sleep_for(100ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return s;
}

std::string Exporter::Log() const {
  return ReadAll(log_);
}

Frozen::Frozen(std::vector<int> pids) : pids_(std::move(pids)) {
  for (int p : pids_) kill(p, SIGSTOP);
}

Frozen::~Frozen() {
  for (int p : pids_) kill(p, SIGCONT);
}

void CheckFreezeCutAtDeadline(const Exporter& exp, const std::string& up_metric, const std::string& target,
                              std::vector<int> pids, const std::vector<std::string>& still_up) {
  const std::map<std::string, std::string> labels{{"target", target}};
  auto up = exp.WaitFor([&](const Scrape& m) { return m.Value(up_metric, labels) == 1; }, 10s);
  REQUIRE_MESSAGE(up.Value(up_metric, labels) == 1, target << " never came up");
  {
    Frozen frozen(std::move(pids));
    double slowest = 0;
    auto m = exp.WaitFor(
        [&](const Scrape& m) {
          slowest = std::max(slowest, m.duration_s);
          return m.Value(up_metric, labels) == 0;
        },
        10s);
    CHECK(m.Value(up_metric, labels) == 0);
    CHECK(m.Value("runbook_exporter_target_error", {{"target", target}, {"reason", "timeout"}}) == 1);
    // The collection ended at its 800 ms deadline instead of waiting for the server.
    // Loose bound: only a hang (which lasts as long as the freeze) must fail, not a loaded machine.
    CHECK(m.Value("runbook_exporter_collection_duration_seconds", labels) < 3.0);
    for (const auto& other : still_up) CHECK_MESSAGE(m.Value("pg_up", {{"target", other}}) == 1, other);
    for (int i = 0; i < 5; ++i) slowest = std::max(slowest, exp.Metrics().duration_s);
    // Not a benchmark: a hanging exporter would take until the freeze ends.
    CHECK(slowest < 5.0);  // loose: a hang reaches the client's 10 s timeout
  }
  auto back = exp.WaitFor([&](const Scrape& m) { return m.Value(up_metric, labels) == 1; }, 20s);
  CHECK(back.Value(up_metric, labels) == 1);
}

Pg::Pg(int port, const std::string& user, const std::string& password_key, const std::string& database) {
  auto& s = Stack::Get();
  std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port) + " user=" + user +
                         " password=" + s.Password(password_key) + " dbname=" + database +
                         " sslmode=disable application_name=itest connect_timeout=5";
  conn_ = PQconnectdb(conninfo.c_str());
  REQUIRE_MESSAGE(PQstatus(conn_) == CONNECTION_OK,
                  "connect to port " << port << ": " << PQerrorMessage(conn_));
}

Pg::~Pg() {
  if (conn_) PQfinish(conn_);
}

std::string Pg::Scalar(const std::string& sql) {
  PGresult* r = PQexec(conn_, sql.c_str());
  auto st = PQresultStatus(r);
  std::string out;
  bool ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
  std::string err = PQresultErrorMessage(r);
  if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0) out = PQgetvalue(r, 0, 0);
  PQclear(r);
  REQUIRE_MESSAGE(ok, sql << ": " << err);
  return out;
}

void Pg::Exec(const std::string& sql) {
  Scalar(sql);
}

void Pg::SendAsync(const std::string& sql) {
  REQUIRE(PQsendQuery(conn_, sql.c_str()) == 1);
}

}  // namespace itest
