#include "proc/nvml.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace memdx::proc {
namespace {

// The parts of nvml.h that memdx uses, declared as NVIDIA's header declares them (memdx builds
// without the header: the library is optional at run time).
using nvmlReturn_t = int;
using nvmlDevice_t = struct nvmlDevice_st*;
constexpr nvmlReturn_t NVML_SUCCESS = 0;
constexpr nvmlReturn_t NVML_ERROR_INSUFFICIENT_SIZE = 7;
constexpr unsigned long long NVML_VALUE_NOT_AVAILABLE = ~0ULL;  // NOLINT(google-runtime-int)
constexpr unsigned NVML_DEVICE_NAME_V2_BUFFER_SIZE = 96;
constexpr unsigned NVML_DEVICE_UUID_V2_BUFFER_SIZE = 96;

// NOLINTBEGIN(google-runtime-int): the C types of nvml.h.
struct nvmlMemory_t {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
struct nvmlProcessInfo_v1_t {
  unsigned int pid;
  unsigned long long usedGpuMemory;
};
// nvmlProcessInfo_v2_t and nvmlProcessInfo_t (what the _v3 calls take) have this layout.
struct nvmlProcessInfo_v2_t {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};
// NOLINTEND(google-runtime-int)

using InitFn = nvmlReturn_t (*)();
using ShutdownFn = nvmlReturn_t (*)();
using ErrorStringFn = const char* (*)(nvmlReturn_t);
using CountFn = nvmlReturn_t (*)(unsigned*);
using HandleFn = nvmlReturn_t (*)(unsigned, nvmlDevice_t*);
using StringFn = nvmlReturn_t (*)(nvmlDevice_t, char*, unsigned);
using MemoryFn = nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_t*);
using ProcessesV2Fn = nvmlReturn_t (*)(nvmlDevice_t, unsigned*, nvmlProcessInfo_v2_t*);
using ProcessesV1Fn = nvmlReturn_t (*)(nvmlDevice_t, unsigned*, nvmlProcessInfo_v1_t*);

template <typename Fn>
Fn symbol(void* handle, const char* name) {
  return reinterpret_cast<Fn>(::dlsym(handle, name));  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
}

}  // namespace

struct Nvml::Api {
  InitFn init = nullptr;
  ShutdownFn shutdown = nullptr;
  ErrorStringFn error_string = nullptr;
  CountFn device_count = nullptr;
  HandleFn handle_by_index = nullptr;
  StringFn name = nullptr;
  StringFn uuid = nullptr;
  MemoryFn memory = nullptr;
  // The newest of each process list the library has: _v3, _v2 (same record), or the first one.
  ProcessesV2Fn compute_v2 = nullptr;
  ProcessesV2Fn graphics_v2 = nullptr;
  ProcessesV1Fn compute_v1 = nullptr;
  ProcessesV1Fn graphics_v1 = nullptr;

  std::string error(nvmlReturn_t code) const {
    const char* text = error_string != nullptr ? error_string(code) : nullptr;
    return text != nullptr ? std::string(text) : fmt::format("NVML error {}", code);
  }
};

