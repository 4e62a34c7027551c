#include "analyze/regions.h"

#include <algorithm>
#include <map>
#include <string_view>

namespace memdx::analyze {
namespace {

using model::RegionCategory;
using proc::Mapping;

bool is_gpu_device(std::string_view path) {
  return path.starts_with("/dev/nvidia") || path.starts_with("/dev/dri/") || path == "/dev/kfd" ||
         path.starts_with("/dev/accel/");
}

bool is_prot_none(const Mapping& m) {
  return !m.readable && !m.writable && !m.executable;
}

// glibc allocates a thread stack as one mapping and turns its lowest page(s) into a PROT_NONE
// guard, so a stack is a private rw anonymous mapping sitting right on top of a small guard.
// malloc arenas have the opposite shape (rw part below a large PROT_NONE reserve).
bool sits_on_guard_page(const std::vector<Mapping>& mappings, size_t index) {
  constexpr uint64_t kMaxGuardBytes = uint64_t{1} << 20;
  if (index == 0) return false;
  const Mapping& below = mappings[index - 1];
  const Mapping& m = mappings[index];
  return below.end == m.start && is_prot_none(below) && below.path.empty() && below.vsz_bytes() <= kMaxGuardBytes &&
         m.readable && m.writable && !m.executable && !m.shared;
}

bool holds_stack_pointer(const Mapping& m, const RegionContext& context) {
  return std::any_of(context.thread_stack_pointers.begin(), context.thread_stack_pointers.end(),
                     [&](uint64_t sp) { return sp >= m.start && sp < m.end; });
}

std::string label_of(const Mapping& m, RegionCategory category) {
  if (category == RegionCategory::kStack && m.path.empty()) return "[thread stack]";
  if (m.path.empty()) return category == RegionCategory::kShmem ? "[shared anon]" : "[anon]";
  return m.deleted ? m.path + " (deleted)" : m.path;
}

}  // namespace

RegionCategory categorize(const std::vector<Mapping>& mappings, size_t index, const RegionContext& context) {
  const Mapping& m = mappings[index];
  const std::string& path = m.path;
  if (is_gpu_device(path)) return RegionCategory::kGpu;
  if (path == "[heap]") return RegionCategory::kHeap;
  if (path == "[stack]" || path.starts_with("[stack:")) return RegionCategory::kStack;
  if (path.starts_with("[anon_shmem")) return RegionCategory::kShmem;
  if (path.starts_with("[") && !path.starts_with("[anon:")) return RegionCategory::kSpecial;
  if (is_prot_none(m)) return RegionCategory::kReserved;
  if (path.starts_with("/memfd:")) return RegionCategory::kMemfd;
  // MAP_SHARED|MAP_ANONYMOUS shows as "/dev/zero (deleted)"; System V segments as "/SYSV<key>".
  if (path.starts_with("/SYSV") || (path == "/dev/zero" && m.shared) || (path.empty() && m.shared)) {
    return RegionCategory::kShmem;
  }
  // A private mapping of /dev/zero is how older programs get anonymous memory.
  if (path == "/dev/zero")
    return m.counters.rss_bytes == 0 && m.counters.swap_bytes == 0 ? RegionCategory::kReserved
                                                                   : RegionCategory::kAnonMmap;
  if (path.starts_with("/")) {
    if (context.tmpfs_devices.count({m.dev_major, m.dev_minor}) != 0) return RegionCategory::kTmpfs;
    return RegionCategory::kFile;
  }
  // Anonymous private memory from here on.
  if (holds_stack_pointer(m, context) || sits_on_guard_page(mappings, index)) return RegionCategory::kStack;
  if (m.counters.rss_bytes == 0 && m.counters.swap_bytes == 0) return RegionCategory::kReserved;
  return RegionCategory::kAnonMmap;
}

RegionBreakdown break_down(const std::vector<Mapping>& mappings, const RegionContext& context, size_t top_count) {
  std::map<RegionCategory, model::RegionTotals> totals;
  std::map<std::string, model::ModuleUsage> modules;
  std::vector<model::Region> regions;
  regions.reserve(mappings.size());

  for (size_t i = 0; i < mappings.size(); ++i) {
    const Mapping& m = mappings[i];
    RegionCategory category = categorize(mappings, i, context);
    model::RegionTotals& t = totals[category];
    t.category = category;
    t.count += 1;
    t.vsz_bytes += m.vsz_bytes();
    t.rss_bytes += m.counters.rss_bytes;
    t.pss_bytes += m.counters.pss_bytes;
    t.swap_bytes += m.counters.swap_bytes;

    if (category == RegionCategory::kFile) {
      model::ModuleUsage& module = modules[m.path];
      module.path = m.path;
      if (m.executable) {
        module.code_vsz_bytes += m.vsz_bytes();
        module.code_rss_bytes += m.counters.rss_bytes;
      } else {
        module.data_vsz_bytes += m.vsz_bytes();
        module.data_rss_bytes += m.counters.rss_bytes;
      }
      module.pss_bytes += m.counters.pss_bytes;
    }
    regions.push_back({m.start, m.end, m.perms(), category, label_of(m, category), m.vsz_bytes(), m.counters.rss_bytes,
                       m.counters.pss_bytes, m.counters.swap_bytes});
  }

  RegionBreakdown breakdown;
  for (RegionCategory category : model::kAllRegionCategories) {
    auto it = totals.find(category);
    if (it != totals.end()) breakdown.totals.push_back(it->second);
  }
  auto by_size = [](const model::Region& a, const model::Region& b) {
    if (a.rss_bytes != b.rss_bytes) return a.rss_bytes > b.rss_bytes;
    return a.vsz_bytes > b.vsz_bytes;
  };
  size_t keep = std::min(top_count, regions.size());
  std::partial_sort(regions.begin(), regions.begin() + static_cast<std::ptrdiff_t>(keep), regions.end(), by_size);
  regions.resize(keep);
  breakdown.top = std::move(regions);

  for (auto& [path, module] : modules) breakdown.modules.push_back(std::move(module));
  std::sort(breakdown.modules.begin(), breakdown.modules.end(), [](const auto& a, const auto& b) {
    uint64_t a_rss = a.code_rss_bytes + a.data_rss_bytes;
    uint64_t b_rss = b.code_rss_bytes + b.data_rss_bytes;
    if (a_rss != b_rss) return a_rss > b_rss;
    return a.path < b.path;
  });
  return breakdown;
}

}  // namespace memdx::analyze
