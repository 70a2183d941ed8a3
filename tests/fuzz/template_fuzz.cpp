// libFuzzer target: any alert template text parses or fails, and expands or yields
// `<error expanding template: ...>`, without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "template.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  runbook::rules::TemplateData d;
  d.labels = {{"__name__", "up"}, {"instance", "db1:5432"}, {"job", "postgres"}};
  d.external_labels = {{"monitor", "lab"}};
  d.external_url = "http://prom:9090/prefix";
  d.value = 1234567.5;
  d.query = [](std::string_view) -> std::variant<std::vector<runbook::rules::TemplateSample>, std::string> {
    return std::vector<runbook::rules::TemplateSample>{{{{"instance", "a"}}, 1}};
  };
  (void)runbook::rules::CheckAlertTemplate("Fuzz", text);
  (void)runbook::rules::ExpandAlertTemplate("Fuzz", text, d);
  return 0;
}
