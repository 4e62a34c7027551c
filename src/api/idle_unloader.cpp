#include "memdx/idle_unloader.h"

#include <condition_variable>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "memdx/error.h"

namespace memdx {

using Clock = std::chrono::steady_clock;

struct IdleUnloader::State {
  std::function<void()> unload;
  mutable std::mutex mutex;
  std::condition_variable changed;
  std::chrono::milliseconds timeout;
  Clock::time_point last_use = Clock::now();
  int uses_in_progress = 0;
  bool unloading = false;  // `unload` runs, without the lock: uses wait for it
  bool unloaded = false;
  uint64_t unload_count = 0;
  bool stop = false;
  std::thread thread;

  // Whether an unload is due now; if not, waits until it may be or something changed.
  bool due(std::unique_lock<std::mutex>& lock) {
    // Beyond a century is never: last_use + timeout must not overflow the clock.
    if (timeout > std::chrono::hours(24 * 365 * 100) || unloaded || uses_in_progress > 0) {
      changed.wait(lock);
      return false;
    }
    Clock::time_point deadline = last_use + timeout;
    if (Clock::now() < deadline) {
      changed.wait_until(lock, deadline);
      return false;
    }
    return true;
  }

  void run() {
    std::unique_lock<std::mutex> lock(mutex);
    while (!stop) {
      if (!due(lock) || stop) continue;
      unloading = true;
      lock.unlock();
      try {
        unload();
      } catch (...) {  // nobody to report it to on this thread; the period still ends
      }
      lock.lock();
      unloading = false;
      unloaded = true;
      ++unload_count;
      changed.notify_all();
    }
  }

  // A use may not start while `unload` runs: the caller then sees the state it left.
  void wait_for_unload(std::unique_lock<std::mutex>& lock) {
    changed.wait(lock, [this] { return !unloading; });
  }
};

IdleUnloader::IdleUnloader(std::chrono::milliseconds timeout, std::function<void()> unload)
    : state_(std::make_unique<State>()) {
  if (timeout <= std::chrono::milliseconds::zero()) {
    throw Error(ErrorKind::kInvalidArgument, "an idle timeout must be positive (IdleUnloader::kNever for none)");
  }
  if (!unload) throw Error(ErrorKind::kInvalidArgument, "an IdleUnloader needs an unload function");
  state_->unload = std::move(unload);
  state_->timeout = timeout;
  try {
    state_->thread = std::thread([state = state_.get()] { state->run(); });
  } catch (const std::system_error& e) {
    throw Error(ErrorKind::kSystem, std::string("cannot start the idle unloader's thread: ") + e.what());
  }
}

IdleUnloader::~IdleUnloader() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop = true;
  }
  state_->changed.notify_all();
  state_->thread.join();  // waits for an unload that runs: none starts after this returns
}

bool IdleUnloader::record_usage() {
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->wait_for_unload(lock);
  bool was_unloaded = std::exchange(state_->unloaded, false);
  state_->last_use = Clock::now();
  state_->changed.notify_all();
  return was_unloaded;
}

IdleUnloader::UsageScope IdleUnloader::in_use() {
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->wait_for_unload(lock);
  ++state_->uses_in_progress;
  bool was_unloaded = std::exchange(state_->unloaded, false);
  state_->changed.notify_all();
  return UsageScope(this, was_unloaded);
}

void IdleUnloader::end_use() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  --state_->uses_in_progress;
  state_->last_use = Clock::now();  // idle from the end of the use, not its start
  state_->changed.notify_all();
}

IdleUnloader::UsageScope::UsageScope(UsageScope&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), needs_reload_(other.needs_reload_) {}

IdleUnloader::UsageScope::~UsageScope() {
  if (owner_) owner_->end_use();
}

void IdleUnloader::set_timeout(std::chrono::milliseconds timeout) {
  if (timeout <= std::chrono::milliseconds::zero()) {
    throw Error(ErrorKind::kInvalidArgument, "an idle timeout must be positive (IdleUnloader::kNever for none)");
  }
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->timeout = timeout;
  state_->changed.notify_all();
}

std::chrono::milliseconds IdleUnloader::timeout() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->timeout;
}

bool IdleUnloader::unloaded() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->unloaded;
}

uint64_t IdleUnloader::unload_count() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->unload_count;
}

}  // namespace memdx
