// Parsers for /proc/PID/smaps and /proc/PID/smaps_rollup. All sizes are bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace memdx::proc {

// Page counters common to one smaps entry and to the rollup.
struct SmapsCounters {
  uint64_t size_bytes = 0;  // mapping size (per-entry only; the rollup has none)
  uint64_t rss_bytes = 0;
  uint64_t pss_bytes = 0;
  uint64_t pss_anon_bytes = 0;   // rollup only, Linux >= 5.8
  uint64_t pss_file_bytes = 0;   // rollup only, Linux >= 5.8
  uint64_t pss_shmem_bytes = 0;  // rollup only, Linux >= 5.8
  uint64_t shared_clean_bytes = 0;
  uint64_t shared_dirty_bytes = 0;
  uint64_t private_clean_bytes = 0;
  uint64_t private_dirty_bytes = 0;
  uint64_t anonymous_bytes = 0;
  uint64_t anon_huge_bytes = 0;
  uint64_t swap_bytes = 0;
  uint64_t swap_pss_bytes = 0;
  uint64_t locked_bytes = 0;
  bool has_pss_split = false;  // Pss_Anon/Pss_File/Pss_Shmem were present
  bool has_swap_pss = false;   // SwapPss was present (Linux >= 4.3)

  uint64_t uss_bytes() const { return private_clean_bytes + private_dirty_bytes; }
  void add(const SmapsCounters& other);  // saturates rather than wrapping
};

// One mapping of /proc/PID/smaps (or /proc/PID/maps, with zero counters).
struct Mapping {
  uint64_t start = 0;
  uint64_t end = 0;
  bool readable = false;
  bool writable = false;
  bool executable = false;
  bool shared = false;  // 's' in perms: MAP_SHARED
  uint64_t offset = 0;
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  std::string path;      // file path, "[heap]", "[stack]", "[anon:name]", or empty
  bool deleted = false;  // path carried the kernel's " (deleted)" suffix, which is stripped
  SmapsCounters counters;
  std::string vm_flags;  // "rd wr mr mw me ac", empty on kernels without VmFlags

  uint64_t vsz_bytes() const { return end - start; }
  std::string perms() const;  // "rw-p" as in the file
};

std::vector<Mapping> parse_smaps(std::string_view text);

// smaps_rollup: one set of counters for the whole process.
SmapsCounters parse_smaps_rollup(std::string_view text);

// Sums per-mapping counters: the fallback for kernels older than 4.14 without smaps_rollup.
SmapsCounters sum_counters(const std::vector<Mapping>& mappings);

}  // namespace memdx::proc
