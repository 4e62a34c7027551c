// Parsers for the cgroup-related files: /proc/PID/cgroup, /proc/PID/mountinfo and the
// cgroup memory controller's files (memory.max, memory.stat, memory.events, ...).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace memdx::proc {

// One line of /proc/PID/cgroup: "hierarchy-id:controller-list:path". cgroup v2 is "0::/path".
struct CgroupEntry {
  int hierarchy_id = 0;
  std::vector<std::string> controllers;
  std::string path;
};
std::vector<CgroupEntry> parse_proc_cgroup(std::string_view text);

// One line of /proc/PID/mountinfo (octal escapes such as "\040" decoded).
struct MountEntry {
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  std::string root;  // the subtree of the filesystem mounted here
  std::string mount_point;
  std::string fs_type;        // "tmpfs", "cgroup2", "cgroup", ...
  std::string super_options;  // for cgroup v1: the controllers, e.g. "rw,memory"
};
std::vector<MountEntry> parse_mountinfo(std::string_view text);

// "max" (no limit) reads as nullopt; so does cgroup v1's "no limit" sentinel near 2^63.
std::optional<uint64_t> parse_memory_limit(std::string_view text);

// Flat "key value" files: memory.stat, memory.events, memory.oom_control.
std::vector<std::pair<std::string, uint64_t>> parse_flat_keyed(std::string_view text);
std::optional<uint64_t> find_key(const std::vector<std::pair<std::string, uint64_t>>& entries, std::string_view key);

}  // namespace memdx::proc
