// The tracer's sampled-address set (--sample-bytes): what a free of a block that was not sampled
// costs, on a fresh set and after a long run of short-lived samples has turned most slots into
// tombstones. Every free of the traced program asks the set, so this is paid per free.
#include <benchmark/benchmark.h>

#include <cstdint>

#include "trace/preload/real.h"
#include "trace/preload/sampled_set.h"

namespace {

using memdx::trace::sampled_set_erase;
using memdx::trace::sampled_set_insert;

const void* address(uintptr_t base, uintptr_t n, uintptr_t stride) {
  return reinterpret_cast<const void*>(base + n * stride);
}

// range(0): samples taken (inserted and freed) before measuring; 10,000 stay live meanwhile.
void BM_FreeOfAnUnsampledBlock(benchmark::State& state) {
  memdx::trace::resolve_real_functions();
  static uintptr_t next_base = 0x100000000000;
  const uintptr_t base = next_base;
  next_base += 0x10000000000;
  for (uintptr_t n = 0; n < static_cast<uintptr_t>(state.range(0)); ++n) {
    sampled_set_insert(address(base, n, 48));
    sampled_set_erase(address(base, n, 48));
  }
  for (uintptr_t n = 0; n < 10000; ++n) sampled_set_insert(address(base + 0x8000000000, n, 4096));
  uintptr_t n = 0;
  for (auto _ : state) benchmark::DoNotOptimize(sampled_set_erase(address(base + 0x9000000000, n++, 64)));
  for (uintptr_t live = 0; live < 10000; ++live) sampled_set_erase(address(base + 0x8000000000, live, 4096));
}
BENCHMARK(BM_FreeOfAnUnsampledBlock)->Arg(0)->Arg(3000000)->Unit(benchmark::kNanosecond);

}  // namespace

BENCHMARK_MAIN();
