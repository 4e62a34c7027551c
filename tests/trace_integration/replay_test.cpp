// The heap trace replayed in exact seq order, however far apart the threads' events reach the
// recording: programs/reuse.cpp makes threads whose events arrive hundreds of thousands of
// events late, and the report must equal a reference replay of the same recording that sorts
// every event of a process before applying it.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "analyze/heap_profile.h"
#include "analyze/trace_decode.h"
#include "store/recording_reader.h"
#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

// What an in-order replay of one stream gives: the figures of analyze::AllocationStats, computed
// the simplest way, with every event of the stream held and sorted.
struct ReferenceProfile {
  uint64_t allocations = 0, frees = 0, allocated_bytes = 0;
  uint64_t live_bytes = 0, live_blocks = 0, peak_live_bytes = 0, temporary_allocations = 0;
  uint64_t unmatched_frees = 0;
  std::map<uint32_t, uint64_t> live_bytes_by_stack;  // stacks with live bytes at the end
  std::map<uint32_t, uint64_t> frees_by_stack;
  std::vector<uint64_t> group_peak_bytes = std::vector<uint64_t>(3);  // of ThreeGroups' groups
};

// Stacks in three groups by their frames, as a site grouping puts them by their code: each
// group's peak (its stacks' live bytes together) must be the reference's too.
uint32_t group_of_frames(std::span<const uint64_t> frames) {
  uint64_t hash = frames.size();
  for (uint64_t frame : frames) hash = hash * 31 + frame;
  return static_cast<uint32_t>(hash % 3);
}

class ThreeGroups final : public analyze::StackGrouping {
 public:
  void module_loaded(const analyze::TraceModule&) override {}
  void module_unloaded(const analyze::TraceModule&) override {}
  uint32_t group_of(uint64_t, std::span<const uint64_t> frames) override { return group_of_frames(frames); }
};

class CollectingSink final : public analyze::StreamSink {
 public:
  struct Event {
    uint64_t seq;
    uint32_t thread;  // by first appearance: the tie order of the merge
    uint64_t order;   // arrival order, within a thread its seq order
    analyze::TraceEvent event;
  };
  void hello(const trace::wire::StreamHello&) override {}
  void event(const analyze::TraceEvent& event) override {
    auto [slot, fresh] = threads_.try_emplace(event.tid, static_cast<uint32_t>(threads_.size()));
    events_.push_back({event.seq, slot->second, events_.size(), event});
  }
  void stack(uint32_t id, uint64_t, std::span<const uint64_t> frames) override {
    groups_[id] = group_of_frames(frames);
  }
  void module(const analyze::TraceModule&) override {}
  void unmodule(uint64_t, uint64_t) override {}
  void marker(const analyze::TraceMarker&) override {}
  void end(const analyze::TraceEnd&) override {}
  void note(trace::wire::NoteCode) override {}
  void closed(bool) override {}

  ReferenceProfile replay() {
    std::stable_sort(events_.begin(), events_.end(), [](const Event& a, const Event& b) {
      return std::tie(a.seq, a.thread, a.order) < std::tie(b.seq, b.thread, b.order);
    });
    ReferenceProfile result;
    struct Block {
      uint64_t bytes;
      uint32_t stack;
    };
    std::unordered_map<uint64_t, Block> live;
    std::unordered_map<int32_t, uint64_t> last_allocation;
    std::set<uint64_t> unmatched;
    std::vector<uint64_t> group_live(3);
    auto group_changed = [&](uint32_t stack, uint64_t bytes, bool grew) {
      uint32_t group = groups_.at(stack);
      group_live[group] = grew ? group_live[group] + bytes : group_live[group] - bytes;
      result.group_peak_bytes[group] = std::max(result.group_peak_bytes[group], group_live[group]);
    };
    for (const Event& queued : events_) {
      const analyze::TraceEvent& e = queued.event;
      if (e.kind == analyze::TraceEvent::Kind::kAlloc) {
        ++result.allocations;
        result.allocated_bytes += e.size;
        last_allocation[e.tid] = e.address;
        if (auto old = live.find(e.address); old != live.end()) {  // a free never seen
          result.live_bytes -= old->second.bytes;
          result.live_bytes_by_stack[old->second.stack] -= old->second.bytes;
          group_changed(old->second.stack, old->second.bytes, false);
          live.erase(old);
        }
        live[e.address] = {e.size, e.stack};
        result.live_bytes += e.size;
        result.live_bytes_by_stack[e.stack] += e.size;
        group_changed(e.stack, e.size, true);
        result.peak_live_bytes = std::max(result.peak_live_bytes, result.live_bytes);
      } else if (e.kind == analyze::TraceEvent::Kind::kFree) {
        auto found = live.find(e.address);
        if (found == live.end()) {
          unmatched.insert(e.address);
          continue;
        }
        ++result.frees;
        ++result.frees_by_stack[found->second.stack];
        result.live_bytes -= found->second.bytes;
        result.live_bytes_by_stack[found->second.stack] -= found->second.bytes;
        group_changed(found->second.stack, found->second.bytes, false);
        if (last_allocation[e.tid] == e.address) ++result.temporary_allocations;
        last_allocation[e.tid] = 0;
        live.erase(found);
      }
    }
    result.live_blocks = live.size();
    result.unmatched_frees = unmatched.size();
    std::erase_if(result.live_bytes_by_stack, [](const auto& entry) { return entry.second == 0; });
    return result;
  }

 private:
  std::unordered_map<int32_t, uint32_t> threads_;
  std::unordered_map<uint32_t, uint32_t> groups_;  // stack -> group_of_frames
  std::vector<Event> events_;
};

