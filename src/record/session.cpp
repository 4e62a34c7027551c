#include "record/session.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <nlohmann/json.hpp>

#include "record/gpu_sampler.h"
#include "record/process_tree.h"
#include "store/schema.h"
#include "store/store_error.h"

namespace memdx::record {
namespace {

using Clock = std::chrono::steady_clock;

sigset_t session_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&set, sig);
  return set;
}

int64_t elapsed_ms(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// Reaps every child that has exited: the root, and orphans reparented to memdx (subreaper).
void reap_children(ProcessTreeTracker& tree, std::optional<int>& root_status) {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    tree.note_exit_status(pid, status);
    if (pid == tree.root()) root_status = status;
  }
}

// {"PID": ["nvidia0 (NVIDIA H200)", ...]}: the meta row the reader gives back as gpu_devices.
std::string gpu_devices_json(const std::map<pid_t, std::vector<std::string>>& devices_of) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [pid, devices] : devices_of) out[std::to_string(pid)] = devices;
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void store_changes(store::RecordingWriter& writer, const TreeChanges& changes) {
  for (const auto& born : changes.born) writer.add_process(born);
  for (const auto& changed : changes.exec_changed) writer.add_process(changed);
  for (const auto& exited : changes.exited) {
    // One the recording never stored is stored whole, with its end, rather than lost.
    if (!writer.mark_exited(exited.pid, *exited.exited_ms, exited.exit_code, exited.exit_signal)) {
      writer.add_process(exited);
    }
  }
}

// Everything one tick writes; throws StoreError.
void store_tick(store::RecordingWriter& writer, const TreeChanges& changes,
                const std::vector<model::ProcessSample>& samples, int64_t now_ms, int64_t& next_thin_ms,
                const SessionOptions& options, const Sampler& sampler) {
  store_changes(writer, changes);
  if (options.sample_memory) {
    writer.add_samples(samples);
    writer.add_system_sample(sampler.sample_system(now_ms, options.cgroup_directory));
  }
  if (options.on_store) options.on_store(writer);
  writer.commit_if_due(Clock::now());
  if (now_ms >= next_thin_ms) {
    writer.thin_for_long_run(now_ms);
    next_thin_ms = now_ms + 60000;
  }
}

// What a signal means to the session. run: the target decides; SIGTERM/SIGHUP are passed on,
// a first SIGINT is left to the target (the terminal sent it to the whole group), a second one
// kills it. watch, or run after its command exited (following what it left): any of them ends the
// recording, and the processes are left alone.
bool handle_signal(int sig, pid_t root, bool root_exited, const SessionOptions& options, int& interrupts) {
  if (sig == SIGCHLD) return false;
  if (!options.root_is_child || root_exited) return true;
  if (sig == SIGINT) {
    if (++interrupts >= 2) ::kill(root, SIGKILL);
    return false;
  }
  ::kill(root, sig);
  return false;
}

// Two kept /proc files and a collector connection per process: a tree of thousands needs more
// than the usual soft limit of 1024. Raised to the hard limit after the target started, so the
// target keeps the limit it was given; past it the tracker keeps fewer files open.
void raise_fd_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  rlim_t wanted = std::min<rlim_t>(limit.rlim_max, 1 << 20);
  if (limit.rlim_cur >= wanted) return;
  limit.rlim_cur = wanted;
  ::setrlimit(RLIMIT_NOFILE, &limit);
}

}  // namespace

SessionOptions session_options_for(const proc::ProcFs& fs, pid_t root, int64_t interval_ms) {
  SessionOptions options;
  options.interval_ms = interval_ms;
  options.sampler.rollup_budget = std::chrono::microseconds(std::max<int64_t>(1000, interval_ms * 10));
  if (auto cgroup = fs.memory_cgroup(root)) options.cgroup_directory = cgroup->directory;
  return options;
}

