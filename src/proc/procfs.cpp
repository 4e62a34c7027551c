#include "proc/procfs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "proc/cgroup_files.h"
#include "proc/kv.h"
#include "proc/process_files.h"
#include "proc/unique_fd.h"

namespace memdx::proc {
namespace {

// Calls on_entry(name) for each entry of the directory at `path` but "." and "..", read with
// getdents64 into a buffer on the stack. opendir() allocates a 32 KiB buffer per call: at a
// thousand processes a tick (memdx serve, watch) that was most of what memdx allocated. Returns 0,
// or the errno of the failure.
template <typename OnEntry>
int for_each_entry(const std::string& path, OnEntry on_entry) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return errno;
  alignas(8) char buffer[4096];
  // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
  constexpr size_t kReclenAt = 16;
  constexpr size_t kNameAt = 19;
  while (true) {
    long got = ::syscall(SYS_getdents64, fd.get(), buffer, sizeof(buffer));
    if (got < 0) return errno;
    if (got == 0) return 0;
    for (long offset = 0; offset < got;) {
      uint16_t record_length = 0;
      std::memcpy(&record_length, buffer + offset + kReclenAt, sizeof(record_length));
      if (record_length == 0) return EIO;
      const char* name = buffer + offset + kNameAt;
      offset += record_length;
      if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
      on_entry(name);
    }
  }
}

ReadError make_error(int err, const std::string& path) {
  ReadError error;
  error.path = path;
  error.message = std::strerror(err);
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      error.kind = ReadErrorKind::kNotFound;
      break;
    case EACCES:
    case EPERM:
      error.kind = ReadErrorKind::kPermissionDenied;
      break;
    case ESRCH:
      error.kind = ReadErrorKind::kProcessGone;
      break;
    default:
      error.kind = ReadErrorKind::kOther;
      break;
  }
  return error;
}

std::optional<pid_t> parse_pid_name(const char* name) {
  auto value = parse_u64(name);
  if (!value || *value == 0 || *value > 0x7fffffff) return std::nullopt;
  return static_cast<pid_t>(*value);
}

Result<std::vector<pid_t>> numeric_entries(const std::string& dir_path) {
  std::vector<pid_t> ids;
  int error = for_each_entry(dir_path, [&ids](const char* name) {
    if (auto id = parse_pid_name(name)) ids.push_back(*id);
  });
  if (error != 0) return make_error(error, dir_path);
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

ProcFs::ProcFs(std::string proc_root, std::string sys_root)
    : proc_root_(std::move(proc_root)), sys_root_(std::move(sys_root)) {}

std::string ProcFs::pid_dir(pid_t pid) const {
  return proc_root_ + "/" + std::to_string(pid);
}

Result<std::string> ProcFs::read_file(const std::string& path) const {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return make_error(errno, path);
  // A stack chunk appended to the string: most /proc files are a few hundred bytes, and a big
  // zero-filled buffer per read would cost a page fault per 4 KiB (an mmap'd block past glibc's
  // threshold), which dominated `inspect --tree`.
  std::string text;
  char chunk[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(errno, path);
    }
    if (n == 0) break;
    text.append(chunk, static_cast<size_t>(n));
  }
  return text;
}

Result<std::string> ProcFs::read_pid_file(pid_t pid, std::string_view file) const {
  std::string path = pid_dir(pid) + "/" + std::string(file);
  Result<std::string> result = read_file(path);
  if (!result.ok() && result.error().kind == ReadErrorKind::kNotFound && !process_exists(pid)) {
    ReadError gone = result.error();
    gone.kind = ReadErrorKind::kProcessGone;
    return gone;
  }
  return result;
}

bool ProcFs::process_exists(pid_t pid) const {
  struct stat st {};
  return ::stat(pid_dir(pid).c_str(), &st) == 0;
}

Result<std::vector<pid_t>> ProcFs::list_pids() const {
  return numeric_entries(proc_root_);
}

std::vector<pid_t> ProcFs::thread_ids(pid_t pid) const {
  Result<std::vector<pid_t>> ids = numeric_entries(pid_dir(pid) + "/task");
  return ids.ok() ? std::move(ids).value() : std::vector<pid_t>{};
}

Result<FdCounts> ProcFs::count_fds(pid_t pid) const {
  std::string dir_path = pid_dir(pid) + "/fd";
  FdCounts counts;
  char target[4096];
  std::string link = dir_path + "/";
  size_t prefix = link.size();
  int error = for_each_entry(dir_path, [&](const char* name) {
    if (!parse_u64(name)) return;
    link.resize(prefix);
    link += name;
    ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
    if (n < 0) {
      // Closed between the listing and readlink: not open any more. Otherwise (a namespace or
      // LSM denying the link) the fd is still open, of a type we cannot see.
      if (errno != ENOENT) counts.add(FdType::kOther);
      return;
    }
    std::string_view target_view(target, static_cast<size_t>(n));
    std::optional<mode_t> mode;
    // Only plain paths need stat() to tell files from directories, devices and FIFOs.
    if (target_view.starts_with("/") && !target_view.starts_with("/memfd:") && !target_view.starts_with("/dev/pts/")) {
      struct stat st {};
      if (::stat(link.c_str(), &st) == 0) mode = st.st_mode;
    }
    counts.add(classify_fd(target_view, mode));
    if (target_view.starts_with("/dev/dri/")) {
      if (std::optional<uint64_t> fd = parse_u64(name)) counts.drm_fds.push_back(static_cast<int>(*fd));
    } else if (target_view.starts_with("/dev/nvidia")) {
      ++counts.nvidia_fds;
    }
  });
  if (error != 0) {
    ReadError read_error = make_error(error, dir_path);
    if (read_error.kind == ReadErrorKind::kNotFound && !process_exists(pid)) {
      read_error.kind = ReadErrorKind::kProcessGone;
    }
    return read_error;
  }
  return counts;
}

