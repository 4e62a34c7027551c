#include "analyze/wording.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "model/format.h"

namespace memdx::analyze {

uint64_t to_bytes(double value) {
  return static_cast<uint64_t>(std::llround(std::max(0.0, value)));
}

std::string level_text(double value, Unit unit) {
  if (unit == Unit::kBytes) return model::format_bytes(to_bytes(value));
  return fmt::format("{:.0f}", value);
}

std::string rate_text(double value_per_s, Unit unit) {
  if (unit == Unit::kBytes) return model::format_bytes(to_bytes(value_per_s)) + "/s";
  return fmt::format("{:.3g} {}/s", value_per_s, to_string(unit));
}

std::string p_text(double p) {
  return p < 0.001 ? "p<0.001" : fmt::format("p={:.2g}", p);
}

std::string duration_text(double seconds) {
  if (seconds < 90) return fmt::format("{:.0f} s", seconds);
  if (seconds < 90 * 60) return fmt::format("{:.0f} min", seconds / 60);
  if (seconds < 48 * 3600) return fmt::format("{:.1f} h", seconds / 3600);
  return fmt::format("{:.1f} days", seconds / 86400);
}

std::string span_text(double seconds) {
  return seconds < 90 ? fmt::format("{:.1f} s", seconds) : duration_text(seconds);
}

}  // namespace memdx::analyze