void block_session_signals() {
  sigset_t set = session_signals();
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

SessionResult run_session(const proc::ProcFs& fs, store::RecordingWriter& writer, pid_t root,
                          const SessionOptions& options) {
  std::set<pid_t> anchors;
  if (options.root_is_child) anchors.insert(::getpid());
  if (options.raise_fd_limit) raise_fd_limit();
  ProcessTreeTracker tree(fs, root, anchors);
  GpuSampler gpu(fs);
  tree.set_root_command(options.root_command);
  Sampler sampler(fs, options.sampler);
  sigset_t signals = session_signals();
  const Clock::time_point start = Clock::now();
  // The samples' t_ms count from here; the heap tracer stamps its markers with CLOCK_MONOTONIC
  // (steady_clock's clock on Linux): this origin puts both on one time axis.
  writer.put_meta(store::meta_key::kMonotonicOriginNs,
                  std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count());
  SessionResult result;
  int interrupts = 0;
  size_t seen = 0;
  bool root_exit_said = false;
  int64_t next_thin_ms = 60000;

  for (;;) {
    if (options.root_is_child) reap_children(tree, result.root_wait_status);
    int64_t now_ms = elapsed_ms(start);
    TreeChanges changes = tree.refresh(now_ms);
    seen += changes.born.size();
    for (const auto& exited : changes.exited) {
      sampler.forget(exited.pid);
      gpu.forget(exited.pid);
    }
    std::vector<pid_t> alive = tree.alive();
    std::vector<model::ProcessSample> samples;
    if (options.sample_memory && !result.store_error) {
      samples = sampler.sample(alive, now_ms, [&tree](pid_t pid) { return tree.activity(pid); });
      gpu.sample(samples);
    }
    if (!result.store_error) {
      try {
        store_tick(writer, changes, samples, now_ms, next_thin_ms, options, sampler);
        if (gpu.devices_changed()) writer.put_meta(store::meta_key::kGpuDevices, gpu_devices_json(gpu.devices_of()));
      } catch (const store::StoreError& e) {
        // Disk full, say: what was committed stays, and the command is still memdx's to follow.
        result.store_error = e.what();
        if (options.on_store_error) options.on_store_error(e.what());
      }
    }
    if (result.store_error && options.on_store_discard) options.on_store_discard();
    ++result.ticks;
    if (options.on_tick) options.on_tick({now_ms, &samples, alive.size(), seen});

    if (!tree.root_alive() && result.ticks > 0) {
      if (!root_exit_said) {
        root_exit_said = true;
        if (options.on_root_exit && !alive.empty()) options.on_root_exit(tree.alive_records());
      }
      if (!options.follow_tree || alive.empty()) {
        result.end = options.follow_tree ? SessionResult::End::kTreeEnded : SessionResult::End::kRootExited;
        break;
      }
    }
    if (options.duration_ms && now_ms >= *options.duration_ms) {
      result.end = SessionResult::End::kDurationReached;
      break;
    }
    // Sleep until the next tick, waking at once for a child's exit or a signal.
    int64_t wake_ms = (now_ms / options.interval_ms + 1) * options.interval_ms;
    if (options.duration_ms) wake_ms = std::min(wake_ms, *options.duration_ms);
    bool stop = false;
    for (int64_t left_ms = wake_ms - elapsed_ms(start); left_ms > 0 && !stop; left_ms = wake_ms - elapsed_ms(start)) {
      if (options.wait_for_stop) {
        stop = options.wait_for_stop(left_ms);
        continue;
      }
      timespec timeout{static_cast<time_t>(left_ms / 1000), static_cast<long>((left_ms % 1000) * 1000000)};
      int sig = ::sigtimedwait(&signals, nullptr, &timeout);
      if (sig < 0) continue;      // timeout or EINTR
      if (sig == SIGCHLD) break;  // sample at once: the root may have exited
      stop = handle_signal(sig, root, root_exit_said, options, interrupts);
    }
    if (stop) {
      result.end = SessionResult::End::kInterrupted;
      break;
    }
  }
  // The root can turn zombie between the reaping at the top of the loop and the tree's refresh:
  // its exit status is still waiting to be collected.
  if (options.root_is_child && !tree.root_alive() && !result.root_wait_status) {
    int status = 0;
    if (::waitpid(root, &status, 0) == root) result.root_wait_status = status;
  }
  // Processes still alive at the end stay open-ended in the recording.
  result.still_running = tree.alive_records();
  if (!result.store_error) {
    try {
      writer.commit();
    } catch (const store::StoreError& e) {
      result.store_error = e.what();
      if (options.on_store_error) options.on_store_error(e.what());
    }
  }
  result.duration_ms = elapsed_ms(start);
  return result;
}

}  // namespace memdx::record
