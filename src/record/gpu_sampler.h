// GPU memory of a recording's processes, tick by tick: one NVML pass per tick for all of them, and
// the DRM fdinfo of the processes whose fds include a DRM node. Costs nothing on a machine that has
// neither an NVIDIA library nor a DRM device: gpu_bytes then stays absent ("not measured").
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/recording.h"
#include "proc/gpu.h"
#include "proc/procfs.h"

namespace memdx::record {

class GpuSampler {
 public:
  explicit GpuSampler(const proc::ProcFs& fs);

  // Whether anything can measure GPU memory here (NVML loaded, or a DRM device exists).
  bool active() const { return probe_.nvml_available() || drm_present_; }

  // Sets gpu_bytes of each sample where a source measures it; `tick` counts the calls.
  void sample(std::vector<model::ProcessSample>& samples);

  // The devices each process has held memory on, "nvidia0 (NVIDIA H200)", first seen first; and
  // whether that changed in the last sample() (the recording then writes it again).
  const std::map<pid_t, std::vector<std::string>>& devices_of() const { return devices_of_; }
  bool devices_changed() const { return devices_changed_; }

  void forget(pid_t pid);

 private:
  struct Known {
    std::optional<proc::FdCounts> fds;  // the last classification of its fds
    std::optional<uint32_t> fd_total;   // the fd count that classification saw
    uint64_t tick = 0;                  // when it was made
  };
  const proc::FdCounts* classified_fds(const model::ProcessSample& sample);

  const proc::ProcFs& fs_;
  proc::GpuProbe probe_;
  bool drm_present_ = false;
  uint64_t tick_ = 0;
  std::map<pid_t, Known> known_;
  std::map<pid_t, std::vector<std::string>> devices_of_;
  bool devices_changed_ = false;
};

}  // namespace memdx::record
