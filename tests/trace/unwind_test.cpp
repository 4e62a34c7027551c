// Tests of the eh_frame unwinder (src/trace/preload/unwind.h), checked frame by frame against
// glibc's backtrace(), which walks the same stacks with libgcc's unwinder. The chains walked are
// frame-pointer-less (tests/trace/unwind_fixture_chain.cpp, libc, libstdc++), so frame-pointer
// walking would fail these tests.
#include <dlfcn.h>
#include <execinfo.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "trace/preload/unwind.h"
#include "trace/preload/unwind_rule.h"
#include "trace/unwind_fixture.h"

using memdx::trace::capture_stack;
using memdx::trace::unwind_after_fork_child;
using memdx::trace::unwind_forget_code;

namespace {

constexpr size_t kCapacity = 256;

// What one leaf call records: glibc's backtrace() and capture_stack(), called one after the other.
struct Capture {
  size_t max_frames = kCapacity;
  uintptr_t ours[kCapacity] = {};
  size_t ours_count = 0;
  void* theirs[kCapacity] = {};
  int theirs_count = 0;
};

}  // namespace

// The leaf the fixture chains call (extern "C" and exported, so that dladdr() names it).
extern "C" __attribute__((noinline)) size_t unwind_test_capture_both(void* context) {
  auto* capture = static_cast<Capture*>(context);
  capture->theirs_count = backtrace(capture->theirs, static_cast<int>(kCapacity));
  capture->ours_count = capture_stack(capture->ours, capture->max_frames, 0);
  return capture->ours_count;
}

