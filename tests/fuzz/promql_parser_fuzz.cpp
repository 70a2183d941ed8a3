// libFuzzer target: the PromQL parser (rule expressions come from user-written rule files).
// Properties: no crash or sanitizer report; a rejected expression has a 1-based position; an
// accepted one formats to text that parses to an expression of the same type and result;
// evaluation stays bounded.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runbook/promql.h"

namespace pq = runbook::promql;

namespace {

const pq::MemoryStorage& Storage() {
  static const pq::MemoryStorage* storage = [] {
    auto* s = new pq::MemoryStorage();
    for (int i = 0; i < 20; ++i) {
      s->Append({{"__name__", "foo"}, {"a", "x"}, {"le", "0.5"}}, i * 15000, i);
      s->Append({{"__name__", "foo"}, {"a", "y"}, {"le", "+Inf"}}, i * 15000, 2.0 * i);
      s->Append({{"__name__", "bar"}, {"a", "x"}}, i * 15000, i % 3 == 0 ? pq::StaleMarker() : 100.0 - i);
    }
    return s;
  }();
  return *storage;
}

bool SameNumber(double x, double y) {
  return (std::isnan(x) && std::isnan(y)) || x == y;
}

bool SameValue(const pq::Value& a, const pq::Value& b) {
  if (a.type != b.type || a.string != b.string || !SameNumber(a.scalar, b.scalar)) return false;
  if (a.vector.size() != b.vector.size() || a.matrix.size() != b.matrix.size()) return false;
  for (size_t i = 0; i < a.vector.size(); ++i) {
    if (a.vector[i].metric != b.vector[i].metric || !SameNumber(a.vector[i].v, b.vector[i].v)) return false;
  }
  for (size_t i = 0; i < a.matrix.size(); ++i) {
    if (a.matrix[i].metric != b.matrix[i].metric || a.matrix[i].points.size() != b.matrix[i].points.size()) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = pq::Parse(text);
  if (!parsed.expr) {
    if (parsed.error.line < 1 || parsed.error.column < 1 || parsed.error.message.empty()) std::abort();
    return 0;
  }
  // The formatted text must mean the same. (It need not format identically: like Prometheus'
  // String(), a unary minus over `+Inf ^ x` prints as `-+Inf ^ x`, which gains a `+` per round.)
  std::string formatted = pq::Format(*parsed.expr);
  auto again = pq::Parse(formatted);
  if (!again.expr) std::abort();
  if (pq::TypeOf(*again.expr) != pq::TypeOf(*parsed.expr)) std::abort();
  pq::EvalOptions options;
  options.max_samples = 20000;
  auto a = pq::EvalInstant(*parsed.expr, Storage(), 200000, options);
  auto b = pq::EvalInstant(*again.expr, Storage(), 200000, options);
  if (a.error.has_value() != b.error.has_value()) std::abort();
  if (!a.error && !SameValue(a.value, b.value)) std::abort();
  return 0;
}