Result<uint32_t> ProcFs::count_fd_entries(pid_t pid) const {
  std::string dir_path = pid_dir(pid) + "/fd";
  uint32_t count = 0;
  int error = for_each_entry(dir_path, [&count](const char*) { ++count; });
  if (error != 0) {
    ReadError read_error = make_error(error, dir_path);
    if (read_error.kind == ReadErrorKind::kNotFound && !process_exists(pid)) {
      read_error.kind = ReadErrorKind::kProcessGone;
    }
    return read_error;
  }
  return count;
}

std::vector<uint64_t> ProcFs::thread_stack_pointers(pid_t pid) const {
  std::vector<uint64_t> pointers;
  for (pid_t tid : thread_ids(pid)) {
    auto text = read_file(pid_dir(pid) + "/task/" + std::to_string(tid) + "/syscall");
    if (!text.ok()) continue;
    if (auto sp = parse_syscall_stack_pointer(*text)) pointers.push_back(*sp);
  }
  return pointers;
}

Result<MemInfo> ProcFs::meminfo() const {
  auto text = read_file(proc_root_ + "/meminfo");
  if (!text.ok()) return text.error();
  return parse_meminfo(*text);
}

std::optional<Psi> ProcFs::system_memory_pressure() const {
  auto text = read_file(proc_root_ + "/pressure/memory");
  if (!text.ok()) return std::nullopt;
  return parse_psi(*text);
}

namespace {

// Maps a cgroup path to a directory under one of the mounts of its hierarchy. Inside a cgroup
// namespace the mount's root is a prefix of the path (or the path is relative to the mount).
std::optional<std::string> cgroup_directory(const std::vector<MountEntry>& mounts, std::string_view fs_type,
                                            std::string_view controller, const std::string& cgroup_path) {
  for (const MountEntry& mount : mounts) {
    if (mount.fs_type != fs_type) continue;
    if (!controller.empty()) {
      std::string options = "," + mount.super_options + ",";
      if (options.find("," + std::string(controller) + ",") == std::string::npos) continue;
    }
    std::string relative = cgroup_path;
    if (mount.root != "/" && relative.starts_with(mount.root)) relative = relative.substr(mount.root.size());
    std::vector<std::string> candidates = {mount.mount_point + relative, mount.mount_point};
    for (const std::string& candidate : candidates) {
      struct stat st {};
      std::string probe = candidate + (fs_type == "cgroup2" ? "/cgroup.procs" : "/memory.usage_in_bytes");
      if (::stat(probe.c_str(), &st) == 0) return candidate;
    }
  }
  return std::nullopt;
}

}  // namespace

std::vector<MountEntry> ProcFs::cgroup_mounts() const {
  auto mount_text = read_file(proc_root_ + "/self/mountinfo");
  if (!mount_text.ok()) return {};
  std::vector<MountEntry> mounts = parse_mountinfo(*mount_text);
  // Fixture trees keep their sysfs under sys_root_; rewrite the default mount points there.
  if (sys_root_ != "/sys") {
    for (MountEntry& mount : mounts) {
      if (mount.mount_point.starts_with("/sys/")) mount.mount_point = sys_root_ + mount.mount_point.substr(4);
    }
  }
  return mounts;
}

uint64_t CgroupMemory::unreclaimable_bytes() const {
  uint64_t usage = current_bytes.value_or(0);
  return usage - std::min(usage, stat_inactive_file_bytes.value_or(0));
}

std::optional<uint64_t> CgroupMemory::room_bytes() const {
  std::optional<uint64_t> limit;
  for (const std::optional<uint64_t>& candidate : {max_bytes, high_bytes}) {
    if (candidate && (!limit || *candidate < *limit)) limit = candidate;
  }
  if (!limit) return std::nullopt;
  uint64_t usage = unreclaimable_bytes();
  return *limit > usage ? *limit - usage : 0;
}

std::optional<double> CgroupMemory::room_ratio() const {
  std::optional<uint64_t> room = room_bytes();
  uint64_t limit = std::min(max_bytes.value_or(UINT64_MAX), high_bytes.value_or(UINT64_MAX));
  if (!room || limit == 0) return room ? std::optional<double>(0.0) : std::nullopt;
  return static_cast<double>(*room) / static_cast<double>(limit);
}