namespace {

struct Symbol {
  std::string name;    // "" when dladdr knows none
  std::string object;  // file name of the object, without directories
  uintptr_t start = 0;
};

Symbol symbol_of(uintptr_t address) {
  Dl_info info{};
  Symbol symbol;
  if (dladdr(reinterpret_cast<void*>(address), &info) == 0) return symbol;  // NOLINT(performance-no-int-to-ptr)
  if (info.dli_sname != nullptr) symbol.name = info.dli_sname;
  if (info.dli_fname != nullptr) {
    const char* slash = std::strrchr(info.dli_fname, '/');
    symbol.object = slash != nullptr ? slash + 1 : info.dli_fname;
  }
  symbol.start = reinterpret_cast<uintptr_t>(info.dli_saddr);
  return symbol;
}

std::string describe(uintptr_t address) {
  const Symbol symbol = symbol_of(address);
  char text[64];
  std::snprintf(text, sizeof(text), "%#" PRIxPTR " ", address);
  return text + (symbol.name.empty() ? std::string("?") : symbol.name) + " (" + symbol.object + ")";
}

std::string describe(const Capture& capture) {
  std::string text = "\n  ours:";
  for (size_t i = 0; i < capture.ours_count; ++i)
    text += "\n    " + std::to_string(i) + " " + describe(capture.ours[i]);
  text += "\n  backtrace():";
  for (int i = 0; i < capture.theirs_count; ++i) {
    text += "\n    " + std::to_string(i) + " " + describe(reinterpret_cast<uintptr_t>(capture.theirs[i]));
  }
  return text;
}

// backtrace() and capture_stack() called next to each other from one function both begin with
// the return address of their own call, which differ; from index 1 on they name the same frames,
// so ours[i] == theirs[i + offset] for i >= 1 with offset 0. Under ASan, backtrace() runs inside
// ASan's interceptor, whose own return address comes first: offset 1.
int backtrace_offset(const Capture& capture) {
  for (int offset = 0; offset <= 1; ++offset) {
    if (capture.ours_count > 1 && capture.theirs_count > 1 + offset &&
        reinterpret_cast<uintptr_t>(capture.theirs[1 + offset]) == capture.ours[1]) {
      return offset;
    }
  }
  return -1;
}

enum class Extent { kWholeChain, kPrefix };

// ours must be backtrace()'s chain (kWholeChain: down to the same outermost frame; kPrefix: a
// leading part of it, when max_frames or a stop cut it short), and ours[0] must lie in
// unwind_test_capture_both.
testing::AssertionResult matches_backtrace(const Capture& capture, Extent extent) {
  const int offset = backtrace_offset(capture);
  if (offset < 0) return testing::AssertionFailure() << "no common frame" << describe(capture);
  if (symbol_of(capture.ours[0]).start != reinterpret_cast<uintptr_t>(&unwind_test_capture_both)) {
    return testing::AssertionFailure() << "frames[0] is not in the capturing function" << describe(capture);
  }
  const size_t theirs_after_offset = static_cast<size_t>(capture.theirs_count - offset);
  if (capture.ours_count > theirs_after_offset ||
      (extent == Extent::kWholeChain && capture.ours_count != theirs_after_offset)) {
    return testing::AssertionFailure() << "chain lengths differ" << describe(capture);
  }
  for (size_t i = 1; i < capture.ours_count; ++i) {
    if (capture.ours[i] != reinterpret_cast<uintptr_t>(capture.theirs[i + static_cast<size_t>(offset)])) {
      return testing::AssertionFailure() << "frame " << i << " differs" << describe(capture);
    }
  }
  return testing::AssertionSuccess();
}

// Index of the first frame in the function named name, or -1.
int find_frame(const Capture& capture, const std::string& name) {
  for (size_t i = 0; i < capture.ours_count; ++i) {
    if (symbol_of(capture.ours[i]).name == name) return static_cast<int>(i);
  }
  return -1;
}

int find_object(const Capture& capture, const std::string& object_prefix) {
  for (size_t i = 0; i < capture.ours_count; ++i) {
    if (symbol_of(capture.ours[i]).object.rfind(object_prefix, 0) == 0) return static_cast<int>(i);
  }
  return -1;
}

// ---- Frame-pointer-less chains --------------------------------------------------------------

TEST(CaptureStack, EqualsBacktraceThroughFramePointerLessChain) {
  unwind_forget_code();
  for (int pass = 0; pass < 2; ++pass) {  // a cold cache, then a warm one
    Capture capture;
    unwind_fixture_chain_from(0, unwind_test_capture_both, &capture);
    ASSERT_TRUE(matches_backtrace(capture, Extent::kWholeChain)) << "pass " << pass;
    // frames[1..12] are the fixture chain, innermost first, then its entry point.
    for (int level = 0; level < kUnwindChainLength; ++level) {
      EXPECT_EQ(symbol_of(capture.ours[1 + level]).name,
                "unwind_chain_" + std::to_string(kUnwindChainLength - 1 - level))
          << describe(capture);
    }
    EXPECT_EQ(symbol_of(capture.ours[1 + kUnwindChainLength]).name, "unwind_fixture_chain_from");
  }
}

// The walk reuses the thread's previous walk from a frame with unchanged registers, after
// checking the stack words it read then. Here the leaf's registers are the same both times and
// only a return address further out changed: the check must catch it.
TEST(CaptureStack, ReusedWalkNoticesAChangedCallerFurtherOut) {
  for (int round = 0; round < 4; ++round) {
    for (int which : {0, 1, 0, 0, 1, 1}) {
      Capture capture;
      unwind_fixture_twins(which, unwind_test_capture_both, &capture);
      ASSERT_TRUE(matches_backtrace(capture, Extent::kWholeChain)) << "which " << which;
      EXPECT_GE(find_frame(capture, which == 0 ? "unwind_twin_a" : "unwind_twin_b"), 0) << describe(capture);
      EXPECT_LT(find_frame(capture, which == 0 ? "unwind_twin_b" : "unwind_twin_a"), 0) << describe(capture);
    }
  }
}

struct SkipCapture {
  uintptr_t skip0[64];
  uintptr_t skip1[64];
  uintptr_t skip3[64];
  size_t count0 = 0, count1 = 0, count3 = 0;
};

}  // namespace

extern "C" __attribute__((noinline)) size_t unwind_test_capture_skips(void* context) {
  auto* capture = static_cast<SkipCapture*>(context);
  capture->count0 = capture_stack(capture->skip0, 64, 0);
  capture->count1 = capture_stack(capture->skip1, 64, 1);
  capture->count3 = capture_stack(capture->skip3, 64, 3);
  return 0;
}