std::unique_ptr<Nvml> Nvml::load(const std::string& library, std::string& why_not) {
  // RTLD_LOCAL: NVML's symbols stay out of the global namespace of the program memdx runs in.
  void* handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    why_not = fmt::format("{} not found: no NVIDIA driver on this machine", library);
    return nullptr;
  }
  auto api = std::make_unique<Api>();
  api->init = symbol<InitFn>(handle, "nvmlInit_v2");
  if (api->init == nullptr) api->init = symbol<InitFn>(handle, "nvmlInit");
  api->shutdown = symbol<ShutdownFn>(handle, "nvmlShutdown");
  api->error_string = symbol<ErrorStringFn>(handle, "nvmlErrorString");
  api->device_count = symbol<CountFn>(handle, "nvmlDeviceGetCount_v2");
  if (api->device_count == nullptr) api->device_count = symbol<CountFn>(handle, "nvmlDeviceGetCount");
  api->handle_by_index = symbol<HandleFn>(handle, "nvmlDeviceGetHandleByIndex_v2");
  if (api->handle_by_index == nullptr) api->handle_by_index = symbol<HandleFn>(handle, "nvmlDeviceGetHandleByIndex");
  api->name = symbol<StringFn>(handle, "nvmlDeviceGetName");
  api->uuid = symbol<StringFn>(handle, "nvmlDeviceGetUUID");
  api->memory = symbol<MemoryFn>(handle, "nvmlDeviceGetMemoryInfo");
  int version = 3;
  api->compute_v2 = symbol<ProcessesV2Fn>(handle, "nvmlDeviceGetComputeRunningProcesses_v3");
  api->graphics_v2 = symbol<ProcessesV2Fn>(handle, "nvmlDeviceGetGraphicsRunningProcesses_v3");
  if (api->compute_v2 == nullptr) {
    version = 2;
    api->compute_v2 = symbol<ProcessesV2Fn>(handle, "nvmlDeviceGetComputeRunningProcesses_v2");
    api->graphics_v2 = symbol<ProcessesV2Fn>(handle, "nvmlDeviceGetGraphicsRunningProcesses_v2");
  }
  if (api->compute_v2 == nullptr) {
    version = 1;
    api->compute_v1 = symbol<ProcessesV1Fn>(handle, "nvmlDeviceGetComputeRunningProcesses");
    api->graphics_v1 = symbol<ProcessesV1Fn>(handle, "nvmlDeviceGetGraphicsRunningProcesses");
  }
  const char* missing = api->init == nullptr              ? "nvmlInit_v2"
                        : api->shutdown == nullptr        ? "nvmlShutdown"
                        : api->device_count == nullptr    ? "nvmlDeviceGetCount_v2"
                        : api->handle_by_index == nullptr ? "nvmlDeviceGetHandleByIndex_v2"
                        : api->memory == nullptr          ? "nvmlDeviceGetMemoryInfo"
                        : (api->compute_v2 == nullptr && api->compute_v1 == nullptr)
                            ? "nvmlDeviceGetComputeRunningProcesses"
                            : nullptr;
  if (missing != nullptr) {
    why_not = fmt::format("{} lacks {}: GPU memory is not measured through NVML", library, missing);
    ::dlclose(handle);
    return nullptr;
  }
  if (nvmlReturn_t code = api->init(); code != NVML_SUCCESS) {
    why_not = fmt::format("NVML of {} did not start: {}", library, api->error(code));
    ::dlclose(handle);
    return nullptr;
  }
  return std::unique_ptr<Nvml>(new Nvml(handle, std::move(api), version));
}

Nvml::Nvml(void* handle, std::unique_ptr<Api> api, int process_list_version)
    : handle_(handle), api_(std::move(api)), process_list_version_(process_list_version) {}

Nvml::~Nvml() {
  api_->shutdown();
  // The library stays loaded: a driver's library is not written to be unloaded (libmemdx's
  // inspect() runs inside a program that may use CUDA itself), and a second load finds it mapped.
  static_cast<void>(handle_);
}