std::optional<std::string> ProcFs::cgroup2_directory(pid_t pid) const {
  auto cgroup_text = read_pid_file(pid, "cgroup");
  if (!cgroup_text.ok()) return std::nullopt;
  std::vector<MountEntry> mounts = cgroup_mounts();
  for (const CgroupEntry& entry : parse_proc_cgroup(*cgroup_text)) {
    if (entry.hierarchy_id == 0) return cgroup_directory(mounts, "cgroup2", "", entry.path);
  }
  return std::nullopt;
}

CgroupMemory ProcFs::read_memory_cgroup(int version, const std::string& path, const std::string& directory) const {
  auto read_value = [&](const std::string& dir, const char* name) -> std::optional<std::string> {
    auto text = read_file(dir + "/" + name);
    if (!text.ok()) return std::nullopt;
    return std::move(text).value();
  };
  if (version == 2) {
    CgroupMemory memory;
    memory.version = 2;
    memory.path = path;
    memory.directory = directory;
    if (auto current = read_value(directory, "memory.current")) memory.current_bytes = parse_u64(*current);
    if (auto max = read_value(directory, "memory.max")) memory.max_bytes = parse_memory_limit(*max);
    if (auto high = read_value(directory, "memory.high")) memory.high_bytes = parse_memory_limit(*high);
    if (auto events = read_value(directory, "memory.events")) {
      auto keyed = parse_flat_keyed(*events);
      memory.events_oom = find_key(keyed, "oom");
      memory.events_oom_kill = find_key(keyed, "oom_kill");
    }
    if (auto stat = read_value(directory, "memory.stat")) {
      auto keyed = parse_flat_keyed(*stat);
      memory.stat_anon_bytes = find_key(keyed, "anon");
      memory.stat_file_bytes = find_key(keyed, "file");
      memory.stat_inactive_file_bytes = find_key(keyed, "inactive_file");
    }
    if (auto pressure = read_value(directory, "memory.pressure")) memory.psi = parse_psi(*pressure);
    return memory;
  }
  CgroupMemory memory;
  memory.version = 1;
  memory.path = path;
  memory.directory = directory;
  if (auto usage = read_value(directory, "memory.usage_in_bytes")) memory.current_bytes = parse_u64(*usage);
  if (auto limit = read_value(directory, "memory.limit_in_bytes")) memory.max_bytes = parse_memory_limit(*limit);
  if (auto oom = read_value(directory, "memory.oom_control")) {
    memory.events_oom_kill = find_key(parse_flat_keyed(*oom), "oom_kill");
  }
  if (auto stat = read_value(directory, "memory.stat")) {
    auto keyed = parse_flat_keyed(*stat);
    memory.stat_anon_bytes = find_key(keyed, "rss");
    memory.stat_file_bytes = find_key(keyed, "cache");
    memory.stat_inactive_file_bytes = find_key(keyed, "total_inactive_file");
  }
  return memory;
}

std::vector<CgroupMemory> ProcFs::memory_cgroup_ancestors(const CgroupMemory& cgroup) const {
  std::vector<CgroupMemory> ancestors;
  std::string path = cgroup.path;
  std::string directory = cgroup.directory;
  // Up to the hierarchy's root, which has no limit of its own: "/a/b" in ".../memory/a/b" is
  // "/a" in ".../memory/a".
  while (path.size() > 1) {
    size_t slash = path.rfind('/');
    std::string leaf = path.substr(slash);
    if (slash == 0 || !directory.ends_with(leaf)) break;
    path.resize(slash);
    directory.resize(directory.size() - leaf.size());
    ancestors.push_back(read_memory_cgroup(cgroup.version, path, directory));
  }
  return ancestors;
}

std::optional<CgroupMemory> ProcFs::memory_cgroup(pid_t pid) const {
  auto cgroup_text = read_pid_file(pid, "cgroup");
  std::vector<MountEntry> mounts = cgroup_mounts();
  if (!cgroup_text.ok() || mounts.empty()) return std::nullopt;
  std::vector<CgroupEntry> entries = parse_proc_cgroup(*cgroup_text);
  // cgroup v2 first, when its memory controller is enabled for this cgroup.
  for (const CgroupEntry& entry : entries) {
    if (entry.hierarchy_id != 0) continue;
    auto dir = cgroup_directory(mounts, "cgroup2", "", entry.path);
    if (!dir) continue;
    if (!read_file(*dir + "/memory.current").ok()) continue;  // hybrid host: the memory controller lives in v1
    return read_memory_cgroup(2, entry.path, *dir);
  }
  for (const CgroupEntry& entry : entries) {
    if (std::find(entry.controllers.begin(), entry.controllers.end(), "memory") == entry.controllers.end()) continue;
    auto dir = cgroup_directory(mounts, "cgroup", "memory", entry.path);
    if (!dir) continue;
    return read_memory_cgroup(1, entry.path, *dir);
  }
  return std::nullopt;
}

}  // namespace memdx::proc
