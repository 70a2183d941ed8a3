#pragma once
// Helpers for the postgres_*_test.cpp files, defined in postgres_support_test.cpp.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runbook/status.h"

namespace runbook::pgtest {

// Runs `collector` on a one-query fixture `tsv` (COPY text format with header) for a server of
// `version_num`; returns its exposition and fills `status` and the sink's `errors`.
std::string CollectTsv(std::string_view collector, int version_num, const std::string& tsv, Status* status,
                       std::vector<std::string>* errors);
// One tab-separated line, with its newline.
std::string TsvLine(std::initializer_list<std::string_view> fields);
// The value of the exposition line starting with `series` (name and labels), if any.
std::optional<double> Sample(const std::string& exposition, std::string_view series);
// The SQL the collector sends to a server whose fixtures are in `fixture_dir`.
std::string SentSql(std::string_view collector, const std::filesystem::path& fixture_dir);

}  // namespace runbook::pgtest
