// Keeping a program's memory bounded from inside: a registry of the things it can give back (a
// loaded model, a cache, a buffer pool), unloaded by priority while memory is under pressure and
// each after its own idle timeout, and a watermark cheap enough to show in a UI ten times a second.
// Every decision is logged with the numbers it was made on.
//
//   memdx::Governor governor;                                  // watches memory pressure itself
//   auto model = governor.add({"llama-13b", 13ull << 30, /*priority=*/10,
//                              [&] { server.unload_model(); return 0; }, std::chrono::minutes(5)});
//   { auto use = governor.in_use(model); if (!governor.loaded(model)) { load(); governor.set_loaded(model); } ... }
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "memdx/export.h"
#include "memdx/pressure.h"

namespace memdx {

// The process's memory now. RSS and its high-water mark come from /proc/self/status, the cgroup's
// usage and limit from its two files (found on the first call): tens of microseconds in all, cheap
// at 10 Hz (bench/README.md). PSS comes from smaps_rollup only when asked: the kernel walks the
// process's page tables for it, milliseconds on a process of gigabytes, so read it less often.
struct Watermark {
  uint64_t rss_bytes = 0;
  uint64_t peak_rss_bytes = 0;  // VmHWM: the most RSS the process has had
  std::optional<uint64_t> pss_bytes;
  std::optional<uint64_t> cgroup_usage_bytes;
  std::optional<uint64_t> cgroup_limit_bytes;  // memory.max (v2) or memory.limit_in_bytes (v1)
};

// Safe from any thread. Throws memdx::Error (kSystem) when /proc/self/status cannot be read.
MEMDX_API Watermark read_watermark(bool with_pss = false);

// Something the program can give back.
struct GovernedResource {
  std::string name;
  uint64_t bytes = 0;  // what unloading it frees, as the program estimates it
  int priority = 0;    // under pressure the lowest priority goes first (ties: the largest first)
  // Frees it. Runs on the governor's thread, never while the resource is in use; returns the
  // bytes it freed, or 0 to take `bytes` as freed. It must not call the governor (it would wait
  // for itself) and should not throw (an exception is caught and logged, and the resource counts
  // as unloaded).
  std::function<uint64_t()> unload;
  // Unloaded after this long unused even without pressure; the default never.
  std::chrono::milliseconds idle_timeout = std::chrono::milliseconds::max();
  // Its unload only gives part of it back (a cache shrinking): it stays loaded and is shrunk
  // again at the next settle time while the pressure lasts, until an unload frees nothing. When
  // the pressure falls to none it counts as loaded again (it refills by itself).
  bool shrinks = false;
};

// A cache under the governor: each unload halves what it holds (shrink_to), and it stays
// registered, so the governor keeps taking from it while the pressure lasts. `cache` is a
// memdx::ByteBudgetCache, or anything with size_bytes() and shrink_to(bytes) that may be called
// from the governor's thread; it must outlive the governor's registration.
template <typename Cache>
GovernedResource shrinking_cache(std::string name, Cache& cache, int priority) {
  GovernedResource resource;
  resource.name = std::move(name);
  resource.bytes = cache.size_bytes();
  resource.priority = priority;
  resource.unload = [&cache] { return cache.shrink_to(cache.size_bytes() / 2); };
  resource.shrinks = true;
  return resource;
}

using ResourceId = uint64_t;

enum class DecisionKind {
  kPressureRaised,       // the pressure level rose
  kPressureLowered,      // the pressure level fell
  kUnloadedForPressure,  // a resource was unloaded (or a shrinking one shrunk) because of pressure
  kUnloadedIdle,         // a resource was unloaded after its idle timeout
  kNothingLeftToUnload,  // pressure, and every resource is unloaded or in use
};
MEMDX_API const char* to_string(DecisionKind kind);

struct GovernorDecision {
  int64_t t_unix_ms = 0;
  DecisionKind kind = DecisionKind::kPressureRaised;
  PressureLevel level = PressureLevel::kNone;  // the pressure level when it was made
  std::string resource;                        // empty for the pressure changes
  uint64_t resource_bytes = 0;                 // as registered
  uint64_t freed_bytes = 0;                    // as its unload said
  Watermark watermark;                         // the process's memory at the decision
  std::string text;  // one line, e.g. "unloaded model (4.00 GiB, priority 0) for critical pressure; RSS 12.1 GiB"
};

// Totals since the governor started, for a dashboard (memdx/metrics_exporter.h exports them).
struct GovernorStats {
  uint64_t unloaded_for_pressure = 0;  // unloads and shrinks because of pressure
  uint64_t unloaded_idle = 0;
  uint64_t freed_bytes = 0;   // as the unloads said, or as registered
  size_t resources = 0;       // registered now
  size_t loaded = 0;          // of them, loaded now
  uint64_t loaded_bytes = 0;  // their registered bytes
};

struct GovernorOptions {
  // Under moderate pressure one resource is unloaded per settle time, so that the pressure can
  // fall before the next goes; under critical pressure one per critical_settle_time.
  std::chrono::milliseconds settle_time{2000};
  std::chrono::milliseconds critical_settle_time{250};
  // Each decision as it is made, on the governor's thread (it must not call the governor).
  std::function<void(const GovernorDecision&)> on_decision;
  size_t decisions_kept = 100;  // decisions() keeps the newest this many
};

// Thread-safe: every member may be called from any thread, except from inside an unload or an
// on_decision callback. The governor's own thread makes the decisions; the destructor stops it
// and waits for an unload that is running, and no callback runs after it returns.
//
// The pressure comes from on_pressure(): connect a PressureMonitor (memdx/pressure.h) to it, or
// call it from the program's own signal of pressure.
class MEMDX_API Governor {
 public:
  explicit Governor(GovernorOptions options = {});
  ~Governor();
  Governor(const Governor&) = delete;
  Governor& operator=(const Governor&) = delete;

  // Registers a loaded resource. Throws memdx::Error (kInvalidArgument) without a name or an
  // unload function, or with an idle timeout of 0 or less.
  ResourceId add(GovernedResource resource);
  // Forgets it (waiting for its unload when one runs). An unknown id is ignored.
  void remove(ResourceId id);

  // A use that ends at once: restarts its idle time.
  void record_usage(ResourceId id);
  // A use that lasts: the resource is not unloaded while the scope lives (pressure unloads the
  // next one instead). Waits while its unload runs, so that loaded() is then final.
  class MEMDX_API UsageScope {
   public:
    UsageScope(UsageScope&& other) noexcept;
    UsageScope& operator=(UsageScope&&) = delete;
    UsageScope(const UsageScope&) = delete;
    UsageScope& operator=(const UsageScope&) = delete;
    ~UsageScope();

   private:
    friend class Governor;
    UsageScope(Governor* owner, ResourceId id) : owner_(owner), id_(id) {}
    Governor* owner_;
    ResourceId id_;
  };
  UsageScope in_use(ResourceId id);

  // The program loaded it again (after an unload), now holding `bytes` (0: as registered).
  void set_loaded(ResourceId id, uint64_t bytes = 0);
  bool loaded(ResourceId id) const;

  // The pressure now; the governor acts on it on its own thread.
  void on_pressure(PressureLevel level);
  PressureLevel pressure() const;

  // The newest decisions, oldest first.
  std::vector<GovernorDecision> decisions() const;
  GovernorStats stats() const;

 private:
  struct State;
  void end_use(ResourceId id);
  std::unique_ptr<State> state_;
};

}  // namespace memdx
