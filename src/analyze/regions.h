// Sorting a process's mappings into the categories a user reasons about: malloc heap, anonymous
// mmap, stacks, file-backed modules, shared memory, GPU driver mappings, reservations.
#pragma once

#include <cstdint>
#include <set>
#include <utility>
#include <vector>

#include "model/snapshot.h"
#include "proc/smaps.h"

namespace memdx::analyze {

struct RegionContext {
  std::vector<uint64_t> thread_stack_pointers;            // from /proc/PID/task/*/syscall
  std::set<std::pair<uint32_t, uint32_t>> tmpfs_devices;  // (major, minor) of tmpfs mounts
};

// The category of mappings[index]; its neighbours are consulted to recognise the guard page
// glibc places just below every thread stack.
model::RegionCategory categorize(const std::vector<proc::Mapping>& mappings, size_t index,
                                 const RegionContext& context);

struct RegionBreakdown {
  std::vector<model::RegionTotals> totals;  // one per category present, in category order
  std::vector<model::Region> top;           // largest RSS first, then largest VSZ
  std::vector<model::ModuleUsage> modules;  // file-backed mappings grouped by path
};

RegionBreakdown break_down(const std::vector<proc::Mapping>& mappings, const RegionContext& context, size_t top_count);

}  // namespace memdx::analyze
