#include "duration.h"

#include <limits>

namespace runbook::rules {

std::string FormatGoDuration(std::int64_t ms) {
  if (ms == 0) return "0s";
  std::string sign = ms < 0 ? "-" : "";
  std::uint64_t u = ms < 0 ? std::uint64_t(-(ms + 1)) + 1 : std::uint64_t(ms);
  if (u < 1000) return sign + std::to_string(u) + "ms";
  std::uint64_t secs = u / 1000, frac = u % 1000;
  std::string s = std::to_string(secs % 60);
  if (frac) {
    std::string f = std::to_string(frac);
    f = std::string(3 - f.size(), '0') + f;
    while (f.back() == '0') f.pop_back();
    s += "." + f;
  }
  s += "s";
  std::uint64_t mins = secs / 60;
  if (mins == 0) return sign + s;
  s = std::to_string(mins % 60) + "m" + s;
  std::uint64_t hours = mins / 60;
  if (hours == 0) return sign + s;
  return sign + std::to_string(hours) + "h" + s;
}

}  // namespace runbook::rules
