#include "memdx/governor.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "api/errors.h"
#include "memdx/error.h"
#include "model/format.h"
#include "proc/cgroup_files.h"
#include "proc/kv.h"
#include "proc/process_files.h"
#include "proc/procfs.h"
#include "proc/smaps.h"

namespace memdx {

namespace {

// The files of the process's memory cgroup, found once: finding them reads mountinfo and several
// cgroup files, hundreds of microseconds, while reading the two values costs a few. A process that
// moves to another cgroup afterwards keeps being measured in the first one.
struct CgroupFiles {
  std::string usage_path;  // memory.current (v2) or memory.usage_in_bytes (v1)
  std::string limit_path;  // memory.max or memory.limit_in_bytes
};

const std::optional<CgroupFiles>& own_cgroup_files(const proc::ProcFs& fs) {
  static const std::optional<CgroupFiles> files = [&fs]() -> std::optional<CgroupFiles> {
    std::optional<proc::CgroupMemory> cgroup = fs.memory_cgroup(::getpid());
    if (!cgroup) return std::nullopt;
    bool v2 = cgroup->version == 2;
    return CgroupFiles{cgroup->directory + (v2 ? "/memory.current" : "/memory.usage_in_bytes"),
                       cgroup->directory + (v2 ? "/memory.max" : "/memory.limit_in_bytes")};
  }();
  return files;
}

}  // namespace

Watermark read_watermark(bool with_pss) {
  proc::ProcFs fs;
  pid_t self = ::getpid();
  auto status_text = fs.read_pid_file(self, "status");
  if (!status_text.ok()) api::throw_read_error(status_text.error());
  proc::Status status = proc::parse_status(*status_text);
  Watermark mark;
  mark.rss_bytes = status.vm_rss_bytes.value_or(0);
  mark.peak_rss_bytes = std::max(status.vm_hwm_bytes.value_or(0), mark.rss_bytes);
  if (with_pss) {
    auto rollup = fs.read_pid_file(self, "smaps_rollup");
    if (rollup.ok()) mark.pss_bytes = proc::parse_smaps_rollup(*rollup).pss_bytes;
  }
  if (const std::optional<CgroupFiles>& cgroup = own_cgroup_files(fs)) {
    if (auto usage = fs.read_file(cgroup->usage_path); usage.ok()) mark.cgroup_usage_bytes = proc::parse_u64(*usage);
    if (auto limit = fs.read_file(cgroup->limit_path); limit.ok()) {
      mark.cgroup_limit_bytes = proc::parse_memory_limit(*limit);
    }
  }
  return mark;
}

const char* to_string(DecisionKind kind) {
  switch (kind) {
    case DecisionKind::kPressureRaised:
      return "pressure_raised";
    case DecisionKind::kPressureLowered:
      return "pressure_lowered";
    case DecisionKind::kUnloadedForPressure:
      return "unloaded_for_pressure";
    case DecisionKind::kUnloadedIdle:
      return "unloaded_idle";
    case DecisionKind::kNothingLeftToUnload:
      return "nothing_left_to_unload";
  }
  return "unknown";
}

namespace {

using Clock = std::chrono::steady_clock;
// Beyond a century is never: last_use + timeout must not overflow the clock.
bool has_idle_timeout(std::chrono::milliseconds timeout) {
  return timeout <= std::chrono::hours(24 * 365 * 100);
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Entry {
  GovernedResource resource;
  bool loaded = true;
  bool unloading = false;  // its unload runs, without the lock
  int uses_in_progress = 0;
  Clock::time_point last_use = Clock::now();

  bool idle_due(Clock::time_point now) const {
    return loaded && !unloading && uses_in_progress == 0 && has_idle_timeout(resource.idle_timeout) &&
           now - last_use >= resource.idle_timeout;
  }
};

// "RSS 1.20 GiB, peak 1.50 GiB; cgroup 2.00 GiB of 4.00 GiB"
std::string watermark_text(const Watermark& mark) {
  std::string text =
      fmt::format("RSS {}, peak {}", model::format_bytes(mark.rss_bytes), model::format_bytes(mark.peak_rss_bytes));
  if (mark.cgroup_usage_bytes && mark.cgroup_limit_bytes) {
    text += fmt::format("; cgroup {} of {}", model::format_bytes(*mark.cgroup_usage_bytes),
                        model::format_bytes(*mark.cgroup_limit_bytes));
  }
  return text;
}

// The watermark for a decision: a decision is still made, and logged, when /proc cannot be read.
Watermark watermark_or_empty() {
  try {
    return read_watermark();
  } catch (const Error&) {
    return {};
  }
}

}  // namespace

struct Governor::State {
  GovernorOptions options;
  mutable std::mutex mutex;
  std::condition_variable changed;
  std::map<ResourceId, Entry> entries;
  ResourceId next_id = 1;
  PressureLevel level = PressureLevel::kNone;
  PressureLevel level_acted_on = PressureLevel::kNone;  // the governor thread's view
  Clock::time_point next_pressure_unload{};
  bool said_nothing_left = false;  // once per raised period
  std::deque<GovernorDecision> decisions;
  GovernorStats totals;  // the counters of stats(); the rest is read from entries
  bool stop = false;
  std::thread thread;

