#include "serve/monitor.h"

#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>
#include <stdexcept>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "analyze/diagnose.h"
#include "proc/ancestry.h"
#include "proc/cgroup_files.h"
#include "proc/kv.h"
#include "proc/process_files.h"
#include "proc/smaps.h"
#include "proc/system_files.h"

namespace memdx::serve {
namespace {

using Clock = std::chrono::steady_clock;

// top:N uses a PSS it read of a process not served yet this long before reading it again.
constexpr std::chrono::milliseconds kTopPssRefresh{60000};

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<uint64_t> parse_count(std::string_view text) {
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// The path of `pid`'s cgroup as /proc/PID/cgroup names it: the unified one, else the v1 memory one.
std::string cgroup_path_of(const proc::ProcFs& fs, pid_t pid) {
  auto text = fs.read_pid_file(pid, "cgroup");
  if (!text.ok()) return "";
  std::string memory_v1;
  for (const proc::CgroupEntry& entry : proc::parse_proc_cgroup(*text)) {
    if (entry.hierarchy_id == 0) return entry.path;
    if (std::find(entry.controllers.begin(), entry.controllers.end(), "memory") != entry.controllers.end()) {
      memory_v1 = entry.path;
    }
  }
  return memory_v1;
}

// The cgroup.procs file of cgroup `path`: in the unified hierarchy, else the v1 memory one.
std::optional<std::string> cgroup_procs_file(const proc::ProcFs& fs, const std::string& path) {
  std::vector<proc::MountEntry> mounts = fs.cgroup_mounts();
  for (const char* type : {"cgroup2", "cgroup"}) {
    for (const proc::MountEntry& mount : mounts) {
      if (mount.fs_type != type) continue;
      if (mount.fs_type == "cgroup" && ("," + mount.super_options + ",").find(",memory,") == std::string::npos) {
        continue;
      }
      std::string relative = path;
      if (mount.root != "/" && relative.starts_with(mount.root)) relative = relative.substr(mount.root.size());
      std::string file = mount.mount_point + (relative == "/" ? "" : relative) + "/cgroup.procs";
      struct stat st {};
      if (::stat(file.c_str(), &st) == 0) return file;
    }
  }
  return std::nullopt;
}

}  // namespace

Monitor::HistoryPoint Monitor::HistoryPoint::of(const model::ProcessSample& sample) {
  auto kib = [](uint64_t bytes) { return static_cast<uint32_t>(std::min<uint64_t>(bytes / 1024, UINT32_MAX)); };
  HistoryPoint point;
  point.t_ms = sample.t_ms;
  point.rss_kib = kib(sample.rss_bytes);
  point.rss_anon_kib = kib(sample.rss_anon_bytes);
  point.rss_file_kib = kib(sample.rss_file_bytes);
  point.rss_shmem_kib = kib(sample.rss_shmem_bytes);
  point.swap_kib = kib(sample.swap_bytes);
  point.vsz_kib = kib(sample.vsz_bytes);
  point.fds = sample.fds ? std::min<uint32_t>(*sample.fds, kNoFds - 1) : kNoFds;
  point.threads = sample.threads;
  return point;
}

model::ProcessSample Monitor::HistoryPoint::sample(pid_t pid) const {
  model::ProcessSample out;
  out.t_ms = t_ms;
  out.pid = pid;
  out.rss_bytes = uint64_t{rss_kib} * 1024;
  out.rss_anon_bytes = uint64_t{rss_anon_kib} * 1024;
  out.rss_file_bytes = uint64_t{rss_file_kib} * 1024;
  out.rss_shmem_bytes = uint64_t{rss_shmem_kib} * 1024;
  out.swap_bytes = uint64_t{swap_kib} * 1024;
  out.vsz_bytes = uint64_t{vsz_kib} * 1024;
  if (fds != kNoFds) out.fds = fds;
  out.threads = threads;
  return out;
}

TargetSpec parse_target(const std::string& text) {
  TargetSpec spec;
  spec.text = text;
  if (text.empty()) throw std::invalid_argument("an empty TARGET: give a pid, a name, cgroup:PATH or top:N");
  if (text.starts_with("cgroup:")) {
    spec.kind = TargetKind::kCgroup;
    spec.cgroup_path = text.substr(7);
    if (spec.cgroup_path.empty() || spec.cgroup_path[0] != '/') {
      throw std::invalid_argument(
          fmt::format("'{}': a cgroup target is cgroup:PATH with PATH as /proc/PID/cgroup shows it, e.g. "
                      "cgroup:/system.slice/x.service",
                      text));
    }
    while (spec.cgroup_path.size() > 1 && spec.cgroup_path.back() == '/') spec.cgroup_path.pop_back();
    return spec;
  }
  if (text.starts_with("top:")) {
    spec.kind = TargetKind::kTop;
    std::optional<uint64_t> count = parse_count(std::string_view(text).substr(4));
    if (!count || *count == 0 || *count > 10000) {
      throw std::invalid_argument(fmt::format("'{}': top:N takes a count from 1 to 10000", text));
    }
    spec.top_count = static_cast<size_t>(*count);
    return spec;
  }
  if (std::isdigit(static_cast<unsigned char>(text[0])) != 0 || text[0] == '-' || text[0] == '+') {
    std::optional<uint64_t> pid = parse_count(text);
    if (!pid || *pid == 0 || *pid > 4194304) {
      throw std::invalid_argument(fmt::format("'{}' is not a pid (a number from 1 to 4194304)", text));
    }
    spec.kind = TargetKind::kPid;
    spec.pid = static_cast<pid_t>(*pid);
    return spec;
  }
  spec.kind = TargetKind::kName;
  spec.name = text;
  return spec;
}

std::string command_template(const std::vector<std::string>& argv) {
  std::string out;
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string_view arg = argv[i];
    if (i == 0) {
      size_t slash = arg.rfind('/');
      if (slash != std::string_view::npos) arg = arg.substr(slash + 1);
    } else {
      out += ' ';
    }
    bool in_digits = false;
    for (char c : arg) {
      bool digit = std::isdigit(static_cast<unsigned char>(c)) != 0;
      if (digit && !in_digits) out += 'N';
      if (!digit) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
      in_digits = digit;
    }
    if (out.size() >= 80) break;
  }
  if (out.size() > 80) {
    // Never cut inside a UTF-8 sequence: back up to a lead byte.
    size_t cut = 80;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
  }
  return out;
}

Monitor::Monitor(MonitorOptions options)
    : options_(std::move(options)),
      fs_(options_.proc_root, options_.sys_root),
      sampler_(fs_, record::SamplerOptions{.rollup_budget = options_.pss_budget,
                                           .idle_refresh_ms = options_.idle_refresh.count(),
                                           .idle_rollup_refresh_ms = options_.idle_pss_refresh.count(),
                                           .rollup_cost_factor = options_.pss_cost_factor,
                                           .count_fds = false}),
      tops_(options_.targets.size(), TopByPss(TopChoiceOptions{.read_budget = options_.pss_budget,
                                                               .refresh = kTopPssRefresh,
                                                               .cost_factor = options_.pss_cost_factor})),
      gpu_(fs_),
      started_(Clock::now()),
      started_unix_ms_(unix_ms_now()),
      snapshot_(std::make_shared<Snapshot>()) {}

Monitor::~Monitor() {
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<const Snapshot> Monitor::latest() const {
  std::lock_guard<std::mutex> lock(snapshot_mutex_);
  return snapshot_;
}

void Monitor::start() {
  thread_ = std::thread([this] { run(); });
}

void Monitor::run() {
  Clock::time_point next = Clock::now();
  std::unique_lock<std::mutex> lock(stop_mutex_);
  while (!stopping_) {
    lock.unlock();
    tick();
    lock.lock();
    next += options_.interval;
    Clock::time_point now = Clock::now();
    if (next < now) {
      // The tick overran its interval: start again from now rather than catching up in a burst.
      ++ticks_late_;
      next = now + options_.interval;
    }
    stop_cv_.wait_until(lock, next, [this] { return stopping_; });
  }
}

void Monitor::note_error(const proc::ReadError& error) {
  if (error.kind == proc::ReadErrorKind::kProcessGone) return;  // exiting is not an error
  // One entry per kind of source, not per process: "/proc/PID/smaps_rollup", so that the set
  // stays bounded however many processes come and go.
  std::string source = error.path;
  if (source.starts_with("/proc/")) {
    size_t end = source.find('/', 6);
    if (end != std::string::npos && parse_count(std::string_view(source).substr(6, end - 6))) {
      source = "/proc/PID" + source.substr(end);
    }
  }
  SourceError& entry = errors_[source];
  entry.source = source;
  entry.message = error.kind == proc::ReadErrorKind::kPermissionDenied ? "permission denied" : error.message;
  ++entry.count;
}

std::vector<pid_t> Monitor::resolve(std::vector<std::string>& unmatched, std::set<pid_t>& named,
                                    std::map<pid_t, proc::Stat>& stats) {
  std::set<pid_t> chosen;
  auto all = fs_.list_pids();
  if (!all.ok()) {
    note_error(all.error());
    return {};
  }
  // Every process's stat once per tick: names, parents and sizes for the targets that need them
  // (and kept in `stats` for the tick, which then reads no stat again).
  std::map<pid_t, proc::Stat>& seen = stats;
  bool need_scan = options_.tree;
  for (const TargetSpec& target : options_.targets) need_scan = need_scan || target.kind != TargetKind::kPid;
  if (need_scan) {
    for (pid_t pid : *all) {
      auto text = fs_.read_pid_file(pid, "stat");
      if (!text.ok()) continue;
      if (std::optional<proc::Stat> stat = proc::parse_stat(*text)) {
        seen[pid] = std::move(*stat);
      }
    }
  }
  // memdx itself and its ancestors never match a name (the shell that started it names it too).
  std::set<pid_t> own_line;
  for (pid_t pid : proc::ancestry_of(fs_, ::getpid()).chain) own_line.insert(pid);
  const uint64_t page_bytes = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));

