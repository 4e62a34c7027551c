#include "model/format.h"

#include <fmt/format.h>

namespace memdx::model {

std::string format_bytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1000) return fmt::format("{} B", bytes);
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  // Three significant digits. The unit is chosen on the value as it will be printed, so that
  // rounding never yields four digits ("1000 KiB" reads as "0.98 MiB") or "10.00".
  while (unit + 1 < std::size(kUnits) && value >= 999.5) {
    value /= 1024.0;
    ++unit;
  }
  if (value < 9.995) return fmt::format("{:.2f} {}", value, kUnits[unit]);
  if (value < 99.95) return fmt::format("{:.1f} {}", value, kUnits[unit]);
  return fmt::format("{:.0f} {}", value, kUnits[unit]);
}

std::string joined(const std::vector<std::string>& words, std::string_view separator) {
  std::string text;
  for (const std::string& word : words) {
    if (!text.empty()) text += separator;
    text += word;
  }
  return text;
}

std::string source_place(const std::string& file, int line) {
  if (file.empty()) return "";
  return file.substr(file.rfind('/') + 1) + ":" + std::to_string(line);
}

std::string site_label(const std::string& function, const std::string& file, int line) {
  std::string place = source_place(file, line);
  return place.empty() ? function : fmt::format("{} ({})", function, place);
}

}  // namespace memdx::model
