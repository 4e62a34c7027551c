// "Will it fit?": the memory this process can still take before the kernel reclaims, throttles or
// kills it, checked before a big allocation (loading a model, growing a cache) rather than after.
//
// The room is the smallest of three: the system's MemAvailable, the own memory cgroup's hard limit
// (v2 memory.max, v1 memory.limit_in_bytes) and its throttling threshold (v2 memory.high), each
// minus what the cgroup already uses. The cgroup's inactive page cache counts as room: the kernel
// drops it before it fails a charge, as MemAvailable counts it for the system.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "memdx/export.h"

namespace memdx {

// The figures preflight() works from. All in bytes.
struct MemoryLimits {
  uint64_t total_bytes = 0;      // MemTotal: the machine's RAM
  uint64_t available_bytes = 0;  // MemAvailable (MemFree on kernels before 3.14, which lack it)
  uint64_t swap_total_bytes = 0;
  uint64_t swap_free_bytes = 0;
  // The memory cgroup whose limits bind the process: its own, or the ancestor (a systemd slice)
  // whose memory.max or memory.high leaves the least room. A limit of "max" (or cgroup v1's
  // "unlimited" sentinel) reads as nullopt.
  int cgroup_version = 0;                            // 2, 1, or 0 when memdx found no memory cgroup
  std::optional<uint64_t> cgroup_max_bytes;          // v2 memory.max, v1 memory.limit_in_bytes
  std::optional<uint64_t> cgroup_high_bytes;         // v2 memory.high (throttling above it; no v1 twin)
  std::optional<uint64_t> cgroup_usage_bytes;        // v2 memory.current, v1 memory.usage_in_bytes
  std::optional<uint64_t> cgroup_reclaimable_bytes;  // its inactive page cache (memory.stat)
  std::string cgroup_path;  // e.g. "/user.slice" or "/user.slice/app.service"; "" without a cgroup
};

// The limits that apply to the calling process now: /proc/meminfo and its memory cgroup's files.
// Safe to call from any thread. Throws memdx::Error kSystem when /proc/meminfo cannot be read;
// unreadable cgroup files only leave their fields empty.
MEMDX_API MemoryLimits read_memory_limits();

struct PreflightRequest {
  uint64_t needed_bytes = 0;  // what the caller is about to allocate
  // The machine (or the cgroup's limit, when smaller) must hold at least this much in all: below it
  // the work cannot run however much is freed.
  std::optional<uint64_t> min_total_bytes;
  // Below this total it runs, with a warning (a model's "16 GiB recommended").
  std::optional<uint64_t> recommended_total_bytes;
  // What must still be free after needed_bytes is taken (room for the rest of the system).
  std::optional<uint64_t> min_free_bytes;
};

// Which limit decided the answer.
enum class PreflightBinding {
  kMemAvailable,  // the system's available memory
  kCgroupMax,     // the cgroup's hard limit: beyond it the kernel reclaims, then OOM-kills
  kCgroupHigh,    // the cgroup's memory.high: beyond it the kernel throttles the cgroup
  kMemTotal,      // the machine itself is too small: freeing memory cannot help
};

// "MemAvailable", "memory.max", "memory.high", "MemTotal".
MEMDX_API const char* to_string(PreflightBinding binding);

enum class PreflightWarningKind {
  kBelowRecommendedTotal,  // the total (machine or cgroup limit) is under recommended_total_bytes
  kFitsOnlyWithSwap,       // short of RAM, but free swap would cover it: expect heavy paging
  kCrossesMemoryHigh,      // fits under memory.max but not under memory.high: it would be throttled
  kLittleRoomLeft,         // fits, leaving under 5 % of the total (machine, or cgroup limit when lower)
};

struct PreflightWarning {
  PreflightWarningKind kind = PreflightWarningKind::kLittleRoomLeft;
  std::string message;  // one line for people, with the figures in binary units
};

struct PreflightResult {
  bool can_proceed = false;  // needed (plus min_free) fits in usable and min_total holds
  std::vector<PreflightWarning> warnings;
  // One sentence a user can act on: what is short, by how much, and what to do; or, when it fits,
  // how much room remains.
  std::string guidance;
  PreflightBinding binding = PreflightBinding::kMemAvailable;
  uint64_t usable_bytes = 0;     // the smallest room of the three (see the top of this header)
  uint64_t shortfall_bytes = 0;  // 0 when can_proceed; otherwise what must be freed or added
  MemoryLimits limits;           // the figures the answer was computed from
};

// Checks `request` against the limits of the calling process now (read_memory_limits()).
// Throws memdx::Error kSystem when /proc/meminfo cannot be read.
MEMDX_API PreflightResult preflight(const PreflightRequest& request);
// The same check against given limits: a pure function, no file read.
MEMDX_API PreflightResult preflight(const PreflightRequest& request, const MemoryLimits& limits);

}  // namespace memdx
