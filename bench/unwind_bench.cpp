// memdx_bench_unwind: the cost of capture_stack() (src/trace/preload/unwind.h) per call and per
// frame at depths 10, 30 and 60 through frame-pointer-less code with a warm rule cache, beside
// glibc's backtrace() (libgcc's unwinder) at the same depths. Also the cold-cache cost, where
// every frame's rule is recomputed from .eh_frame.
//
// The chain is 64 distinct functions (a template), compiled without frame pointers
// (bench/CMakeLists.txt), so every frame has its own return address and cache slot; the
// benchmark loop runs at its bottom and captures exactly `depth` frames of it.
#include <execinfo.h>

#include <cstddef>
#include <cstdint>

#include <benchmark/benchmark.h>

#include "trace/preload/unwind.h"

namespace {

constexpr int kChainLength = 64;

enum class Unwinder { kMemdx, kMemdxColdCache, kBacktrace };

struct LoopContext {
  benchmark::State* state;
  size_t depth;
  Unwinder unwinder;
};

__attribute__((noinline)) void capture_loop(LoopContext& context) {
  uintptr_t frames[kChainLength + 8];
  void* their_frames[kChainLength + 8];
  size_t captured = 0;
  for (auto _ : *context.state) {
    switch (context.unwinder) {
      case Unwinder::kMemdx:
        captured = memdx::trace::capture_stack(frames, context.depth, 0);
        break;
      case Unwinder::kMemdxColdCache:
        memdx::trace::unwind_forget_code();
        captured = memdx::trace::capture_stack(frames, context.depth, 0);
        break;
      case Unwinder::kBacktrace:
        captured = static_cast<size_t>(backtrace(their_frames, static_cast<int>(context.depth)));
        break;
    }
    benchmark::DoNotOptimize(frames);
    benchmark::DoNotOptimize(their_frames);
  }
  if (captured != context.depth) context.state->SkipWithError("captured fewer frames than asked");
  context.state->counters["frames"] = static_cast<double>(captured);
  // Seconds per frame, shown in ns: iterations x depth frames over the measured time, inverted.
  context.state->counters["per_frame"] = benchmark::Counter(
      static_cast<double>(context.depth), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// chain<N> calls chain<N - 1>; chain<0> runs the loop. The asm after each call keeps it from
// being a tail call (which would remove the frame).
template <int N>
__attribute__((noinline)) void chain(LoopContext& context) {
  if constexpr (N == 0) {
    capture_loop(context);
  } else {
    chain<N - 1>(context);
  }
  asm volatile("");
}

void run(benchmark::State& state, Unwinder unwinder) {
  LoopContext context{&state, static_cast<size_t>(state.range(0)), unwinder};
  chain<kChainLength>(context);
}

void BM_CaptureStack(benchmark::State& state) {
  run(state, Unwinder::kMemdx);
}
void BM_CaptureStackColdCache(benchmark::State& state) {
  run(state, Unwinder::kMemdxColdCache);
}
void BM_GlibcBacktrace(benchmark::State& state) {
  run(state, Unwinder::kBacktrace);
}

BENCHMARK(BM_CaptureStack)->Arg(10)->Arg(30)->Arg(60);
BENCHMARK(BM_GlibcBacktrace)->Arg(10)->Arg(30)->Arg(60);
BENCHMARK(BM_CaptureStackColdCache)->Arg(30);

}  // namespace

BENCHMARK_MAIN();
