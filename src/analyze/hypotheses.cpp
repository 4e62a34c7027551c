#include "analyze/hypotheses.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "analyze/diagnose.h"
#include "analyze/wording.h"
#include "model/units.h"

namespace memdx::analyze {
namespace {

using model::Finding;
using model::Hypothesis;

constexpr const char* kConfirmed = "confirmed";
constexpr const char* kEliminated = "eliminated";
constexpr const char* kInconclusive = "inconclusive";
constexpr const char* kNotMeasured = "not_measured";

// A projected exhaustion within this is "approaching" the limit; further off it is a leak that
// will get there, but not a matter of today.
constexpr double kApproachingWithin_s = 24 * 3600.0;
// A cgroup this full is at its limit whatever the trend.
constexpr double kCgroupFullShare = 0.9;

std::string statement_of(std::string_view name) {
  if (name == "heap_growth") return "the malloc heap grows";
  if (name == "anon_growth") return "anonymous memory outside malloc grows (direct mmap, a runtime's own heap)";
  if (name == "allocator_retention") return "the allocator keeps freed memory: RSS far above the live heap, not a leak";
  if (name == "reservation_only") return "only address space is reserved: VSZ far above RSS";
  if (name == "file_growth") return "file-backed pages (page cache) grow: reclaimable, not a leak";
  if (name == "shmem_growth") return "shared memory, tmpfs or memfd grows";
  if (name == "fd_growth") return "file descriptors leak";
  if (name == "thread_growth") return "threads leak, and their stacks with them";
  if (name == "child_growth") return "a child process, not the root, holds the growth";
  if (name == "gpu_growth") return "GPU memory grows";
  if (name == "swap_growth") return "swap hides the growth: RSS flat while swap rises";
  if (name == "limit_approach") return "the process approaches its memory limit";
  return std::string(name);
}

Hypothesis make(std::string_view name, pid_t pid, const char* status, std::string evidence) {
  return {std::string(name), pid, status, statement_of(name), std::move(evidence)};
}

using model::find_finding;

// "anon RSS went from 3.10 MiB to 3.20 MiB over 9.8 s: no unbounded growth (no significant trend, p=0.41)"
std::string bounded_sentence(const char* label, const char* unit, const SeriesObservation& s) {
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
Hypothesis from_series(std::string_view name, const ProcessObservations& seen, const std::vector<Finding>& findings,
                       const SeriesObservation& series, const char* label, const char* unit) {
  if (const Finding* f = find_finding(findings, seen.pid, name)) return make(name, seen.pid, kConfirmed, f->evidence);
  if (!series.judged()) return make(name, seen.pid, kInconclusive, fmt::format("{}: {}", label, series.trend.reason));
  return make(name, seen.pid, kEliminated, bounded_sentence(label, unit, series));
}

Hypothesis heap_growth(const ProcessObservations& seen, const std::vector<Finding>& findings) {
  if (!seen.heap.measured && !find_finding(findings, seen.pid, "heap_growth")) {
    return make("heap_growth", seen.pid, kNotMeasured,
                "no heap trace for this process (recorded with --no-trace or by memdx watch): its live heap is "
                "part of anon RSS, see anon_growth");
  }
  return from_series("heap_growth", seen, findings, seen.heap, "the live heap", "bytes");
}

Hypothesis anon_growth(const ProcessObservations& seen, const std::vector<Finding>& findings) {
  if (!find_finding(findings, seen.pid, "anon_growth") && seen.anon.growing() && seen.heap.growing()) {
    return make(
        "anon_growth", seen.pid, kEliminated,
        fmt::format("anon RSS rose {} but the live heap rose {}: the malloc heap explains it",
                    rate_text(seen.anon.trend.slope_per_s, "bytes"), rate_text(seen.heap.trend.slope_per_s, "bytes")));
  }
  return from_series("anon_growth", seen, findings, seen.anon, "anon RSS", "bytes");
}

Hypothesis allocator_retention(const ProcessObservations& seen, const std::vector<Finding>& findings,
                               const DiagnoseOptions& options) {
  constexpr std::string_view kName = "allocator_retention";
  if (const Finding* f = find_finding(findings, seen.pid, kName)) return make(kName, seen.pid, kConfirmed, f->evidence);
  if (!seen.retention) {
    return make(kName, seen.pid, kNotMeasured,
                "needs the heap trace to compare anon RSS with the bytes still allocated");
  }
  if (seen.heap.growing()) {
    return make(kName, seen.pid, kEliminated,
                fmt::format("the live heap itself grows ({}): RSS above it is growth, not freed memory kept",
                            rate_text(seen.heap.trend.slope_per_s, "bytes")));
  }
  const RetentionObservation& r = *seen.retention;
  double live = r.heap_live_bytes + r.mapped_live_bytes;
  double excess = r.anon_bytes - live;
  if (excess < static_cast<double>(options.retention_min_bytes) || r.anon_bytes < options.retention_factor * live) {
    return make(kName, seen.pid, kEliminated,
                fmt::format("anon RSS {} against {} live (heap {}, direct mappings {}): RSS follows the live bytes",
                            level_text(r.anon_bytes, "bytes"), level_text(live, "bytes"),
                            level_text(r.heap_live_bytes, "bytes"), level_text(r.mapped_live_bytes, "bytes")));
  }
  return make(kName, seen.pid, kEliminated,
              fmt::format("anon RSS {} is {} above the live bytes, but the heap never held it (peak {}, now {}): "
                          "memory outside malloc, not freed heap",
                          level_text(r.anon_bytes, "bytes"), level_text(excess, "bytes"),
                          level_text(r.heap_peak_bytes, "bytes"), level_text(r.heap_live_bytes, "bytes")));
}

Hypothesis reservation_only(const ProcessObservations& seen, const std::vector<Finding>& findings,
                            const DiagnoseOptions& options) {
  constexpr std::string_view kName = "reservation_only";
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

Hypothesis count_series(std::string_view name, const ProcessObservations& seen, const std::vector<Finding>& findings,
                        const SeriesObservation& series, const char* label) {
  if (!series.measured && !find_finding(findings, seen.pid, name)) {
    return make(name, seen.pid, kNotMeasured,
                fmt::format("{} could not be read (another user's process: memdx needs root or CAP_SYS_PTRACE to "
                            "count them); nothing is assumed about them",
                            label));
  }
  if (find_finding(findings, seen.pid, name) || !series.judged() || !series.growing()) {
    return from_series(name, seen, findings, series, label, label);
  }
  // Rising, but by fewer than a leak needs (lazily opened fds, a pool filling up).
  return make(name, seen.pid, kEliminated,
              fmt::format("{} went from {:.0f} to {:.0f}: too few more to be a leak", label, series.trend.start_level,
                          series.trend.end_level));
}

Hypothesis gpu_growth(pid_t pid) {
  return make("gpu_growth", pid, kNotMeasured,
              "GPU memory is not sampled yet (NVML and DRM fdinfo support is planned); nothing is assumed about it");
}

// Confirmed by the anon finding on anon + swap (diagnose makes it exactly when resident anon is
// bounded while the sum grows); swap rising as resident anon falls is a bounded process being
// swapped out.
Hypothesis swap_growth(const ProcessObservations& seen, const std::vector<Finding>& findings) {
  constexpr std::string_view kName = "swap_growth";
  const SeriesObservation& swap = seen.swap;
  if (!swap.judged()) return make(kName, seen.pid, kInconclusive, fmt::format("swap: {}", swap.trend.reason));
  if (!swap.growing()) return make(kName, seen.pid, kEliminated, bounded_sentence("swap", "bytes", swap));
  std::string rose = fmt::format("swap rose from {} to {} ({})", level_text(swap.trend.start_level, "bytes"),
                                 level_text(swap.trend.end_level, "bytes"), rate_text(swap.trend.slope_per_s, "bytes"));
  if (seen.anon.growing()) {
    return make(kName, seen.pid, kEliminated, rose + ", but anon RSS rises too: RSS shows the growth itself");
  }
  const Finding* anon = find_finding(findings, seen.pid, "anon_growth");
  std::string start = level_text(seen.anon.trend.start_level, "bytes"),
              end = level_text(seen.anon.trend.end_level, "bytes");
  std::string anon_levels =
      start == end ? "anon RSS stayed at " + start : fmt::format("anon RSS went from {} to {}", start, end);
  if (anon && anon->series == "rss_anon_bytes+swap_bytes") {
    return make(kName, seen.pid, kConfirmed,
                fmt::format("{} while {}: the growth is being paged out (anon RSS + swap rises {})", rose, anon_levels,
                            rate_text(anon->rate_per_s, "bytes")));
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
    if (!counts(f) || f.severity != "leak" || !f.time_to_limit_s) continue;
    if (!soonest || *f.time_to_limit_s < *soonest->time_to_limit_s) soonest = &f;
  }
  return soonest;
}

std::string reach_text(const Finding& f) {
  std::string limit = fmt::format("{} ({})", f.limit_name, f.limit_bytes ? model::format_bytes(*f.limit_bytes) : "?");
  if (*f.time_to_limit_s <= 0) return fmt::format("{} is already reached", limit);
  return fmt::format("at {} ({} of pid {}) {} is reached in {}", rate_text(f.rate_per_s, f.unit), f.kind, f.pid, limit,
                     duration_text(*f.time_to_limit_s));
}

// For the root the question is the whole tree's: its children share its cgroup and machine.
Hypothesis limit_approach(const ProcessObservations& seen, const TreeObservations& tree,
                          const std::vector<Finding>& findings) {
  bool whole_tree = seen.pid == tree.root_pid;
  auto counts = [&](const Finding& f) { return whole_tree || f.pid == seen.pid; };
  constexpr std::string_view kName = "limit_approach";
  if (seen.limit && seen.limit->name == "cgroup memory.max" &&
      seen.limit->used_bytes >= kCgroupFullShare * seen.limit->limit_bytes) {
    return make(kName, seen.pid, kConfirmed,
                fmt::format("the cgroup uses {} of its memory.max {} ({:.0f}%)",
                            level_text(seen.limit->used_bytes, "bytes"), level_text(seen.limit->limit_bytes, "bytes"),
                            100 * seen.limit->used_bytes / seen.limit->limit_bytes));
  }
  if (const Finding* f = soonest_to_limit(findings, counts)) {
    if (*f->time_to_limit_s <= kApproachingWithin_s) return make(kName, seen.pid, kConfirmed, reach_text(*f));
    return make(kName, seen.pid, kInconclusive, reach_text(*f) + ": far off, but the growth is unbounded");
  }
  bool leaks_bytes = std::any_of(findings.begin(), findings.end(),
                                 [&](const Finding& f) { return counts(f) && f.severity == "leak" && f.is_bytes(); });
  if (leaks_bytes) {
    return make(kName, seen.pid, kInconclusive,
                "memory grows, but no limit was read (no memory.max, MemAvailable unread)");
  }
  std::string limit =
      seen.limit ? fmt::format("; {} is {}", seen.limit->name, level_text(seen.limit->limit_bytes, "bytes")) : "";
  return make(kName, seen.pid, kEliminated,
              fmt::format("no memory of the {} grows without bound, so none runs out{}",
                          whole_tree ? "process tree" : "process", limit));
}

std::string growth_list(const std::vector<Finding>& findings, const std::set<pid_t>& pids) {
  std::string text;
  for (const Finding& f : findings) {
    if (f.severity != "leak" || !f.is_bytes() || !pids.count(f.pid)) continue;
    text += fmt::format("{}pid {} ({}, {})", text.empty() ? "" : ", ", f.pid, f.kind, rate_text(f.rate_per_s, f.unit));
  }
  return text;
}

Hypothesis child_growth(const TreeObservations& tree, const std::vector<Finding>& findings) {
  constexpr std::string_view kName = "child_growth";
  std::set<pid_t> growing_children;
  bool root_grows = false;
  for (const Finding& f : findings) {
    if (f.severity != "leak" || !f.is_bytes()) continue;  // memory: an fd leak holds no growth
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
  out.push_back(from_series("file_growth", seen, findings, seen.file, "file-backed RSS", "bytes"));
  out.push_back(from_series("shmem_growth", seen, findings, seen.shmem, "shmem RSS", "bytes"));
  out.push_back(count_series("fd_growth", seen, findings, seen.fds, "open fds"));
  out.push_back(count_series("thread_growth", seen, findings, seen.threads, "threads"));
  if (seen.pid == tree.root_pid) out.push_back(child_growth(tree, findings));
  out.push_back(gpu_growth(seen.pid));
  out.push_back(swap_growth(seen, findings));
  out.push_back(limit_approach(seen, tree, findings));
  return out;
}

Hypothesis child_growth_hypothesis(const TreeObservations& tree, const std::vector<Finding>& findings) {
  return child_growth(tree, findings);
}

std::vector<Hypothesis> unjudged_hypotheses(pid_t root_pid, const std::string& why) {
  std::vector<Hypothesis> out;
  for (std::string_view name : kHypothesisNames) {
    out.push_back(name == "gpu_growth" ? gpu_growth(root_pid) : make(name, root_pid, kInconclusive, why));
  }
  return out;
}

void refresh_confirmed_evidence(model::Verdict& verdict) {
  for (Hypothesis& h : verdict.hypotheses) {
    if (h.status != kConfirmed) continue;
    if (const Finding* f = find_finding(verdict.findings, h.pid, h.name)) h.evidence = f->evidence;
  }
}

}  // namespace memdx::analyze
