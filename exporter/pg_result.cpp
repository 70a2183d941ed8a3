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

void EmitRows(const PgResult& result, std::span<const std::string_view> label_columns,
              std::span<const ColumnMetric> metrics, MetricSink& sink) {
  std::vector<int> label_idx;
  label_idx.reserve(label_columns.size());
  for (auto c : label_columns) label_idx.push_back(result.ColumnIndex(c));
  std::vector<int> metric_idx;
  metric_idx.reserve(metrics.size());
  for (const auto& m : metrics) metric_idx.push_back(result.ColumnIndex(m.column));

  std::vector<std::string> labels(label_columns.size());
  for (const auto& row : result.rows) {
    for (std::size_t i = 0; i < label_idx.size(); ++i) {
      int k = label_idx[i];
      labels[i] = (k >= 0 && row[k]) ? *row[k] : std::string();
    }
    for (std::size_t i = 0; i < metrics.size(); ++i) {
      int k = metric_idx[i];
      if (k < 0 || !row[k]) continue;
      auto v = ParsePgNumber(*row[k]);
      if (!v) {
        sink.RecordError(metrics[i].desc.name + ": column " + std::string(metrics[i].column) +
                         " is not a number: " + row[k]->substr(0, 40));
        continue;
      }
      sink.Add(metrics[i].desc, labels, *v * metrics[i].scale);
    }
  }
}

}  // namespace runbook
