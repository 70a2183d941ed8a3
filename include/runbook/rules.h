#pragma once
// The embedded rule engine: Prometheus rule files (loading, validation as strict as
// `promtool check rules`), recording and alerting rules with Prometheus 2.42's alert state
// machine, rule groups and a manager that evaluates them at times passed in by the caller.
// Implementation: rules/*.cpp. Semantics: ../shared/reference/alerting/SEMANTICS.md §1.
//
// Time is never read inside the engine: callers pass the evaluation time (Unix ms), so tests
// drive it with a fake clock.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runbook/alert.h"
#include "runbook/clock.h"
#include "runbook/labels.h"
#include "runbook/promql.h"

namespace runbook::rules {

// ------------------------------------------------------------------ rule files

struct RuleDef {
  enum class Kind { kAlerting, kRecording };
  Kind kind = Kind::kRecording;
  std::string name;  // the alert or record name
  std::string expr_text;
  std::shared_ptr<const promql::Expr> expr;
  TimestampMs for_ms = 0;
  TimestampMs keep_firing_for_ms = 0;
  Labels labels;       // sorted; label values are templates for alerting rules
  Labels annotations;  // sorted templates
  int line = 0;        // 1-based line of the rule in its file

  bool SameDefinition(const RuleDef& o) const {
    return kind == o.kind && name == o.name && expr_text == o.expr_text && for_ms == o.for_ms &&
           keep_firing_for_ms == o.keep_firing_for_ms && labels == o.labels && annotations == o.annotations;
  }
};

struct GroupDef {
  std::string file;
  std::string name;
  TimestampMs interval_ms = 0;  // 0: the manager's default interval
  int limit = 0;                // 0: no limit
  std::vector<RuleDef> rules;

  bool SameDefinition(const GroupDef& o) const;
};

struct LoadResult {
  std::vector<GroupDef> groups;
  // Errors as promtool prints them: `FILE: 7:15: group "g", rule 1, "x": could not parse ...`.
  std::vector<std::string> errors;
  bool ok() const { return errors.empty(); }
};

// Parses and validates one rule file's content; `file` names it in messages and GroupDef::file.
LoadResult ParseRuleFile(std::string_view content, const std::string& file);
// Reads and parses `path`. A path "embedded:NAME" is the shipped rule pack's file NAME (see
// EmbeddedRuleFiles), parsed from the binary; an unknown NAME is an error naming it.
LoadResult LoadRuleFile(const std::string& path);

// The shipped rule pack, rules/runbook/*.rules.yml, compiled into the binary (the build globs the
// folder), sorted by name. Immutable; safe from any thread.
struct EmbeddedRuleFile {
  std::string_view name;  // file name, e.g. "postgres.rules.yml"
  std::string_view content;
};
const std::vector<EmbeddedRuleFile>& EmbeddedRuleFiles();
// Prefix of rule-file paths that name an embedded file: "embedded:postgres.rules.yml".
inline constexpr std::string_view kEmbeddedRulePrefix = "embedded:";
// "embedded:GLOB" (shell glob, as fnmatch) → the matching "embedded:NAME" paths, sorted; empty when
// none matches or `pattern` lacks the prefix. Used by the config, `check rules` and `test rules`.
std::vector<std::string> MatchEmbeddedRuleFiles(std::string_view pattern);
// "postgres.rules.yml, redis.rules.yml, ...": the embedded names, for error messages.
std::string EmbeddedRuleFileNames();
// promtool's lint: rules with the same name and labels across the groups of one file, formatted
// as promtool prints them (empty when none).
std::string DuplicateRulesLint(const std::vector<GroupDef>& groups);

// ------------------------------------------------------------------ evaluation

// Where rule output (recording rules, ALERTS, ALERTS_FOR_STATE and their staleness markers) goes.
class Appender {
 public:
  virtual ~Appender() = default;
  // `metric` is sorted; an implementation may keep the shared set itself.
  virtual void Append(const LabelSet& metric, TimestampMs t, double v) = 0;
  // Append, returning a reference to the series that a later call may pass back as `ref` with
  // the same shared `metric` to skip finding the series (as Prometheus' storage.SeriesRef); 0
  // when the implementation has none. A reference whose series is gone, or that belongs to
  // another set, must still append correctly (implementations check it and look up).
  virtual std::uint64_t AppendRef(std::uint64_t ref, const LabelSet& metric, TimestampMs t, double v) {
    (void)ref;
    Append(metric, t, v);
    return 0;
  }
};

// Evaluates an expression at ts. The default is promql::EvalInstant over the Queryable.
using QueryFunc = std::function<promql::EvalResult(const promql::Expr& expr, TimestampMs ts)>;

enum class AlertState { kInactive, kPending, kFiring };
std::string_view AlertStateName(AlertState s);  // "inactive", "pending", "firing"

inline constexpr TimestampMs kNoTime = -(TimestampMs(1) << 62);  // Go's zero time.Time

struct AlertStatus {
  AlertState state = AlertState::kInactive;
  Labels labels;       // identity: sample labels - __name__ + rule labels + alertname
  Labels annotations;  // expanded at the last evaluation while active
  double value = 0;
  TimestampMs active_at = kNoTime, fired_at = kNoTime, resolved_at = kNoTime;
  TimestampMs last_sent_at = kNoTime, valid_until = kNoTime, keep_firing_since = kNoTime;
};

struct RuleStatus {
  RuleDef def;
  std::string health = "unknown";  // "unknown", "ok", "err"
  std::string last_error;
  TimestampMs last_evaluation = kNoTime;
  double evaluation_seconds = 0;
  std::vector<AlertStatus> alerts;  // alerting rules: pending, firing and resolved-but-retained
};

struct GroupStatus {
  std::string file, name;
  TimestampMs interval_ms = 0;
  int limit = 0;
  TimestampMs last_evaluation = kNoTime;
  double evaluation_seconds = 0;
  std::uint64_t evaluations = 0, failures = 0;
  // What the group's rules keep from their last evaluation to skip work in the next: label sets
  // and input series of aggregations and vector matches (promql::EvalCache), recording rules'
  // last results. About 24 bytes each, outside the series store's memory.
  std::size_t remembered = 0;
  std::vector<RuleStatus> rules;
};

struct ManagerOptions {
  const promql::Queryable* queryable = nullptr;  // read by the default QueryFunc and template `query`
  QueryFunc query;                               // optional: overrides EvalInstant over queryable
  Appender* appender = nullptr;                  // optional
  NotifyFunc notify;                             // optional
  Labels external_labels;                        // added at send time, offered to templates
  std::string external_url;                      // templates' $externalURL and generatorURL prefix
  TimestampMs default_interval_ms = 60'000;
  TimestampMs resend_delay_ms = 60'000;
  TimestampMs resolved_retention_ms = 15 * 60'000;
  // Restore after a restart, as Prometheus' RestoreForState: only rules whose `for` is at least
  // the grace period are restored, and a restored alert pends at least the grace period; state
  // older than the outage tolerance is ignored. Prometheus' default grace period is 10m (rules
  // with a shorter `for` start over); 0 here, so that a restart never resets `for`.
  TimestampMs for_grace_period_ms = 0;
  TimestampMs for_outage_tolerance_ms = 60 * 60'000;
  std::string state_file;  // empty: no persistence
};

// One group of rules evaluated in order at the same timestamp. Not synchronised: RuleManager
// serialises access; tests may use a group directly from one thread.
class RuleGroup {
 public:
  RuleGroup(GroupDef def, const ManagerOptions* options);
  ~RuleGroup();
  RuleGroup(const RuleGroup&) = delete;
  RuleGroup& operator=(const RuleGroup&) = delete;

