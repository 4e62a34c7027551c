#include "cli/target.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <set>

#include <fmt/format.h>

#include "cli/errors.h"
#include "model/format.h"
#include "model/terminal_text.h"
#include "proc/ancestry.h"
#include "proc/kv.h"
#include "proc/process_files.h"

namespace memdx::cli {
namespace {

constexpr uint64_t kPidMaxLimit = 4194304;  // PID_MAX_LIMIT on 64-bit Linux

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

bool looks_numeric(const std::string& s) {
  if (s.empty()) return false;
  size_t first = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  return first < s.size() && std::isdigit(static_cast<unsigned char>(s[first])) != 0;
}

std::set<pid_t> self_and_ancestors(const proc::ProcFs& fs) {
  std::vector<pid_t> chain = proc::ancestry_of(fs, ::getpid()).chain;
  return {chain.begin(), chain.end()};
}

pid_t parse_pid(const proc::ProcFs& fs, const std::string& argument) {
  auto value = proc::parse_u64(argument);
  if (!value || *value == 0 || *value > kPidMaxLimit) {
    throw UsageError(fmt::format("'{}' is not a valid pid: a pid is a whole number from 1 to {}",
                                 model::terminal_safe(argument), kPidMaxLimit));
  }
  pid_t pid = static_cast<pid_t>(*value);
  if (!fs.process_exists(pid)) throw RuntimeError(fmt::format("no process with pid {}", pid));
  return pid;
}

}  // namespace

std::vector<TargetMatch> resolve_target(const proc::ProcFs& fs, const std::string& argument) {
  if (all_digits(argument)) {
    pid_t pid = parse_pid(fs, argument);
    return {{pid, ""}};
  }
  if (argument.empty() || looks_numeric(argument)) {
    throw UsageError(fmt::format("'{}' is not a valid pid or process name: a pid is a positive whole number",
                                 model::terminal_safe(argument)));
  }
  std::set<pid_t> excluded = self_and_ancestors(fs);
  std::vector<TargetMatch> matches;
  proc::Result<std::vector<pid_t>> pids = fs.list_pids();
  if (!pids.ok()) {
    throw RuntimeError(fmt::format("cannot list the processes in {}: {}", pids.error().path, pids.error().message));
  }
  for (pid_t pid : *pids) {
    auto comm = fs.read_pid_file(pid, "comm");
    if (!comm.ok()) continue;
    std::string name(proc::trim(*comm));
    bool exact = name == argument;
    if (pid == ::getpid() || (excluded.count(pid) != 0 && !exact)) continue;
    auto cmdline = fs.read_pid_file(pid, "cmdline");
    std::string command = cmdline.ok() ? model::joined(proc::parse_cmdline(*cmdline)) : std::string();
    if (exact || (!command.empty() && command.find(argument) != std::string::npos)) {
      matches.push_back({pid, command.empty() ? "[" + name + "]" : command});
    }
  }
  if (matches.empty()) {
    throw RuntimeError(
        fmt::format("no process matches '{}' (by name or command line)", model::terminal_safe(argument)));
  }
  return matches;
}

std::vector<pid_t> select_targets(const proc::ProcFs& fs, const std::string& argument, bool allow_many) {
  std::vector<TargetMatch> matches = resolve_target(fs, argument);
  if (matches.size() > 1 && !allow_many) {
    std::string list;
    for (const TargetMatch& m : matches) {
      // Command lines and names are the processes' own: an escape sequence in one must not act.
      list += fmt::format("\n  {:>8}  {}", m.pid, model::shorten(model::terminal_safe(m.command), 100));
    }
    throw UsageError(fmt::format("'{}' matches {} processes; give one pid, or --all to inspect them all:{}",
                                 model::terminal_safe(argument), matches.size(), list));
  }
  std::vector<pid_t> pids;
  pids.reserve(matches.size());
  for (const TargetMatch& m : matches) pids.push_back(m.pid);
  return pids;
}

}  // namespace memdx::cli