  for (const TargetSpec& target : options_.targets) {
    bool any = false;
    switch (target.kind) {
      case TargetKind::kPid:
        if (fs_.process_exists(target.pid)) {
          chosen.insert(target.pid);
          named.insert(target.pid);
          any = true;
        }
        break;
      case TargetKind::kName:
        for (const auto& [pid, process] : seen) {
          if (pid <= 0 || own_line.count(pid) != 0 || process.rss_pages == 0) continue;  // kernel threads hold none
          bool match = process.comm == target.name;
          if (!match) {
            auto cmdline = fs_.read_pid_file(pid, "cmdline");
            if (cmdline.ok()) {
              for (const std::string& arg : proc::parse_cmdline(*cmdline)) {
                if (arg.find(target.name) != std::string::npos) {
                  match = true;
                  break;
                }
              }
            }
          }
          if (match) {
            chosen.insert(pid);
            any = true;
          }
        }
        break;
      case TargetKind::kCgroup: {
        std::optional<std::string> procs = cgroup_procs_file(fs_, target.cgroup_path);
        if (!procs) break;
        auto text = fs_.read_file(*procs);
        if (!text.ok()) {
          note_error(text.error());
          break;
        }
        for (std::string_view line : proc::split_lines(*text)) {
          if (std::optional<uint64_t> pid = parse_count(proc::trim(line))) {
            chosen.insert(static_cast<pid_t>(*pid));
            any = true;
          }
        }
        break;
      }
      case TargetKind::kTop: {
        // A process already served has the PSS the sampler keeps fresh on its own schedule (every
        // tick within the budget while it runs, every idle_pss_refresh while it sleeps): no read.
        int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count();
        std::vector<TopCandidate> candidates;
        candidates.reserve(seen.size());
        for (const auto& [pid, process] : seen) {
          if (own_line.count(pid) != 0 || process.rss_pages == 0) continue;
          TopCandidate candidate{pid, process.start_time_ticks, process.rss_pages * page_bytes, std::nullopt};
          auto served = histories_.find(pid);
          if (served != histories_.end() && served->second.start_ticks == process.start_time_ticks &&
              served->second.pss_bytes) {
            candidate.known_pss_bytes = served->second.pss_bytes;
          }
          candidates.push_back(candidate);
        }
        auto read_pss = [this](pid_t pid) -> std::optional<uint64_t> {
          auto text = fs_.read_pid_file(pid, "smaps_rollup");
          if (!text.ok()) return std::nullopt;  // ranked by RSS; the sampler reports its own reads' errors
          return proc::parse_smaps_rollup(*text).pss_bytes;
        };
        TopByPss& chooser = tops_[static_cast<size_t>(&target - options_.targets.data())];
        std::vector<pid_t> top = chooser.choose(std::move(candidates), target.top_count, now_ms, read_pss);
        chosen.insert(top.begin(), top.end());
        any = !top.empty();
        break;
      }
    }
    if (!any) unmatched.push_back(target.text);
  }
  if (options_.tree && !chosen.empty()) {
    // Descendants: walk children breadth-first from the chosen processes.
    std::multimap<pid_t, pid_t> children;
    for (const auto& [pid, process] : seen) children.emplace(process.ppid, pid);
    std::vector<pid_t> frontier(chosen.begin(), chosen.end());
    while (!frontier.empty()) {
      pid_t parent = frontier.back();
      frontier.pop_back();
      auto [first, last] = children.equal_range(parent);
      for (auto it = first; it != last; ++it) {
        if (chosen.insert(it->second).second) frontier.push_back(it->second);
      }
    }
  }
  return {chosen.begin(), chosen.end()};
}

