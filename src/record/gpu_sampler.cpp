#include "record/gpu_sampler.h"

#include <dirent.h>

#include <algorithm>
#include <cstring>

namespace memdx::record {
namespace {

// Whether the machine has a DRM device node (/sys/class/drm/card* or renderD*): without one no
// process can hold a DRM client, and the fds need no classifying for it.
bool drm_device_present(const std::string& sys_root) {
  DIR* dir = ::opendir((sys_root + "/class/drm").c_str());
  if (dir == nullptr) return false;
  bool found = false;
  while (dirent* entry = ::readdir(dir)) {
    if (std::strncmp(entry->d_name, "card", 4) == 0 || std::strncmp(entry->d_name, "renderD", 7) == 0) {
      found = true;
      break;
    }
  }
  ::closedir(dir);
  return found;
}

// The fds are classified again when their count changed, and every this many ticks all the same
// (a DRM fd opened as another closed keeps the count).
constexpr uint64_t kReclassifyTicks = 10;

}  // namespace

GpuSampler::GpuSampler(const proc::ProcFs& fs) : fs_(fs), probe_(fs), drm_present_(drm_device_present(fs.sys_root())) {}

const proc::FdCounts* GpuSampler::classified_fds(const model::ProcessSample& sample) {
  if (!drm_present_) return nullptr;  // NVML needs no fds in the host's namespace
  Known& known = known_[sample.pid];
  bool stale = !known.fds || known.fd_total != sample.fds || tick_ - known.tick >= kReclassifyTicks;
  if (stale) {
    auto fds = fs_.count_fds(sample.pid);
    known.fds = fds.ok() ? std::optional<proc::FdCounts>(*fds) : std::nullopt;
    known.fd_total = sample.fds;
    known.tick = tick_;
  }
  return known.fds ? &*known.fds : nullptr;
}

void GpuSampler::sample(std::vector<model::ProcessSample>& samples) {
  devices_changed_ = false;
  if (!active()) return;
  ++tick_;
  std::vector<const proc::FdCounts*> fds;
  std::vector<proc::NvidiaCandidate> candidates;
  fds.reserve(samples.size());
  for (const model::ProcessSample& s : samples) {
    const proc::FdCounts* counts = classified_fds(s);
    fds.push_back(counts);
    candidates.push_back(proc::nvidia_candidate(s.pid, counts));
  }
  probe_.refresh(candidates);
  std::vector<std::pair<pid_t, std::vector<proc::ProcessGpuReading>>> used;
  for (size_t i = 0; i < samples.size(); ++i) {
    std::optional<std::vector<proc::ProcessGpuReading>> usage = probe_.usage(samples[i].pid, fds[i]);
    if (!usage) continue;
    uint64_t bytes = 0;
    for (const proc::ProcessGpuReading& reading : *usage) bytes += reading.bytes;
    samples[i].gpu_bytes = bytes;
    if (!usage->empty()) used.emplace_back(samples[i].pid, std::move(*usage));
  }
  if (used.empty()) return;
  std::map<std::string, std::string> names;
  for (const proc::GpuDeviceReading& device : probe_.devices()) {
    names[device.id] = proc::device_label(device);
  }
  for (const auto& [pid, readings] : used) {
    std::vector<std::string>& known = devices_of_[pid];
    for (const proc::ProcessGpuReading& reading : readings) {
      if (reading.bytes == 0) continue;
      auto name = names.find(reading.device_id);
      std::string shown = name != names.end() ? name->second : reading.device_id;
      if (std::find(known.begin(), known.end(), shown) == known.end()) {
        known.push_back(shown);
        devices_changed_ = true;
      }
    }
  }
}

void GpuSampler::forget(pid_t pid) {
  known_.erase(pid);
}

}  // namespace memdx::record