  // Evaluates every rule at ts, appends output, sends alerts through options->notify.
  void Eval(TimestampMs ts);
  // Takes alert state and previous-series bookkeeping from `old` for rules with the same name
  // and labels (Prometheus' CopyState on reload).
  void CopyState(RuleGroup& old);
  // Marks alerting rules restored so ALERTS series are written from the next evaluation on.
  void SetRestored();
  // Applies persisted activeAt values (Prometheus' RestoreForState) and marks rules restored.
  struct SavedAlert {
    Labels labels;
    TimestampMs active_at = 0;
  };
  using SavedState = std::map<std::string, std::vector<SavedAlert>>;  // key: RuleKey()
  void RestoreForState(TimestampMs ts, TimestampMs saved_at, const SavedState& saved);
  void SaveState(SavedState& out) const;

  const GroupDef& def() const;
  TimestampMs interval_ms() const;
  GroupStatus Status() const;
  // Firing alerts of one alerting rule, for promtool's alert_rule_test.
  std::vector<AlertStatus> ActiveAlerts(std::string_view alertname) const;
  // ALERTS and ALERTS_FOR_STATE samples of the last evaluation.
  std::vector<promql::Sample> AlertSeries() const;
  // Errors of the last evaluation, as "rule name" -> error.
  std::vector<std::pair<std::string, std::string>> LastErrors() const;

  static std::string RuleKey(const GroupDef& g, const RuleDef& r);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Owns the loaded groups and evaluates them when due.
// Thread-safety: every method may be called from any thread; evaluation and updates are
// serialised by an internal mutex (EvalDue holds it while evaluating).
class RuleManager {
 public:
  explicit RuleManager(ManagerOptions options);
  ~RuleManager();

  // Replaces the groups. A group with the same file and name and identical definition keeps
  // its state and schedule; a changed group takes the alert state of rules with the same name
  // and labels. Loads the state file on the first call.
  void Update(std::vector<GroupDef> groups, TimestampMs now);
  // Replaces the options (external labels and URL, intervals, resend delay, state file...) and
  // keeps every group's alert state: a reload changing them loses nothing. Groups on the default
  // interval are rescheduled from `now` when it changes. A new state file is written from the next
  // evaluation on (it is read only at the first Update).
  void SetOptions(ManagerOptions options, TimestampMs now);
  // Evaluates every group whose slot is due at or before `now` (missed slots are skipped, as in
  // Prometheus); returns the earliest next evaluation time. Persists state if configured: the
  // file is rewritten only when the saved state changed (or the file changed); saved state of
  // rules no longer loaded is dropped once every group has been restored.
  TimestampMs EvalDue(TimestampMs now);

  // State-file health for self-metrics. A failure is logged once when writes start failing and
  // once when they recover.
  struct StateFileStats {
    std::uint64_t write_failures = 0;
    TimestampMs last_success = kNoTime;  // last successful write (or unchanged state), Unix ms
  };
  StateFileStats StateFile() const;

  std::vector<GroupStatus> Groups() const;
  std::vector<promql::Sample> AlertSeries() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runbook::rules