NvmlReading Nvml::read() const {
  NvmlReading reading;
  unsigned count = 0;
  if (nvmlReturn_t code = api_->device_count(&count); code != NVML_SUCCESS) {
    reading.errors.push_back("the devices could not be counted: " + api_->error(code));
    return reading;
  }
  std::map<std::pair<unsigned, uint32_t>, std::optional<uint64_t>> used;  // (device, pid): summed contexts
  for (unsigned index = 0; index < count; ++index) {
    nvmlDevice_t device = nullptr;
    if (nvmlReturn_t code = api_->handle_by_index(index, &device); code != NVML_SUCCESS) {
      reading.errors.push_back(fmt::format("GPU {}: {}", index, api_->error(code)));
      continue;
    }
    NvmlDevice out;
    out.index = index;
    char text[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {};
    if (api_->name != nullptr && api_->name(device, text, sizeof(text)) == NVML_SUCCESS) out.name = text;
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
    if (api_->uuid != nullptr && api_->uuid(device, uuid, sizeof(uuid)) == NVML_SUCCESS) out.uuid = uuid;
    nvmlMemory_t memory{};
    if (api_->memory(device, &memory) == NVML_SUCCESS) {
      out.total_bytes = memory.total;
      out.used_bytes = memory.used;
    }
    reading.devices.push_back(std::move(out));

    // A process with a compute and a graphics context is listed in both: its memory is the sum.
    auto add = [&](uint32_t pid, unsigned long long bytes) {  // NOLINT(google-runtime-int)
      std::optional<uint64_t>& slot = used[{index, pid}];
      if (bytes == NVML_VALUE_NOT_AVAILABLE) return;
      slot = slot.value_or(0) + bytes;
    };
    // The list grows between the size query and the read: ask again with the size the driver says.
    for (bool graphics : {false, true}) {
      unsigned entries = 32;
      nvmlReturn_t code = NVML_ERROR_INSUFFICIENT_SIZE;
      for (int attempt = 0; attempt < 4 && code == NVML_ERROR_INSUFFICIENT_SIZE; ++attempt) {
        entries = std::max(entries, 32u) * 2;
        unsigned got = entries;
        if (api_->compute_v2 != nullptr) {
          std::vector<nvmlProcessInfo_v2_t> infos(entries);
          ProcessesV2Fn fn = graphics ? api_->graphics_v2 : api_->compute_v2;
          if (fn == nullptr) break;
          code = fn(device, &got, infos.data());
          if (code == NVML_SUCCESS) {
            for (unsigned i = 0; i < std::min(got, entries); ++i) add(infos[i].pid, infos[i].usedGpuMemory);
          }
        } else {
          std::vector<nvmlProcessInfo_v1_t> infos(entries);
          ProcessesV1Fn fn = graphics ? api_->graphics_v1 : api_->compute_v1;
          if (fn == nullptr) break;
          code = fn(device, &got, infos.data());
          if (code == NVML_SUCCESS) {
            for (unsigned i = 0; i < std::min(got, entries); ++i) add(infos[i].pid, infos[i].usedGpuMemory);
          }
        }
        if (code == NVML_ERROR_INSUFFICIENT_SIZE) entries = got;
      }
      if (code != NVML_SUCCESS && code != NVML_ERROR_INSUFFICIENT_SIZE) {
        reading.errors.push_back(
            fmt::format("GPU {} {} processes: {}", index, graphics ? "graphics" : "compute", api_->error(code)));
      }
    }
  }
  for (const auto& [key, bytes] : used) reading.processes.push_back({key.first, key.second, bytes});
  return reading;
}

std::optional<bool> in_host_pid_namespace(const std::string& proc_root) {
  char target[64] = {};
  std::string link = proc_root + "/self/ns/pid";
  ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
  if (n <= 0) return std::nullopt;
  constexpr std::string_view kInitialPidNamespace = "pid:[4026531836]";  // 0xEFFFFFFC
  return std::string_view(target, static_cast<size_t>(n)) == kInitialPidNamespace;
}

std::vector<std::pair<uint32_t, pid_t>> match_host_pids(const std::vector<uint32_t>& host_pids,
                                                        const std::vector<NvidiaCandidate>& candidates,
                                                        bool host_namespace) {
  std::vector<std::pair<uint32_t, pid_t>> matched;
  std::set<uint32_t> unmatched(host_pids.begin(), host_pids.end());
  std::set<pid_t> taken;
  for (const NvidiaCandidate& candidate : candidates) {
    // The outermost NSpid is the pid in the namespace of the /proc memdx reads: when that is the
    // host's, it is the pid NVML names. A process known to hold no NVIDIA device is not on one,
    // whatever its pid: in a container, pid 12 here is not host pid 12.
    pid_t outermost = candidate.ns_pids.empty() ? candidate.pid : candidate.ns_pids.front();
    if (!host_namespace && candidate.holds_nvidia.has_value() && !*candidate.holds_nvidia) continue;
    if (outermost > 0 && unmatched.erase(static_cast<uint32_t>(outermost)) != 0) {
      matched.emplace_back(static_cast<uint32_t>(outermost), candidate.pid);
      taken.insert(candidate.pid);
    }
  }
  std::vector<pid_t> holders;
  for (const NvidiaCandidate& candidate : candidates) {
    if (candidate.holds_nvidia.value_or(false) && taken.count(candidate.pid) == 0) holders.push_back(candidate.pid);
  }
  if (unmatched.size() == 1 && holders.size() == 1) matched.emplace_back(*unmatched.begin(), holders.front());
  std::sort(matched.begin(), matched.end());
  return matched;
}

}  // namespace memdx::proc
