// top:N's chooser: the largest PSS wins over the largest RSS, as few smaps_rollup reads as the
// bound PSS <= RSS allows, readings kept for their refresh (longer after a slow read) unless the
// process grew, and a process it has no time or no permission to read ranked by its RSS.
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "serve/top_choice.h"

namespace memdx::serve {
namespace {

constexpr uint64_t kMiB = 1 << 20;

// A machine of processes with known RSS and PSS; counts the reads of each.
struct Machine {
  std::map<pid_t, std::pair<uint64_t, std::optional<uint64_t>>> processes;  // pid -> (RSS, PSS)
  std::map<pid_t, int> reads;
  std::chrono::milliseconds read_takes{0};
  std::vector<TopCandidate> candidates() const {
    std::vector<TopCandidate> all;
    for (const auto& [pid, sizes] : processes) all.push_back(TopCandidate{pid, 1000u + pid, sizes.first, std::nullopt});
    return all;
  }
  TopByPss::ReadPss reader() {
    return [this](pid_t pid) {
      ++reads[pid];
      if (read_takes.count() > 0) std::this_thread::sleep_for(read_takes);
      return processes.at(pid).second;
    };
  }
};

TEST(TopByPss, ChoosesTheLargestPssAndReadsOnlyWhatCouldEnter) {
  Machine machine;
  machine.processes = {
      {10, {900 * kMiB, 30 * kMiB}},   // one of eight forked workers sharing a 2 GiB model
      {11, {900 * kMiB, 30 * kMiB}},   //
      {20, {400 * kMiB, 380 * kMiB}},  // private memory
      {30, {200 * kMiB, 190 * kMiB}},  //
      {40, {100 * kMiB, 90 * kMiB}},   // RSS under the second-largest PSS: cannot enter, never read
      {50, {10 * kMiB, 9 * kMiB}},
  };
  TopByPss top;
  EXPECT_EQ(top.choose(machine.candidates(), 2, 0, machine.reader()), (std::vector<pid_t>{20, 30}));
  EXPECT_EQ(top.last_reads(), 4u);
  EXPECT_EQ(machine.reads.count(40), 0u);
  EXPECT_EQ(machine.reads.count(50), 0u);
  // Ranked by RSS, the two workers would have been chosen.
  EXPECT_EQ(top.choose(machine.candidates(), 3, 1000, machine.reader()), (std::vector<pid_t>{20, 30, 40}));
}

TEST(TopByPss, KeepsAReadingForItsRefreshAndASlowOneLonger) {
  Machine machine;
  machine.processes = {{1, {500 * kMiB, 100 * kMiB}}, {2, {300 * kMiB, 250 * kMiB}}};
  TopByPss top(TopChoiceOptions{
      .read_budget = std::chrono::seconds(1), .refresh = std::chrono::milliseconds(60000), .cost_factor = 100});
  top.choose(machine.candidates(), 1, 0, machine.reader());
  EXPECT_EQ(machine.reads, (std::map<pid_t, int>{{1, 1}, {2, 1}}));
  top.choose(machine.candidates(), 1, 59000, machine.reader());
  EXPECT_EQ(machine.reads, (std::map<pid_t, int>{{1, 1}, {2, 1}})) << "within the refresh";
  top.choose(machine.candidates(), 1, 61000, machine.reader());
  EXPECT_EQ(machine.reads, (std::map<pid_t, int>{{1, 2}, {2, 2}}));

  // A read of 20 ms at a cost factor of 100 waits 2 s, whatever the refresh.
  TopByPss slow(TopChoiceOptions{
      .read_budget = std::chrono::seconds(1), .refresh = std::chrono::milliseconds(0), .cost_factor = 100});
  machine.reads.clear();
  machine.read_takes = std::chrono::milliseconds(20);
  slow.choose(machine.candidates(), 1, 0, machine.reader());
  slow.choose(machine.candidates(), 1, 1500, machine.reader());
  EXPECT_EQ(machine.reads, (std::map<pid_t, int>{{1, 1}, {2, 1}}));
  slow.choose(machine.candidates(), 1, 5000, machine.reader());
  EXPECT_EQ(machine.reads, (std::map<pid_t, int>{{1, 2}, {2, 2}}));
}

TEST(TopByPss, AProcessThatGrewSinceItsReadingIsReadAgainOrEstimated) {
  // Pid 2 is read while small, then loads a model: kept for the refresh, its old reading would
  // leave it out of top:1 for a minute.
  Machine machine;
  machine.processes = {{1, {500 * kMiB, 100 * kMiB}}, {2, {50 * kMiB, 45 * kMiB}}};
  TopByPss top;
  EXPECT_EQ(top.choose(machine.candidates(), 2, 0, machine.reader()), (std::vector<pid_t>{1, 2}));
  machine.processes[2] = {400 * kMiB, 395 * kMiB};
  EXPECT_EQ(top.choose(machine.candidates(), 1, 1000, machine.reader()), (std::vector<pid_t>{2}));
  EXPECT_EQ(machine.reads, (std::map<pid_t, int>{{1, 1}, {2, 2}}));
  machine.processes[2] = {420 * kMiB, 415 * kMiB};  // an eighth at most: the reading stands
  top.choose(machine.candidates(), 1, 2000, machine.reader());
  EXPECT_EQ(machine.reads, (std::map<pid_t, int>{{1, 1}, {2, 2}}));

  // One whose read was slow is not read again before its cost allows: its reading is moved by
  // the RSS it gained (45 MiB + 350 MiB), which is enough to choose it.
  machine.processes = {{1, {500 * kMiB, 100 * kMiB}}, {2, {50 * kMiB, 45 * kMiB}}};
  machine.reads.clear();
  machine.read_takes = std::chrono::milliseconds(20);
  TopByPss slow(TopChoiceOptions{
      .read_budget = std::chrono::seconds(1), .refresh = std::chrono::milliseconds(60000), .cost_factor = 1000});
  slow.choose(machine.candidates(), 2, 0, machine.reader());
  machine.processes[2] = {400 * kMiB, 395 * kMiB};
  EXPECT_EQ(slow.choose(machine.candidates(), 1, 1000, machine.reader()), (std::vector<pid_t>{2}));
  EXPECT_EQ(machine.reads, (std::map<pid_t, int>{{1, 1}, {2, 1}}));
}

TEST(TopByPss, TheChosenKeepTheirPlaceUntilAnotherHasAnEighthMore) {
  Machine machine;
  machine.processes = {{1, {200 * kMiB, 105 * kMiB}}, {2, {200 * kMiB, 100 * kMiB}}};
  TopByPss top(TopChoiceOptions{
      .read_budget = std::chrono::seconds(1), .refresh = std::chrono::milliseconds(0), .cost_factor = 0});
  EXPECT_EQ(top.choose(machine.candidates(), 1, 0, machine.reader()), (std::vector<pid_t>{1}));
  machine.processes[1].second = 98 * kMiB;  // now the smaller, but by less than an eighth
  EXPECT_EQ(top.choose(machine.candidates(), 1, 1000, machine.reader()), (std::vector<pid_t>{1}));
  machine.processes[1].second = 80 * kMiB;
  EXPECT_EQ(top.choose(machine.candidates(), 1, 2000, machine.reader()), (std::vector<pid_t>{2}));
  machine.processes[1].second = 105 * kMiB;  // the new incumbent holds in turn
  EXPECT_EQ(top.choose(machine.candidates(), 1, 3000, machine.reader()), (std::vector<pid_t>{2}));
  EXPECT_EQ(machine.reads, (std::map<pid_t, int>{{1, 4}, {2, 4}}));
}

TEST(TopByPss, OutOfTimeOrPermissionItRanksByRss) {
  Machine machine;
  machine.processes = {
      {1, {800 * kMiB, 50 * kMiB}},
      {2, {700 * kMiB, 60 * kMiB}},
      {3, {600 * kMiB, 500 * kMiB}},
  };
  // A budget that one 20 ms read exhausts: the first choice reads pid 1 only and ranks pid 2 by
  // its RSS (pid 3 cannot beat that); each later one reads further, and the third knows every PSS.
  machine.read_takes = std::chrono::milliseconds(20);
  TopByPss top(TopChoiceOptions{
      .read_budget = std::chrono::milliseconds(5), .refresh = std::chrono::milliseconds(60000), .cost_factor = 0});
  EXPECT_EQ(top.choose(machine.candidates(), 1, 0, machine.reader()), (std::vector<pid_t>{2}));
  EXPECT_EQ(top.last_reads(), 1u);
  EXPECT_EQ(top.last_unread(), 1u);
  top.choose(machine.candidates(), 1, 100, machine.reader());
  EXPECT_EQ(top.choose(machine.candidates(), 1, 200, machine.reader()), (std::vector<pid_t>{3}));
  EXPECT_EQ(machine.reads, (std::map<pid_t, int>{{1, 1}, {2, 1}, {3, 1}}));

  // Not permitted (another user's process without root): its RSS is all there is to rank by.
  machine.read_takes = std::chrono::milliseconds(0);
  machine.processes[1].second = std::nullopt;
  TopByPss unreadable;
  EXPECT_EQ(unreadable.choose(machine.candidates(), 1, 0, machine.reader()), (std::vector<pid_t>{1}));
}

TEST(TopByPss, UsesTheCallersPssAndForgetsAReusedPid) {
  Machine machine;
  machine.processes = {{1, {500 * kMiB, 100 * kMiB}}, {2, {300 * kMiB, 250 * kMiB}}};
  TopByPss top;
  std::vector<TopCandidate> candidates = machine.candidates();
  candidates[0].known_pss_bytes = 100 * kMiB;
  candidates[1].known_pss_bytes = 250 * kMiB;
  EXPECT_EQ(top.choose(candidates, 1, 0, machine.reader()), (std::vector<pid_t>{2}));
  EXPECT_TRUE(machine.reads.empty());

  top.choose(machine.candidates(), 1, 0, machine.reader());
  EXPECT_EQ(machine.reads, (std::map<pid_t, int>{{1, 1}, {2, 1}}));
  // Pid 1 exits and another process gets its pid: a new reading, not the old one's.
  candidates = machine.candidates();
  candidates[0].start_ticks += 1;
  machine.processes[1].second = 450 * kMiB;
  EXPECT_EQ(top.choose(candidates, 1, 1000, machine.reader()), (std::vector<pid_t>{1}));
  EXPECT_EQ(machine.reads, (std::map<pid_t, int>{{1, 2}, {2, 1}}));
}

}  // namespace
}  // namespace memdx::serve
