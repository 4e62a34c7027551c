#include "analyze/notes.h"

#include <fmt/format.h>

#include <algorithm>

#include "model/format.h"

namespace memdx::analyze {
namespace {

using model::format_bytes;
using model::Note;
using model::ProcessSnapshot;
using model::RegionCategory;

const model::RegionTotals* find_category(const ProcessSnapshot& p, RegionCategory category) {
  for (const auto& totals : p.regions) {
    if (totals.category == category) return &totals;
  }
  return nullptr;
}

void reservation_note(const ProcessSnapshot& p, const NoteThresholds& t, std::vector<Note>& notes) {
  const auto& m = p.memory;
  if (m.vsz_bytes < t.reservation_min_vsz_bytes) return;
  if (static_cast<double>(m.vsz_bytes) < t.reservation_vsz_to_rss * static_cast<double>(m.rss_bytes)) return;
  uint64_t not_resident = m.vsz_bytes - std::min(m.vsz_bytes, m.rss_bytes);
  std::string largest;
  if (const auto* reserved = find_category(p, RegionCategory::kReserved)) {
    largest = fmt::format(" ({} of it in {} reserved-only region{})", format_bytes(reserved->vsz_bytes),
                          reserved->count, reserved->count == 1 ? "" : "s");
  }
  notes.push_back(
      {NoteKind::kReservationOnly, p.pid,
       fmt::format("VSZ {} is {:.0f}x RSS {}: {} is address space reserved but not resident{}. "
                   "Reserving address space costs no memory until pages are touched "
                   "(allocators, runtimes and GPU drivers do it up front), so this is harmless; "
                   "judge memory use by RSS and PSS.",
                   format_bytes(m.vsz_bytes),
                   static_cast<double>(m.vsz_bytes) / static_cast<double>(std::max<uint64_t>(m.rss_bytes, 1)),
                   format_bytes(m.rss_bytes), format_bytes(not_resident), largest)});
}

void shared_note(const ProcessSnapshot& p, const NoteThresholds& t, std::vector<Note>& notes) {
  const auto& m = p.memory;
  if (!m.pss_bytes) return;
  uint64_t pss = *m.pss_bytes;
  if (m.rss_bytes < pss + t.shared_min_bytes) return;
  if (static_cast<double>(m.rss_bytes) < t.shared_rss_to_pss * static_cast<double>(pss)) return;
  notes.push_back({NoteKind::kSharedHeavy, p.pid,
                   fmt::format("RSS {} includes {} of pages shared with other processes; this process's "
                               "fair share (PSS) is {}. Add up PSS, not RSS, across processes, or shared "
                               "pages are counted once per process.",
                               format_bytes(m.rss_bytes), format_bytes(m.rss_bytes - pss), format_bytes(pss))});
}

void swap_note(const ProcessSnapshot& p, std::vector<Note>& notes) {
  if (p.memory.swap_bytes == 0) return;
  notes.push_back({NoteKind::kSwapInUse, p.pid,
                   fmt::format("{} of this process is swapped out: RSS {} understates its memory by that much, "
                               "and touching it again will be slow.",
                               format_bytes(p.memory.swap_bytes), format_bytes(p.memory.rss_bytes))});
}

void gpu_note(const ProcessSnapshot& p, std::vector<Note>& notes) {
  const auto* gpu = find_category(p, RegionCategory::kGpu);
  if (gpu == nullptr) return;
  std::string behind;
  if (std::optional<uint64_t> bytes = p.gpu_bytes()) {
    std::string devices;
    for (const model::GpuUsage& usage : *p.gpu) devices += (devices.empty() ? "" : ", ") + usage.device_id;
    behind = *bytes > 0 ? fmt::format("; the driver counts {} of GPU memory for this process (on {})",
                                      format_bytes(*bytes), devices)
                        : std::string("; the driver counts no GPU memory for this process");
  } else {
    behind = "; its GPU memory could not be read here (see GPU below)";
  }
  notes.push_back({NoteKind::kGpuMappings, p.pid,
                   fmt::format("{} GPU driver mapping{} span {} of address space ({} resident in host RAM). "
                               "That VSZ is the driver's window onto device and unified memory, not GPU "
                               "memory use{}.",
                               gpu->count, gpu->count == 1 ? "" : "s", format_bytes(gpu->vsz_bytes),
                               format_bytes(gpu->rss_bytes), behind)});
}

void access_note(const ProcessSnapshot& p, bool reader_is_root, std::vector<Note>& notes) {
  if (p.unreadable.empty()) return;
  std::string files;
  for (const std::string& file : p.unreadable) files += (files.empty() ? "" : ", ") + file;
  std::string remedy = reader_is_root ? "The kernel refused even root: the process is in another user namespace or "
                                        "protected by a security module."
                                      : "Run memdx as root or with CAP_SYS_PTRACE to see PSS, regions and fds.";
  notes.push_back({NoteKind::kPartialAccess, p.pid,
                   fmt::format("Could not read {} of pid {} (owned by uid {}): only /proc/{}/status figures are "
                               "shown. {}",
                               files, p.pid, p.uid, p.pid, remedy)});
}

void limit_notes(const model::InspectReport& report, const NoteThresholds& t, std::vector<Note>& notes) {
  const model::SystemSnapshot& s = report.system;
  pid_t pid = report.processes.empty() ? 0 : report.processes.front().pid;
  if (s.cgroup && s.cgroup->memory_max_bytes && s.cgroup->memory_current_bytes) {
    uint64_t max = *s.cgroup->memory_max_bytes;
    uint64_t current = *s.cgroup->memory_current_bytes;
    if (max > 0 && static_cast<double>(current) >= (1.0 - t.near_limit_fraction) * static_cast<double>(max)) {
      notes.push_back({NoteKind::kNearLimit, pid,
                       fmt::format("The cgroup {} uses {} of its {} limit ({:.0f}%): the kernel will reclaim "
                                   "hard and then OOM-kill inside it when it reaches the limit.",
                                   s.cgroup->path, format_bytes(current), format_bytes(max),
                                   100.0 * static_cast<double>(current) / static_cast<double>(max))});
    }
  }
  if (s.mem_available_bytes && s.mem_total_bytes > 0 &&
      static_cast<double>(*s.mem_available_bytes) < t.low_available_fraction * static_cast<double>(s.mem_total_bytes)) {
    notes.push_back(
        {NoteKind::kNearLimit, 0,
         fmt::format("The system has only {} available of {} ({:.0f}%): new allocations will "
                     "trigger reclaim, swapping or the OOM killer.",
                     format_bytes(*s.mem_available_bytes), format_bytes(s.mem_total_bytes),
                     100.0 * static_cast<double>(*s.mem_available_bytes) / static_cast<double>(s.mem_total_bytes))});
  }
}

}  // namespace

std::vector<Note> notes_for(const model::InspectReport& report, const NoteThresholds& thresholds) {
  std::vector<Note> notes;
  for (const ProcessSnapshot& p : report.processes) {
    reservation_note(p, thresholds, notes);
    shared_note(p, thresholds, notes);
    swap_note(p, notes);
    gpu_note(p, notes);
    access_note(p, report.reader_is_root, notes);
  }
  limit_notes(report, thresholds, notes);
  return notes;
}

}  // namespace memdx::analyze
