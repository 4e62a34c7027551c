#include "report/verdict_text.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>

#include "analyze/heap_sites.h"
#include "analyze/wording.h"
#include "model/format.h"
#include "model/kinds.h"
#include "model/terminal_text.h"

namespace memdx::report {
namespace {

using model::Finding;
using model::ProcessSummary;
using model::Verdict;

constexpr size_t kCommandWidth = 60;

// Commands, function names, file names and stack frames come from the target: on the terminal an
// escape sequence in them must show, not act, and a newline must not break the layout.
std::string safe(const std::string& text) {
  return model::terminal_safe(text);
}

// Keeps commands on one line and short.
std::string one_line(const std::string& text, size_t width = kCommandWidth) {
  return model::shorten(safe(text), width);
}

const ProcessSummary* process_of(const Verdict& v, pid_t pid) {
  auto it = std::find_if(v.processes.begin(), v.processes.end(), [&](auto& p) { return p.pid == pid; });
  return it == v.processes.end() ? nullptr : &*it;
}

std::string command_of(const Verdict& v, pid_t pid) {
  const ProcessSummary* p = process_of(v, pid);
  return p && !p->command.empty() ? one_line(p->command) : "?";
}

std::string rate_text(const Finding& f) {
  if (f.is_bytes()) return model::format_bytes(static_cast<uint64_t>(std::llround(std::max(0.0, f.rate_per_s)))) + "/s";
  return fmt::format("{:.3g} {}/s", f.rate_per_s, f.unit);
}

// 1 - p reads as 100% when p is tiny; never claim certainty.
std::string confidence_text(double confidence) {
  if (confidence >= 0.999) return ">99.9%";
  return fmt::format("{:.1f}%", std::floor(confidence * 1000) / 10);
}

// What grows, as the headline names it.
std::string what_grows(FindingKind kind) {
  const char* what = model::row_of(kind).what_grows;
  return what ? what : to_string(kind);
}

// The too-short finding is the only no_growth without a tested level (verdict.h: confidence 0).
bool too_short_to_judge(const Verdict& v) {
  return std::any_of(v.findings.begin(), v.findings.end(),
                     [](const Finding& f) { return f.kind == FindingKind::kNoGrowth && f.confidence == 0; });
}

// " on nvidia0 (NVIDIA H200); the heap and anonymous memory are flat": where the GPU memory is,
// and that the host-side series do not grow (the case a language's own tracker misses).
std::string gpu_detail(const Verdict& v, const Finding& gpu) {
  std::string out;
  for (const std::string& device : gpu.devices) out += (out.empty() ? " on " : ", ") + device;
  bool host_grows = std::any_of(v.findings.begin(), v.findings.end(), [&](const Finding& f) {
    return f.pid == gpu.pid && (f.kind == FindingKind::kHeapGrowth || f.kind == FindingKind::kAnonGrowth);
  });
  bool heap_traced = std::none_of(v.hypotheses.begin(), v.hypotheses.end(), [&](const model::Hypothesis& h) {
    return h.pid == gpu.pid && h.kind == model::HypothesisKind::kHeapGrowth &&
           h.status == model::HypothesisStatus::kNotMeasured;
  });
  if (!host_grows) {
    out += heap_traced ? "; the heap and anonymous memory are flat"
                       : "; anonymous memory (the malloc heap included) is flat";
  }
  return out;
}

std::string leak_headline(const Verdict& v) {
  // diagnose() orders the fastest leak first; take the first leak whatever the order.
  const Finding& top =
      *std::find_if(v.findings.begin(), v.findings.end(), [](auto& f) { return f.severity == Severity::kLeak; });
  auto leaks =
      std::count_if(v.findings.begin(), v.findings.end(), [](auto& f) { return f.severity == Severity::kLeak; });
  std::string line = fmt::format("LEAK: {} of pid {} ({}) grows {}", what_grows(top.kind), top.pid,
                                 command_of(v, top.pid), rate_text(top));
  if (top.kind == FindingKind::kGpuGrowth) line += gpu_detail(v, top);
  line += fmt::format(" (confidence {})", confidence_text(top.confidence));
  if (leaks > 1) line += fmt::format("; {} more leak finding{} below", leaks - 1, leaks == 2 ? "" : "s");
  return line;
}

std::string no_leak_headline(const Verdict& v) {
  if (too_short_to_judge(v)) return "No leak found: the run was too short to judge";
  std::set<pid_t> judged;
  for (const Finding& f : v.findings) judged.insert(f.pid);
  std::string line = fmt::format("No leak: memory stayed bounded in {} process{} over {}", judged.size(),
                                 judged.size() == 1 ? "" : "es", analyze::span_text(v.target.duration_s));
  bool file =
      std::any_of(v.findings.begin(), v.findings.end(), [](auto& f) { return f.kind == FindingKind::kFileGrowth; });
  if (file) line += " (only reclaimable file-backed pages grew)";
  if (v.processes.size() > judged.size()) {
    line += fmt::format("; {} too short-lived to judge", v.processes.size() - judged.size());
  }
  return line;
}

std::string limit_line(const Finding& f) {
  std::string limit = f.limit_bytes ? model::format_bytes(*f.limit_bytes) : "?";
  bool cgroup = f.limit == LimitKind::kCgroupMemoryMax;
  std::string what = cgroup    ? fmt::format("memory.max ({})", limit)
                     : f.limit ? fmt::format("{} ({})", *f.limit, limit)
                               : fmt::format("the limit ({})", limit);
  if (*f.time_to_limit_s <= 0) return fmt::format("{} is already reached", what);
  return fmt::format("at this rate {} is {} in {}", what, cgroup ? "reached" : "used up",
                     format_duration(*f.time_to_limit_s));
}

std::string bounded_count_line(const Verdict& v) {
  auto others = static_cast<size_t>(std::count_if(v.findings.begin(), v.findings.end(),
                                                  [&](const Finding& f) { return counted_only_bounded(v, f); }));
  if (others == 0) return "";
  return fmt::format("  ... and {} more process{} bounded\n", others, others == 1 ? "" : "es");
}

void render_evidence(std::string& out, const Verdict& v) {
  out += "\nEvidence:\n";
  for (const Finding& f : v.findings) {
    if (counted_only_bounded(v, f)) continue;
    out += fmt::format("  [{}] {} pid {}: {}\n", f.severity, f.kind, f.pid, safe(f.evidence));
    if (f.time_to_limit_s) out += fmt::format("      {}\n", limit_line(f));
  }
  out += bounded_count_line(v);
}

// "pid 42: anon_growth, fd_growth": the names of one status, per process, on one line each.
std::string names_by_process(const Verdict& v, HypothesisStatus status) {
  std::string text;
  pid_t current = 0;
  for (const model::Hypothesis& h : v.hypotheses) {
    if (h.status != status) continue;
    if (text.empty() || h.pid != current)
      text += fmt::format("{}  pid {}: ", text.empty() ? "" : "\n", h.pid);
    else
      text += ", ";
    text += to_string(h.kind);
    current = h.pid;
  }
  return text.empty() ? text : text + "\n";
}

// The differential diagnosis: what is confirmed, with its evidence; what was ruled out and what
// could not be decided, by name (`--json` and `--html` carry every row's evidence). Findings no
// hypothesis stands for (no_growth) are said when nothing is confirmed.
// Confirmed hypotheses in the findings' order (leaks first, fastest first); those that are no
// finding of their own after them: the tree's and the swap's are about a leak, the limit's is a
// warning about one. The same sentence twice (the root and its child run into one limit) once.
void render_confirmed(std::string& confirmed, const Verdict& v) {
  struct Row {
    size_t rank;
    const model::Hypothesis* hypothesis;
    Severity severity;
  };
  std::vector<Row> rows;
  for (const model::Hypothesis& h : v.hypotheses) {
    if (h.status != HypothesisStatus::kConfirmed) continue;
    const Finding* f = model::find_finding(v.findings, h.pid, h.kind);
    size_t rank = f ? static_cast<size_t>(f - v.findings.data()) : v.findings.size();
    rows.push_back({rank, &h,
                    f                                          ? f->severity
                    : h.kind == HypothesisKind::kLimitApproach ? Severity::kWarning
                                                               : Severity::kLeak});
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.rank < b.rank; });
  std::set<std::string> said;
  for (const Row& row : rows) {
    const model::Hypothesis& h = *row.hypothesis;
    if (!said.insert(to_string(h.kind) + h.evidence).second) continue;
    confirmed += fmt::format("  [{}] {} pid {}: {}\n      {}\n", row.severity, h.kind, h.pid, safe(h.statement),
                             safe(h.evidence));
  }
}

void render_hypotheses(std::string& out, const Verdict& v) {
  std::string confirmed;
  render_confirmed(confirmed, v);
  if (confirmed.empty()) {
    for (const Finding& f : v.findings) {
      if (!counted_only_bounded(v, f)) confirmed += fmt::format("  {} pid {}: {}\n", f.kind, f.pid, safe(f.evidence));
    }
    out += "\nNothing confirmed:\n" + confirmed + bounded_count_line(v);
  } else {
    out += "\nConfirmed:\n" + confirmed;
  }
  std::string inconclusive;
  for (const model::Hypothesis& h : v.hypotheses) {
    if (h.status == HypothesisStatus::kInconclusive)
      inconclusive += fmt::format("  {} pid {}: {}\n", h.kind, h.pid, safe(h.evidence));
  }
  if (!inconclusive.empty()) out += "Inconclusive:\n" + inconclusive;
  std::string eliminated = names_by_process(v, HypothesisStatus::kEliminated);
  if (!eliminated.empty()) out += "Eliminated:\n" + eliminated;
  std::string unmeasured = names_by_process(v, HypothesisStatus::kNotMeasured);
  if (!unmeasured.empty()) out += "Not measured:\n" + unmeasured;
}

std::string place_of(const model::Site& site) {
  std::string place = model::source_place(site.file, site.line);
  return place.empty() ? fmt::format("`{}`", site.function) : fmt::format("`{}` ({})", site.function, place);
}

// `arg` as a POSIX shell reads it back: bare when it holds only characters no shell treats
// specially, otherwise in single quotes (a quote inside as '\'').
std::string shell_quoted(const std::string& arg) {
  auto plain = [](unsigned char c) {
    return std::isalnum(c) != 0 || std::string_view("@%+=:,./_-").find(static_cast<char>(c)) != std::string_view::npos;
  };
  if (!arg.empty() && std::all_of(arg.begin(), arg.end(), plain)) return arg;
  std::string quoted = "'";
  for (char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

constexpr size_t kRerunWidth = 160;

// `memdx run -- CMD` with the recorded command, to run it again once it has exited.
std::string rerun_command(const Verdict& v) {
  if (v.target.command.empty()) return "memdx run -- COMMAND";
  std::string line = "memdx run --";
  for (const std::string& arg : v.target.command) line += " " + shell_quoted(arg);
  return model::shorten(line, kRerunWidth);
}

// Whether a step may name `pid` in a command: only while that process runs. After `memdx run`
// the pid is gone (or, worse, another process's), and a `memdx trace` capture has pid 0.
bool running(const Verdict& v, pid_t pid) {
  const ProcessSummary* p = process_of(v, pid);
  return pid > 0 && p != nullptr && p->still_running;
}

// A finding with call sites names the fastest-growing one: that is where to look.
std::string site_step(const model::Site& top, const std::string& recording) {
  // A container freed at exit holds nothing at the end: what it held at the peak is the point.
  std::string holds =
      top.live_bytes >= top.live_at_peak_bytes
          ? fmt::format("it holds {}", model::format_bytes(top.live_bytes))
          : fmt::format("it held {} at the peak ({} at the end)", model::format_bytes(top.live_at_peak_bytes),
                        model::format_bytes(top.live_bytes));
  return fmt::format("look at {}: {} and grows {}/s; all sites with stacks: memdx report {} --top 20", place_of(top),
                     holds, model::format_bytes(static_cast<uint64_t>(std::max(0.0, top.growth_bytes_per_s))),
                     recording);
}

// Steps that look at the process itself, while it runs.
std::string running_step(FindingKind kind, pid_t pid) {
  const char* step = model::row_of(kind).running_step;
  return step ? fmt::format(fmt::runtime(step), fmt::arg("pid", pid)) : "";
}

// The same once the process has exited: what the recording still shows, and how to see the rest
// in a new run. No pid is named: the old one is gone.
std::string exited_step(const Verdict& v, FindingKind kind, const std::string& recording) {
  const char* step = model::row_of(kind).exited_step;
  if (!step) return "";
  return fmt::format(fmt::runtime(step), fmt::arg("recording", recording), fmt::arg("rerun", rerun_command(v)));
}

// One concrete step for a leak; empty when there is none to give.
std::string next_step(const Verdict& v, const Finding& f, const std::string& recording) {
  if (!f.sites.empty()) return site_step(f.sites.front(), recording);
  if (f.kind == FindingKind::kHeapGrowth)
    return fmt::format("see which call sites hold the growth: memdx report {} --top 20", recording);
  return running(v, f.pid) ? running_step(f.kind, f.pid) : exited_step(v, f.kind, recording);
}

// Too short to judge: watch the process for longer while it runs, else run it again for longer.
std::string longer_step(const Verdict& v) {
  if (running(v, v.target.pid)) {
    return fmt::format("run a longer workload, or watch it for longer: memdx watch {} --duration 60", v.target.pid);
  }
  return fmt::format("it has exited; run it again with a workload that lasts longer than the verdict needs (above): {}",
                     rerun_command(v));
}

void render_next(std::string& out, const Verdict& v, const std::string& recording) {
  std::vector<std::string> steps = next_steps(v, recording);
  if (steps.empty()) return;
  out += "\nNext:\n";
  // Steps name functions and commands of the target; the HTML page escapes them its own way.
  for (const std::string& step : steps) out += "  " + safe(step) + "\n";
}

std::string exit_text(const ProcessSummary& p) {
  if (p.exit_signal) return fmt::format("signal {}", *p.exit_signal);
  if (p.exit_code) return std::to_string(*p.exit_code);
  return p.exited_s ? "exited" : "running";
}

constexpr size_t kTextProcessRows = 20;

// The root and the processes the findings name first, then the largest by peak PSS (RSS where
// PSS was never read); a tree of a thousand workers shows its first rows and a count.
void render_processes(std::string& out, const Verdict& v) {
  if (v.processes.empty()) return;
  std::set<pid_t> named{v.target.pid};
  for (const Finding& f : v.findings) {
    if (f.kind != FindingKind::kNoGrowth) named.insert(f.pid);
  }
  std::vector<const ProcessSummary*> order;
  for (const ProcessSummary& p : v.processes) order.push_back(&p);
  auto size_of = [](const ProcessSummary* p) { return p->peak_pss_bytes.value_or(p->peak_rss_bytes); };
  std::stable_sort(order.begin(), order.end(), [&](auto* a, auto* b) {
    bool a_named = named.count(a->pid) > 0, b_named = named.count(b->pid) > 0;
    if (a_named != b_named) return a_named;
    return !a_named && size_of(a) > size_of(b);  // named ones keep the recording's order
  });
  out += fmt::format("\n  {:<8} {:>10} {:>10} {:>10} {:<9} {}\n", "pid", "peak RSS", "peak PSS", "final RSS", "exit",
                     "command");
  for (size_t i = 0; i < order.size() && i < std::max(kTextProcessRows, named.size()); ++i) {
    const ProcessSummary& p = *order[i];
    std::string pss = p.peak_pss_bytes ? model::format_bytes(*p.peak_pss_bytes) : "n/a";
    out += fmt::format("  {:<8} {:>10} {:>10} {:>10} {:<9} {}\n", p.pid, model::format_bytes(p.peak_rss_bytes), pss,
                       model::format_bytes(p.final_rss_bytes), exit_text(p), one_line(p.command));
  }
  size_t shown = std::min(order.size(), std::max(kTextProcessRows, named.size()));
  if (order.size() > shown) {
    out += fmt::format("  ... {} more with smaller peaks (all of them in --json and --html)\n", order.size() - shown);
  }
}

// Thousands separated, for counts a reader compares at a glance.
std::string count_text(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

constexpr size_t kTextStackFrames = 6;

// The frames the text has shown without a name, for the one hint at its end.
using ShownUnnamed = std::vector<model::UnnamedFrame>;

// One of the rankings the text shows a process's sites in: which sites belong, and the figure
// they are ranked by, of a site and of one of its paths.
struct SiteRanking {
  std::string title;
  std::function<bool(const model::HeapSiteSummary&)> belongs;
  std::function<double(const model::HeapSiteSummary&)> of_site;
  std::function<double(const model::HeapSitePath&)> of_path;
  std::function<std::string(double)> text;
};

// The counts line of a site or a path.
std::string counts_text(uint64_t allocations, uint64_t allocated_bytes, uint64_t final_live_bytes,
                        uint64_t final_live_blocks, uint64_t live_at_peak_bytes, bool mapped) {
  auto noun = [mapped](uint64_t n, const char* heap_noun) {
    return fmt::format("{} {}{}", count_text(n), mapped ? "mapping" : heap_noun, n == 1 ? "" : "s");
  };
  return fmt::format("{}, {} {}; {} live at the end in {}, {} at the peak", noun(allocations, "allocation"),
                     model::format_bytes(allocated_bytes), mapped ? "mapped" : "allocated",
                     model::format_bytes(final_live_bytes), noun(final_live_blocks, "block"),
                     model::format_bytes(live_at_peak_bytes));
}

void render_frames(std::string& out, const std::vector<std::string>& stack,
                   const std::vector<model::UnnamedFrame>& names, size_t frames, size_t indent, ShownUnnamed& unnamed) {
  for (size_t i = 1; i < stack.size() && i <= frames; ++i) {
    out += fmt::format("    {:>12}  {:{}}{}\n", "", "", indent, one_line(stack[i], 100));
  }
  for (const model::UnnamedFrame& frame : names) {
    if (frame.stack_index <= frames) unnamed.push_back(frame);
  }
}

constexpr size_t kTextPaths = 20;

// Every path of the site (--paths), the ranking's figure first.
void render_paths(std::string& out, const model::HeapSiteSummary& site, const SiteRanking& ranking, size_t frames,
                  bool mapped, ShownUnnamed& unnamed) {
  std::vector<const model::HeapSitePath*> paths;
  for (const model::HeapSitePath& path : site.paths) paths.push_back(&path);
  std::stable_sort(paths.begin(), paths.end(), [&](auto* a, auto* b) {
    return std::make_tuple(ranking.of_path(*a), a->allocated_bytes) >
           std::make_tuple(ranking.of_path(*b), b->allocated_bytes);
  });
  out += fmt::format("    {:>12}  {} {} to it:\n", "", count_text(site.path_count),
                     site.path_count == 1 ? "path" : "paths");
  for (size_t i = 0; i < paths.size() && i < kTextPaths; ++i) {
    const model::HeapSitePath& path = *paths[i];
    out += fmt::format("    {:>12}    {:>12}  {}\n", "", ranking.text(ranking.of_path(path)),
                       counts_text(path.allocations, path.allocated_bytes, path.final_live_bytes,
                                   path.final_live_blocks, path.live_at_peak_bytes, mapped));
    render_frames(out, path.stack, path.unnamed_frames, frames, 16, unnamed);
  }
  if (site.path_count > std::min(paths.size(), kTextPaths)) {
    out += fmt::format("    {:>12}    ... {} more paths (all of them in --json with --paths)\n", "",
                       count_text(site.path_count - std::min(paths.size(), kTextPaths)));
  }
}

// One line for the site (the figure its section is about first, then the rest), then the stack
// of its path that holds most of that figure, from the caller of the site's own frame outwards,
// indented; with --paths, every path instead.
void render_site(std::string& out, const model::HeapSiteSummary& site, const SiteRanking& ranking,
                 const TextOptions& options, bool mapped, ShownUnnamed& unnamed) {
  out += fmt::format("    {:>12}  {}\n", ranking.text(ranking.of_site(site)),
                     one_line(model::site_label(site.function, site.file, site.line), 100));
  out += fmt::format("    {:>12}  {}\n", "",
                     counts_text(site.allocations, site.allocated_bytes, site.final_live_bytes, site.final_live_blocks,
                                 site.live_at_peak_bytes, mapped));
  if (site.reserved_bytes) {
    out += fmt::format("    {:>12}  and {} of address space reserved (PROT_NONE): not memory, never counted as live\n",
                       "", model::format_bytes(site.reserved_bytes));
  }
  if (options.all_paths && !site.paths.empty()) {
    render_paths(out, site, ranking, options.stack_frames, mapped, unnamed);
    return;
  }
  const model::HeapSitePath* leading = nullptr;
  for (const model::HeapSitePath& path : site.paths) {
    if (ranking.of_path(path) > 0 && (!leading || ranking.of_path(path) > ranking.of_path(*leading))) leading = &path;
  }
  if (leading) {
    render_frames(out, leading->stack, leading->unnamed_frames, options.stack_frames, 0, unnamed);
  } else {
    render_frames(out, site.stack, site.unnamed_frames, options.stack_frames, 0, unnamed);
  }
  if (site.path_count > 1) {
    out += fmt::format("    {:>12}  (one of {} paths to it: --paths shows each)\n", "", count_text(site.path_count));
  }
}

void render_section(std::string& out, const std::vector<model::HeapSiteSummary>& sites, const SiteRanking& ranking,
                    const TextOptions& options, bool mapped, ShownUnnamed& unnamed) {
  std::vector<const model::HeapSiteSummary*> ranked;
  for (const auto& site : sites) {
    if (ranking.belongs(site) && ranking.of_site(site) > 0) ranked.push_back(&site);
  }
  if (ranked.empty()) return;
  std::stable_sort(ranked.begin(), ranked.end(),
                   [&](auto* a, auto* b) { return ranking.of_site(*a) > ranking.of_site(*b); });
  out += fmt::format("   {}:\n", ranking.title);
  for (size_t i = 0; i < ranked.size() && i < options.sites_per_section; ++i) {
    render_site(out, *ranked[i], ranking, options, mapped, unnamed);
  }
}

std::string bytes_figure(double bytes) {
  return model::format_bytes(static_cast<uint64_t>(bytes));
}

void render_site_sections(std::string& out, const std::vector<model::HeapSiteSummary>& sites, const char* memory,
                          const TextOptions& options, bool mapped, ShownUnnamed& unnamed) {
  auto any = [](const model::HeapSiteSummary&) { return true; };
  const SiteRanking rankings[] = {
      {fmt::format("{} growth: live bytes rising, fastest first", memory), [](auto& s) { return s.growing; },
       [](auto& s) { return s.growth_bytes_per_s; }, [](auto& p) { return p.growth_bytes_per_s; },
       [](double rate) { return "+" + bytes_figure(rate) + "/s"; }},
      {fmt::format("{} at the peak: live when it was largest", memory), any,
       [](auto& s) { return static_cast<double>(s.live_at_peak_bytes); },
       [](auto& p) { return static_cast<double>(p.live_at_peak_bytes); }, bytes_figure},
      {fmt::format("{} still live at the end (leaked at exit)", memory), [](auto& s) { return s.runtime_once.empty(); },
       [](auto& s) { return static_cast<double>(s.final_live_bytes); },
       [](auto& p) { return static_cast<double>(p.final_live_bytes); }, bytes_figure},
      {fmt::format("{} of the runtime, allocated once and kept by design (stdio buffers, time zone, locale, loader, "
                   "start-up)",
                   memory),
       [](auto& s) { return !s.runtime_once.empty(); }, [](auto& s) { return static_cast<double>(s.final_live_bytes); },
       [](auto& p) { return static_cast<double>(p.final_live_bytes); }, bytes_figure},
      {fmt::format("{} temporary allocations: freed by the thread right after, nothing else between", memory), any,
       [](auto& s) { return static_cast<double>(s.temporary_allocations); },
       [](auto& p) { return static_cast<double>(p.temporary_allocations); },
       [](double n) { return count_text(static_cast<uint64_t>(n)); }},
  };
  for (const SiteRanking& ranking : rankings) render_section(out, sites, ranking, options, mapped, unnamed);
}

// What --suppress hid in one process image: counted, never silently dropped.
void render_suppressed(std::string& out, const model::SuppressedStacks& hidden, const TextOptions& options) {
  if (hidden.stacks == 0) return;
  std::string files;
  for (const std::string& file : options.suppression_files) files += (files.empty() ? "" : ", ") + file;
  out += fmt::format("   hidden by --suppress{}: {} {}, {} allocations, {} allocated, {} live at the end\n",
                     files.empty() ? "" : " " + one_line(files, 400), count_text(hidden.stacks),
                     hidden.stacks == 1 ? "stack" : "stacks", count_text(hidden.allocations),
                     model::format_bytes(hidden.allocated_bytes), model::format_bytes(hidden.final_live_bytes));
}

constexpr size_t kTextHeapProcesses = 8;

void render_heap_process(std::string& out, const model::HeapSummary& h, bool with_sites, const TextOptions& options,
                         ShownUnnamed& unnamed) {
  out += fmt::format("  pid {} ({}): {} allocation{}, {} allocated, peak live {}, live at the end {} in {} block{}",
                     h.pid, h.ended, count_text(h.allocations), h.allocations == 1 ? "" : "s",
                     model::format_bytes(h.allocated_bytes), model::format_bytes(h.peak_live_bytes),
                     model::format_bytes(h.final_live_bytes), count_text(h.final_live_blocks),
                     h.final_live_blocks == 1 ? "" : "s");
  if (h.temporary_allocations) out += fmt::format(", {} temporary", count_text(h.temporary_allocations));
  // Frees of blocks the trace never saw allocated: allocated before the tracer was loaded (a
  // library constructor that runs first), or by code it cannot see. Said, never silently dropped.
  if (h.unmatched_frees) {
    out += fmt::format(", {} {} of blocks allocated before tracing began (unmatched)", count_text(h.unmatched_frees),
                       h.unmatched_frees == 1 ? "free" : "frees");
  }
  if (h.maps)
    out += fmt::format("; {} direct mmap calls, peak {} mapped", count_text(h.maps),
                       model::format_bytes(h.peak_mapped_live_bytes));
  if (h.final_mapped_reserved_bytes) {
    out += fmt::format(" (and {} only reserved, PROT_NONE)", model::format_bytes(h.final_mapped_reserved_bytes));
  }
  out += fmt::format("; the tracer used {} in the process\n", model::format_bytes(h.peak_tracer_bytes));
  if (!with_sites) return;
  render_suppressed(out, h.suppressed, options);
  render_site_sections(out, h.sites, "heap", options, false, unnamed);
  if (h.maps) render_site_sections(out, h.mapped_sites, "direct mmap", options, true, unnamed);
}

// The process images with the largest heaps first; a shell loop's hundred short children
// would otherwise bury them.
void render_heap(std::string& out, const Verdict& v, const TextOptions& options, ShownUnnamed& unnamed) {
  if (v.heap.empty()) return;
  out += "\nHeap trace";
  if (v.heap.front().sample_bytes) {
    out += fmt::format(" (sampled, one sample per {} on average; figures are estimates)",
                       model::format_bytes(v.heap.front().sample_bytes));
  }
  out += fmt::format(" of {} process image{}:\n", v.heap.size(), v.heap.size() == 1 ? "" : "s");
  std::vector<const model::HeapSummary*> order;
  for (const model::HeapSummary& h : v.heap) order.push_back(&h);
  std::stable_sort(order.begin(), order.end(),
                   [](auto* a, auto* b) { return a->peak_live_bytes > b->peak_live_bytes; });
  for (size_t i = 0; i < order.size() && i < kTextHeapProcesses; ++i) {
    render_heap_process(out, *order[i], i < options.processes_with_sites, options, unnamed);
  }
  if (order.size() > kTextHeapProcesses) {
    out += fmt::format("  ... {} more with smaller heaps (all of them in --json)\n", order.size() - kTextHeapProcesses);
  }
}

// The next steps name each leak's fastest-growing site by its own frame.
void add_unnamed_finding_sites(const Verdict& v, ShownUnnamed& unnamed) {
  for (const Finding& f : v.findings) {
    if (f.severity != Severity::kLeak || f.sites.empty()) continue;
    for (const model::UnnamedFrame& frame : f.sites.front().unnamed_frames) {
      if (frame.stack_index == 0) unnamed.push_back(frame);
    }
  }
}

// Said once, at the end: how to name the frames shown as module+0xoffset.
void render_unnamed_hint(std::string& out, const ShownUnnamed& unnamed, const std::string& recording_path) {
  if (unnamed.empty()) return;
  std::vector<std::string> modules;
  for (const model::UnnamedFrame& frame : unnamed) {
    std::string name = frame.module.substr(frame.module.rfind('/') + 1);
    if (std::find(modules.begin(), modules.end(), name) == modules.end()) modules.push_back(name);
  }
  std::string names;
  for (const std::string& name : modules) names += (names.empty() ? "" : ", ") + name;
  // The example is the program's own code where there is some: the runtime's frames (shown when a
  // stack holds nothing else) are seldom the ones to look at.
  auto own = std::find_if(unnamed.begin(), unnamed.end(),
                          [](const model::UnnamedFrame& frame) { return !analyze::is_runtime_module(frame.module); });
  const model::UnnamedFrame& first = own != unnamed.end() ? *own : unnamed.front();
  std::string recording = recording_path.empty() ? "RECORDING" : shell_quoted(recording_path);
  out += fmt::format(
      "\nFrames shown as module+0xOFFSET have no symbols ({}: stripped, and no debug file found). Name one "
      "with addr2line -f -C -e {} 0x{:x} (on the unstripped build, or where its debug file is installed), or give "
      "memdx the directory of the separate debug files: memdx report {} --debug-dir DIR\n",
      safe(names), safe(shell_quoted(first.module)), first.offset, safe(recording));
}

}  // namespace

std::string format_duration(double seconds) {
  return analyze::duration_text(seconds);
}

bool counted_only_bounded(const Verdict& v, const Finding& f) {
  return f.kind == FindingKind::kNoGrowth && f.pid != v.target.pid && v.findings.size() > 1;
}

std::vector<std::string> next_steps(const Verdict& v, const std::string& recording_path) {
  std::string recording = recording_path.empty() ? "RECORDING" : shell_quoted(recording_path);
  std::vector<std::string> steps;
  std::set<std::pair<FindingKind, pid_t>> given;
  for (const Finding& f : v.findings) {
    if (f.severity != Severity::kLeak || !given.insert({f.kind, f.pid}).second) continue;
    std::string step = next_step(v, f, recording);
    if (!step.empty()) steps.push_back(fmt::format("pid {} {}: {}", f.pid, f.kind, step));
  }
  if (steps.empty() && too_short_to_judge(v)) steps.push_back(longer_step(v));
  return steps;
}

std::string verdict_headline(const Verdict& verdict) {
  return model::has_leak(verdict) ? leak_headline(verdict) : no_leak_headline(verdict);
}

std::string render_verdict_text(const Verdict& verdict, const TextOptions& options) {
  if (verdict.findings.empty() && !verdict.heap.empty()) {
    // A `memdx trace` capture: no memory samples, so no trend verdict, only the heap.
    std::string out =
        fmt::format("{}: heap trace only (captured by 'memdx trace'; 'memdx run' adds the memory trend verdict)\n",
                    command_of(verdict, verdict.target.pid));
    ShownUnnamed unnamed;
    render_heap(out, verdict, options, unnamed);
    render_unnamed_hint(out, unnamed, options.recording_path);
    return out;
  }
  std::string out = verdict_headline(verdict) + "\n";
  if (!verdict.hypotheses.empty()) {
    render_hypotheses(out, verdict);
  } else if (!verdict.findings.empty()) {
    render_evidence(out, verdict);
  }
  render_next(out, verdict, options.recording_path);
  render_processes(out, verdict);
  ShownUnnamed unnamed;
  add_unnamed_finding_sites(verdict, unnamed);
  render_heap(out, verdict, options, unnamed);
  render_unnamed_hint(out, unnamed, options.recording_path);
  return out;
}

}  // namespace memdx::report
