// What read_watermark() costs per call (memdx/governor.h), beside the cheapest read of RSS there
// is (/proc/self/statm with one read()): a UI polling it at 10 Hz spends this ten times a second.
#include <fcntl.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include <memdx/governor.h>

namespace {

// A process of some size, so that smaps_rollup has mappings to walk: 256 MiB written.
struct Footprint {
  std::vector<char> block = std::vector<char>(size_t{256} << 20, 1);
};
const Footprint kFootprint;

void BM_StatmRead(benchmark::State& state) {
  char buffer[256];
  for (auto _ : state) {
    int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    ssize_t got = ::read(fd, buffer, sizeof(buffer) - 1);
    ::close(fd);
    buffer[got > 0 ? got : 0] = 0;
    benchmark::DoNotOptimize(std::strtoull(buffer, nullptr, 10));
  }
}
BENCHMARK(BM_StatmRead);

void BM_ReadWatermark(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(memdx::read_watermark());
}
BENCHMARK(BM_ReadWatermark);

void BM_ReadWatermarkWithPss(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(memdx::read_watermark(true));
}
BENCHMARK(BM_ReadWatermarkWithPss);

}  // namespace

BENCHMARK_MAIN();