void Monitor::tick() {
  Clock::time_point tick_start = Clock::now();
  auto snapshot = std::make_shared<Snapshot>();
  int64_t t_ms = std::chrono::duration_cast<std::chrono::milliseconds>(tick_start - started_).count();
  std::set<pid_t> named;
  std::map<pid_t, proc::Stat> stats;
  std::vector<pid_t> pids = resolve(snapshot->unmatched_targets, named, stats);
  for (pid_t pid : pids) {
    if (stats.count(pid) != 0) continue;
    if (auto text = fs_.read_pid_file(pid, "stat"); text.ok()) {
      if (std::optional<proc::Stat> stat = proc::parse_stat(*text)) stats[pid] = std::move(*stat);
    }
  }
  // A process that has not run since its last full read (same CPU time, faults, sizes and
  // threads in its stat) keeps its sample: nothing of it is read but its stat (and its full
  // read is refreshed every 30 s all the same). Most of a big target set is idle at any moment.
  auto activity_of = [&stats](pid_t pid) -> std::optional<record::ProcessTreeTracker::Activity> {
    auto found = stats.find(pid);
    if (found == stats.end()) return std::nullopt;
    const proc::Stat& stat = found->second;
    return record::ProcessTreeTracker::Activity{stat.cpu_ticks, stat.faults, stat.vsize_bytes, stat.rss_pages,
                                                stat.threads};
  };
  std::vector<model::ProcessSample> samples = sampler_.sample(pids, t_ms, activity_of);
  pss_skipped_ += sampler_.last_rollups_skipped();
  samples_taken_ += samples.size();
  for (const proc::ReadError& error : sampler_.last_rollup_errors()) note_error(error);

  // Processes gone since the last tick lose their history (and their series at this scrape).
  std::set<pid_t> sampled;
  for (const model::ProcessSample& s : samples) sampled.insert(s.pid);
  for (auto it = histories_.begin(); it != histories_.end();) {
    if (sampled.count(it->first) == 0) {
      sampler_.forget(it->first);
      it = histories_.erase(it);
    } else {
      ++it;
    }
  }

  for (model::ProcessSample& s : samples) {
    auto scanned = stats.find(s.pid);
    if (scanned == stats.end()) continue;  // gone between its stat and its sample
    const proc::Stat* stat = &scanned->second;
    auto found = histories_.find(s.pid);
    if (found != histories_.end() && found->second.start_ticks != stat->start_time_ticks) {
      histories_.erase(found);  // the pid now belongs to another process
      found = histories_.end();
    }
    if (found != histories_.end() && found->second.comm != stat->comm) {
      // The process exec'd another program (a launcher, a shell's exec): name it anew.
      History& renamed = found->second;
      renamed.comm = stat->comm;
      auto cmdline = fs_.read_pid_file(s.pid, "cmdline");
      renamed.record.command = cmdline.ok() ? proc::parse_cmdline(*cmdline) : std::vector<std::string>{};
      if (renamed.record.command.empty()) renamed.record.command = {stat->comm};
      renamed.command = command_template(renamed.record.command);
    }
    if (found == histories_.end()) {
      History history;
      history.comm = stat->comm;
      history.start_ticks = stat->start_time_ticks;
      history.record.pid = s.pid;
      history.record.ppid = stat->ppid;
      history.record.first_seen_ms = t_ms;
      auto cmdline = fs_.read_pid_file(s.pid, "cmdline");
      history.record.command = cmdline.ok() ? proc::parse_cmdline(*cmdline) : std::vector<std::string>{};
      if (history.record.command.empty()) history.record.command = {stat->comm};
      history.command = command_template(history.record.command);
      history.cgroup = cgroup_path_of(fs_, s.pid);
      found = histories_.emplace(s.pid, std::move(history)).first;
    }
    History& history = found->second;
    // The fds: counted every tick (a listing), classified by type (a readlink each) when the
    // count changed or every tenth tick: most of a tick's cost was the readlinks.
    bool idle = sampler_.reused_last_tick(s.pid) && history.fds;
    proc::Result<uint32_t> count = idle ? proc::Result<uint32_t>(history.fds->total) : fs_.count_fd_entries(s.pid);
    if (count.ok()) {
      s.fds = *count;
      if (!history.fds || history.fds->total != *count || sequence_ - history.fds_sequence >= 10) {
        if (auto fds = fs_.count_fds(s.pid); fds.ok()) {
          history.fds = *fds;
          history.fds_sequence = sequence_;
        }
      }
    } else {
      note_error(count.error());
    }
    history.samples.push(HistoryPoint::of(s), options_.history_samples);
    if (s.pss_bytes) {
      history.pss_bytes = s.pss_bytes;
      history.uss_bytes = s.uss_bytes;
      history.pss_t_ms = t_ms;
    }

    ProcessState state;
    state.pid = s.pid;
    state.pid_label = named.count(s.pid) != 0;
    state.name = stat->comm;
    state.command = history.command;
    state.cgroup = history.cgroup;
    state.sample = s;
    state.pss_bytes = history.pss_bytes;
    state.uss_bytes = history.uss_bytes;
    if (history.pss_bytes) state.pss_age_ms = t_ms - history.pss_t_ms;
    if (count.ok()) state.fds = history.fds;
    snapshot->processes.push_back(std::move(state));
  }

  read_gpu(*snapshot);

  // The machine.
  if (auto meminfo = fs_.meminfo(); meminfo.ok()) {
    snapshot->mem_total_bytes = meminfo->mem_total_bytes;
    snapshot->mem_available_bytes = meminfo->mem_available_bytes;
    snapshot->swap_total_bytes = meminfo->swap_total_bytes;
    snapshot->swap_free_bytes = meminfo->swap_free_bytes;
  } else {
    note_error(meminfo.error());
  }
  if (std::optional<proc::Psi> psi = fs_.system_memory_pressure()) {
    if (psi->some) snapshot->psi_some_avg10 = psi->some->avg10;
    if (psi->full) snapshot->psi_full_avg10 = psi->full->avg10;
  }
  snapshot->sample_seconds = std::chrono::duration<double>(Clock::now() - tick_start).count();

  judge(*snapshot, t_ms);

  number_replicas(snapshot->processes, histories_);
  // Largest first; beyond the cap, one "other" rollup.
  std::sort(snapshot->processes.begin(), snapshot->processes.end(),
            [](const ProcessState& a, const ProcessState& b) { return a.sample.rss_bytes > b.sample.rss_bytes; });
  if (snapshot->processes.size() > options_.max_processes) {
    for (size_t i = options_.max_processes; i < snapshot->processes.size(); ++i) {
      snapshot->other_rss_bytes += snapshot->processes[i].sample.rss_bytes;
      snapshot->other_pss_bytes += snapshot->processes[i].pss_bytes.value_or(0);
    }
    snapshot->other_count = snapshot->processes.size() - options_.max_processes;
    snapshot->processes.resize(options_.max_processes);
  }

  read_cgroups(*snapshot);
  snapshot->sequence = ++sequence_;
  snapshot->t_unix_ms = unix_ms_now();
  snapshot->samples_taken = samples_taken_;
  snapshot->ticks_late = ticks_late_;
  snapshot->pss_reads_skipped = pss_skipped_;
  if (auto self = fs_.read_pid_file(::getpid(), "stat"); self.ok()) {
    if (std::optional<proc::Stat> stat = proc::parse_stat(*self)) {
      snapshot->self_rss_bytes = stat->rss_pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    }
  }
  for (const auto& [source, error] : errors_) snapshot->errors.push_back(error);

  {
    std::lock_guard<std::mutex> lock(snapshot_mutex_);
    snapshot_ = std::move(snapshot);
  }
  if (options_.trim_heap_after_tick) ::malloc_trim(0);
}

