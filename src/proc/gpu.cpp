#include "proc/gpu.h"

#include <cstdlib>
#include <utility>

#include "proc/gpu_drm.h"
#include "proc/kv.h"

namespace memdx::proc {
namespace {

std::string nvml_device_id(unsigned index) {
  return "nvidia" + std::to_string(index);
}

// amdgpu's sysfs totals of a DRM device (mem_info_vram_total/used under its PCI device), where the
// driver has them: the device's side of the per-process figures.
void read_drm_device_totals(const ProcFs& fs, GpuDeviceReading& device, const std::string& pdev) {
  if (pdev.empty()) return;
  std::string directory = fs.sys_root() + "/bus/pci/devices/" + pdev + "/";
  auto total = fs.read_file(directory + "mem_info_vram_total");
  auto used = fs.read_file(directory + "mem_info_vram_used");
  if (total.ok()) device.total_bytes = parse_u64(trim(*total));
  if (used.ok()) device.used_bytes = parse_u64(trim(*used));
}

}  // namespace

std::string nvml_library_name() {
  const char* configured = std::getenv("MEMDX_NVML_LIBRARY");
  return configured != nullptr && configured[0] != '\0' ? configured : "libnvidia-ml.so.1";
}

GpuProbe::GpuProbe(const ProcFs& fs, const std::string& nvml_library, std::optional<bool> host_pid_namespace)
    : fs_(fs) {
  nvml_ = Nvml::load(nvml_library, nvml_note_);
  if (nvml_) host_pid_namespace_ = host_pid_namespace.value_or(in_host_pid_namespace(fs.proc_root()).value_or(true));
}

GpuProbe::~GpuProbe() = default;

void GpuProbe::refresh(const std::vector<NvidiaCandidate>& candidates) {
  drm_devices_.clear();
  nvml_usage_.clear();
  nvml_devices_.clear();
  errors_.clear();
  unmatched_.clear();
  nvml_read_ = false;
  if (!nvml_) return;
  NvmlReading reading = nvml_->read();
  errors_ = reading.errors;
  nvml_read_ = !reading.devices.empty() || reading.errors.empty();
  for (const NvmlDevice& device : reading.devices) {
    GpuDeviceReading out;
    out.id = nvml_device_id(device.index);
    out.name = device.name.empty() ? "NVIDIA GPU " + std::to_string(device.index) : device.name;
    out.source = GpuSource::kNvml;
    out.total_bytes = device.total_bytes;
    out.used_bytes = device.used_bytes;
    nvml_devices_.push_back(std::move(out));
  }
  std::vector<uint32_t> host_pids;
  for (const NvmlProcess& process : reading.processes) host_pids.push_back(process.host_pid);
  std::map<uint32_t, pid_t> local;
  for (const auto& [host, pid] : match_host_pids(host_pids, candidates, host_pid_namespace_)) local[host] = pid;
  for (const NvmlProcess& process : reading.processes) {
    auto found = local.find(process.host_pid);
    if (found == local.end()) {
      unmatched_.push_back(process);
      continue;
    }
    // A process NVML lists without a figure (withheld by the driver) is on the device all the same.
    nvml_usage_[found->second].push_back({nvml_device_id(process.device_index), process.used_bytes.value_or(0), {}});
  }
}

std::optional<std::vector<ProcessGpuReading>> GpuProbe::usage(pid_t pid, const FdCounts* fds) {
  bool measured = nvml_read_;
  std::vector<ProcessGpuReading> out;
  if (auto found = nvml_usage_.find(pid); found != nvml_usage_.end()) out = found->second;
  if (fds != nullptr && !fds->drm_fds.empty()) {
    for (const DrmDeviceUsage& usage : read_drm_usage(fs_, pid, fds->drm_fds)) {
      measured = true;
      // NVIDIA's open kernel driver also answers DRM fdinfo on its display nodes, without memory
      // keys: NVML's figures stand for those devices.
      if (usage.region_bytes.empty() && usage.driver == "nvidia-drm") continue;
      out.push_back({usage.device_id, usage.bytes, usage.region_bytes});
      if (drm_devices_.count(usage.device_id) == 0) {
        GpuDeviceReading device;
        device.id = usage.device_id;
        device.name = usage.device_id;
        device.source = GpuSource::kDrmFdinfo;
        read_drm_device_totals(fs_, device, usage.pdev);
        drm_devices_.emplace(usage.device_id, std::move(device));
      }
    }
  }
  if (!measured) return std::nullopt;
  return out;
}

std::vector<GpuDeviceReading> GpuProbe::devices() const {
  std::vector<GpuDeviceReading> out = nvml_devices_;
  for (const auto& [id, device] : drm_devices_) out.push_back(device);
  return out;
}

}  // namespace memdx::proc
