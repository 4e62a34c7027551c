// Thread stack bounds for the unwinder (see unwind_stack.h). Runs once per thread, outside the
// hot path.
#include "trace/preload/unwind_stack.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstddef>

namespace memdx::trace::unwind_detail {
namespace {

// Streaming scan of /proc/self/maps lines ("start-end perms offset dev inode path") for the main
// thread's stack, the line whose path is "[stack]". It keeps only the two addresses of each line,
// the end of the previous mapping and how much of "[stack]" the line has matched so far, so it
// needs no line buffer and lines may straddle read() chunks.
class MainStackScanner {
 public:
  void feed(char c) noexcept {
    if (found_) return;
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

  bool found() const noexcept { return found_; }

  // The [stack] mapping, widened down to the end of the mapping below it: the stack grows into
  // that gap, so a later, deeper stack pointer still falls inside.
  AddressRange result() const noexcept { return result_; }

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
    if (matched_ == kStackNameLength) {
      found_ = true;
      result_ = AddressRange{previous_end_ < start_ ? previous_end_ : start_, end_};
    }
    previous_end_ = end_;
    start_ = end_ = 0;
    matched_ = 0;
    field_ = Field::kStart;
  }

  Field field_ = Field::kStart;
  uintptr_t start_ = 0;
  uintptr_t end_ = 0;
  uintptr_t previous_end_ = 0;
  size_t matched_ = 0;
  bool found_ = false;
  AddressRange result_;
};

AddressRange main_thread_stack() noexcept {
  const int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  MainStackScanner scanner;
  char chunk[1024];
  ssize_t got = 0;
  while (!scanner.found() && (got = read(fd, chunk, sizeof(chunk))) > 0) {
    for (ssize_t i = 0; i < got; ++i) scanner.feed(chunk[i]);
  }
  close(fd);
  return scanner.found() ? scanner.result() : AddressRange{};
}

AddressRange pthread_stack() noexcept {
  pthread_attr_t attributes;
  if (pthread_getattr_np(pthread_self(), &attributes) != 0) return {};
  void* low = nullptr;
  size_t size_bytes = 0;
  const int error = pthread_attr_getstack(&attributes, &low, &size_bytes);
  pthread_attr_destroy(&attributes);
  if (error != 0) return {};
  const auto start = reinterpret_cast<uintptr_t>(low);
  return AddressRange{start, start + size_bytes};
}

}  // namespace

AddressRange query_thread_stack(uintptr_t sp) noexcept {
  // pthread_getattr_np on the main thread would parse /proc/self/maps with stdio (malloc); our
  // own scan finds the same mapping without it. It is the answer only if sp is in it: the main
  // thread may run on a stack of its own making, and after a fork from another thread the child's
  // main thread runs on that thread's stack, which glibc's descriptor still knows.
  if (gettid() == getpid()) {
    const AddressRange stack = main_thread_stack();
    if (stack.contains(sp)) return stack;
  }
  return pthread_stack();
}

AddressRange query_active_altstack() noexcept {
  stack_t current;
  if (sigaltstack(nullptr, &current) != 0 || (current.ss_flags & SS_ONSTACK) == 0) return {};
  const auto low = reinterpret_cast<uintptr_t>(current.ss_sp);
  return AddressRange{low, low + current.ss_size};
}

}  // namespace memdx::trace::unwind_detail
