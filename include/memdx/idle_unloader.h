// Unload something expensive (a model, a cache) after it has gone unused for a while: the
// "unload the model after 5 minutes idle" of a local model server.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "memdx/export.h"

namespace memdx {

// Calls `unload` once each time `timeout` passes without use, on a thread of its own.
//
// - Never while in use: between in_use() and the end of the returned scope no unload starts,
//   however long the use lasts; the idle period starts again when the last scope ends.
// - Once per idle period: after an unload, nothing runs again until the next use.
// - Never after destruction: the destructor stops the thread, waits for an unload that is
//   running to return, and no task or thread is left behind.
// - in_use() and record_usage() wait while an unload runs, and say whether the thing was
//   unloaded since its last use: the caller then loads it again, knowing no unload can start
//   while its scope lives.
//
//   memdx::IdleUnloader idle(std::chrono::minutes(5), [&] { model.reset(); });
//   auto use = idle.in_use();
//   if (use.needs_reload()) model = load_model();
//
// Every member is safe to call from any thread, except from inside `unload` itself (it runs with
// the unloader's state locked against in_use(): calling in_use() there would wait forever).
class MEMDX_API IdleUnloader {
 public:
  // No unload: the timeout IdleUnloader(kNever, ...) or set_timeout(kNever) means.
  static constexpr std::chrono::milliseconds kNever = std::chrono::milliseconds::max();

  // The first idle period starts now. Throws memdx::Error (kInvalidArgument) for a timeout of 0
  // or less, or an empty `unload`; kSystem when the thread cannot start.
  IdleUnloader(std::chrono::milliseconds timeout, std::function<void()> unload);
  ~IdleUnloader();
  IdleUnloader(const IdleUnloader&) = delete;
  IdleUnloader& operator=(const IdleUnloader&) = delete;

  // A use that ends at once (a request served): the idle period starts again from now. Returns
  // whether it had been unloaded since the last use.
  bool record_usage();

  // A use that lasts (a generation in progress): no unload while the scope lives.
  class MEMDX_API UsageScope {
   public:
    UsageScope(UsageScope&& other) noexcept;
    UsageScope& operator=(UsageScope&&) = delete;
    UsageScope(const UsageScope&) = delete;
    UsageScope& operator=(const UsageScope&) = delete;
    ~UsageScope();

    // Whether it had been unloaded since the last use: load it again now.
    bool needs_reload() const { return needs_reload_; }

   private:
    friend class IdleUnloader;
    UsageScope(IdleUnloader* owner, bool needs_reload) : owner_(owner), needs_reload_(needs_reload) {}
    IdleUnloader* owner_;
    bool needs_reload_;
  };
  UsageScope in_use();

  // The idle time allowed from now on (kNever: none); the current idle period is measured
  // against it at once.
  void set_timeout(std::chrono::milliseconds timeout);
  std::chrono::milliseconds timeout() const;

  // Whether it is unloaded now: an unload ran and no use came since.
  bool unloaded() const;
  uint64_t unload_count() const;

 private:
  struct State;
  void end_use();
  std::unique_ptr<State> state_;
};

}  // namespace memdx
