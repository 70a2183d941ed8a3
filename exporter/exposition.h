#pragma once
// Prometheus text exposition format 0.0.4, written straight into a std::string (no ostream, no
// locale, one allocation per growing buffer). The output is byte for byte what
// prometheus::TextSerializer 1.0 writes, with one difference that the spec asks for: HELP text
// escapes '\' and line feeds (the serializer writes them raw; no help text of ours has either).
// Values use "%.16g" formatting (std::to_chars, general, precision 16), "Nan", "+Inf", "-Inf".
//
// Pure functions; thread-safe.

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace runbook {

// "# HELP name help\n" (when help is not empty) and "# TYPE name type\n".
void AppendFamilyHeader(std::string& out, const prometheus::MetricFamily& family);
// The sample lines of the family.
void AppendFamilySamples(std::string& out, const prometheus::MetricFamily& family);
// A sample value as the format writes it.
void AppendSampleValue(std::string& out, double value);
// Every family, header then samples.
std::string RenderExposition(const std::vector<prometheus::MetricFamily>& families);

}  // namespace runbook
