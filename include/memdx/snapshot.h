// What one memory snapshot of a process (or a process tree) holds: the figures behind
// `memdx inspect`, and memdx::inspect() that takes them. All sizes are bytes. A value that could
// not be measured is absent (std::nullopt), never zero.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "memdx/export.h"

namespace memdx {

struct MemoryTotals {
  uint64_t rss_bytes = 0;
  uint64_t rss_anon_bytes = 0;
  uint64_t rss_file_bytes = 0;
  uint64_t rss_shmem_bytes = 0;
  std::optional<uint64_t> pss_bytes;  // needs smaps access
  std::optional<uint64_t> uss_bytes;  // private clean + private dirty
  uint64_t swap_bytes = 0;
  std::optional<uint64_t> swap_pss_bytes;
  uint64_t vsz_bytes = 0;
  uint64_t peak_rss_bytes = 0;  // VmHWM
  uint64_t locked_bytes = 0;
};

// Where a mapping's memory belongs. The names are part of the JSON contract.
enum class RegionCategory {
  kHeap,      // the brk heap: "[heap]"
  kAnonMmap,  // private anonymous mappings: malloc arenas, big allocations, runtime heaps
  kStack,     // the main stack and thread stacks
  kFile,      // file-backed code and data of executables, libraries and mapped files
  kShmem,     // shared anonymous memory, System V shm
  kMemfd,     // memfd_create() mappings
  kTmpfs,     // files on tmpfs (/dev/shm, /run, ...)
  kGpu,       // GPU and accelerator driver mappings: /dev/nvidia*, /dev/dri/*, /dev/kfd
  kReserved,  // PROT_NONE and never-touched anonymous reservations
  kSpecial,   // [vdso], [vvar], [vsyscall] and other kernel-provided mappings
};
inline constexpr RegionCategory kAllRegionCategories[] = {
    RegionCategory::kHeap,     RegionCategory::kAnonMmap, RegionCategory::kStack, RegionCategory::kFile,
    RegionCategory::kShmem,    RegionCategory::kMemfd,    RegionCategory::kTmpfs, RegionCategory::kGpu,
    RegionCategory::kReserved, RegionCategory::kSpecial};
MEMDX_API const char* category_name(RegionCategory category);         // "malloc_heap", ...
MEMDX_API const char* category_description(RegionCategory category);  // "malloc heap (brk)", ...

struct RegionTotals {
  RegionCategory category = RegionCategory::kAnonMmap;
  uint32_t count = 0;
  uint64_t vsz_bytes = 0;
  uint64_t rss_bytes = 0;
  uint64_t pss_bytes = 0;
  uint64_t swap_bytes = 0;
};

// One mapping, kept for the "top regions" list.
struct Region {
  uint64_t start = 0;
  uint64_t end = 0;
  std::string perms;
  RegionCategory category = RegionCategory::kAnonMmap;
  std::string label;  // path, "[heap]", "[anon:name]", "thread stack", ...
  uint64_t vsz_bytes = 0;
  uint64_t rss_bytes = 0;
  uint64_t pss_bytes = 0;
  uint64_t swap_bytes = 0;
};

// File-backed memory of one module (executable, library or mapped file), code vs data.
struct ModuleUsage {
  std::string path;
  uint64_t code_vsz_bytes = 0;
  uint64_t code_rss_bytes = 0;
  uint64_t data_vsz_bytes = 0;
  uint64_t data_rss_bytes = 0;
  uint64_t pss_bytes = 0;
};

struct FdSummary {
  uint32_t total = 0;
  std::map<std::string, uint32_t> by_type;  // only types with a non-zero count
};

// Where a GPU's figures come from: NVIDIA's management library, or the DRM fdinfo every other
// driver writes (amdgpu, i915, xe, msm, ...). The names are part of the JSON contract.
enum class GpuSource { kNvml, kDrmFdinfo };
MEMDX_API const char* to_string(GpuSource source);  // "nvml", "drm_fdinfo"

struct GpuDevice {
  std::string id;    // "nvidia0"; "amdgpu 0000:03:00.0" (driver and PCI slot) for a DRM device
  std::string name;  // "NVIDIA H200"; the id for a DRM device
  GpuSource source = GpuSource::kNvml;
  std::optional<uint64_t> total_bytes;
  std::optional<uint64_t> used_bytes;  // by every process, memdx's targets or not
};

// GPU memory of one process on one device: what its contexts hold there, as the driver counts it
// (device memory, and for DRM devices the GTT/system regions an integrated GPU lives in too).
struct GpuUsage {
  std::string device_id;
  uint64_t bytes = 0;
  std::map<std::string, uint64_t> region_bytes;  // DRM regions ("vram", "gtt", "system0", ...)
};

struct MEMDX_API ProcessSnapshot {
  pid_t pid = 0;
  pid_t ppid = 0;
  std::string comm;
  std::vector<std::string> command;  // argv; empty for kernel threads and zombies
  char state = '?';
  uid_t uid = 0;
  bool is_kernel_thread = false;
  bool is_zombie = false;
  uint32_t threads = 0;
  std::vector<pid_t> children;
  MemoryTotals memory;
  bool regions_measured = false;        // false when smaps could not be read
  std::vector<RegionTotals> regions;    // one per category present
  std::vector<Region> top_regions;      // largest by RSS, then VSZ
  std::vector<ModuleUsage> modules;     // file-backed, largest RSS first
  std::optional<FdSummary> fds;         // nullopt when /proc/PID/fd was not readable
  std::vector<std::string> unreadable;  // files that could not be read, e.g. "smaps"
  // Its pid inside its container (the last of NSpid) when that differs from `pid`.
  std::optional<pid_t> container_pid;
  // GPU memory per device; nullopt when nothing measures it (no NVML, no DRM client among its
  // fds), an empty list when measured and none.
  std::optional<std::vector<GpuUsage>> gpu;
  std::string command_line() const;           // argv joined by spaces, or "[comm]"
  std::optional<uint64_t> gpu_bytes() const;  // over every device; nullopt when not measured
};

struct PsiSummary {
  std::optional<double> some_avg10;
  std::optional<double> some_avg60;
  std::optional<double> full_avg10;
  std::optional<double> full_avg60;
};

struct CgroupSummary {
  int version = 0;
  std::string path;
  std::optional<uint64_t> memory_current_bytes;
  std::optional<uint64_t> memory_max_bytes;   // nullopt: unlimited
  std::optional<uint64_t> memory_high_bytes;  // nullopt: unlimited or not applicable
  std::optional<uint64_t> oom_events;
  std::optional<uint64_t> oom_kill_events;
  std::optional<uint64_t> anon_bytes;
  std::optional<uint64_t> file_bytes;
  std::optional<PsiSummary> psi;
};

struct SystemSnapshot {
  uint64_t mem_total_bytes = 0;
  std::optional<uint64_t> mem_available_bytes;
  uint64_t swap_total_bytes = 0;
  uint64_t swap_free_bytes = 0;
  std::optional<PsiSummary> psi;
  std::optional<CgroupSummary> cgroup;  // of the first inspected process
};

// What a note of `memdx inspect` explains (its JSON name: to_string).
enum class NoteKind {
  kReservationOnly,  // reservation_only: VSZ far above RSS, address space reserved, not used
  kSharedHeavy,      // shared_heavy: RSS counts pages shared with other processes (PSS is lower)
  kNearLimit,        // near_limit: the cgroup or the system is close to its memory limit
  kSwapInUse,        // swap_in_use: part of the process is swapped out
  kGpuMappings,      // gpu_mappings: GPU driver mappings, whose memory is the device's
  kPartialAccess,    // partial_access: some files could not be read (another user's process)
};
MEMDX_API const char* to_string(NoteKind kind);

struct Note {
  NoteKind kind = NoteKind::kReservationOnly;
  pid_t pid = 0;  // 0 for notes about the system or the cgroup
  std::string text;
};

struct InspectReport {
  bool tree = false;
  std::vector<ProcessSnapshot> processes;  // the root first, then descendants in tree order
  SystemSnapshot system;
  std::vector<Note> notes;
  std::vector<pid_t> exited_during_read;  // descendants that exited before they could be read
  bool reader_is_root = false;            // memdx ran as root: a denied read is then not about uids
  std::vector<GpuDevice> gpu_devices;     // NVML's devices, and the DRM devices the processes use
  // Why GPU memory is not measured through NVML ("libnvidia-ml.so.1 not found: ..."); empty when it is.
  std::string nvml_note;
};

// Tree totals: PSS and USS add up across processes; RSS never does.
struct TreeTotals {
  uint64_t pss_bytes = 0;
  uint64_t uss_bytes = 0;
  uint64_t swap_bytes = 0;
  uint32_t threads = 0;
  uint32_t fds = 0;
  std::optional<uint64_t> gpu_bytes;  // over the processes whose GPU memory is measured
  bool complete = true;               // false when a process's PSS could not be read
};
MEMDX_API TreeTotals tree_totals(const InspectReport& report);

struct InspectOptions {
  bool tree = false;        // the process and every descendant, parents before children
  size_t top_regions = 10;  // the largest mappings kept per process (ProcessSnapshot::top_regions)
};

// One snapshot of `pid` (and with options.tree its descendants), the system's memory and pressure,
// its memory cgroup, and the notes `memdx inspect` prints. Reads /proc and /sys only; the process
// is not stopped or altered. Files another user's process keeps from memdx are listed in each
// ProcessSnapshot::unreadable and the rest is returned; a descendant that exits while it is read
// is listed in exited_during_read. Safe to call from any thread.
// Throws memdx::Error: kNoSuchProcess (no such pid, or it exited while read), kPermissionDenied,
// kInvalidArgument (pid <= 0), kSystem (anything else, said in what()).
MEMDX_API InspectReport inspect(pid_t pid, const InspectOptions& options = {});

}  // namespace memdx