void Monitor::read_gpu(Snapshot& snapshot) {
  // One NVML pass for every process; DRM fdinfo only of the processes whose fds include a DRM node.
  std::map<std::string, std::string> device_names;  // "nvidia0" -> "nvidia0 (NVIDIA H200)"
  std::vector<proc::NvidiaCandidate> candidates;
  candidates.reserve(snapshot.processes.size());
  for (const ProcessState& process : snapshot.processes) {
    candidates.push_back(proc::nvidia_candidate(process.pid, process.fds ? &*process.fds : nullptr));
  }
  gpu_.refresh(candidates);
  for (ProcessState& process : snapshot.processes) {
    process.gpu = gpu_.usage(process.pid, process.fds ? &*process.fds : nullptr);
    auto found = histories_.find(process.pid);
    if (found == histories_.end()) continue;
    History& history = found->second;
    uint32_t kib = kNoGpu;
    if (process.gpu) {
      uint64_t bytes = 0;
      for (const proc::ProcessGpuReading& usage : *process.gpu) {
        bytes += usage.bytes;
        if (usage.bytes == 0) continue;
        if (device_names.empty()) {
          for (const proc::GpuDeviceReading& device : gpu_.devices()) {
            device_names[device.id] = proc::device_label(device);
          }
        }
        auto name = device_names.find(usage.device_id);
        std::string shown = name == device_names.end() ? usage.device_id : name->second;
        std::vector<std::string>& known = history.record.gpu_devices;
        if (std::find(known.begin(), known.end(), shown) == known.end()) known.push_back(shown);
      }
      kib = static_cast<uint32_t>(std::min<uint64_t>(bytes / 1024, kNoGpu - 1));
      history.gpu_measured = true;
    }
    if (history.gpu_kib.size() > 0) {
      history.gpu_kib.push(kib, options_.history_samples);
    } else if (kib != kNoGpu && kib > 0) {
      history.gpu_kib = Ring<uint32_t>::aligned_with(history.samples, options_.history_samples, 0u, kib);
    }
  }
  snapshot.gpu_devices = gpu_.devices();
  snapshot.nvml_note = gpu_.nvml_note();
  for (const std::string& error : gpu_.errors()) {
    SourceError& entry = errors_["nvml"];
    entry.source = "nvml";
    entry.message = error;
    ++entry.count;
  }
}

