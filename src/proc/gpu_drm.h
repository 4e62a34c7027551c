// GPU memory of a process from DRM fdinfo: /proc/PID/fdinfo/N of its /dev/dri/* fds, in the keys
// the kernel documents in Documentation/gpu/drm-usage-stats.rst (amdgpu, i915, xe, msm, panfrost,
// v3d, ...). Every GPU driver but NVIDIA's proprietary one reports this way.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proc/procfs.h"

namespace memdx::proc {

// One memory region of a DRM client ("vram", "gtt", "system0", "local0", "stolen-system0", ...).
// Every value is optional: drivers report different subsets.
struct DrmRegionBytes {
  std::optional<uint64_t> total;      // drm-total-: all buffers, shared and private
  std::optional<uint64_t> resident;   // drm-resident-: the part backed by memory now
  std::optional<uint64_t> shared;     // drm-shared-: buffers shared with other clients
  std::optional<uint64_t> purgeable;  // drm-purgeable-: buffers the driver may drop
  std::optional<uint64_t> active;     // drm-active-: buffers in use by the GPU now
  std::optional<uint64_t> legacy;     // drm-memory- (deprecated; what resident now says)

  // The memory the region holds: resident where given, else the deprecated drm-memory-, else total.
  uint64_t bytes() const;
};

// One open DRM file description as its fdinfo shows it.
struct DrmClient {
  std::string driver;                 // drm-driver: "amdgpu", "i915", "xe", ...
  std::string pdev;                   // drm-pdev: "0000:03:00.0"; empty where the driver omits it
  std::optional<uint64_t> client_id;  // drm-client-id: one per open(), shared by dup()ed fds
  std::map<std::string, DrmRegionBytes> regions;

  uint64_t bytes() const;  // over every region: VRAM and the GTT/system regions an iGPU lives in
  // The device: "amdgpu 0000:03:00.0", or the driver alone without a pdev.
  std::string device_id() const;
};

// Parses one fdinfo file; nullopt when it is not a DRM client's (no drm-driver key). Values take
// the unit the documentation allows ("1024 KiB", "3 MiB", plain bytes).
std::optional<DrmClient> parse_drm_fdinfo(std::string_view text);

// A process's GPU memory on one device, from its DRM clients, each client counted once however
// many fds (dup, fork, SCM_RIGHTS) reach it.
struct DrmDeviceUsage {
  std::string device_id;
  std::string driver;
  std::string pdev;
  uint64_t bytes = 0;
  std::map<std::string, uint64_t> region_bytes;  // by region name, DrmRegionBytes::bytes()
  uint32_t clients = 0;
};

// Reads /proc/PID/fdinfo/FD of each fd in `drm_fds` (from ProcFs::count_fds) and adds up each
// device's clients. Fds closed meanwhile are skipped; an unreadable fdinfo is skipped too.
std::vector<DrmDeviceUsage> read_drm_usage(const ProcFs& fs, pid_t pid, const std::vector<int>& drm_fds);

// Adds clients to per-device usage: the pure part of read_drm_usage, for its tests.
std::vector<DrmDeviceUsage> sum_drm_clients(const std::vector<DrmClient>& clients);

}  // namespace memdx::proc
