#pragma once
// Prometheus text exposition format 0.0.4, written straight into a std::string (no ostream, no
// locale, one allocation per growing buffer). The output is byte for byte what
// prometheus::TextSerializer 1.0 writes, with one difference that the spec asks for: HELP text
// escapes '\' and line feeds (the serializer writes them raw; no help text of ours has either).
// Values use "%.16g" formatting (std::to_chars, general, precision 16), "Nan", "+Inf", "-Inf".
//
// Pure functions; thread-safe.

#include <prometheus/metric_family.h>

#include "runbook/metric_sink.h"

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
// A summary's quantile label value, as client_golang writes it: the shortest form ("99.9").
void AppendQuantile(std::string& out, double quantile);

// The same for the sink's families. A summary's series is written as client_golang writes it:
// the quantiles (label `quantile` last), then _sum, then _count. Families of one name that follow
// each other (MergeFamilies) share one header.
void AppendFamilyHeader(std::string& out, const SampleFamily& family);
void AppendFamilySamples(std::string& out, const SampleFamily& family);
std::string RenderExposition(const std::vector<SampleFamily>& families);

}  // namespace runbook
