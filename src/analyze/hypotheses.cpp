#include "analyze/hypotheses.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "analyze/diagnose.h"
#include "analyze/wording.h"
#include "model/format.h"
#include "model/kinds.h"

namespace memdx::analyze {
namespace {

using model::Finding;
using model::Hypothesis;

constexpr HypothesisStatus kConfirmed = HypothesisStatus::kConfirmed;
constexpr HypothesisStatus kEliminated = HypothesisStatus::kEliminated;
constexpr HypothesisStatus kInconclusive = HypothesisStatus::kInconclusive;
constexpr HypothesisStatus kNotMeasured = HypothesisStatus::kNotMeasured;

// A projected exhaustion within this is "approaching" the limit; further off it is a leak that
// will get there, but not a matter of today.
constexpr double kApproachingWithin_s = 24 * 3600.0;
// A cgroup this full is at its limit whatever the trend.
constexpr double kCgroupFullShare = 0.9;

Hypothesis make(HypothesisKind kind, pid_t pid, HypothesisStatus status, std::string evidence) {
  return {kind, pid, status, model::row_of(kind).statement, std::move(evidence)};
}

using model::find_finding;

// "anon RSS went from 3.10 MiB to 3.20 MiB over 9.8 s: no unbounded growth (no significant trend, p=0.41)"
std::string bounded_sentence(const char* label, Unit unit, const SeriesObservation& s) {
  std::string start = level_text(s.trend.start_level, unit), end = level_text(s.trend.end_level, unit);
  if (start == end) {
    std::string sentence = fmt::format("{} stayed at {} over {}", label, start, span_text(s.span_s));
    return s.trend.constant ? sentence : sentence + "; " + s.trend.reason;
  }
  return fmt::format("{} went from {} to {} over {}: no unbounded growth; {}", label,
                     level_text(s.trend.start_level, unit), level_text(s.trend.end_level, unit), span_text(s.span_s),
                     s.trend.reason);
}

// The common shape: confirmed by its finding, inconclusive when the series could not be judged,
// otherwise eliminated by the series' own numbers.
Hypothesis from_series(HypothesisKind name, const ProcessObservations& seen, const std::vector<Finding>& findings,
                       const SeriesObservation& series, const char* label, Unit unit) {
  if (const Finding* f = find_finding(findings, seen.pid, name)) return make(name, seen.pid, kConfirmed, f->evidence);
  if (!series.judged()) return make(name, seen.pid, kInconclusive, fmt::format("{}: {}", label, series.trend.reason));
  return make(name, seen.pid, kEliminated, bounded_sentence(label, unit, series));
}

Hypothesis heap_growth(const ProcessObservations& seen, const std::vector<Finding>& findings) {
  if (!seen.heap.measured && !find_finding(findings, seen.pid, FindingKind::kHeapGrowth)) {
    return make(HypothesisKind::kHeapGrowth, seen.pid, kNotMeasured,
                "no heap trace for this process (recorded with --no-trace or by memdx watch): its live heap is "
                "part of anon RSS, see anon_growth");
  }
  return from_series(HypothesisKind::kHeapGrowth, seen, findings, seen.heap, "the live heap", Unit::kBytes);
}

Hypothesis anon_growth(const ProcessObservations& seen, const std::vector<Finding>& findings) {
  if (!find_finding(findings, seen.pid, FindingKind::kAnonGrowth) && seen.anon.growing() && seen.heap.growing()) {
    return make(HypothesisKind::kAnonGrowth, seen.pid, kEliminated,
                fmt::format("anon RSS rose {} but the live heap rose {}: the malloc heap explains it",
                            rate_text(seen.anon.trend.slope_per_s, Unit::kBytes),
                            rate_text(seen.heap.trend.slope_per_s, Unit::kBytes)));
  }
  return from_series(HypothesisKind::kAnonGrowth, seen, findings, seen.anon, "anon RSS", Unit::kBytes);
}

Hypothesis allocator_retention(const ProcessObservations& seen, const std::vector<Finding>& findings,
                               const DiagnoseOptions& options) {
  constexpr HypothesisKind kName = HypothesisKind::kAllocatorRetention;
  if (const Finding* f = find_finding(findings, seen.pid, kName)) return make(kName, seen.pid, kConfirmed, f->evidence);
  if (!seen.retention) {
    return make(kName, seen.pid, kNotMeasured,
                "needs the heap trace to compare anon RSS with the bytes still allocated");
  }
  if (seen.heap.growing()) {
    return make(kName, seen.pid, kEliminated,
                fmt::format("the live heap itself grows ({}): RSS above it is growth, not freed memory kept",
                            rate_text(seen.heap.trend.slope_per_s, Unit::kBytes)));
  }
  const RetentionObservation& r = *seen.retention;
  double live = r.heap_live_bytes + r.mapped_live_bytes;
  double excess = r.anon_bytes - live;
  if (excess < static_cast<double>(options.retention_min_bytes) || r.anon_bytes < options.retention_factor * live) {
    return make(
        kName, seen.pid, kEliminated,
        fmt::format("anon RSS {} against {} live (heap {}, direct mappings {}): RSS follows the live bytes",
                    level_text(r.anon_bytes, Unit::kBytes), level_text(live, Unit::kBytes),
                    level_text(r.heap_live_bytes, Unit::kBytes), level_text(r.mapped_live_bytes, Unit::kBytes)));
  }
  return make(kName, seen.pid, kEliminated,
              fmt::format("anon RSS {} is {} above the live bytes, but the heap never held it (peak {}, now {}): "
                          "memory outside malloc, not freed heap",
                          level_text(r.anon_bytes, Unit::kBytes), level_text(excess, Unit::kBytes),
                          level_text(r.heap_peak_bytes, Unit::kBytes), level_text(r.heap_live_bytes, Unit::kBytes)));
}

Hypothesis reservation_only(const ProcessObservations& seen, const std::vector<Finding>& findings,
                            const DiagnoseOptions& options) {
  constexpr HypothesisKind kName = HypothesisKind::kReservationOnly;
  if (const Finding* f = find_finding(findings, seen.pid, kName)) return make(kName, seen.pid, kConfirmed, f->evidence);
  double ratio =
      static_cast<double>(seen.vsz_max_bytes) / static_cast<double>(std::max<uint64_t>(seen.rss_max_bytes, 1));
  if (seen.vsz_max_bytes < options.reservation_min_vsz_bytes) {
    return make(kName, seen.pid, kEliminated,
                fmt::format("peak VSZ {} ({:.1f}x peak RSS {}) is under {}: no reservation worth explaining",
                            model::format_bytes(seen.vsz_max_bytes), ratio, model::format_bytes(seen.rss_max_bytes),
                            model::format_bytes(options.reservation_min_vsz_bytes)));
  }
  return make(kName, seen.pid, kEliminated,
              fmt::format("peak VSZ {} is only {:.1f}x peak RSS {}: much of the address space is in use",
                          model::format_bytes(seen.vsz_max_bytes), ratio, model::format_bytes(seen.rss_max_bytes)));
}

Hypothesis count_series(HypothesisKind name, const ProcessObservations& seen, const std::vector<Finding>& findings,
                        const SeriesObservation& series, const char* label, Unit unit) {
  if (!series.measured && !find_finding(findings, seen.pid, name)) {
    return make(name, seen.pid, kNotMeasured,
                fmt::format("{} could not be read (another user's process: memdx needs root or CAP_SYS_PTRACE to "
                            "count them); nothing is assumed about them",
                            label));
  }
  if (find_finding(findings, seen.pid, name) || !series.judged() || !series.growing()) {
    return from_series(name, seen, findings, series, label, unit);
  }
  // Rising, but by fewer than a leak needs (lazily opened fds, a pool filling up).
  return make(name, seen.pid, kEliminated,
              fmt::format("{} went from {:.0f} to {:.0f}: too few more to be a leak", label, series.trend.start_level,
                          series.trend.end_level));
}

Hypothesis gpu_not_measured(pid_t pid) {
  return make(HypothesisKind::kGpuGrowth, pid, kNotMeasured,
              "GPU memory was not measured: no NVIDIA library (libnvidia-ml.so.1) and no DRM client among its fds; "
              "nothing is assumed about it");
}

Hypothesis gpu_growth(const ProcessObservations& seen, const std::vector<Finding>& findings) {
  if (!seen.gpu.measured) return gpu_not_measured(seen.pid);
  return from_series(HypothesisKind::kGpuGrowth, seen, findings, seen.gpu, "GPU memory", Unit::kBytes);
}

// Confirmed by the anon finding on anon + swap (diagnose makes it exactly when resident anon is
// bounded while the sum grows); swap rising as resident anon falls is a bounded process being
// swapped out.
Hypothesis swap_growth(const ProcessObservations& seen, const std::vector<Finding>& findings) {
  constexpr HypothesisKind kName = HypothesisKind::kSwapGrowth;
  const SeriesObservation& swap = seen.swap;
  if (!swap.judged()) return make(kName, seen.pid, kInconclusive, fmt::format("swap: {}", swap.trend.reason));
  if (!swap.growing()) return make(kName, seen.pid, kEliminated, bounded_sentence("swap", Unit::kBytes, swap));
  std::string rose =
      fmt::format("swap rose from {} to {} ({})", level_text(swap.trend.start_level, Unit::kBytes),
                  level_text(swap.trend.end_level, Unit::kBytes), rate_text(swap.trend.slope_per_s, Unit::kBytes));
  if (seen.anon.growing()) {
    return make(kName, seen.pid, kEliminated, rose + ", but anon RSS rises too: RSS shows the growth itself");
  }
  const Finding* anon = find_finding(findings, seen.pid, FindingKind::kAnonGrowth);
  std::string start = level_text(seen.anon.trend.start_level, Unit::kBytes),
              end = level_text(seen.anon.trend.end_level, Unit::kBytes);
  std::string anon_levels =
      start == end ? "anon RSS stayed at " + start : fmt::format("anon RSS went from {} to {}", start, end);
  if (anon && anon->series == Series::kRssAnonWithSwap) {
    return make(kName, seen.pid, kConfirmed,
                fmt::format("{} while {}: the growth is being paged out (anon RSS + swap rises {})", rose, anon_levels,
                            rate_text(anon->rate_per_s, Unit::kBytes)));
  }
  return make(kName, seen.pid, kEliminated,
              fmt::format("{} while {}: pages of a bounded process moving to swap, anon + swap does not grow", rose,
                          anon_levels));
}

// The byte leak among those `counts` accepts that reaches its limit first.
template <typename Counts>
const Finding* soonest_to_limit(const std::vector<Finding>& findings, Counts counts) {
  const Finding* soonest = nullptr;
  for (const Finding& f : findings) {
    if (!counts(f) || f.severity != Severity::kLeak || !f.time_to_limit_s) continue;
    if (!soonest || *f.time_to_limit_s < *soonest->time_to_limit_s) soonest = &f;
  }
  return soonest;
}

std::string reach_text(const Finding& f) {
  std::string limit = fmt::format("{} ({})", f.limit ? to_string(*f.limit) : "the limit",
                                  f.limit_bytes ? model::format_bytes(*f.limit_bytes) : "?");
  if (*f.time_to_limit_s <= 0) return fmt::format("{} is already reached", limit);
  return fmt::format("at {} ({} of pid {}) {} is reached in {}", rate_text(f.rate_per_s, f.unit), to_string(f.kind),
                     f.pid, limit, duration_text(*f.time_to_limit_s));
}

// For the root the question is the whole tree's: its children share its cgroup and machine.
Hypothesis limit_approach(const ProcessObservations& seen, const TreeObservations& tree,
                          const std::vector<Finding>& findings) {
  bool whole_tree = seen.pid == tree.root_pid;
  auto counts = [&](const Finding& f) { return whole_tree || f.pid == seen.pid; };
  constexpr HypothesisKind kName = HypothesisKind::kLimitApproach;
  if (seen.limit && seen.limit->kind == LimitKind::kCgroupMemoryMax &&
      seen.limit->used_bytes >= kCgroupFullShare * seen.limit->limit_bytes) {
    return make(
        kName, seen.pid, kConfirmed,
        fmt::format("the cgroup uses {} of its memory.max {} ({:.0f}%)",
                    level_text(seen.limit->used_bytes, Unit::kBytes), level_text(seen.limit->limit_bytes, Unit::kBytes),
                    100 * seen.limit->used_bytes / seen.limit->limit_bytes));
  }
  if (const Finding* f = soonest_to_limit(findings, counts)) {
    if (*f->time_to_limit_s <= kApproachingWithin_s) return make(kName, seen.pid, kConfirmed, reach_text(*f));
    return make(kName, seen.pid, kInconclusive, reach_text(*f) + ": far off, but the growth is unbounded");
  }
  bool leaks_bytes = std::any_of(findings.begin(), findings.end(), [&](const Finding& f) {
    return counts(f) && f.severity == Severity::kLeak && f.is_bytes();
  });
  if (leaks_bytes) {
    return make(kName, seen.pid, kInconclusive,
                "memory grows, but no limit was read (no memory.max, MemAvailable unread)");
  }
  std::string limit = seen.limit ? fmt::format("; {} is {}", to_string(seen.limit->kind),
                                               level_text(seen.limit->limit_bytes, Unit::kBytes))
                                 : "";
  return make(kName, seen.pid, kEliminated,
              fmt::format("no memory of the {} grows without bound, so none runs out{}",
                          whole_tree ? "process tree" : "process", limit));
}

std::string growth_list(const std::vector<Finding>& findings, const std::set<pid_t>& pids) {
  std::string text;
  for (const Finding& f : findings) {
    if (f.severity != Severity::kLeak || !f.is_bytes() || !pids.count(f.pid)) continue;
    text += fmt::format("{}pid {} ({}, {})", text.empty() ? "" : ", ", f.pid, to_string(f.kind),
                        rate_text(f.rate_per_s, f.unit));
  }
  return text;
}

Hypothesis child_growth(const TreeObservations& tree, const std::vector<Finding>& findings) {
  constexpr HypothesisKind kName = HypothesisKind::kChildGrowth;
  std::set<pid_t> growing_children;
  bool root_grows = false;
  for (const Finding& f : findings) {
    if (f.severity != Severity::kLeak || !f.is_bytes()) continue;  // memory: an fd leak holds no growth
    if (f.pid == tree.root_pid)
      root_grows = true;
    else
      growing_children.insert(f.pid);
  }
  size_t children = tree.processes > 0 ? tree.processes - 1 : 0;
  size_t judged_children = static_cast<size_t>(
      std::count_if(tree.judged.begin(), tree.judged.end(), [&](pid_t pid) { return pid != tree.root_pid; }));
  if (!growing_children.empty()) {
    std::string who = growth_list(findings, growing_children);
    if (root_grows) return make(kName, tree.root_pid, kConfirmed, "children grow as well as the root: " + who);
    return make(kName, tree.root_pid, kConfirmed,
                fmt::format("{} hold{} the growth; the root (pid {}) stayed bounded", who,
                            growing_children.size() == 1 ? "s" : "", tree.root_pid));
  }
  if (children == 0) return make(kName, tree.root_pid, kEliminated, "the root started no other process");
  if (judged_children == 0) {
    return make(kName, tree.root_pid, kInconclusive,
                fmt::format("{} child process{} lived too briefly to judge", children, children == 1 ? "" : "es"));
  }
  std::string evidence = fmt::format("none of the {} child process{} sampled long enough grew", judged_children,
                                     judged_children == 1 ? "" : "es");
  if (children > judged_children)
    evidence += fmt::format("; {} more lived too briefly to judge", children - judged_children);
  return make(kName, tree.root_pid, kEliminated, evidence);
}

}  // namespace

std::vector<Hypothesis> process_hypotheses(const ProcessObservations& seen, const TreeObservations& tree,
                                           const std::vector<Finding>& findings, const DiagnoseOptions& options) {
  std::vector<Hypothesis> out;
  out.push_back(heap_growth(seen, findings));
  out.push_back(anon_growth(seen, findings));
  out.push_back(allocator_retention(seen, findings, options));
  out.push_back(reservation_only(seen, findings, options));
  out.push_back(from_series(HypothesisKind::kFileGrowth, seen, findings, seen.file, "file-backed RSS", Unit::kBytes));
  out.push_back(from_series(HypothesisKind::kShmemGrowth, seen, findings, seen.shmem, "shmem RSS", Unit::kBytes));
  out.push_back(count_series(HypothesisKind::kFdGrowth, seen, findings, seen.fds, "open fds", Unit::kFds));
  out.push_back(count_series(HypothesisKind::kThreadGrowth, seen, findings, seen.threads, "threads", Unit::kThreads));
  if (seen.pid == tree.root_pid) out.push_back(child_growth(tree, findings));
  out.push_back(gpu_growth(seen, findings));
  out.push_back(swap_growth(seen, findings));
  out.push_back(limit_approach(seen, tree, findings));
  return out;
}

Hypothesis child_growth_hypothesis(const TreeObservations& tree, const std::vector<Finding>& findings) {
  return child_growth(tree, findings);
}

std::vector<Hypothesis> unjudged_hypotheses(pid_t root_pid, const std::string& why) {
  std::vector<Hypothesis> out;
  out.reserve(kHypothesisKinds.size());
  for (HypothesisKind kind : kHypothesisKinds) {
    out.push_back(kind == HypothesisKind::kGpuGrowth ? gpu_not_measured(root_pid)
                                                     : make(kind, root_pid, kInconclusive, why));
  }
  return out;
}

void refresh_confirmed_evidence(model::Verdict& verdict) {
  for (Hypothesis& h : verdict.hypotheses) {
    if (h.status != kConfirmed) continue;
    if (const Finding* f = find_finding(verdict.findings, h.pid, h.kind)) h.evidence = f->evidence;
  }
}

}  // namespace memdx::analyze
