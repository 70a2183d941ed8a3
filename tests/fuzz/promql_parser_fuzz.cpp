// libFuzzer target: the PromQL parser (rule expressions come from user-written rule files).
// Properties: no crash; an accepted expression formats to text that parses to the same text and
// type; a rejected one has a 1-based position; evaluation of an accepted one stays bounded.

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = pq::Parse(text);
  if (!parsed.expr) {
    if (parsed.error.line < 1 || parsed.error.column < 1 || parsed.error.message.empty()) std::abort();
    return 0;
  }
  std::string formatted = pq::Format(*parsed.expr);
  auto again = pq::Parse(formatted);
  if (!again.expr) std::abort();
  if (pq::Format(*again.expr) != formatted) std::abort();
  if (pq::TypeOf(*again.expr) != pq::TypeOf(*parsed.expr)) std::abort();
  pq::EvalOptions options;
  options.max_samples = 20000;
  pq::EvalInstant(*parsed.expr, Storage(), 200000, options);
  pq::TypeOf(*parsed.expr);
  return 0;
}
