// Alert template expansion: parsing the template at every expansion (what rule evaluation did
// before templates were parsed at load time) against expanding a template parsed once. Prints
// nanoseconds per expansion for the shipped rule pack's annotation shapes; asserts nothing.
//   tests/bench/bench_templates.sh [BUILD_DIR]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "template.h"

using namespace runbook;
using namespace runbook::rules;

namespace {

template <typename F>
double NsPerOp(int n, F&& f) {
  auto start = std::chrono::steady_clock::now();
  std::size_t sink = 0;
  for (int i = 0; i < n; ++i) sink += f(i).size();
  auto ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  if (sink == 0) std::puts("");
  return ns / n;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"label only", "PostgreSQL {{ $labels.target }} is unreachable"},
      {"humanizeDuration", "PostgreSQL {{ $labels.target }} restarted {{ $value | humanizeDuration }} ago"},
      {"printf + if",
       "{{ if gt $value 0.9 }}{{ printf \"%.1f\" $value }}% of {{ $labels.target }} "
       "({{ $externalLabels.site }}){{ else }}ok{{ end }}"},
  };
  TemplateData data;
  data.labels = {{"__name__", "pg_up"}, {"instance", "db1:9187"}, {"target", "primary"}};
  data.external_labels = {{"site", "lab"}};
  data.external_url = "http://exporter:9187";
  std::printf("| template | parse per expansion (ns) | parsed once (ns) | speed-up |\n|---|---|---|---|\n");
  for (const auto& [what, text] : cases) {
    double before = NsPerOp(n, [&](int i) {
      data.value = 0.5 + i;
      return ExpandAlertTemplate("Bench", text, data);
    });
    AlertTemplate parsed("Bench", text);
    double after = NsPerOp(n, [&](int i) {
      data.value = 0.5 + i;
      return parsed.Expand(data);
    });
    std::printf("| %s | %.0f | %.0f | %.1fx |\n", what, before, after, before / after);
  }
  return 0;
}
