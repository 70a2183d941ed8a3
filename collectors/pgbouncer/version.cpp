// SHOW VERSION: pgbouncer_version_info{version}, as prometheus-community/pgbouncer_exporter.
#include <cctype>
#include <string>

#include "runbook/collector.h"

namespace runbook {
namespace {

constexpr PgQuery kQuery{"version", "SHOW VERSION"};

const MetricDesc kInfo{
    "pgbouncer_version_info", MetricKind::kGauge, "PgBouncer version; constant 1.", {"version"}};

// "PgBouncer 1.18.0" → "1.18.0": the first word that starts with a digit, else the whole text.
std::string VersionOf(const std::string& text) {
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    if (end > start && std::isdigit(static_cast<unsigned char>(text[start])))
      return text.substr(start, end - start);
    start = end + 1;
  }
  return text.substr(0, 64);
}

class VersionCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    PgResult r;
    if (auto st = ctx.pg->Query(kQuery, ctx.deadline, r); !st.ok()) return st;
    // Old versions answer SHOW VERSION with a notice and no rows: no sample.
    for (const auto& row : r.rows)
      if (auto text = TextAt(r, row, "version"); !text.empty()) sink.Add(kInfo, {VersionOf(text)}, 1);
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "version",
    .kind = TargetKind::kPgBouncer,
    .enabled_by_default = true,
    .tier = Tier::kSlow,
    .help = "SHOW VERSION: the PgBouncer version as an info metric.",
    .factory = [] { return std::make_unique<VersionCollector>(); },
}};

}  // namespace
}  // namespace runbook