namespace {

TEST(CaptureStack, FrameZeroIsTheCallerAndSkipDropsInnermostFrames) {
  SkipCapture capture;
  unwind_fixture_chain_from(0, unwind_test_capture_skips, &capture);
  // skip = 0: frames[0] is capture_stack's return address, inside the function that called it.
  EXPECT_EQ(symbol_of(capture.skip0[0]).start, reinterpret_cast<uintptr_t>(&unwind_test_capture_skips));
  EXPECT_EQ(symbol_of(capture.skip0[1]).name, "unwind_chain_11");
  ASSERT_GT(capture.count0, 16u);
  ASSERT_EQ(capture.count1, capture.count0 - 1);
  ASSERT_EQ(capture.count3, capture.count0 - 3);
  for (size_t i = 0; i < capture.count1; ++i) EXPECT_EQ(capture.skip1[i], capture.skip0[i + 1]) << i;
  for (size_t i = 0; i < capture.count3; ++i) EXPECT_EQ(capture.skip3[i], capture.skip0[i + 3]) << i;
}

TEST(CaptureStack, ZeroMaxFramesAndHugeSkipWriteNothing) {
  uintptr_t frames[4] = {1, 2, 3, 4};
  EXPECT_EQ(capture_stack(frames, 0, 0), 0u);
  EXPECT_EQ(capture_stack(frames, 4, 100000), 0u);
  EXPECT_EQ(frames[0], 1u);
}

// ---- Through libc and libstdc++ -------------------------------------------------------------

Capture* g_sort_capture = nullptr;

}  // namespace

extern "C" int unwind_test_compare_ints(const void* left, const void* right) {
  if (g_sort_capture != nullptr) {
    unwind_test_capture_both(g_sort_capture);
    g_sort_capture = nullptr;
  }
  const int a = *static_cast<const int*>(left);
  const int b = *static_cast<const int*>(right);
  return (a > b) - (a < b);
}

using QsortFn = void (*)(void*, size_t, size_t, int (*)(const void*, const void*));

// libc's own qsort: a plain call would reach ASan's interceptor in sanitized builds, which sorts
// without libc.
QsortFn libc_qsort() {
  void* libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  return libc != nullptr ? reinterpret_cast<QsortFn>(dlsym(libc, "qsort")) : nullptr;
}

extern "C" __attribute__((noinline)) void unwind_test_sort_with_qsort(Capture* capture) {
  int values[64];
  for (int i = 0; i < 64; ++i) values[i] = (i * 37) % 64;
  g_sort_capture = capture;
  libc_qsort()(values, 64, sizeof(int), unwind_test_compare_ints);
}

