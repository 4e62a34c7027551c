// Thread stack bounds for the unwinder (see unwind_stack.h). Runs once per thread, outside the
// hot path.
#include "trace/preload/unwind_stack.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>

#include "trace/preload/raw_syscall.h"

namespace memdx::trace::unwind_detail {
namespace {

// Streaming scan of /proc/self/maps lines ("start-end perms offset dev inode path"): the main
// thread's [stack] and the mapping that holds the thread's descriptor. It keeps only the two addresses of each line,
// the end of the previous mapping and how much of "[stack]" the line has matched so far, so it needs no line buffer and
// lines may straddle read() chunks.
class MapsScanner {
 public:
  explicit MapsScanner(uintptr_t descriptor) : descriptor_(descriptor) {}

  void feed(char c) noexcept {
    switch (field_) {
      case Field::kStart:
        if (c == '-')
          field_ = Field::kEnd;
        else
          add_digit(start_, c);
        break;
      case Field::kEnd:
        if (c == ' ')
          field_ = Field::kRest;
        else
          add_digit(end_, c);
        break;
      case Field::kRest:
        if (c == '\n')
          end_line();
        else
          match(c);
        break;
    }
  }

  // The main thread's [stack], widened down to the end of the mapping below it: the stack grows
  // into that gap, so a later, deeper stack pointer still falls inside.
  AddressRange main_stack() const noexcept { return main_stack_; }
  AddressRange holding_descriptor() const noexcept { return holding_descriptor_; }

 private:
  enum class Field { kStart, kEnd, kRest };
  static constexpr char kStackName[] = "[stack]";
  static constexpr size_t kStackNameLength = sizeof(kStackName) - 1;

  static void add_digit(uintptr_t& value, char c) noexcept {
    const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 0;
    value = value * 16 + static_cast<uintptr_t>(digit);
  }

  // '[' does not occur again in "[stack]", so a mismatch can restart from scratch.
  void match(char c) noexcept {
    if (matched_ < kStackNameLength && c == kStackName[matched_]) {
      ++matched_;
    } else {
      matched_ = c == kStackName[0] ? 1 : 0;
    }
  }

  void end_line() noexcept {
    AddressRange mapping{start_, end_};
    if (matched_ == kStackNameLength) {
      mapping.low = previous_end_ < start_ ? previous_end_ : start_;
      main_stack_ = mapping;
    }
    if (mapping.contains(descriptor_)) holding_descriptor_ = mapping;
    previous_end_ = end_;
    start_ = end_ = 0;
    matched_ = 0;
    field_ = Field::kStart;
  }

  uintptr_t descriptor_;
  Field field_ = Field::kStart;
  uintptr_t start_ = 0;
  uintptr_t end_ = 0;
  uintptr_t previous_end_ = 0;
  size_t matched_ = 0;
  AddressRange main_stack_, holding_descriptor_;
};

// The descriptor of the process's original main thread, noted the first time the main thread
// asks. In the child of a fork from another thread, the only thread is the main thread by its
// tid, but its descriptor (and stack) are the forking thread's.
std::atomic<uintptr_t> g_main_descriptor{0};

bool on_original_main_thread(uintptr_t descriptor) noexcept {
  if (gettid() != getpid()) return false;
  uintptr_t known = 0;
  if (g_main_descriptor.compare_exchange_strong(known, descriptor)) return true;
  return known == descriptor;
}

// Which of the scanned mappings is this thread's stack. glibc puts a thread's descriptor at the
// top of its stack block (its own or one given with pthread_attr_setstack), so for a thread
// pthread_create made, the mapping that holds pthread_self() is its stack wherever sp is now (a
// coroutine's stack, say). The original main thread's descriptor is not on its stack: its stack is
// [stack].
AddressRange choose_stack(const MapsScanner& maps, bool original_main_thread) noexcept {
  return original_main_thread ? maps.main_stack() : maps.holding_descriptor();
}

}  // namespace

AddressRange query_thread_stack() noexcept {
  const int fd = raw::open_read_only("/proc/self/maps");
  if (fd < 0) return {};
  const auto descriptor = reinterpret_cast<uintptr_t>(pthread_self());
  MapsScanner scanner(descriptor);
  char chunk[4096];
  ssize_t got = 0;
  while ((got = raw::read(fd, chunk, sizeof(chunk))) > 0) {
    for (ssize_t i = 0; i < got; ++i) scanner.feed(chunk[i]);
  }
  raw::close(fd);
  return choose_stack(scanner, on_original_main_thread(descriptor));
}

AddressRange query_active_altstack() noexcept {
  stack_t current;
  if (sigaltstack(nullptr, &current) != 0 || (current.ss_flags & SS_ONSTACK) == 0) return {};
  const auto low = reinterpret_cast<uintptr_t>(current.ss_sp);
  return AddressRange{low, low + current.ss_size};
}

}  // namespace memdx::trace::unwind_detail
