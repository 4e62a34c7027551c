#include "proc/system_files.h"

#include <charconv>

#include "proc/kv.h"

namespace memdx::proc {

MemInfo parse_meminfo(std::string_view text) {
  MemInfo info;
  for (std::string_view line : split_lines(text)) {
    auto kv = split_key_value(line);
    if (!kv) continue;
    uint64_t bytes = parse_kb_value(kv->value).value_or(0);
    if (kv->key == "MemTotal")
      info.mem_total_bytes = bytes;
    else if (kv->key == "MemAvailable")
      info.mem_available_bytes = bytes;
    else if (kv->key == "MemFree")
      info.mem_free_bytes = bytes;
    else if (kv->key == "SwapTotal")
      info.swap_total_bytes = bytes;
    else if (kv->key == "SwapFree")
      info.swap_free_bytes = bytes;
    else if (kv->key == "Shmem")
      info.shmem_bytes = bytes;
    else if (kv->key == "Cached")
      info.cached_bytes = bytes;
  }
  return info;
}

namespace {

std::optional<PsiLine> parse_psi_fields(std::string_view rest) {
  PsiLine line;
  bool any = false;
  size_t pos = 0;
  while (pos < rest.size()) {
    size_t start = rest.find_first_not_of(' ', pos);
    if (start == std::string_view::npos) break;
    size_t end = rest.find(' ', start);
    if (end == std::string_view::npos) end = rest.size();
    std::string_view word = rest.substr(start, end - start);
    pos = end;
    size_t eq = word.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = word.substr(0, eq);
    std::string_view value = word.substr(eq + 1);
    if (key == "total") {
      line.total_us = parse_u64(value).value_or(0);
      any = true;
      continue;
    }
    double number = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
    if (ec != std::errc()) continue;
    if (key == "avg10")
      line.avg10 = number;
    else if (key == "avg60")
      line.avg60 = number;
    else if (key == "avg300")
      line.avg300 = number;
    else
      continue;
    any = true;
  }
  if (!any) return std::nullopt;
  return line;
}

}  // namespace

Psi parse_psi(std::string_view text) {
  Psi psi;
  for (std::string_view line : split_lines(text)) {
    if (line.starts_with("some "))
      psi.some = parse_psi_fields(line.substr(5));
    else if (line.starts_with("full "))
      psi.full = parse_psi_fields(line.substr(5));
  }
  return psi;
}

}  // namespace memdx::proc