namespace {

TEST(CaptureStack, ThroughQsortInLibc) {
  ASSERT_NE(libc_qsort(), nullptr);
  Capture capture;
  unwind_test_sort_with_qsort(&capture);
  ASSERT_TRUE(matches_backtrace(capture, Extent::kWholeChain));
  EXPECT_EQ(symbol_of(capture.ours[1]).name, "unwind_test_compare_ints");
  const int in_libc = find_object(capture, "libc.so");
  const int in_caller = find_frame(capture, "unwind_test_sort_with_qsort");
  EXPECT_GT(in_libc, 1) << describe(capture);
  EXPECT_GT(in_caller, in_libc) << describe(capture);
}

TEST(CaptureStack, ThroughStdSort) {
  Capture capture;
  unwind_fixture_std_sort(unwind_test_capture_both, &capture);
  ASSERT_TRUE(matches_backtrace(capture, Extent::kWholeChain));
  // The comparator and at least one of std::sort's helpers lie between the leaf and the caller.
  EXPECT_GE(find_frame(capture, "unwind_fixture_std_sort"), 3) << describe(capture);
}

TEST(CaptureStack, ThroughStdThreadInLibstdcxx) {
  Capture capture;
  std::thread([&capture] { unwind_test_capture_both(&capture); }).join();
  ASSERT_TRUE(matches_backtrace(capture, Extent::kWholeChain));
  // execute_native_thread_routine, then libc's start_thread and clone3, where the chain ends.
  const int in_libstdcxx = find_object(capture, "libstdc++.so");
  EXPECT_GT(in_libstdcxx, 0) << describe(capture);
  EXPECT_GT(find_object(capture, "libc.so"), in_libstdcxx) << describe(capture);
}

// ---- Limits and stops -----------------------------------------------------------------------

TEST(CaptureStack, DeepRecursionStopsAtMaxFrames) {
  for (size_t max_frames : {size_t{64}, size_t{8}}) {
    Capture capture;
    capture.max_frames = max_frames;
    unwind_fixture_recurse(200, unwind_test_capture_both, &capture);
    ASSERT_EQ(capture.ours_count, max_frames);
    EXPECT_TRUE(matches_backtrace(capture, Extent::kPrefix));
    for (size_t i = 1; i < max_frames; ++i) EXPECT_EQ(symbol_of(capture.ours[i]).name, "unwind_fixture_recurse") << i;
  }
  Capture whole;
  unwind_fixture_recurse(200, unwind_test_capture_both, &whole);
  EXPECT_TRUE(matches_backtrace(whole, Extent::kWholeChain));
  EXPECT_GT(whole.ours_count, 201u);
}

TEST(CaptureStack, StopsAtCfiItDoesNotModel) {
  for (int pass = 0; pass < 2; ++pass) {  // the second pass hits the cached "cannot unwind"
    Capture capture;
    unwind_fixture_expression_cfa(unwind_test_capture_both, &capture);
    // The leaf, then the function with the DW_CFA_def_cfa_expression, then nothing.
    ASSERT_EQ(capture.ours_count, 2u) << describe(capture);
    EXPECT_TRUE(matches_backtrace(capture, Extent::kPrefix));
    EXPECT_EQ(symbol_of(capture.ours[1]).name, "unwind_fixture_expression_cfa");
    EXPECT_GT(capture.theirs_count, 4);  // libgcc goes on
  }
}

// ---- Threads --------------------------------------------------------------------------------

// Runs body(thread_index) on thread_count threads released at once; returns the failures.
template <typename Body>
std::vector<std::string> run_threads(int thread_count, Body body) {
  std::atomic<int> ready{0};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(thread_count));
  for (int index = 0; index < thread_count; ++index) {
    threads.emplace_back([&, index] {
      ready.fetch_add(1);
      while (ready.load() < thread_count) std::this_thread::yield();
      std::string failure = body(index);
      if (!failure.empty()) {
        std::lock_guard<std::mutex> lock(failures_mutex);
        failures.push_back(std::move(failure));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return failures;
}

// Unwinds through the chain entered at function `first` iterations times; "" if all matched.
std::string check_chain_repeatedly(int first, int iterations) {
  for (int iteration = 0; iteration < iterations; ++iteration) {
    Capture capture;
    unwind_fixture_chain_from(first, unwind_test_capture_both, &capture);
    const testing::AssertionResult matched = matches_backtrace(capture, Extent::kWholeChain);
    if (!matched) return "chain " + std::to_string(first) + ": " + matched.message();
    const int entry = 1 + kUnwindChainLength - first;  // unwind_fixture_chain_from's frame
    if (iteration == 0 && symbol_of(capture.ours[entry]).name != "unwind_fixture_chain_from") {
      return "chain " + std::to_string(first) + ": wrong depth" + describe(capture);
    }
  }
  return "";
}

TEST(CaptureStack, EightThreadsWithDistinctChains) {
  unwind_forget_code();  // all threads insert into the cache at the same time
  const auto failures = run_threads(8, [](int index) { return check_chain_repeatedly(index, 300); });
  EXPECT_TRUE(failures.empty()) << failures.front();
}

TEST(CaptureStack, ForgetCodeWhileOtherThreadsUnwind) {
  std::atomic<bool> done{false};
  std::atomic<long> forgets{0};
  std::thread forgetter([&] {
    while (!done.load()) {
      unwind_forget_code();
      forgets.fetch_add(1);
    }
  });
  const auto failures = run_threads(4, [](int index) { return check_chain_repeatedly(index * 3, 300); });
  done.store(true);
  forgetter.join();
  EXPECT_TRUE(failures.empty()) << failures.front();
  EXPECT_GT(forgets.load(), 0);
}

// ---- Signals and other stacks ---------------------------------------------------------------

Capture* g_signal_capture = nullptr;

}  // namespace

volatile sig_atomic_t g_signals_handled = 0;

extern "C" void unwind_test_on_signal(int) {
  unwind_test_capture_both(g_signal_capture);
  g_signals_handled = g_signals_handled + 1;  // after the call: no tail call, the handler keeps its frame
}

extern "C" size_t unwind_test_raise_leaf(void*) {
  raise(SIGUSR1);
  return 0;
}

namespace {

// Raises SIGUSR1 at the bottom of the fixture chain; the handler captures.
Capture capture_in_signal_handler(int extra_flags) {
  Capture capture;
  struct sigaction action {};
  struct sigaction previous {};
  action.sa_handler = unwind_test_on_signal;
  action.sa_flags = extra_flags;
  sigemptyset(&action.sa_mask);
  sigaction(SIGUSR1, &action, &previous);
  g_signal_capture = &capture;
  unwind_fixture_chain_from(0, unwind_test_raise_leaf, nullptr);
  sigaction(SIGUSR1, &previous, nullptr);
  return capture;
}

TEST(CaptureStack, InSignalHandlerStopsAtTheTrampoline) {
  const Capture capture = capture_in_signal_handler(0);
  // The leaf, the handler, then the return address into libc's __restore_rt, where the walk stops
  // (libgcc goes on through the signal frame).
  ASSERT_EQ(capture.ours_count, 3u) << describe(capture);
  EXPECT_TRUE(matches_backtrace(capture, Extent::kPrefix));
  EXPECT_EQ(symbol_of(capture.ours[1]).name, "unwind_test_on_signal");
  EXPECT_EQ(symbol_of(capture.ours[2]).object, "libc.so.6");
  EXPECT_GT(capture.theirs_count, 3 + kUnwindChainLength);
}

TEST(CaptureStack, InSignalHandlerOnSigaltstack) {
  constexpr size_t kAltstackBytes = size_t{256} * 1024;
  void* memory = mmap(nullptr, kAltstackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  stack_t altstack{};
  stack_t previous{};
  altstack.ss_sp = memory;
  altstack.ss_size = kAltstackBytes;
  ASSERT_EQ(sigaltstack(&altstack, &previous), 0);
  const Capture capture = capture_in_signal_handler(SA_ONSTACK);
  sigaltstack(&previous, nullptr);
  munmap(memory, kAltstackBytes);
  ASSERT_GE(capture.ours_count, 1u);
  // The sigaltstack's bounds are known, so the walk goes on up to the trampoline as above.
  EXPECT_EQ(capture.ours_count, 3u) << describe(capture);
  EXPECT_TRUE(matches_backtrace(capture, Extent::kPrefix));
  EXPECT_EQ(symbol_of(capture.ours[2]).object, "libc.so.6");
}

// A stack the unwinder cannot know the bounds of (makecontext): only frames[0].
ucontext_t g_main_context;
ucontext_t g_coroutine_context;
size_t g_coroutine_count = 0;
uintptr_t g_coroutine_frames[8];

}  // namespace

extern "C" void unwind_test_coroutine() {
  g_coroutine_count = capture_stack(g_coroutine_frames, 8, 0);
}

namespace {

TEST(CaptureStack, OnAnUnknownStackReturnsOnlyTheFirstFrame) {
  constexpr size_t kStackBytes = size_t{256} * 1024;
  void* memory = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  ASSERT_EQ(getcontext(&g_coroutine_context), 0);
  g_coroutine_context.uc_stack.ss_sp = memory;
  g_coroutine_context.uc_stack.ss_size = kStackBytes;
  g_coroutine_context.uc_link = &g_main_context;
  makecontext(&g_coroutine_context, unwind_test_coroutine, 0);
  ASSERT_EQ(swapcontext(&g_main_context, &g_coroutine_context), 0);
  munmap(memory, kStackBytes);
  ASSERT_EQ(g_coroutine_count, 1u);
  EXPECT_EQ(symbol_of(g_coroutine_frames[0]).start, reinterpret_cast<uintptr_t>(&unwind_test_coroutine));
}

// ---- Loaded and unloaded code ---------------------------------------------------------------

struct LoadedModule {
  void* handle = nullptr;
  size_t (*chain)(UnwindLeafFn, void*) = nullptr;
  uintptr_t base = 0;
};

LoadedModule load_module(const char* path) {
  LoadedModule module;
  module.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (module.handle == nullptr) return module;
  module.chain = reinterpret_cast<size_t (*)(UnwindLeafFn, void*)>(dlsym(module.handle, "unwind_fixture_dso_chain"));
  Dl_info info{};
  if (module.chain != nullptr && dladdr(reinterpret_cast<void*>(module.chain), &info) != 0) {
    module.base = reinterpret_cast<uintptr_t>(info.dli_fbase);
  }
  return module;
}

testing::AssertionResult unwinds_through(const LoadedModule& module, const std::string& object) {
  Capture capture;
  module.chain(unwind_test_capture_both, &capture);
  testing::AssertionResult matched = matches_backtrace(capture, Extent::kWholeChain);
  if (!matched) return matched;
  for (size_t i = 1; i <= 3; ++i) {  // the module's three frames
    if (symbol_of(capture.ours[i]).object != object) {
      return testing::AssertionFailure() << "frame " << i << " not in " << object << describe(capture);
    }
  }
  return testing::AssertionSuccess();
}

std::string file_name(const char* path) {
  return std::strrchr(path, '/') + 1;
}

TEST(CaptureStack, ThroughDlopenedModulesAcrossDlclose) {
  const char* paths[] = {MEMDX_UNWIND_DSO_A, MEMDX_UNWIND_DSO_B, MEMDX_UNWIND_DSO_A};
  uintptr_t previous_base = 0;
  for (const char* path : paths) {
    const LoadedModule module = load_module(path);
    ASSERT_NE(module.chain, nullptr) << dlerror();
    EXPECT_TRUE(unwinds_through(module, file_name(path)));
    EXPECT_TRUE(unwinds_through(module, file_name(path)));  // from the cache
    // Informational: the test only proves the forgetting when the next module reuses the address.
    if (previous_base != 0) RecordProperty("same_base_" + file_name(path), module.base == previous_base ? 1 : 0);
    previous_base = module.base;
    dlclose(module.handle);
    unwind_forget_code();
  }
}

// ---- fork -----------------------------------------------------------------------------------

// Forks; the child resets the unwinder, unwinds the chain and exits 0 if it matched backtrace().
int unwind_in_forked_child() {
  const pid_t child = fork();
  if (child == 0) {
    unwind_after_fork_child();
    Capture capture;
    unwind_fixture_chain_from(0, unwind_test_capture_both, &capture);
    _exit(matches_backtrace(capture, Extent::kWholeChain) ? 0 : 1);
  }
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(CaptureStack, InForkedChild) {
  Capture warm;  // backtrace() loads libgcc_s on first use: do that before forking
  unwind_fixture_chain_from(0, unwind_test_capture_both, &warm);
  EXPECT_EQ(unwind_in_forked_child(), 0);
  // Forked from a thread: the child's only thread runs on what was a thread stack.
  int from_thread = -1;
  std::thread([&from_thread] { from_thread = unwind_in_forked_child(); }).join();
  EXPECT_EQ(from_thread, 0);
}

// ---- The packed rule ------------------------------------------------------------------------

TEST(UnwindRule, PacksIntoSixtyFourBitsAndBack) {
  using namespace memdx::trace::unwind_detail;
  const FrameRule rules[] = {
      {true, CfaBase::kRsp, RbpRule::kUnchanged, 8, 0},
      {true, CfaBase::kRbp, RbpRule::kSavedAtCfa, 16, -16},
      {true, CfaBase::kRsp, RbpRule::kSavedAtCfa, INT32_MAX, kMinRbpOffsetBytes},
      {true, CfaBase::kRbp, RbpRule::kUnknown, INT32_MIN, kMaxRbpOffsetBytes},
      {false, CfaBase::kRsp, RbpRule::kUnchanged, 0, 0},
  };
  for (const FrameRule& rule : rules) {
    const FrameRule back = unpack_rule(pack_rule(rule));
    EXPECT_EQ(back.can_unwind, rule.can_unwind);
    EXPECT_EQ(back.cfa_base, rule.cfa_base);
    EXPECT_EQ(back.rbp_rule, rule.rbp_rule);
    EXPECT_EQ(back.cfa_offset_bytes, rule.cfa_offset_bytes);
    EXPECT_EQ(back.rbp_offset_bytes, rule.rbp_offset_bytes);
  }
}

}  // namespace
