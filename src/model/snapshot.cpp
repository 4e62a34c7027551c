#include "model/snapshot.h"

#include <cstdio>

#include <nlohmann/json.hpp>

namespace memdx {

const char* category_name(RegionCategory category) {
  switch (category) {
    case RegionCategory::kHeap:
      return "malloc_heap";
    case RegionCategory::kAnonMmap:
      return "anon_mmap";
    case RegionCategory::kStack:
      return "stack";
    case RegionCategory::kFile:
      return "file";
    case RegionCategory::kShmem:
      return "shmem";
    case RegionCategory::kMemfd:
      return "memfd";
    case RegionCategory::kTmpfs:
      return "tmpfs";
    case RegionCategory::kGpu:
      return "gpu_driver";
    case RegionCategory::kReserved:
      return "reserved";
    case RegionCategory::kSpecial:
      return "special";
  }
  return "anon_mmap";
}

const char* category_description(RegionCategory category) {
  switch (category) {
    case RegionCategory::kHeap:
      return "malloc heap (brk)";
    case RegionCategory::kAnonMmap:
      return "anonymous mmap";
    case RegionCategory::kStack:
      return "stacks";
    case RegionCategory::kFile:
      return "file-backed";
    case RegionCategory::kShmem:
      return "shared memory";
    case RegionCategory::kMemfd:
      return "memfd";
    case RegionCategory::kTmpfs:
      return "tmpfs files";
    case RegionCategory::kGpu:
      return "GPU driver";
    case RegionCategory::kReserved:
      return "reserved only";
    case RegionCategory::kSpecial:
      return "vdso/vvar/special";
  }
  return "";
}

std::string ProcessSnapshot::command_line() const {
  if (command.empty()) return "[" + comm + "]";
  std::string line;
  for (const std::string& arg : command) {
    if (!line.empty()) line += ' ';
    line += arg;
  }
  return line;
}

const char* to_string(NoteKind kind) {
  switch (kind) {
    case NoteKind::kReservationOnly:
      return "reservation_only";
    case NoteKind::kSharedHeavy:
      return "shared_heavy";
    case NoteKind::kNearLimit:
      return "near_limit";
    case NoteKind::kSwapInUse:
      return "swap_in_use";
    case NoteKind::kGpuMappings:
      return "gpu_mappings";
    case NoteKind::kPartialAccess:
      return "partial_access";
  }
  return "unknown";
}

const char* to_string(GpuSource source) {
  switch (source) {
    case GpuSource::kNvml:
      return "nvml";
    case GpuSource::kDrmFdinfo:
      return "drm_fdinfo";
  }
  return "unknown";
}

std::optional<uint64_t> ProcessSnapshot::gpu_bytes() const {
  if (!gpu) return std::nullopt;
  uint64_t sum = 0;
  for (const GpuUsage& usage : *gpu) sum += usage.bytes;
  return sum;
}

TreeTotals tree_totals(const InspectReport& report) {
  TreeTotals totals;
  for (const ProcessSnapshot& p : report.processes) {
    if (p.memory.pss_bytes)
      totals.pss_bytes += *p.memory.pss_bytes;
    else if (!p.is_kernel_thread && !p.is_zombie)
      totals.complete = false;
    if (p.memory.uss_bytes) totals.uss_bytes += *p.memory.uss_bytes;
    totals.swap_bytes += p.memory.swap_pss_bytes.value_or(p.memory.swap_bytes);
    totals.threads += p.threads;
    if (p.fds) totals.fds += p.fds->total;
    if (std::optional<uint64_t> gpu = p.gpu_bytes()) totals.gpu_bytes = totals.gpu_bytes.value_or(0) + *gpu;
  }
  return totals;
}

}  // namespace memdx

