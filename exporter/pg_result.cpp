#include <cmath>
#include <cstdlib>
#include <string>

#include "runbook/pg_session.h"

namespace runbook {

int PgResult::ColumnIndex(std::string_view name) const {
  for (std::size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == name) return static_cast<int>(i);
  return -1;
}

std::optional<double> ParsePgNumber(std::string_view text) {
  if (text == "t" || text == "true" || text == "on") return 1.0;
  if (text == "f" || text == "false" || text == "off") return 0.0;
  if (text == "NaN") return std::nan("");
  if (text == "Infinity") return HUGE_VAL;
  if (text == "-Infinity") return -HUGE_VAL;
  if (text.empty()) return std::nullopt;
  std::string buf(text);
  char* end = nullptr;
  double v = std::strtod(buf.c_str(), &end);
  if (end != buf.c_str() + buf.size()) return std::nullopt;
  if (std::isnan(v) || std::isinf(v)) return std::nullopt;  // "nan"/"inf" spellings are not PG's
  return v;
}

std::optional<double> NumberAt(const PgResult& result, const PgRow& row, std::string_view column,
                               MetricSink& sink) {
  int i = result.ColumnIndex(column);
  if (i < 0 || !row[i]) return std::nullopt;
  auto v = ParsePgNumber(*row[i]);
  if (!v) sink.RecordError("column " + std::string(column) + " is not a number: " + row[i]->substr(0, 40));
  return v;
}

std::string TextAt(const PgResult& result, const PgRow& row, std::string_view column) {
  int i = result.ColumnIndex(column);
  return i >= 0 && row[i] ? *row[i] : std::string();
}

void EmitRows(const PgResult& result, std::span<const std::string_view> label_columns,
              std::span<const ColumnMetric> metrics, MetricSink& sink) {
  std::vector<std::string> labels(label_columns.size());
  for (const auto& row : result.rows) {
    for (std::size_t i = 0; i < label_columns.size(); ++i) labels[i] = TextAt(result, row, label_columns[i]);
    for (const auto& m : metrics)
      if (auto v = NumberAt(result, row, m.column, sink)) sink.Add(m.desc, labels, *v * m.scale);
  }
}

}  // namespace runbook
