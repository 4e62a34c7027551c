// Known memory behaviours for the site analysis, one per mode, each running `seconds`:
//   growth   an unbounded container (reachable, freed at exit: no leak checker sees it), a bounded
//            cache that evicts, short-lived temporaries, and a classic leak (never freed, lost)
//   mmap     an arena of directly mapped 256 KiB chunks that are never unmapped
//   vector   a std::vector<long> appended to for the whole run: its capacity doubles in steps (live
//            bytes level off between doublings) while its pages are touched, and resident, steadily
//   inlined  growth through a function inlined into its caller, in code built without frame
//            pointers (see CMakeLists.txt): the site must still be that function's file:line
// Lines the report must name end in "// site: FUNCTION".
#include <sys/mman.h>
#include <time.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <list>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tracee_common.h"

using memdx::tracee::escape;

namespace {

std::vector<char*> g_history;                   // grows for the whole run, freed at exit
std::unordered_map<long, std::string> g_cache;  // at most kCacheEntries entries
std::list<long> g_cache_order;
constexpr size_t kCacheEntries = 64;

__attribute__((noinline)) void remember_request(long n) {
  char* entry = static_cast<char*>(std::malloc(16 << 10));  // site: remember_request
  std::memset(entry, static_cast<int>(n), 16 << 10);
  g_history.push_back(entry);
}

__attribute__((noinline)) void cache_response(long n) {
  g_cache[n] = std::string(16 << 10, static_cast<char>(n));  // site: cache_response
  g_cache_order.push_back(n);
  if (g_cache_order.size() > kCacheEntries) {
    g_cache.erase(g_cache_order.front());
    g_cache_order.pop_front();
  }
}

__attribute__((noinline)) void format_line(long n) {
  char* scratch = static_cast<char*>(std::malloc(512));  // site: format_line
  std::snprintf(scratch, 512, "line %ld", n);
  escape(scratch);
  std::free(scratch);
}

__attribute__((noinline)) void lose_config() {
  for (int i = 0; i < 100; ++i) {
    void* lost = std::malloc(1000);  // site: lose_config
    escape(lost);
  }
}

__attribute__((noinline)) void map_chunk() {
  void* chunk =
      ::mmap(nullptr, 256 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);  // site: map_chunk
  if (chunk != MAP_FAILED) std::memset(chunk, 1, 256 << 10);
}

std::vector<long> g_events;
__attribute__((noinline)) void log_events(long n) {
  for (long i = 0; i < 2000; ++i) g_events.push_back(n + i);  // site: log_events
}

// Inlined into index_document: no frame of its own, only DWARF's inlined-subroutine record.
std::deque<std::string> g_index;
__attribute__((always_inline)) inline void add_posting(long n) {
  g_index.emplace_back(8 << 10, static_cast<char>(n));  // site: add_posting
}
__attribute__((noinline)) void index_document(long n) {
  add_posting(n);
  add_posting(n + 1);
}

template <typename Step>
void run_for(double seconds, Step step) {
  auto start = std::chrono::steady_clock::now();
  for (long n = 0; std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds; ++n) {
    step(n);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "growth";
  double seconds = argc > 2 ? std::atof(argv[2]) : 7;
  if (mode == "growth") {
    lose_config();
    run_for(seconds, [](long n) {
      remember_request(n);
      cache_response(n);
      for (int i = 0; i < 10; ++i) format_line(n);
    });
    for (char* entry : g_history) std::free(entry);
    g_history.clear();
    g_history.shrink_to_fit();
  } else if (mode == "mmap") {
    run_for(seconds, [](long) { map_chunk(); });
  } else if (mode == "vector") {
    run_for(seconds, [](long n) { log_events(n); });
  } else if (mode == "inlined") {
    run_for(seconds, [](long n) { index_document(n); });
    g_index.clear();
  } else {
    memdx::tracee::say("usage: sites growth|mmap|vector|inlined [SECONDS]");
    return 2;
  }
  return 0;
}