namespace memdx::model {
namespace {

template <class T>
nlohmann::ordered_json optional_json(const std::optional<T>& value) {
  return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
}

nlohmann::ordered_json memory_json(const MemoryTotals& m) {
  return {
      {"rss_bytes", m.rss_bytes},
      {"rss_anon_bytes", m.rss_anon_bytes},
      {"rss_file_bytes", m.rss_file_bytes},
      {"rss_shmem_bytes", m.rss_shmem_bytes},
      {"pss_bytes", optional_json(m.pss_bytes)},
      {"uss_bytes", optional_json(m.uss_bytes)},
      {"swap_bytes", m.swap_bytes},
      {"swap_pss_bytes", optional_json(m.swap_pss_bytes)},
      {"vsz_bytes", m.vsz_bytes},
      {"peak_rss_bytes", m.peak_rss_bytes},
      {"locked_bytes", m.locked_bytes},
  };
}

nlohmann::ordered_json process_json(const ProcessSnapshot& p) {
  nlohmann::ordered_json regions = nlohmann::ordered_json::array();
  for (const RegionTotals& r : p.regions) {
    regions.push_back({{"category", category_name(r.category)},
                       {"count", r.count},
                       {"vsz_bytes", r.vsz_bytes},
                       {"rss_bytes", r.rss_bytes},
                       {"pss_bytes", r.pss_bytes},
                       {"swap_bytes", r.swap_bytes}});
  }
  nlohmann::ordered_json top = nlohmann::ordered_json::array();
  for (const Region& r : p.top_regions) {
    char range[64];
    std::snprintf(range, sizeof(range), "%llx-%llx", static_cast<unsigned long long>(r.start),
                  static_cast<unsigned long long>(r.end));
    top.push_back({{"address", range},
                   {"perms", r.perms},
                   {"category", category_name(r.category)},
                   {"label", r.label},
                   {"vsz_bytes", r.vsz_bytes},
                   {"rss_bytes", r.rss_bytes},
                   {"pss_bytes", r.pss_bytes},
                   {"swap_bytes", r.swap_bytes}});
  }
  nlohmann::ordered_json modules = nlohmann::ordered_json::array();
  for (const ModuleUsage& m : p.modules) {
    modules.push_back({{"path", m.path},
                       {"code_vsz_bytes", m.code_vsz_bytes},
                       {"code_rss_bytes", m.code_rss_bytes},
                       {"data_vsz_bytes", m.data_vsz_bytes},
                       {"data_rss_bytes", m.data_rss_bytes},
                       {"pss_bytes", m.pss_bytes}});
  }
  nlohmann::ordered_json fds = nullptr;
  if (p.fds) fds = {{"total", p.fds->total}, {"by_type", p.fds->by_type}};
  nlohmann::ordered_json gpu = nullptr;  // null: not measured
  if (p.gpu) {
    gpu = nlohmann::ordered_json::array();
    for (const GpuUsage& usage : *p.gpu) {
      gpu.push_back({{"device", usage.device_id}, {"bytes", usage.bytes}, {"region_bytes", usage.region_bytes}});
    }
  }
  return {
      {"pid", p.pid},
      {"ppid", p.ppid},
      {"comm", p.comm},
      {"command", p.command_line()},
      {"argv", p.command},
      {"state", std::string(1, p.state)},
      {"uid", p.uid},
      {"kernel_thread", p.is_kernel_thread},
      {"threads", p.threads},
      {"children", p.children},
      {"memory", memory_json(p.memory)},
      {"regions_measured", p.regions_measured},
      {"regions", regions},
      {"top_regions", top},
      {"modules", modules},
      {"fds", fds},
      {"gpu_bytes", optional_json(p.gpu_bytes())},
      {"gpu", gpu},
      {"container_pid", optional_json(p.container_pid)},
      {"unreadable", p.unreadable},
  };
}

nlohmann::ordered_json psi_json(const std::optional<PsiSummary>& psi) {
  if (!psi) return nullptr;
  return {{"some_avg10", optional_json(psi->some_avg10)},
          {"some_avg60", optional_json(psi->some_avg60)},
          {"full_avg10", optional_json(psi->full_avg10)},
          {"full_avg60", optional_json(psi->full_avg60)}};
}

nlohmann::ordered_json system_json(const SystemSnapshot& s) {
  nlohmann::ordered_json cgroup = nullptr;
  if (s.cgroup) {
    const CgroupSummary& c = *s.cgroup;
    cgroup = {{"version", c.version},
              {"path", c.path},
              {"memory_current_bytes", optional_json(c.memory_current_bytes)},
              {"memory_max_bytes", optional_json(c.memory_max_bytes)},
              {"memory_high_bytes", optional_json(c.memory_high_bytes)},
              {"oom_events", optional_json(c.oom_events)},
              {"oom_kill_events", optional_json(c.oom_kill_events)},
              {"anon_bytes", optional_json(c.anon_bytes)},
              {"file_bytes", optional_json(c.file_bytes)}};
  }
  return {{"mem_total_bytes", s.mem_total_bytes},
          {"mem_available_bytes", optional_json(s.mem_available_bytes)},
          {"swap_total_bytes", s.swap_total_bytes},
          {"swap_free_bytes", s.swap_free_bytes},
          {"cgroup", cgroup},
          {"psi", {{"system", psi_json(s.psi)}, {"cgroup", psi_json(s.cgroup ? s.cgroup->psi : std::nullopt)}}}};
}

}  // namespace

nlohmann::ordered_json to_json(const InspectReport& report) {
  nlohmann::ordered_json processes = nlohmann::ordered_json::array();
  for (const ProcessSnapshot& p : report.processes) processes.push_back(process_json(p));
  nlohmann::ordered_json notes = nlohmann::ordered_json::array();
  for (const Note& n : report.notes) notes.push_back({{"kind", to_string(n.kind)}, {"pid", n.pid}, {"text", n.text}});
  TreeTotals totals = tree_totals(report);
  nlohmann::ordered_json devices = nlohmann::ordered_json::array();
  for (const GpuDevice& device : report.gpu_devices) {
    devices.push_back({{"id", device.id},
                       {"name", device.name},
                       {"source", to_string(device.source)},
                       {"total_bytes", optional_json(device.total_bytes)},
                       {"used_bytes", optional_json(device.used_bytes)}});
  }
  return {
      {"schema", "memdx.inspect/1"},
      {"tree", report.tree},
      {"processes", processes},
      {"totals",
       {{"pss_bytes", totals.pss_bytes},
        {"uss_bytes", totals.uss_bytes},
        {"swap_bytes", totals.swap_bytes},
        {"threads", totals.threads},
        {"fds", totals.fds},
        {"gpu_bytes", optional_json(totals.gpu_bytes)},
        {"complete", totals.complete}}},
      {"exited_during_read", report.exited_during_read},
      {"system", system_json(report.system)},
      {"gpu", {{"devices", devices}, {"nvml", report.nvml_note.empty() ? "measured" : report.nvml_note}}},
      {"notes", notes},
  };
}

}  // namespace memdx::model