void Monitor::read_cgroups(Snapshot& snapshot) {
  std::map<std::string, pid_t> member;  // a process of each cgroup, to find its files by
  for (const ProcessState& process : snapshot.processes) {
    if (!process.cgroup.empty()) member.emplace(process.cgroup, process.pid);
  }
  for (const auto& [path, pid] : member) {
    if (snapshot.cgroups.size() >= options_.max_cgroups) break;
    std::optional<proc::CgroupMemory> memory = fs_.memory_cgroup(pid);
    if (!memory) continue;
    CgroupState cgroup;
    cgroup.path = path;
    cgroup.usage_bytes = memory->current_bytes;
    cgroup.limit_bytes = memory->max_bytes;
    cgroup.high_bytes = memory->high_bytes;
    std::optional<proc::Psi> psi = memory->psi;
    if (!psi) {
      // A hybrid host: the memory controller is v1, the PSI file is the unified cgroup's.
      if (std::optional<std::string> unified = fs_.cgroup2_directory(pid)) {
        if (auto text = fs_.read_file(*unified + "/memory.pressure"); text.ok()) psi = proc::parse_psi(*text);
      }
    }
    if (psi && psi->some) cgroup.psi_some_avg10 = psi->some->avg10;
    if (psi && psi->full) cgroup.psi_full_avg10 = psi->full->avg10;
    snapshot.cgroups.push_back(std::move(cgroup));
  }
}

