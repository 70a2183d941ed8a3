#pragma once
// PgSession: the seam between PostgreSQL/PgBouncer collectors and libpq. The real session keeps
// one persistent connection per target; unit tests replay fixtures captured from real servers.
//
// Thread-safety: a session is used by one collection at a time (the scheduler guarantees
// single-flight per target); it is not synchronised.

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runbook/metric_sink.h"
#include "runbook/status.h"

namespace runbook {

using Deadline = std::chrono::steady_clock::time_point;

// One query of a collector. `name` identifies it in fixtures (tests/fixtures/<server>/<version>/
// <name>.tsv) and in logs; `sql` is sent with the simple query protocol.
struct PgQuery {
  std::string_view name;
  std::string_view sql;
};

// A query result in text form, as the server sent it. NULL is std::nullopt.
struct PgResult {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;  // see PgRow

  // Index of a column by name, or -1 when the server did not send it.
  int ColumnIndex(std::string_view name) const;
};

class PgSession {
 public:
  virtual ~PgSession() = default;
  // Runs one query; returns before `deadline` whatever the server does. On error `out` is empty.
  virtual Status Query(const PgQuery& query, Deadline deadline, PgResult& out) = 0;
  // server_version_num of the connected server (e.g. 150004), 0 when unknown (PgBouncer).
  virtual int ServerVersionNum() const = 0;
};

// Declarative mapping from a result column to a metric: the pgbouncer_exporter model.
struct ColumnMetric {
  std::string_view column;
  MetricDesc desc;     // desc.labels must equal the label columns given to EmitRows, in order
  double scale = 1.0;  // value multiplier into base units (e.g. 1e-3 for milliseconds)
};

// Parses a PostgreSQL text value as a number: integers, floats, NaN/Infinity, and booleans
// ("t"/"f", "true"/"false", "on"/"off"). std::nullopt for anything else.
std::optional<double> ParsePgNumber(std::string_view text);

using PgRow = std::vector<std::optional<std::string>>;

// The value of `column` in `row` as a number; std::nullopt when the server did not send the
// column or sent NULL. A value that is not a number gives std::nullopt too and is recorded as an
// error in `sink` (the server lied; the collection goes on).
std::optional<double> NumberAt(const PgResult& result, const PgRow& row, std::string_view column,
                               MetricSink& sink);
// The text of `column` in `row`; "" when the column is missing or NULL.
std::string TextAt(const PgResult& result, const PgRow& row, std::string_view column);

// For every row: label values from `label_columns` (NULL → ""), then one sample per ColumnMetric
// whose column exists and is non-NULL. Missing columns and NULLs give no sample (servers differ
// by version); a value that does not parse as a number is recorded as an error in the sink.
void EmitRows(const PgResult& result, std::span<const std::string_view> label_columns,
              std::span<const ColumnMetric> metrics, MetricSink& sink);

}  // namespace runbook
