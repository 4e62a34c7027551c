// GPU memory of NVIDIA devices and of the processes on them, from NVML (libnvidia-ml.so.1, part
// of NVIDIA's driver). The library is loaded at run time with dlopen through the normal library
// search path: memdx has no build-time dependency on it, and a machine without it simply has no
// NVIDIA figures ("not measured", never an error).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace memdx::proc {

struct NvmlDevice {
  unsigned index = 0;
  std::string name;  // "NVIDIA H200"
  std::string uuid;  // "GPU-5f1c..."
  std::optional<uint64_t> total_bytes;
  std::optional<uint64_t> used_bytes;
};

// One process on one device, as NVML lists it: compute (CUDA) and graphics contexts together.
struct NvmlProcess {
  unsigned device_index = 0;
  uint32_t host_pid = 0;  // NVML names processes by their pid in the host's namespace
  // nullopt when the driver withholds it (NVML_VALUE_NOT_AVAILABLE: another user's process on
  // some drivers, vGPU).
  std::optional<uint64_t> used_bytes;
};

struct NvmlReading {
  std::vector<NvmlDevice> devices;
  std::vector<NvmlProcess> processes;
  // Per device, why its process list could not be read ("GPU 1: Insufficient Permissions"); the
  // device's totals still stand.
  std::vector<std::string> errors;
};

class Nvml {
 public:
  // Loads `library` (a name for the search path, or a path) and initialises NVML. nullptr when it
  // cannot: `why_not` then says why in a sentence ("libnvidia-ml.so.1 not found: no NVIDIA
  // driver on this machine"; "...lacks nvmlDeviceGetComputeRunningProcesses: ...").
  static std::unique_ptr<Nvml> load(const std::string& library, std::string& why_not);
  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  // Every device and every process on it: one pass over the devices, whatever the number of
  // processes memdx watches (NVML answers for all of them at once).
  NvmlReading read() const;

  // Which versions of the process-list calls the library offers (3, 2 or 1): for the notes.
  int process_list_version() const { return process_list_version_; }

  struct Api;  // the resolved symbols (nvml.cpp)

 private:
  Nvml(void* handle, std::unique_ptr<Api> api, int process_list_version);
  void* handle_;
  std::unique_ptr<Api> api_;
  int process_list_version_;
};

// A process memdx can see that may be on an NVIDIA GPU.
struct NvidiaCandidate {
  pid_t pid = 0;               // as memdx sees it (the directory under its /proc)
  std::vector<pid_t> ns_pids;  // /proc/PID/status NSpid: this pid in each namespace, outermost first
  // It has /dev/nvidia* open (FdCounts::nvidia_fds); nullopt when its fds cannot be read.
  std::optional<bool> holds_nvidia;
};

// NVML names processes by their pid in the host's pid namespace; memdx may see another one (a
// container). Pairs each host pid with a candidate. With `host_namespace` (the /proc memdx reads
// is the host's: its pids are NVML's), by pid. Otherwise a pid here that equals a host pid may be
// another process, so only a candidate that holds an NVIDIA device (or whose fds are unknown) is
// paired by pid; failing that, by elimination: the only unpaired holder, when one host pid is left.
// Unpaired host pids are left out: their memory still counts in the device's total.
std::vector<std::pair<uint32_t, pid_t>> match_host_pids(const std::vector<uint32_t>& host_pids,
                                                        const std::vector<NvidiaCandidate>& candidates,
                                                        bool host_namespace);

// Whether the processes under `proc_root` are those of the host's pid namespace: its
// self/ns/pid is the initial namespace (whose inode number the kernel fixes, PROC_PID_INIT_INO).
// nullopt when that cannot be read (a fixture tree).
std::optional<bool> in_host_pid_namespace(const std::string& proc_root);

}  // namespace memdx::proc
