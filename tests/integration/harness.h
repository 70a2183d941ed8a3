#pragma once
// Integration-test harness: the throwaway stack started by scripts/stack.sh (its stack.env),
// the exporter binary run as a child process with a generated config, scraping and parsing
// /metrics, and libpq sessions to drive the servers into the states the runbooks care about.

#include <libpq-fe.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace itest {

using namespace std::chrono_literals;

// KEY=VALUE lines of $RUNBOOK_STACK_DIR/stack.env.
class Stack {
 public:
  static Stack& Get();  // fails the test when RUNBOOK_STACK_DIR is unset or unreadable
  std::string operator[](const std::string& key) const;
  int Port(const std::string& key) const { return std::stoi((*this)[key]); }
  std::string Password(const std::string& file_key) const;
  std::filesystem::path dir() const { return dir_; }
  // Runs `scripts/stack.sh <args> DIR-inserted-after-subcommand`; returns the exit code.
  int Control(const std::string& subcommand, const std::string& args = "") const;
  void Reload();  // re-reads stack.env (after start-pg)

 private:
  std::filesystem::path dir_;
  std::map<std::string, std::string> env_;
};

// Samples of one exposition, "name{a="b",...}" → value, labels in the exporter's sorted order.
struct Scrape {
  int status = 0;
  std::string body;
  std::map<std::string, double> samples;
  double duration_s = 0;
  // Value of the single series of `name` whose labels include all of `labels`; NaN when none.
  double Value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
  bool Has(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
};

struct HttpResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  double duration_s = 0;
};
HttpResponse Http(const std::string& method, const std::string& url,
                  const std::vector<std::string>& headers = {}, bool decode_gzip = false);
std::map<std::string, double> ParseExposition(const std::string& text);

// A child process: args[0] (a path) run with `args`, stdout and stderr to `log`. Destroying it
// stops it as Stop() does.
class Child {
 public:
  Child() = default;
  Child(std::vector<std::string> args, const std::filesystem::path& log);
  ~Child() { Stop(); }
  Child(Child&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  struct Exit {
    bool graceful = false;  // ended within the grace period after SIGTERM (or before it)
    int status = 0;         // waitpid status
  };
  // SIGTERM, then SIGKILL once `grace` has passed; waits for the process. Nothing when not running.
  Exit Stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  // SIGKILL, as a crash would: no shutdown path runs.
  void Kill9();
  // Whether it still runs; reaps it when it has ended.
  bool Alive();
  int pid() const { return pid_; }

 private:
  int pid_ = -1;
};

// The exporter binary under test, killed (SIGKILL if it must) when this object dies.
class Exporter {
 public:
  explicit Exporter(const std::string& config_yaml, std::vector<std::string> extra_args = {});
  ~Exporter();
  Scrape Metrics() const;
  std::string url(const std::string& path) const;
  // Scrapes until `pred` holds or `timeout` passes; returns the last scrape.
  Scrape WaitFor(const std::function<bool(const Scrape&)>& pred, std::chrono::milliseconds timeout) const;
  std::string Log() const;
  int pid() const { return process_.pid(); }
  // SIGKILL, as a crash would: no shutdown path runs. The destructor then only cleans up.
  void Kill9() { process_.Kill9(); }
  std::filesystem::path config_path() const { return config_; }
  void WriteConfig(const std::string& yaml) const;

 private:
  std::filesystem::path config_, log_;
  int port_ = 0;
  Child process_;
};

// Path of the exporter binary in this build tree.
std::string ExporterBinary();
// Runs a command, returns {exit code, combined output}.
std::pair<int, std::string> Run(const std::string& command);
int FreePort();

// Stops processes with SIGSTOP and resumes them with SIGCONT when destroyed, even when a check
// between fails.
class Frozen {
 public:
  explicit Frozen(std::vector<int> pids);
  ~Frozen();
  Frozen(const Frozen&) = delete;
  Frozen& operator=(const Frozen&) = delete;

 private:
  std::vector<int> pids_;
};

// Freezes `pids` (a server and its children) while `exp` collects `target` with an 800 ms
// timeout, and checks: `up_metric` goes to 0 with reason timeout, the collection ends near its
// deadline, /metrics keeps answering at once, `still_up` targets stay up; after the freeze the
// target comes back by itself.
void CheckFreezeCutAtDeadline(const Exporter& exp, const std::string& up_metric, const std::string& target,
                              std::vector<int> pids, const std::vector<std::string>& still_up = {});

// A postgres target block for the exporter config.
std::string PgTarget(const std::string& name, int port, const std::string& extra = "");

// A libpq connection as the stack's superuser (or `user` with its password file key).
class Pg {
 public:
  explicit Pg(int port, const std::string& user = "postgres",
              const std::string& password_key = "PG_SUPERUSER_PASSWORD_FILE",
              const std::string& database = "postgres");
  ~Pg();
  std::string Scalar(const std::string& sql);  // first column of the first row; fails the test on error
  void Exec(const std::string& sql);
  void SendAsync(const std::string& sql);  // for statements that block (lock waits)

 private:
  PGconn* conn_ = nullptr;
};

}  // namespace itest
