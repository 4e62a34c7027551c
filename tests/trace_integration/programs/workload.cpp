// memdx_tracee_workload: an ordinary C++ workload for comparing memdx with heaptrack: a few
// threads building strings, vectors and maps, about 200k allocations in all. The counts are
// deterministic, and so is the peak: each thread's final table outweighs everything it built
// before, and every thread holds its final table at the same moment (a barrier).
#include <barrier>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

constexpr int kThreads = 4;
constexpr int kRounds = 8;
constexpr int kRoundEntries = 750;
constexpr int kFinalEntries = 3000;

struct Table {
  std::map<std::string, std::vector<int>> ordered;
  std::unordered_map<int, std::string> by_number;
};

// Long enough keys that each string owns a heap buffer (past the small-string buffer).
std::string key_for(int thread, int i) {
  return "workload-key-" + std::to_string(thread) + "-" + std::to_string(i) + "-padding";
}

void fill(Table& table, int thread, int round, int entries) {
  table.by_number.reserve(static_cast<size_t>(entries));  // no rehash: no transient bucket arrays
  for (int i = 0; i < entries; ++i) {
    std::vector<int>& values = table.ordered[key_for(thread, i)];
    for (int v = 0; v <= i % 5; ++v) values.push_back(v * round);
    if (i % 2 == 0) table.by_number.emplace(i, key_for(thread, i * 7));
  }
}

size_t weigh(const Table& table) {
  size_t total = table.by_number.size();
  for (const auto& [key, values] : table.ordered) total += key.size() + values.size();
  return total;
}

}  // namespace

int main() {
  std::barrier all_built(kThreads);
  std::vector<size_t> totals(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &totals, &all_built] {
      size_t& total = totals[static_cast<size_t>(t)];
      for (int round = 0; round < kRounds; ++round) {
        Table table;
        fill(table, t, round, kRoundEntries);
        total += weigh(table);
      }
      Table final_table;
      fill(final_table, t, kRounds, kFinalEntries);
      all_built.arrive_and_wait();
      total += weigh(final_table);
    });
  }
  for (auto& thread : threads) thread.join();
  size_t sum = 0;
  for (size_t total : totals) sum += total;
  std::printf("workload %zu\n", sum);
  return 0;
}