void Monitor::number_replicas(std::vector<ProcessState>& processes, const std::map<pid_t, History>& histories) {
  // Oldest first within each identity: the longest-lived process keeps replica 0.
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<std::pair<uint64_t, ProcessState*>>> groups;
  for (ProcessState& process : processes) {
    if (process.pid_label) continue;
    auto history = histories.find(process.pid);
    uint64_t start = history == histories.end() ? 0 : history->second.start_ticks;
    groups[{process.name, process.command, process.cgroup}].emplace_back(start, &process);
  }
  for (auto& [identity, members] : groups) {
    std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second->pid < b.second->pid;
    });
    for (size_t i = 0; i < members.size(); ++i) members[i].second->replica = i;
  }
}

void Monitor::judge(Snapshot& snapshot, int64_t now_ms) {
  Clock::time_point now = Clock::now();
  bool due = last_judged_ == Clock::time_point{} || now - last_judged_ >= options_.judge_interval;
  if (due) {
    analyze::RecordingData data;
    data.meta.kind = "serve";
    data.meta.interval_ms = options_.interval.count();
    data.meta.started_at_unix_ms = started_unix_ms_;
    data.meta.mem_total_bytes = snapshot.mem_total_bytes;
    for (const auto& [pid, history] : histories_) data.processes.push_back(history.record);
    // One process's samples at a time, as the diagnosis asks for them: a thousand processes'
    // histories in full form at once would be 30 MiB.
    data.load_samples = [this](pid_t pid) {
      std::vector<model::ProcessSample> samples;
      auto found = histories_.find(pid);
      if (found == histories_.end()) return samples;
      const History& history = found->second;
      samples.reserve(history.samples.size());
      history.samples.for_each([&](const HistoryPoint& point) { samples.push_back(point.sample(pid)); });
      bool aligned = history.gpu_kib.size() == samples.size();
      for (size_t i = 0; i < samples.size() && history.gpu_measured; ++i) {
        uint32_t kib = aligned ? history.gpu_kib.at(i) : 0;
        if (kib != kNoGpu) samples[i].gpu_bytes = uint64_t{kib} * 1024;
      }
      return samples;
    };
    if (snapshot.mem_available_bytes) {
      model::SystemSample system;
      system.t_ms = now_ms;
      system.mem_available_bytes = snapshot.mem_available_bytes;
      system.swap_free_bytes = snapshot.swap_free_bytes;
      system.psi_some_avg10 = snapshot.psi_some_avg10;
      data.system_samples.push_back(system);
    }
    if (!histories_.empty()) data.root_pid = histories_.begin()->first;
    Verdict verdict = analyze::diagnose(data);
    // The differential diagnosis (every hypothesis of every process) is kept for the processes with
    // a leak only: for a thousand bounded processes it would be megabytes that nobody reads.
    std::set<pid_t> leaking;
    for (const Finding& finding : verdict.findings) {
      if (finding.severity == Severity::kLeak) leaking.insert(finding.pid);
    }
    std::erase_if(verdict.hypotheses,
                  [&leaking](const Hypothesis& hypothesis) { return leaking.count(hypothesis.pid) == 0; });
    verdict.hypotheses.shrink_to_fit();
    last_verdict_ = std::make_shared<const Verdict>(std::move(verdict));
    last_judged_ = now;
    last_judge_seconds_ = std::chrono::duration<double>(Clock::now() - now).count();

    last_judgement_.clear();
    for (const Finding& finding : last_verdict_->findings) {
      ProcessState& judged = last_judgement_[finding.pid];
      judged.judged = judged.judged || finding.kind != FindingKind::kNoGrowth || finding.confidence > 0;
      bool leak = finding.severity == Severity::kLeak;
      // The finding that speaks for the process: a leak before anything else, the fastest first.
      bool better = (leak && !judged.leak) ||
                    (leak == judged.leak && finding.is_bytes() &&
                     (judged.growth_series.empty() || finding.rate_per_s > judged.growth_bytes_per_second));
      if (leak) judged.leak = true;
      if (better && finding.is_bytes()) {
        judged.confidence = finding.confidence;
        judged.growth_bytes_per_second = finding.rate_per_s;
        judged.growth_series = to_string(finding.series);
        judged.seconds_to_limit = finding.time_to_limit_s;
      }
    }
  }
  snapshot.verdict = last_verdict_;
  snapshot.judge_seconds = last_judge_seconds_;
  for (ProcessState& process : snapshot.processes) {
    auto found = last_judgement_.find(process.pid);
    if (found == last_judgement_.end()) continue;
    process.judged = found->second.judged;
    process.leak = found->second.leak;
    process.confidence = found->second.confidence;
    process.growth_bytes_per_second = found->second.growth_bytes_per_second;
    process.growth_series = found->second.growth_series;
    process.seconds_to_limit = found->second.seconds_to_limit;
  }
}

}  // namespace memdx::serve