std::vector<ReferenceProfile> reference_replay(const store::RecordingReader& recording) {
  std::vector<std::unique_ptr<CollectingSink>> sinks;
  analyze::read_heap_trace(recording, [&](uint32_t) -> analyze::StreamSink& {
    sinks.push_back(std::make_unique<CollectingSink>());
    return *sinks.back();
  });
  std::vector<ReferenceProfile> profiles;
  for (auto& sink : sinks) profiles.push_back(sink->replay());
  return profiles;
}

class ExactReplayTest : public TraceTest {
 protected:
  // Records `mode` of the reuse program and checks every process's figures against the
  // reference replay.
  void expect_exact(const std::string& mode, const std::string& expected_out) {
    Finished run = trace({tracee_path("reuse"), mode}, 120);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    ASSERT_EQ(run.out, expected_out) << "the program did not do what the test needs";
    store::RecordingReader recording = store::RecordingReader::open(recording_);
    std::vector<ReferenceProfile> reference = reference_replay(recording);
    auto three_groups = [] { return std::make_shared<ThreeGroups>(); };
    // As memdx reports it: the first pass's window is wide enough for these programs.
    expect_equal(analyze::build_heap_trace(recording, {}, {.grouping = three_groups}), reference, false);
    // With a first-pass window of 64 KiB the late events fall out of it and the exact pass replays
    // the stream: with the default memory for it, and with 64 KiB, where nearly every batch goes
    // through the temporary file.
    for (uint64_t memory_bytes : {analyze::HeapTraceOptions{}.exact_replay_memory_bytes, uint64_t{64} << 10}) {
      SCOPED_TRACE("exact replay memory " + std::to_string(memory_bytes));
      analyze::HeapTraceOptions options{
          .window_bytes = uint64_t{64} << 10, .exact_replay_memory_bytes = memory_bytes, .grouping = three_groups};
      expect_equal(analyze::build_heap_trace(recording, {}, options), reference, true);
    }
  }

  void expect_equal(const analyze::HeapTrace& trace, const std::vector<ReferenceProfile>& reference,
                    bool exact_pass_needed) {
    ASSERT_EQ(trace.processes.size(), reference.size());
    if (exact_pass_needed) {
      EXPECT_TRUE(std::any_of(trace.processes.begin(), trace.processes.end(), [](const analyze::ProcessHeapProfile& p) {
        return p.replayed_exactly;
      })) << "the program's events all arrived within a 64 KiB window: the test shows nothing";
    }
    for (size_t i = 0; i < reference.size(); ++i) {
      const analyze::AllocationStats& got = trace.processes[i].heap;
      const ReferenceProfile& want = reference[i];
      SCOPED_TRACE("stream " + std::to_string(i));
      EXPECT_EQ(got.allocations, want.allocations);
      EXPECT_EQ(got.frees, want.frees);
      EXPECT_EQ(got.allocated_bytes, want.allocated_bytes);
      EXPECT_EQ(got.live_bytes, want.live_bytes);
      EXPECT_EQ(got.live_blocks, want.live_blocks);
      EXPECT_EQ(got.peak_live_bytes, want.peak_live_bytes);
      EXPECT_EQ(got.temporary_allocations, want.temporary_allocations);
      EXPECT_EQ(trace.processes[i].unmatched_frees, want.unmatched_frees);
      std::map<uint32_t, uint64_t> live_by_stack, frees_by_stack;
      uint64_t live_at_peak = 0;
      for (const auto& [stack, stats] : trace.processes[i].heap_by_stack) {
        if (stats.live_bytes != 0) live_by_stack[stack] = stats.live_bytes;
        if (stats.frees != 0) frees_by_stack[stack] = stats.frees;
        live_at_peak += stats.live_at_peak_bytes;
      }
      EXPECT_EQ(live_by_stack, want.live_bytes_by_stack);
      EXPECT_EQ(frees_by_stack, want.frees_by_stack);
      EXPECT_EQ(live_at_peak, want.peak_live_bytes) << "the stacks' live bytes at the peak add up to the peak";
      std::vector<uint64_t> group_peaks = trace.processes[i].heap_group_peak_bytes;
      group_peaks.resize(3);
      EXPECT_EQ(group_peaks, want.group_peak_bytes) << "each group's peak, its stacks' live bytes together";
    }
  }
};

// A freed address taken at once by another thread, whose 400,000 events reach the recording
// before the free does: B's block is live at the end, A's was freed.
TEST_F(ExactReplayTest, AnAddressReusedByAnotherThreadBeforeItsFreeArrives) {
  expect_exact("reuse", "reused 1\n");
  json verdict = report();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  const json& heap = verdict["heap"][0];
  EXPECT_EQ(heap["unmatched_frees"], 0);
  SiteSums b = site_sums(heap, "b_alloc");
  EXPECT_EQ(b.final_live_bytes, 4000u);
  EXPECT_EQ(b.final_live_blocks, 1u);
  SiteSums a = site_sums(heap, "a_alloc");
  EXPECT_EQ(a.allocations, 1u);
  EXPECT_EQ(a.final_live_bytes, 0u);
}

// Eight threads freeing each other's blocks, some holding their buffers while others make
// bursts of 150,000 events.
TEST_F(ExactReplayTest, ManyThreadsWithCrossThreadFreesFarApart) {
  expect_exact("many", "many done\n");
  json verdict = report();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  const json& heap = verdict["heap"][0];
  EXPECT_EQ(heap["unmatched_frees"], 0);
  SiteSums rounds = site_sums(heap, "round_alloc");
  EXPECT_EQ(rounds.allocations, 8u * 6 * 500);
  EXPECT_EQ(rounds.final_live_blocks, 8u * 500) << "each thread keeps its last round";
}

}  // namespace
}  // namespace memdx::test
