// Parsers for the per-process text files /proc/PID/{status,stat,cmdline}.
// Pure functions over the file text, so they can be tested on fixtures from any kernel.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memdx::proc {

// /proc/PID/status. Memory fields are bytes; absent fields (kernel threads, zombies, old
// kernels without RssAnon) stay nullopt rather than zero so callers can tell "none" from "0".
struct Status {
  std::string name;  // escaped by the kernel: a newline in comm reads as the two chars "\n"
  char state = '?';
  pid_t pid = 0;
  pid_t ppid = 0;
  uid_t real_uid = 0;
  std::optional<uint64_t> vm_peak_bytes;
  std::optional<uint64_t> vm_size_bytes;
  std::optional<uint64_t> vm_lck_bytes;
  std::optional<uint64_t> vm_hwm_bytes;
  std::optional<uint64_t> vm_rss_bytes;
  std::optional<uint64_t> rss_anon_bytes;
  std::optional<uint64_t> rss_file_bytes;
  std::optional<uint64_t> rss_shmem_bytes;
  std::optional<uint64_t> vm_swap_bytes;
  uint32_t threads = 0;
  bool is_kernel_thread = false;  // "Kthread: 1" on new kernels; no VmSize on any kernel
  // NSpid: the process's pid in each pid namespace it is in, from that of this /proc inward: the
  // first is the pid here, the last the one the process itself sees (inside a container).
  std::vector<pid_t> ns_pids;
};
Status parse_status(std::string_view text);

// /proc/PID/stat. comm sits between the first '(' and the *last* ')': a comm may itself
// contain spaces, parentheses and even newlines.
struct Stat {
  pid_t pid = 0;
  std::string comm;
  char state = '?';
  pid_t ppid = 0;
  uint64_t start_time_ticks = 0;
  uint32_t threads = 0;
  uint64_t flags = 0;            // field 9: PF_* task flags
  uint64_t faults = 0;           // fields 10 + 12: minor + major page faults
  uint64_t cpu_ticks = 0;        // fields 14 + 15: user + system time, in clock ticks
  uint64_t vsize_bytes = 0;      // field 23
  uint64_t rss_pages = 0;        // field 24
  std::optional<int> exit_code;  // field 52 (Linux >= 3.5): the wait status, meaningful for zombies
};
std::optional<Stat> parse_stat(std::string_view text);

// PF_EXITING: the task is in do_exit(); its memory may already be gone while it is not yet a
// zombie.
inline constexpr uint64_t kTaskFlagExiting = 0x4;

// /proc/PID/cmdline: NUL-separated arguments. Empty for kernel threads and zombies.
std::vector<std::string> parse_cmdline(std::string_view text);

// /proc/PID/task/TID/syscall: "nr arg1..arg6 sp pc" while blocked in a syscall, "running" or
// "-1 sp pc" otherwise. Returns the user stack pointer when the file gives one.
std::optional<uint64_t> parse_syscall_stack_pointer(std::string_view text);

}  // namespace memdx::proc
