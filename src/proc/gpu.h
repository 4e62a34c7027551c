// GPU memory per device and per process, from whichever source the machine has: NVML for NVIDIA
// GPUs (proc/nvml.h), DRM fdinfo for every other driver (proc/gpu_drm.h). One probe per command
// or per monitor; refresh() once per tick asks NVML about every process at once.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proc/fds.h"
#include "proc/nvml.h"
#include "proc/procfs.h"

namespace memdx::proc {

enum class GpuSource : uint8_t { kNvml, kDrmFdinfo };

struct GpuDeviceReading {
  std::string id;    // "nvidia0"; "amdgpu 0000:03:00.0" (driver and PCI slot) for DRM devices
  std::string name;  // "NVIDIA H200"; the driver and slot for DRM devices
  GpuSource source = GpuSource::kNvml;
  std::optional<uint64_t> total_bytes;
  std::optional<uint64_t> used_bytes;
};

// How recordings and verdicts name a device: "nvidia0 (NVIDIA H200)", or the id alone where the
// name is the id (DRM devices).
inline std::string device_label(const GpuDeviceReading& device) {
  return device.name == device.id ? device.id : device.id + " (" + device.name + ")";
}

// A process to pair with NVML's host pids: its fds say whether it holds an NVIDIA device; nullptr
// when they could not be read.
inline NvidiaCandidate nvidia_candidate(pid_t pid, const FdCounts* fds) {
  return NvidiaCandidate{pid, {pid}, fds != nullptr ? std::optional<bool>(fds->nvidia_fds > 0) : std::nullopt};
}

struct ProcessGpuReading {
  std::string device_id;
  uint64_t bytes = 0;
  std::map<std::string, uint64_t> region_bytes;  // DRM regions ("vram", "gtt", ...); empty for NVML
};

// Where the NVIDIA library is looked for: $MEMDX_NVML_LIBRARY when set (a driver installed off the
// search path, or a test's stand-in), else "libnvidia-ml.so.1" through the normal search path.
std::string nvml_library_name();

class GpuProbe {
 public:
  // `host_pid_namespace`: whether the pids under fs's /proc are the host's (NVML's); nullopt asks
  // the kernel (in_host_pid_namespace), and a tree that cannot say is taken as the host's.
  explicit GpuProbe(const ProcFs& fs, const std::string& nvml_library = nvml_library_name(),
                    std::optional<bool> host_pid_namespace = std::nullopt);
  ~GpuProbe();
  GpuProbe(const GpuProbe&) = delete;
  GpuProbe& operator=(const GpuProbe&) = delete;

  // One NVML pass over every device and its processes, paired with `candidates` (the processes
  // of this tick). Without NVML it only forgets the last tick's DRM devices.
  void refresh(const std::vector<NvidiaCandidate>& candidates);

  // The GPU memory of `pid` this tick, per device: NVML's (from the last refresh) and DRM's (from
  // the fdinfo of the DRM fds in `fds`). nullopt when nothing measures it: no NVML and no DRM
  // client among its fds (or its fds could not be read). An empty list is measured: none.
  std::optional<std::vector<ProcessGpuReading>> usage(pid_t pid, const FdCounts* fds);

  // The devices NVML listed and the DRM devices usage() met since the last refresh.
  std::vector<GpuDeviceReading> devices() const;
  bool nvml_available() const { return nvml_ != nullptr; }
  // The newest process-list call the library has (3, 2 or 1); 0 without NVML.
  int nvml_process_list_version() const { return nvml_ ? nvml_->process_list_version() : 0; }
  // Why NVML is not used ("libnvidia-ml.so.1 not found: ..."); empty when it is.
  const std::string& nvml_note() const { return nvml_note_; }
  // The last refresh's NVML errors (a device whose process list could not be read).
  const std::vector<std::string>& errors() const { return errors_; }
  // Host pids NVML listed that no process memdx sees could be paired with (other containers).
  const std::vector<NvmlProcess>& unmatched() const { return unmatched_; }

 private:
  const ProcFs& fs_;
  std::unique_ptr<Nvml> nvml_;
  std::string nvml_note_;
  bool host_pid_namespace_ = true;
  bool nvml_read_ = false;  // the last refresh read NVML's lists
  std::vector<GpuDeviceReading> nvml_devices_;
  std::map<std::string, GpuDeviceReading> drm_devices_;
  std::map<pid_t, std::vector<ProcessGpuReading>> nvml_usage_;
  std::vector<std::string> errors_;
  std::vector<NvmlProcess> unmatched_;
};

}  // namespace memdx::proc
