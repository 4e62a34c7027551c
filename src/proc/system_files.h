// Parsers for system-wide files: /proc/meminfo and the PSI files (/proc/pressure/memory,
// <cgroup>/memory.pressure).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace memdx::proc {

struct MemInfo {
  uint64_t mem_total_bytes = 0;
  std::optional<uint64_t> mem_available_bytes;  // absent before Linux 3.14
  uint64_t mem_free_bytes = 0;
  uint64_t swap_total_bytes = 0;
  uint64_t swap_free_bytes = 0;
  uint64_t shmem_bytes = 0;
  uint64_t cached_bytes = 0;
};
MemInfo parse_meminfo(std::string_view text);

// One PSI line: share of wall time in which some (or all) tasks stalled on memory, in percent.
struct PsiLine {
  double avg10 = 0;
  double avg60 = 0;
  double avg300 = 0;
  uint64_t total_us = 0;
};
struct Psi {
  std::optional<PsiLine> some;
  std::optional<PsiLine> full;  // absent for the CPU controller and on some kernels
};
Psi parse_psi(std::string_view text);

}  // namespace memdx::proc
