// libFuzzer target: the rule-file loader must reject or accept any input without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runbook/rules.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto r =
      runbook::rules::ParseRuleFile(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.yml");
  if (r.ok()) (void)runbook::rules::DuplicateRulesLint(r.groups);
  return 0;
}
