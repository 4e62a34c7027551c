// memdx_tracee_noisy: heap shapes the verdict must tell apart, every 100 ms for SECONDS.
//   leak RATE_KB NOISE_MB PERIOD_S SECONDS  keep_record keeps RATE_KB KB/s forever, while request
//                                          buffers swing the heap between 0 and NOISE_MB with a
//                                          period of PERIOD_S: a slow leak the total hides.
//   step SECONDS                           one 8 MiB block kept at 40 % of the run, nothing after:
//                                          one event, not a leak.
//   stepbump SECONDS                       the same, and 448 KiB more kept at 80 %.
// Prints "done".
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tracee_common.h"

namespace {

std::vector<std::string> g_records;
std::vector<std::vector<char>> g_buffers;
std::vector<void*> g_kept;

}  // namespace

extern "C" __attribute__((noinline)) void keep_record(size_t bytes) {
  g_records.emplace_back(bytes, 'r');  // site: keep_record
}

extern "C" __attribute__((noinline)) void keep_block(size_t bytes) {
  void* block = std::malloc(bytes);  // site: keep_block
  std::memset(block, 1, bytes);
  g_kept.push_back(block);
}

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  bool leak = mode == "leak" && argc > 5;
  double seconds = std::atof(argv[argc - 1]);
  double rate_kb = leak ? std::atof(argv[2]) : 0;
  double noise_mb = leak ? std::atof(argv[3]) : 0;
  double period_s = leak ? std::atof(argv[4]) : 1;
  if ((!leak && mode != "step" && mode != "stepbump") || !(seconds > 0)) return 2;
  g_records.reserve(100000);
  g_kept.reserve(16);
  auto start = std::chrono::steady_clock::now();
  bool stepped = false, bumped = false;
  for (long tick = 0;; ++tick) {
    double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (t >= seconds) break;
    if (leak) {
      keep_record(static_cast<size_t>(rate_kb * 100));  // a tenth of a second's worth
      auto want = static_cast<size_t>(noise_mb * (1 + std::sin(2 * M_PI * t / period_s)) / 2);
      g_buffers.resize(want);
      for (auto& buffer : g_buffers) {
        if (buffer.empty()) buffer.assign(size_t{1} << 20, 'b');
      }
    } else {
      void* churn = std::malloc(4096);  // a little steady churn, never kept
      memdx::tracee::escape(churn);
      std::free(churn);
      if (!stepped && t >= 0.4 * seconds) {
        keep_block(size_t{8} << 20);
        stepped = true;
      }
      if (mode == "stepbump" && !bumped && t >= 0.8 * seconds) {
        keep_block(448 * 1024);
        bumped = true;
      }
    }
    std::this_thread::sleep_until(start + std::chrono::milliseconds(100 * (tick + 1)));
  }
  memdx::tracee::say("done");
  return 0;
}
