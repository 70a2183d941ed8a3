#pragma once
// `runbook_exporter check rules FILE...` and `runbook_exporter test rules FILE...`: promtool's
// commands with its output and exit codes (0 success, 1 failure).

#include <ostream>
#include <string>
#include <vector>

namespace runbook::rules {

int CheckRulesCommand(const std::vector<std::string>& files, std::ostream& out, std::ostream& err);
int TestRulesCommand(const std::vector<std::string>& files, std::ostream& out, std::ostream& err);

// Dispatches `check rules ...` / `test rules ...` (argv after the program name); returns -1 when
// the arguments are not one of these commands.
int RunRulesCommand(int argc, char** argv);

}  // namespace runbook::rules
