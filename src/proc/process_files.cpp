#include "proc/process_files.h"

#include "proc/kv.h"

namespace memdx::proc {
namespace {

std::optional<uint64_t> first_number(std::string_view value) {
  size_t end = value.find_first_of(" \t");
  return parse_u64(value.substr(0, end));
}

}  // namespace

Status parse_status(std::string_view text) {
  Status status;
  bool saw_vm_size = false;
  bool saw_kthread = false;
  for (std::string_view line : split_lines(text)) {
    auto kv = split_key_value(line);
    if (!kv) continue;
    const auto& [key, value] = *kv;
    if (key == "Name") {
      // Name is tab-separated from its key; keep inner spaces, drop only the separator.
      size_t colon = line.find(':');
      std::string_view raw = line.substr(colon + 1);
      while (!raw.empty() && (raw.front() == '\t' || raw.front() == ' ')) raw.remove_prefix(1);
      status.name = std::string(raw);
    } else if (key == "State") {
      status.state = value.empty() ? '?' : value.front();
    } else if (key == "Pid") {
      status.pid = static_cast<pid_t>(parse_u64(value).value_or(0));
    } else if (key == "PPid") {
      status.ppid = static_cast<pid_t>(parse_u64(value).value_or(0));
    } else if (key == "Uid") {
      status.real_uid = static_cast<uid_t>(first_number(value).value_or(0));
    } else if (key == "Threads") {
      status.threads = static_cast<uint32_t>(parse_u64(value).value_or(0));
    } else if (key == "NSpid") {
      std::string_view rest = value;
      while (!rest.empty()) {
        size_t end = rest.find_first_of(" \t");
        if (std::optional<uint64_t> pid = parse_u64(rest.substr(0, end))) {
          status.ns_pids.push_back(static_cast<pid_t>(*pid));
        }
        rest = end == std::string_view::npos ? std::string_view() : trim(rest.substr(end));
      }
    } else if (key == "Kthread") {
      status.is_kernel_thread = value == "1";
      saw_kthread = true;
    } else if (key == "VmPeak") {
      status.vm_peak_bytes = parse_kb_value(value);
    } else if (key == "VmSize") {
      status.vm_size_bytes = parse_kb_value(value);
      saw_vm_size = true;
    } else if (key == "VmLck") {
      status.vm_lck_bytes = parse_kb_value(value);
    } else if (key == "VmHWM") {
      status.vm_hwm_bytes = parse_kb_value(value);
    } else if (key == "VmRSS") {
      status.vm_rss_bytes = parse_kb_value(value);
    } else if (key == "RssAnon") {
      status.rss_anon_bytes = parse_kb_value(value);
    } else if (key == "RssFile") {
      status.rss_file_bytes = parse_kb_value(value);
    } else if (key == "RssShmem") {
      status.rss_shmem_bytes = parse_kb_value(value);
    } else if (key == "VmSwap") {
      status.vm_swap_bytes = parse_kb_value(value);
    }
  }
  // Before "Kthread:" existed (Linux < 6.x), a live task without an mm was a kernel thread.
  // An exiting task (Kthread: 0, mm already released) must not be taken for one.
  if (!saw_kthread && !saw_vm_size && status.state != 'Z' && status.state != 'X') status.is_kernel_thread = true;
  return status;
}

std::optional<Stat> parse_stat(std::string_view text) {
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return std::nullopt;
  }
  Stat stat;
  auto pid = parse_u64(text.substr(0, open));
  if (!pid) return std::nullopt;
  stat.pid = static_cast<pid_t>(*pid);
  stat.comm = std::string(text.substr(open + 1, close - open - 1));

  // Fields after comm, 1-based as in proc(5): 3 state, 4 ppid, 20 num_threads, 22 starttime.
  std::string_view rest = text.substr(close + 1);
  std::vector<std::string_view> fields;
  size_t pos = 0;
  while (pos < rest.size()) {
    size_t start = rest.find_first_not_of(" \n", pos);
    if (start == std::string_view::npos) break;
    size_t end = rest.find_first_of(" \n", start);
    if (end == std::string_view::npos) end = rest.size();
    fields.push_back(rest.substr(start, end - start));
    pos = end;
  }
  auto field = [&](size_t number) -> std::string_view {
    size_t index = number - 3;
    return index < fields.size() ? fields[index] : std::string_view{};
  };
  if (field(3).empty()) return std::nullopt;
  stat.state = field(3).front();
  stat.ppid = static_cast<pid_t>(parse_u64(field(4)).value_or(0));
  stat.flags = parse_u64(field(9)).value_or(0);
  stat.faults = parse_u64(field(10)).value_or(0) + parse_u64(field(12)).value_or(0);
  stat.cpu_ticks = parse_u64(field(14)).value_or(0) + parse_u64(field(15)).value_or(0);
  stat.vsize_bytes = parse_u64(field(23)).value_or(0);
  stat.rss_pages = parse_u64(field(24)).value_or(0);
  stat.threads = static_cast<uint32_t>(parse_u64(field(20)).value_or(0));
  stat.start_time_ticks = parse_u64(field(22)).value_or(0);
  if (auto code = parse_u64(field(52))) stat.exit_code = static_cast<int>(*code);
  return stat;
}

std::vector<std::string> parse_cmdline(std::string_view text) {
  std::vector<std::string> args;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\0', start);
    if (end == std::string_view::npos) end = text.size();
    args.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return args;
}

std::optional<uint64_t> parse_syscall_stack_pointer(std::string_view text) {
  text = trim(text);
  if (text.empty() || text == "running") return std::nullopt;
  std::vector<std::string_view> words;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = text.find_first_not_of(' ', pos);
    if (start == std::string_view::npos) break;
    size_t end = text.find(' ', start);
    if (end == std::string_view::npos) end = text.size();
    words.push_back(text.substr(start, end - start));
    pos = end;
  }
  // "nr a1 a2 a3 a4 a5 a6 sp pc" (9 words) or "-1 sp pc" (3 words): sp is second to last.
  if (words.size() != 9 && words.size() != 3) return std::nullopt;
  std::string_view sp = words[words.size() - 2];
  if (sp.starts_with("0x")) sp.remove_prefix(2);
  return parse_hex_u64(sp);
}

}  // namespace memdx::proc
