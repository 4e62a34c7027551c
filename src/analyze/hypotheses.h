// The differential diagnosis: every candidate explanation of a process's memory, each marked
// confirmed, eliminated, inconclusive or not measured, with the numbers that decide it.
//
// diagnose() measures (trend tests of each series, the retention and reservation checks) and
// records what it measured per process in ProcessObservations; the hypotheses are read off those
// observations and the findings, so a hypothesis is confirmed exactly when its finding exists and
// its evidence is the finding's sentence. Pure computation, no state.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "analyze/trend.h"
#include "model/verdict.h"

namespace memdx::analyze {

struct DiagnoseOptions;

// The hypotheses in the order every output lists them.
inline constexpr std::array<HypothesisKind, 12> kHypothesisKinds = {
    HypothesisKind::kHeapGrowth,      HypothesisKind::kAnonGrowth,   HypothesisKind::kAllocatorRetention,
    HypothesisKind::kReservationOnly, HypothesisKind::kFileGrowth,   HypothesisKind::kShmemGrowth,
    HypothesisKind::kFdGrowth,        HypothesisKind::kThreadGrowth, HypothesisKind::kChildGrowth,
    HypothesisKind::kGpuGrowth,       HypothesisKind::kSwapGrowth,   HypothesisKind::kLimitApproach};

// What test_trend said about one series of one process.
struct SeriesObservation {
  bool measured = false;  // the series exists (the live heap needs the tracer)
  TrendResult trend;
  double span_s = 0;  // of the points the levels and slope describe

  bool growing() const { return trend.verdict == TrendVerdict::kGrowing; }
  bool judged() const { return measured && trend.verdict != TrendVerdict::kInsufficient; }
};

// The end-of-run levels the allocator_retention check compares (with the heap trace only).
struct RetentionObservation {
  double anon_bytes = 0;         // anon RSS at the end
  double heap_live_bytes = 0;    // live heap at the end
  double heap_peak_bytes = 0;    // the live heap's peak
  double mapped_live_bytes = 0;  // direct mappings at the end
};

// The memory limit growth runs into: the cgroup's memory.max, else MemAvailable.
struct LimitObservation {
  LimitKind kind = LimitKind::kMemAvailable;
  double limit_bytes = 0;
  double used_bytes = 0;  // already counted against the limit (the cgroup's usage; 0 for MemAvailable)
};

// Everything diagnose() measured of one judged process.
struct ProcessObservations {
  pid_t pid = 0;
  SeriesObservation heap, anon, swap, shmem, file, fds, threads, gpu;
  uint64_t rss_max_bytes = 0;
  uint64_t vsz_max_bytes = 0;
  std::optional<RetentionObservation> retention;  // absent without the heap trace
  std::optional<LimitObservation> limit;
};

// The tree: which processes exist and which of them could be judged.
struct TreeObservations {
  pid_t root_pid = 0;
  std::vector<pid_t> judged;  // long enough to judge, root included when it was
  size_t processes = 0;       // every process recorded, judged or not
};

// The twelve hypotheses of one judged process, in kHypothesisKinds order (child_growth only for
// the root: it is a question about the tree). `findings` are the verdict's, all processes.
std::vector<model::Hypothesis> process_hypotheses(const ProcessObservations& seen, const TreeObservations& tree,
                                                  const std::vector<model::Finding>& findings,
                                                  const DiagnoseOptions& options);

// child_growth alone, on the root: for a root too short-lived to have its own table.
model::Hypothesis child_growth_hypothesis(const TreeObservations& tree, const std::vector<model::Finding>& findings);

// The root's hypotheses when no process was sampled long enough to judge: all inconclusive with
// `why`, but GPU memory, which is not measured either way.
std::vector<model::Hypothesis> unjudged_hypotheses(pid_t root_pid, const std::string& why);

// Puts each finding's current evidence into the hypothesis it confirms: the heap trace's
// analysis appends the responsible call site to a finding's evidence after diagnose().
void refresh_confirmed_evidence(model::Verdict& verdict);

}  // namespace memdx::analyze