  // Under the lock; the callback runs without it.
  void log(std::unique_lock<std::mutex>& lock, GovernorDecision decision) {
    decision.t_unix_ms = unix_ms_now();
    if (decision.kind == DecisionKind::kUnloadedForPressure) ++totals.unloaded_for_pressure;
    if (decision.kind == DecisionKind::kUnloadedIdle) ++totals.unloaded_idle;
    totals.freed_bytes += decision.freed_bytes;
    decisions.push_back(decision);
    while (decisions.size() > std::max<size_t>(options.decisions_kept, 1)) decisions.pop_front();
    if (!options.on_decision) return;
    lock.unlock();
    options.on_decision(decision);
    lock.lock();
  }

  GovernorDecision decision(DecisionKind kind) const {
    GovernorDecision d;
    d.kind = kind;
    d.level = level;
    d.watermark = watermark_or_empty();
    return d;
  }

  // The next to go under pressure: the lowest priority, then the largest, of those loaded and
  // not in use.
  std::optional<ResourceId> pressure_victim() const {
    const Entry* best = nullptr;
    std::optional<ResourceId> best_id;
    for (const auto& [id, entry] : entries) {
      if (!entry.loaded || entry.unloading || entry.uses_in_progress > 0) continue;
      if (!best || entry.resource.priority < best->resource.priority ||
          (entry.resource.priority == best->resource.priority && entry.resource.bytes > best->resource.bytes)) {
        best = &entry;
        best_id = id;
      }
    }
    return best_id;
  }

  // Runs the resource's unload without the lock (uses wait on `unloading`), then logs it.
  void unload(std::unique_lock<std::mutex>& lock, ResourceId id, DecisionKind why) {
    Entry& entry = entries.at(id);
    entry.unloading = true;
    std::function<uint64_t()> unload_fn = entry.resource.unload;
    lock.unlock();
    uint64_t freed = 0;
    std::string failure;
    try {
      freed = unload_fn();
    } catch (const std::exception& e) {
      failure = e.what();
    } catch (...) {
      failure = "an exception that is not a std::exception";
    }
    lock.lock();
    auto it = entries.find(id);  // remove() waits for `unloading`: it is still here
    it->second.unloading = false;
    // A shrinking resource stays loaded while its unloads still free something.
    it->second.loaded = it->second.resource.shrinks && freed > 0 && failure.empty();
    changed.notify_all();
    GovernorDecision d = decision(why);
    d.resource = it->second.resource.name;
    d.resource_bytes = it->second.resource.bytes;
    d.freed_bytes = freed != 0 || it->second.resource.shrinks ? freed : d.resource_bytes;
    const GovernedResource& resource = it->second.resource;
    std::string what = resource.shrinks ? fmt::format("shrank {} by {} (priority {})", d.resource,
                                                      model::format_bytes(freed), resource.priority)
                                        : fmt::format("unloaded {} ({}, priority {})", d.resource,
                                                      model::format_bytes(d.resource_bytes), resource.priority);
    std::string reason = why == DecisionKind::kUnloadedIdle
                             ? fmt::format("after {} ms unused", resource.idle_timeout.count())
                             : fmt::format("for {} pressure", to_string(level));
    d.text = fmt::format("{} {}; {}{}", what, reason, watermark_text(d.watermark),
                         failure.empty() ? "" : "; its unload threw: " + failure);
    log(lock, d);
  }

  void note_level_change(std::unique_lock<std::mutex>& lock) {
    if (level == level_acted_on) return;
    bool raised = level > level_acted_on;
    level_acted_on = level;
    if (level == PressureLevel::kNone) {
      for (auto& [id, entry] : entries) {
        if (entry.resource.shrinks) entry.loaded = true;  // it refills by itself
      }
    }
    if (raised) {
      next_pressure_unload = Clock::now();  // act at once on a rise
      said_nothing_left = false;
    }
    GovernorDecision d = decision(raised ? DecisionKind::kPressureRaised : DecisionKind::kPressureLowered);
    d.text = fmt::format("memory pressure {}; {}", to_string(level), watermark_text(d.watermark));
    log(lock, d);
  }

  // One pass: the pressure, then the idle timeouts. Returns when to look again.
  Clock::time_point act(std::unique_lock<std::mutex>& lock) {
    note_level_change(lock);
    Clock::time_point now = Clock::now();
    if (level != PressureLevel::kNone && now >= next_pressure_unload) {
      if (std::optional<ResourceId> victim = pressure_victim()) {
        unload(lock, *victim, DecisionKind::kUnloadedForPressure);
        next_pressure_unload =
            Clock::now() + (level == PressureLevel::kCritical ? options.critical_settle_time : options.settle_time);
      } else if (!said_nothing_left) {
        said_nothing_left = true;
        GovernorDecision d = decision(DecisionKind::kNothingLeftToUnload);
        d.text = fmt::format("memory pressure {} and nothing left to unload (all unloaded or in use); {}",
                             to_string(level), watermark_text(d.watermark));
        log(lock, d);
      }
    }
    now = Clock::now();
    for (auto it = entries.begin(); it != entries.end(); ++it) {
      if (!it->second.idle_due(now)) continue;
      unload(lock, it->first, DecisionKind::kUnloadedIdle);
      return Clock::now();  // the map may have changed while unlocked: look again from the start
    }
    Clock::time_point wake = Clock::time_point::max();
    if (level != PressureLevel::kNone && (pressure_victim() || !said_nothing_left)) wake = next_pressure_unload;
    for (const auto& [id, entry] : entries) {
      if (entry.loaded && entry.uses_in_progress == 0 && has_idle_timeout(entry.resource.idle_timeout)) {
        wake = std::min(wake, entry.last_use + entry.resource.idle_timeout);
      }
    }
    return wake;
  }

  void run() {
    std::unique_lock<std::mutex> lock(mutex);
    while (!stop) {
      Clock::time_point wake = act(lock);
      if (stop) break;
      if (wake == Clock::time_point::max()) {
        changed.wait(lock);
      } else if (wake > Clock::now()) {
        changed.wait_until(lock, wake);
      }
    }
  }

  Entry* find(ResourceId id) {
    auto it = entries.find(id);
    return it == entries.end() ? nullptr : &it->second;
  }

  void wait_for_unload(std::unique_lock<std::mutex>& lock, ResourceId id) {
    changed.wait(lock, [&] {
      Entry* entry = find(id);
      return !entry || !entry->unloading;
    });
  }
};

Governor::Governor(GovernorOptions options) : state_(std::make_unique<State>()) {
  state_->options = std::move(options);
  try {
    state_->thread = std::thread([state = state_.get()] { state->run(); });
  } catch (const std::system_error& e) {
    throw Error(ErrorKind::kSystem, std::string("cannot start the governor's thread: ") + e.what());
  }
}

Governor::~Governor() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop = true;
  }
  state_->changed.notify_all();
  state_->thread.join();
}

ResourceId Governor::add(GovernedResource resource) {
  if (resource.name.empty()) throw Error(ErrorKind::kInvalidArgument, "a governed resource needs a name");
  if (!resource.unload) {
    throw Error(ErrorKind::kInvalidArgument, "governed resource '" + resource.name + "' has no unload function");
  }
  if (resource.idle_timeout <= std::chrono::milliseconds::zero()) {
    throw Error(ErrorKind::kInvalidArgument,
                "governed resource '" + resource.name + "': an idle timeout must be positive (the default is never)");
  }
  std::lock_guard<std::mutex> lock(state_->mutex);
  ResourceId id = state_->next_id++;
  state_->entries.emplace(id, Entry{std::move(resource)});
  state_->changed.notify_all();
  return id;
}

void Governor::remove(ResourceId id) {
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->wait_for_unload(lock, id);
  state_->entries.erase(id);
  state_->changed.notify_all();
}

void Governor::record_usage(ResourceId id) {
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->wait_for_unload(lock, id);
  if (Entry* entry = state_->find(id)) entry->last_use = Clock::now();
  state_->changed.notify_all();
}

Governor::UsageScope Governor::in_use(ResourceId id) {
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->wait_for_unload(lock, id);
  if (Entry* entry = state_->find(id)) ++entry->uses_in_progress;
  return UsageScope(this, id);
}

void Governor::end_use(ResourceId id) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (Entry* entry = state_->find(id)) {
    --entry->uses_in_progress;
    entry->last_use = Clock::now();  // idle from the end of the use
  }
  state_->changed.notify_all();
}

Governor::UsageScope::UsageScope(UsageScope&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), id_(other.id_) {}

Governor::UsageScope::~UsageScope() {
  if (owner_) owner_->end_use(id_);
}

void Governor::set_loaded(ResourceId id, uint64_t bytes) {
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->wait_for_unload(lock, id);
  Entry* entry = state_->find(id);
  if (!entry) return;
  entry->loaded = true;
  if (bytes != 0) entry->resource.bytes = bytes;
  entry->last_use = Clock::now();
  state_->said_nothing_left = false;  // there is something to unload again
  state_->changed.notify_all();
}

bool Governor::loaded(ResourceId id) const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  auto it = state_->entries.find(id);
  return it != state_->entries.end() && it->second.loaded;
}

void Governor::on_pressure(PressureLevel level) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->level = level;
  state_->changed.notify_all();
}

PressureLevel Governor::pressure() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->level;
}

std::vector<GovernorDecision> Governor::decisions() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return {state_->decisions.begin(), state_->decisions.end()};
}

GovernorStats Governor::stats() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  GovernorStats stats = state_->totals;
  for (const auto& [id, entry] : state_->entries) {
    ++stats.resources;
    if (entry.loaded) {
      ++stats.loaded;
      stats.loaded_bytes += entry.resource.bytes;
    }
  }
  return stats;
}

}  // namespace memdx
