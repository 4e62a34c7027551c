#include "analyze/heap_sites.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <tuple>

#include "analyze/hypotheses.h"
#include "analyze/trend.h"
#include "analyze/wording.h"
#include "model/format.h"

#include <fmt/format.h>

namespace memdx::analyze {
namespace {

std::string basename_of(const std::string& path) {
  return path.substr(path.rfind('/') + 1);
}

}  // namespace

// The runtime's own frames say how memory was allocated, not who wanted it: the C, C++ and Rust
// runtime libraries, the loader and the interpreters (by module), the allocation functions
// themselves (by exact name: a program's own malloc_pool() is a site), and library code compiled
// into the program (by source file, or by name).
namespace {

// "python3.11", "python3", "python": CPython's interpreter, which links libpython statically on
// Debian; a program of the user's named "python_tool" is not one.
bool is_python_interpreter(std::string_view module) {
  if (module.rfind("python", 0) != 0) return false;
  return module.find_first_not_of("0123456789.", 6) == std::string_view::npos;
}

}  // namespace

bool is_runtime_module(const std::string& path) {
  std::string module = basename_of(path);
  for (const char* prefix :
       {"libc.so.", "libm.so.", "libpthread.so.", "libdl.so.", "librt.so.", "libstdc++.so.", "libc++.so.",
        "libc++abi.so.", "libgcc_s.so.", "ld-linux", "libstd-", "libpython", "libnode.so"}) {
    if (module.rfind(prefix, 0) == 0) return true;
  }
  return module == "libmemdx_trace.so" || module == "node" || module == "nodejs" || is_python_interpreter(module);
}

namespace {

// Sources of the Rust standard library as rustc's own build names them: its crates under
// /rustc/<commit>/library/, their dependencies (hashbrown, ...) under /rust/deps/.
bool is_library_source(const std::string& file) {
  for (const char* prefix : {"/usr/include/", "/rustc/", "/rust/deps/"}) {
    if (file.rfind(prefix, 0) == 0) return true;
  }
  // Debian's own rustc builds its standard library from /usr/src/rustc-<version>/library/.
  return file.rfind("/usr/src/rustc-", 0) == 0 && file.find("/library/") != std::string::npos;
}

// Rust's standard library by name, for frames without a source file: its crates' paths, also as
// the self type of a trait impl ("<alloc::vec::Vec<T> as core::ops::Drop>::drop").
bool starts_with_library_crate(std::string_view name) {
  while (!name.empty() && (name[0] == '<' || name[0] == '&' || name[0] == '*')) name.remove_prefix(1);
  for (const char* qualifier : {"mut ", "const ", "dyn "}) {
    if (name.rfind(qualifier, 0) == 0) name.remove_prefix(std::string_view(qualifier).size());
  }
  for (const char* crate : {"alloc::", "core::", "std::", "hashbrown::"}) {
    if (name.rfind(crate, 0) == 0) return true;
  }
  return false;
}

bool is_rust_library_function(std::string_view name) {
  if (starts_with_library_crate(name)) return true;
  // "<&mut W as core::fmt::Write>::write_char": a library trait's method on a type parameter or a
  // primitive (no path of the program's) is the library's code.
  if (name.empty() || name[0] != '<') return false;
  size_t as = name.find(" as ");
  size_t close = name.find(">::");
  if (as == std::string_view::npos || close == std::string_view::npos || as > close) return false;
  std::string_view self_type = name.substr(1, as - 1);
  return starts_with_library_crate(name.substr(as + 4)) && self_type.find("::") == std::string_view::npos;
}

}  // namespace

bool is_allocation_function(const std::string& name) {
  static const std::set<std::string> kAllocationFunctions = {
      "malloc",   "free",   "calloc",  "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
      "memalign", "valloc", "pvalloc", "mmap",    "mmap64",       "munmap",         "mremap"};
  if (kAllocationFunctions.count(name)) return true;
  // C++'s operators and ABI helpers; Rust's allocator shims (__rust_alloc, __rdl_alloc,
  // __rg_alloc, and rustc's newer __rustc::__rust_alloc).
  for (const char* prefix : {"operator new", "operator delete", "__cxa_", "__rust_", "__rdl_", "__rg_", "__rustc::"}) {
    if (name.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

bool is_runtime_frame(const SourceFrame& frame) {
  if (is_runtime_module(frame.module)) return true;
  // Code inlined or instantiated from installed headers (libstdc++'s containers, Boost) and Rust's
  // standard library is a library's, even when it was compiled into the program.
  // A Rust function of the program's own whose line falls in a library source is the program's:
  // older rustc (Debian 12's 1.63) places a call inlined from a macro (format!) at the macro.
  bool own_rust_function =
      frame.language == SourceLanguage::kRust && !frame.function.empty() && !is_rust_library_function(frame.function);
  if (is_library_source(frame.file) && !own_rust_function) return true;
  if (is_allocation_function(frame.function)) return true;
  if (frame.language == SourceLanguage::kRust && is_rust_library_function(frame.function)) return true;
  // Library templates instantiated in the program ("std::vector<int>::push_back(...)", or with
  // the return type first: "void std::vector<...>::_M_realloc_insert<...>(...)").
  std::string_view name = std::string_view(frame.function).substr(0, frame.function.find('('));
  for (const char* scope : {"std::", "__gnu_cxx::"}) {
    size_t at = name.find(scope);
    if (at == 0 ||
        (at != std::string_view::npos && name[at - 1] == ' ' && name.substr(0, at).find('<') == std::string_view::npos))
      return true;
  }
  return false;
}

namespace {

struct SiteKey {
  std::string function, file;
  uint32_t line;
  auto operator<=>(const SiteKey&) const = default;
};

SiteKey site_key(const SourceFrame& frame) {
  if (frame.function.empty()) return {format_frame(frame), "", 0};
  return {frame.function, frame.file, frame.line};
}

// The first frame of the program's own code, innermost first; the innermost frame when every
// frame belongs to the runtime.
SiteKey site_key_of(std::span<const uint64_t> stack, uint64_t seq, Symbolizer& symbolizer) {
  std::optional<SiteKey> innermost;
  for (uint64_t address : stack) {
    for (const SourceFrame& frame : symbolizer.resolve_at(address, seq)) {
      if (!innermost) innermost = site_key(frame);
      if (!is_runtime_frame(frame)) return site_key(frame);
    }
  }
  return innermost.value_or(SiteKey{"(no stack)", "", 0});
}

// Why a stack's blocks are the runtime's, allocated once and kept to the end by design, or null:
// the runtime frames inside the site say it (a stdio buffer under printf, the time zone under
// localtime, the loader's bookkeeping under dlopen), or the whole stack is the runtime's, run
// before main (libstdc++'s exception pool, a library's static state).
const char* runtime_once_reason(const std::vector<uint64_t>& stack, uint64_t seq, Symbolizer& symbolizer) {
  bool before_main = false;
  for (uint64_t address : stack) {
    for (const SourceFrame& frame : symbolizer.resolve_at(address, seq)) {
      const std::string& f = frame.function;
      if (!is_runtime_frame(frame)) return nullptr;
      if (f == "_IO_file_doallocate" || f == "_IO_doallocbuf" || f == "__GI__IO_file_doallocate") return "stdio buffer";
      if (f == "__tzfile_read" || f == "tzset_internal" || f == "__tzset" || f == "__tz_convert") return "time zone";
      if (f == "_nl_find_locale" || f == "setlocale" || f == "_nl_load_locale_from_archive") return "locale";
      if (f.rfind("_dl_", 0) == 0 && f != "_dl_start_user" && f != "_dl_init") return "loader";
      if (f == "_dl_init" || f == "call_init" || f == "_dl_start_user") before_main = true;
    }
  }
  return before_main ? "runtime start-up" : nullptr;
}

void add(AllocationStats& into, const AllocationStats& stats) {
  into.allocations += stats.allocations;
  into.frees += stats.frees;
  into.allocated_bytes += stats.allocated_bytes;
  into.live_bytes += stats.live_bytes;
  into.live_blocks += stats.live_blocks;
  into.peak_live_bytes += stats.peak_live_bytes;        // an upper bound: the stacks' peaks need not coincide
  into.live_at_peak_bytes += stats.live_at_peak_bytes;  // exact: the same instant for every stack
  into.live_at_peak_blocks += stats.live_at_peak_blocks;
  into.temporary_allocations += stats.temporary_allocations;
  into.reserved_bytes += stats.reserved_bytes;
}

// The stack from the site's frame outwards: the allocator's and the runtime's frames inside
// it say how, not who. All of it when every frame is the runtime's. Resolved against the modules
// mapped at `seq`, when the stack was recorded.
SiteStack formatted_stack(const std::vector<uint64_t>& stack, uint64_t seq, Symbolizer& symbolizer) {
  std::vector<const SourceFrame*> frames;
  for (uint64_t address : stack) {
    for (const SourceFrame& frame : symbolizer.resolve_at(address, seq)) frames.push_back(&frame);
  }
  auto site = std::find_if(frames.begin(), frames.end(), [](const SourceFrame* f) { return !is_runtime_frame(*f); });
  if (site == frames.end()) site = frames.begin();
  SiteStack out;
  for (auto frame = site; frame != frames.end(); ++frame) {
    if ((*frame)->function.empty() && !(*frame)->module.empty()) {
      out.unnamed.push_back({out.frames.size(), (*frame)->module, (*frame)->module_offset});
    }
    out.frames.push_back(format_frame(**frame));
  }
  return out;
}

}  // namespace

std::string format_frame(const SourceFrame& frame) {
  if (frame.function.empty()) {
    return fmt::format("{}+0x{:x}", frame.module.empty() ? "?" : basename_of(frame.module), frame.module_offset);
  }
  if (frame.file.empty()) return frame.function;
  return fmt::format("{} ({}:{})", frame.function, basename_of(frame.file), frame.line);
}

namespace {

// What the symbolizer takes of a module record; nothing for one without a path to an ELF.
std::optional<ModuleMapping> module_mapping(const TraceModule& module) {
  if (module.path.empty() || module.path[0] != '/') return std::nullopt;  // linux-vdso.so.1 and the like
  return ModuleMapping{module.path, module.load_bias, module.start, module.end, is_runtime_module(module.path),
                       module.seq,  module.unload_seq};
}

}  // namespace

Symbolizer symbolizer_for(const ProcessHeapProfile& profile, const std::vector<std::string>& debug_dirs) {
  std::vector<ModuleMapping> modules;
  for (const TraceModule& module : profile.modules) {
    if (std::optional<ModuleMapping> mapping = module_mapping(module)) modules.push_back(std::move(*mapping));
  }
  return Symbolizer(std::move(modules), debug_dirs);
}

namespace {

// Groups stacks by call site while the trace is replayed, so that a site's peak is exact. Its
// symbolizer learns the modules as their records arrive; the sites are then named with it, each
// module opened once. A stack whose code was not yet recorded when it was grouped (a library's
// constructor runs before its module record) may land in another group than its site at the end:
// heap_sites() checks, and such sites fall back to bounds.
class SiteGrouping final : public StackGrouping {
 public:
  SiteGrouping(const std::vector<std::string>& debug_dirs, const Suppressions* suppressions)
      : symbolizer_({}, debug_dirs), suppressions_(suppressions) {}

  void module_loaded(const TraceModule& module) override {
    if (std::optional<ModuleMapping> mapping = module_mapping(module)) {
      mapping->unloaded_seq = UINT64_MAX;  // said by module_unloaded when it comes
      symbolizer_.add_module(std::move(*mapping));
    }
  }
  void module_unloaded(const TraceModule& module) override {
    if (std::optional<ModuleMapping> mapping = module_mapping(module))
      symbolizer_.set_unloaded(*mapping, module.unload_seq);
  }
  uint32_t group_of(uint64_t seq, std::span<const uint64_t> frames) override {
    if (suppressions_ && suppressions_->matches(frames, seq, symbolizer_)) return kNoGroup;
    SiteKey key = site_key_of(frames, seq, symbolizer_);
    auto [group, added] = groups_.try_emplace(std::move(key), static_cast<uint32_t>(keys_.size()));
    if (added) keys_.push_back(&group->first);
    return group->second;
  }

  Symbolizer& symbolizer() { return symbolizer_; }
  const SiteKey* key_of(uint32_t group) const { return group < keys_.size() ? keys_[group] : nullptr; }

 private:
  Symbolizer symbolizer_;
  const Suppressions* suppressions_;
  std::map<SiteKey, uint32_t> groups_;
  std::vector<const SiteKey*> keys_;  // by group
};

}  // namespace

std::function<std::shared_ptr<StackGrouping>()> site_grouping(const SiteOptions& options) {
  return [debug_dirs = options.debug_dirs, suppressions = options.suppressions] {
    return std::make_shared<SiteGrouping>(debug_dirs, suppressions);
  };
}

Symbolizer* replay_symbolizer(const ProcessHeapProfile& profile) {
  auto* grouping = dynamic_cast<SiteGrouping*>(profile.grouping.get());
  return grouping ? &grouping->symbolizer() : nullptr;
}

Symbolizer& symbolizer_of(const ProcessHeapProfile& profile, const std::vector<std::string>& debug_dirs,
                          std::unique_ptr<Symbolizer>& own) {
  if (Symbolizer* replayed = replay_symbolizer(profile)) return *replayed;
  own = std::make_unique<Symbolizer>(symbolizer_for(profile, debug_dirs));
  return *own;
}

uint64_t stack_seq(const ProcessHeapProfile& profile, uint32_t stack_id) {
  auto seq = profile.stack_seqs.find(stack_id);
  return seq == profile.stack_seqs.end() ? Symbolizer::kLatest : seq->second;
}

namespace {

double seconds_between(uint64_t from_ns, uint64_t to_ns) {
  return static_cast<double>(to_ns - from_ns) / 1e9;
}

std::vector<SeriesPoint> series_points(const LiveSeries& series, const std::vector<double>& values) {
  std::vector<SeriesPoint> points;
  if (series.monotonic_ns.empty()) return points;
  for (size_t i = 0; i < values.size() && i < series.monotonic_ns.size(); ++i) {
    points.push_back({seconds_between(series.monotonic_ns.front(), series.monotonic_ns[i]), values[i]});
  }
  return points;
}

// A site's growth: the recorder's trend test on its own live series, with the same bytes
// floor and warm-up, so "growing" means for a site what heap_growth means for the process.
void judge_growth(HeapSite& site, const LiveSeries& series) {
  std::vector<SeriesPoint> points = series_points(series, site.live_series);
  // A container freed at exit ends at zero: the robust statistics look past its last points.
  if (points.size() < 2 || std::max_element(points.begin(), points.end(), [](auto& a, auto& b) {
                             return a.value < b.value;
                           })->value <= points.front().value) {
    return;
  }
  TrendOptions options = DiagnoseOptions::bytes_trend_options();
  TrendResult trend = test_trend(points, options);
  site.trend = trend;
  if (trend.verdict == TrendVerdict::kInsufficient) {
    site.growth_bytes_per_s = std::max(0.0, theil_sen_slope(points));
  } else {
    site.growth_bytes_per_s = std::max(0.0, trend.slope_per_s);
    site.growing = trend.verdict == TrendVerdict::kGrowing;
  }
}

const std::vector<uint64_t>& frames_of(const ProcessHeapProfile& profile, uint32_t stack_id) {
  static const std::vector<uint64_t> kNoFrames;
  auto frames = profile.stacks.find(stack_id);
  return frames == profile.stacks.end() ? kNoFrames : frames->second;
}

}  // namespace

namespace {

void add_suppressed(model::SuppressedStacks& into, const AllocationStats& stats) {
  into.stacks += 1;
  into.allocations += stats.allocations;
  into.allocated_bytes += stats.allocated_bytes;
  into.final_live_bytes += stats.live_bytes;
  into.live_at_peak_bytes += stats.live_at_peak_bytes;
}

// Whether the replay's groups (SiteGrouping) are the sites: then a site's peak is its group's.
class GroupCheck {
 public:
  GroupCheck(const ProcessHeapProfile& profile, bool heap)
      : profile_(profile),
        grouping_(dynamic_cast<const SiteGrouping*>(profile.grouping.get())),
        peaks_(heap ? profile.heap_group_peak_bytes : profile.mapped_group_peak_bytes) {}

  // The stack belongs to the site `key`.
  void placed(uint32_t stack_id, const SiteKey& key) {
    const SiteKey* grouped = grouped_key(stack_id);
    if (grouped && *grouped == key) {
      group_of_site_.try_emplace(key, group(stack_id));
      return;
    }
    inexact_.insert(key);
    if (grouped) inexact_.insert(*grouped);
  }
  // The stack belongs to no site (suppressed).
  void left_out(uint32_t stack_id) {
    if (const SiteKey* grouped = grouped_key(stack_id)) inexact_.insert(*grouped);
  }
  std::optional<uint64_t> peak_of(const SiteKey& key) const {
    auto group = group_of_site_.find(key);
    if (!grouping_ || inexact_.count(key) || group == group_of_site_.end() || group->second >= peaks_.size()) {
      return std::nullopt;
    }
    return peaks_[group->second];
  }

 private:
  uint32_t group(uint32_t stack_id) const {
    auto group = profile_.stack_groups.find(stack_id);
    return group == profile_.stack_groups.end() ? StackGrouping::kNoGroup : group->second;
  }
  const SiteKey* grouped_key(uint32_t stack_id) const {
    return grouping_ ? grouping_->key_of(group(stack_id)) : nullptr;
  }

  const ProcessHeapProfile& profile_;
  const SiteGrouping* grouping_;
  const std::vector<uint64_t>& peaks_;
  std::map<SiteKey, uint32_t> group_of_site_;
  std::set<SiteKey> inexact_;
};

// A site's own peak: at least what any one instant shows (one stack's own peak, the site at the
// process's peak, at the end), at most every stack at its own peak at once, or the whole
// process's peak. Where the two meet it is exact.
void settle_peak(HeapSite& site, uint64_t process_peak_bytes) {
  uint64_t lower = std::max(site.stats.live_at_peak_bytes, site.stats.live_bytes);
  for (const SitePath& path : site.paths) lower = std::max(lower, path.stats.peak_live_bytes);
  uint64_t upper = std::max(lower, std::min(site.stats.peak_live_bytes, process_peak_bytes));
  site.stats.peak_live_bytes = upper;
  site.peak_exact = upper == lower;
}

}  // namespace

std::vector<HeapSite> heap_sites(const ProcessHeapProfile& profile, Symbolizer& symbolizer, SiteMemory memory,
                                 const Suppressions* suppressions, model::SuppressedStacks* suppressed) {
  const bool heap = memory == SiteMemory::kHeap;
  const auto& by_stack = heap ? profile.heap_by_stack : profile.mapped_by_stack;
  const LiveSeries& series = heap ? profile.heap_series : profile.mapped_series;
  std::map<SiteKey, HeapSite> sites;
  // Sites whose stacks are not exactly one replay group: their peak is bounded, not known.
  GroupCheck groups(profile, heap);
  for (const auto& [stack_id, stats] : by_stack) {
    const std::vector<uint64_t>& stack = frames_of(profile, stack_id);
    const uint64_t seq = stack_seq(profile, stack_id);
    if (suppressions && suppressions->matches(stack, seq, symbolizer)) {
      if (suppressed) add_suppressed(*suppressed, stats);
      groups.left_out(stack_id);
      continue;
    }
    SiteKey key = site_key_of(stack, seq, symbolizer);
    groups.placed(stack_id, key);
    bool fresh = sites.find(key) == sites.end();
    HeapSite& site = sites[key];
    if (site.function.empty())
      std::tie(site.function, site.file, site.line) = std::tie(key.function, key.file, key.line);
    // A site is the runtime's, allocated once, when every stack of it that holds memory is.
    if (stats.live_bytes > 0 || fresh) {
      const char* reason = runtime_once_reason(stack, seq, symbolizer);
      if (fresh) site.runtime_once = reason;
      if (!reason && stats.live_bytes > 0) site.runtime_once = nullptr;
    }
    add(site.stats, stats);
    site.paths.push_back({stack_id, &stack, seq, stats});
    if (auto live = series.by_stack.find(stack_id); live != series.by_stack.end()) {
      site.live_series.resize(std::max(site.live_series.size(), live->second.size()), 0.0);
      for (size_t i = 0; i < live->second.size(); ++i) site.live_series[i] += live->second[i];
    }
  }
  const uint64_t process_peak_bytes = heap ? profile.heap.peak_live_bytes : profile.mapped.peak_live_bytes;
  std::vector<HeapSite> all;
  for (auto& [key, site] : sites) {
    // Its largest stack first: the one a single stack shows.
    std::stable_sort(site.paths.begin(), site.paths.end(), [](const SitePath& a, const SitePath& b) {
      return std::max(a.stats.live_bytes, a.stats.allocated_bytes) >
             std::max(b.stats.live_bytes, b.stats.allocated_bytes);
    });
    if (std::optional<uint64_t> peak = groups.peak_of(key)) {
      site.stats.peak_live_bytes = *peak;
      site.peak_exact = true;
    } else {
      settle_peak(site, process_peak_bytes);
    }
    judge_growth(site, series);
    all.push_back(std::move(site));
  }
  return all;
}

SiteStack site_stack(const HeapSite& site, Symbolizer& symbolizer) {
  if (site.paths.empty()) return {};
  return path_stack(site.paths.front(), symbolizer);
}

SiteStack path_stack(const SitePath& path, Symbolizer& symbolizer) {
  return formatted_stack(*path.frames, path.seq, symbolizer);
}

namespace {

template <typename Belongs, typename Before>
std::vector<const HeapSite*> ranking(const std::vector<HeapSite>& sites, Belongs belongs, Before before) {
  std::vector<const HeapSite*> ranked;
  for (const HeapSite& site : sites) {
    if (belongs(site)) ranked.push_back(&site);
  }
  std::stable_sort(ranked.begin(), ranked.end(), [&](const HeapSite* a, const HeapSite* b) { return before(*a, *b); });
  return ranked;
}

}  // namespace

std::vector<const HeapSite*> growth_ranking(const std::vector<HeapSite>& sites) {
  return ranking(
      sites, [](const HeapSite& s) { return s.growth_bytes_per_s > 0; },
      [](const HeapSite& a, const HeapSite& b) {
        return std::tie(a.growing, a.growth_bytes_per_s) > std::tie(b.growing, b.growth_bytes_per_s);
      });
}

std::vector<const HeapSite*> peak_ranking(const std::vector<HeapSite>& sites) {
  return ranking(
      sites, [](const HeapSite& s) { return s.stats.live_at_peak_bytes > 0; },
      [](const HeapSite& a, const HeapSite& b) { return a.stats.live_at_peak_bytes > b.stats.live_at_peak_bytes; });
}

std::vector<const HeapSite*> leak_ranking(const std::vector<HeapSite>& sites) {
  // The program's leaks first; the runtime's blocks kept by design after them.
  return ranking(
      sites, [](const HeapSite& s) { return s.stats.live_bytes > 0; },
      [](const HeapSite& a, const HeapSite& b) {
        return std::make_tuple(a.runtime_once == nullptr, a.stats.live_bytes, a.stats.live_blocks) >
               std::make_tuple(b.runtime_once == nullptr, b.stats.live_bytes, b.stats.live_blocks);
      });
}

std::vector<const HeapSite*> temporary_ranking(const std::vector<HeapSite>& sites) {
  return ranking(
      sites, [](const HeapSite& s) { return s.stats.temporary_allocations > 0; },
      [](const HeapSite& a, const HeapSite& b) {
        return a.stats.temporary_allocations > b.stats.temporary_allocations;
      });
}

std::unordered_map<uint32_t, uint64_t> growth_bytes_by_stack(const ProcessHeapProfile& profile, bool mapped) {
  const LiveSeries& series = mapped ? profile.mapped_series : profile.heap_series;
  std::unordered_map<uint32_t, uint64_t> growth;
  if (series.monotonic_ns.size() < 2) return growth;
  double duration_s = seconds_between(series.monotonic_ns.front(), series.monotonic_ns.back());
  for (const auto& [stack_id, values] : series.by_stack) {
    // Only a series that rose above where it began can have grown; the O(n^2) slope is spent
    // on those alone.
    if (values.empty() || *std::max_element(values.begin(), values.end()) <= values.front()) continue;
    std::vector<double> live(values.begin(), values.end());
    double slope = theil_sen_slope(series_points(series, live));
    auto bytes = static_cast<uint64_t>(std::llround(std::max(0.0, slope) * duration_s));
    if (bytes > 0) growth[stack_id] = bytes;
  }
  return growth;
}

namespace {

// Per pid, the index in trace.processes of its image with the longest timeline: a pid that
// exec'd has several images, and the diagnosis tests the one that lived longest.
std::map<pid_t, size_t> tested_image_of(const HeapTrace& trace) {
  std::map<pid_t, size_t> longest;
  for (size_t i = 0; i < trace.processes.size(); ++i) {
    auto [it, first] = longest.emplace(trace.processes[i].pid, i);
    if (!first && trace.processes[i].timeline.size() > trace.processes[it->second].timeline.size()) it->second = i;
  }
  return longest;
}

}  // namespace

std::map<pid_t, TracedMemory> traced_memory(const HeapTrace& trace) {
  std::map<pid_t, TracedMemory> traced;
  for (const auto& [pid, index] : tested_image_of(trace)) {
    const ProcessHeapProfile* profile = &trace.processes[index];
    if (profile->timeline.empty()) continue;
    TracedMemory& memory = traced[pid];
    memory.heap_peak_bytes = static_cast<double>(profile->heap.peak_live_bytes);
    for (const HeapTimelinePoint& point : profile->timeline) {
      double t_s = static_cast<double>(point.monotonic_ns) / 1e9;
      memory.heap_live_bytes.push_back({t_s, static_cast<double>(point.heap_live_bytes)});
      memory.mapped_live_bytes.push_back({t_s, static_cast<double>(point.mapped_live_bytes)});
    }
  }
  return traced;
}

namespace {

// How the process image's stream ended: its own end record (exit, exec, abort), or none: then
// it died without running its exit path (a signal such as SIGKILL), or the recording stopped
// first ("cut short": memdx ended while it ran).
model::StreamEnd ending_of(const ProcessHeapProfile& profile) {
  if (profile.end) {
    switch (profile.end->reason) {
      case trace::wire::EndReason::kExec:
        return model::StreamEnd::kExec;
      case trace::wire::EndReason::kAbort:
        return model::StreamEnd::kAbort;
      case trace::wire::EndReason::kExit:
        return model::StreamEnd::kExit;
    }
  }
  return profile.closed_cleanly ? model::StreamEnd::kKilled : model::StreamEnd::kCutShort;
}

double path_growth_bytes_per_s(const SitePath& path, const LiveSeries& series) {
  auto live = series.by_stack.find(path.stack_id);
  if (live == series.by_stack.end()) return 0;
  std::vector<double> values(live->second.begin(), live->second.end());
  std::vector<SeriesPoint> points = series_points(series, values);
  return points.size() < 2 ? 0 : std::max(0.0, theil_sen_slope(points));
}

// The figures a site and a path share, under the same names in the model.
template <typename Summary>
void copy_figures(const AllocationStats& stats, Summary& out) {
  out.allocations = stats.allocations;
  out.allocated_bytes = stats.allocated_bytes;
  out.peak_live_bytes = stats.peak_live_bytes;
  out.live_at_peak_bytes = stats.live_at_peak_bytes;
  out.final_live_bytes = stats.live_bytes;
  out.final_live_blocks = stats.live_blocks;
  out.temporary_allocations = stats.temporary_allocations;
}

model::HeapSitePath path_summary(const SitePath& path, double growth_bytes_per_s, Symbolizer& symbolizer) {
  model::HeapSitePath out;
  copy_figures(path.stats, out);
  out.growth_bytes_per_s = growth_bytes_per_s;
  SiteStack stack = path_stack(path, symbolizer);
  out.stack = std::move(stack.frames);
  out.unnamed_frames = std::move(stack.unnamed);
  return out;
}

// The paths a site's summary keeps: all of them, or the largest and the one that leads each
// ranking, so that every ranking shows a stack that holds what it ranks.
std::vector<model::HeapSitePath> path_summaries(const HeapSite& site, const LiveSeries& series, bool all_paths,
                                                Symbolizer& symbolizer) {
  std::vector<double> growth(site.paths.size());
  for (size_t i = 0; i < site.paths.size(); ++i) growth[i] = path_growth_bytes_per_s(site.paths[i], series);
  std::vector<size_t> chosen;
  if (all_paths) {
    for (size_t i = 0; i < site.paths.size(); ++i) chosen.push_back(i);
  } else if (!site.paths.empty()) {
    chosen.push_back(0);
    auto lead = [&](auto metric) {
      size_t best = 0;
      for (size_t i = 1; i < site.paths.size(); ++i) {
        if (metric(i) > metric(best)) best = i;
      }
      if (metric(best) > 0 && std::find(chosen.begin(), chosen.end(), best) == chosen.end()) chosen.push_back(best);
    };
    lead([&](size_t i) { return growth[i]; });
    lead([&](size_t i) { return static_cast<double>(site.paths[i].stats.live_at_peak_bytes); });
    lead([&](size_t i) { return static_cast<double>(site.paths[i].stats.live_bytes); });
    lead([&](size_t i) { return static_cast<double>(site.paths[i].stats.temporary_allocations); });
  }
  std::vector<model::HeapSitePath> out;
  out.reserve(chosen.size());
  for (size_t i : chosen) out.push_back(path_summary(site.paths[i], growth[i], symbolizer));
  return out;
}

model::HeapSiteSummary site_summary(const HeapSite& site, const LiveSeries& series, bool all_paths,
                                    Symbolizer& symbolizer) {
  model::HeapSiteSummary out;
  out.function = site.function;
  out.file = site.file;
  out.line = static_cast<int>(site.line);
  copy_figures(site.stats, out);
  out.peak_live_bytes_exact = site.peak_exact;
  out.reserved_bytes = site.stats.reserved_bytes;
  if (site.runtime_once) out.runtime_once = site.runtime_once;
  out.growth_bytes_per_s = site.growth_bytes_per_s;
  out.growing = site.growing;
  SiteStack stack = site_stack(site, symbolizer);
  out.stack = std::move(stack.frames);
  out.unnamed_frames = std::move(stack.unnamed);
  out.path_count = site.paths.size();
  out.paths = path_summaries(site, series, all_paths, symbolizer);
  return out;
}

// The sites among the first `limit` of any ranking (all with limit 0), largest final live first.
std::vector<model::HeapSiteSummary> summaries(const std::vector<HeapSite>& sites, const LiveSeries& series,
                                              const SiteOptions& options, Symbolizer& symbolizer) {
  const size_t limit = options.site_limit;
  std::set<const HeapSite*> chosen;
  for (auto rank : {growth_ranking, peak_ranking, leak_ranking, temporary_ranking}) {
    std::vector<const HeapSite*> ranked = rank(sites);
    if (limit && ranked.size() > limit) ranked.resize(limit);
    chosen.insert(ranked.begin(), ranked.end());
  }
  std::vector<const HeapSite*> ordered;
  for (const HeapSite& site : sites) {
    if (!limit || chosen.count(&site)) ordered.push_back(&site);
  }
  std::stable_sort(ordered.begin(), ordered.end(), [](const HeapSite* a, const HeapSite* b) {
    return std::tie(a->stats.live_bytes, a->stats.live_at_peak_bytes, a->stats.allocated_bytes) >
           std::tie(b->stats.live_bytes, b->stats.live_at_peak_bytes, b->stats.allocated_bytes);
  });
  std::vector<model::HeapSiteSummary> out;
  out.reserve(ordered.size());
  for (const HeapSite* site : ordered) out.push_back(site_summary(*site, series, options.all_paths, symbolizer));
  return out;
}

struct ImageSites {
  const ProcessHeapProfile* profile;
  std::unique_ptr<Symbolizer> own_symbolizer;  // when the replay's cannot be used
  Symbolizer& symbolizer;
  std::vector<HeapSite> heap;
  std::vector<HeapSite> mapped;
  model::SuppressedStacks suppressed;
};

model::HeapSummary heap_summary(ImageSites& image, const SiteOptions& options) {
  const ProcessHeapProfile& profile = *image.profile;
  model::HeapSummary out;
  out.pid = profile.pid;
  out.ppid = profile.ppid;
  out.ended = ending_of(profile);
  out.sample_bytes = profile.sample_bytes;
  out.allocations = profile.heap.allocations;
  out.frees = profile.heap.frees;
  out.allocated_bytes = profile.heap.allocated_bytes;
  out.peak_live_bytes = profile.heap.peak_live_bytes;
  out.final_live_bytes = profile.heap.live_bytes;
  out.final_live_blocks = profile.heap.live_blocks;
  out.temporary_allocations = profile.heap.temporary_allocations;
  out.unmatched_frees = profile.unmatched_frees;
  out.maps = profile.mapped.maps;
  out.mapped_bytes = profile.mapped.mapped_bytes;
  out.peak_mapped_live_bytes = profile.mapped.peak_live_bytes;
  out.final_mapped_live_bytes = profile.mapped.live_bytes;
  out.final_mapped_reserved_bytes = profile.mapped.reserved_bytes;
  out.peak_mapped_reserved_bytes = profile.mapped.peak_reserved_bytes;
  out.peak_tracer_bytes = profile.peak_tracer_bytes;
  out.distinct_stacks = profile.stacks.size();
  const auto& instants = profile.heap_series.monotonic_ns;
  if (instants.size() >= 2) out.duration_s = seconds_between(instants.front(), instants.back());
  out.sites = summaries(image.heap, profile.heap_series, options, image.symbolizer);
  out.mapped_sites = summaries(image.mapped, profile.mapped_series, options, image.symbolizer);
  out.suppressed = image.suppressed;
  return out;
}

// Sites named in a growth finding: those that grow, fastest first.
constexpr size_t kFindingSites = 5;

model::Site finding_site(const HeapSite& site, Symbolizer& symbolizer) {
  SiteStack stack = site_stack(site, symbolizer);
  return {site.function,
          site.file,
          static_cast<int>(site.line),
          site.stats.live_bytes,
          site.growth_bytes_per_s,
          std::move(stack.frames),
          site.stats.live_at_peak_bytes,
          std::move(stack.unnamed)};
}

std::vector<model::Site> finding_sites(const std::vector<HeapSite>& sites, Symbolizer& symbolizer) {
  std::vector<model::Site> out;
  std::vector<const HeapSite*> ranked = growth_ranking(sites);
  // Sites that pass the trend test on their own come first; when none does (the growth is
  // spread thin over many), the fastest risers still say where it goes.
  for (const HeapSite* site : ranked) {
    if (out.size() == kFindingSites) break;
    if (!site->growing && !out.empty() && ranked.front()->growing) break;
    out.push_back(finding_site(*site, symbolizer));
  }
  return out;
}

// When no site's live bytes have a rising trend (a vector doubling its capacity steps, and under
// load it may step only once or twice in a recording), anon growth is still held somewhere: the
// program's sites holding the most at the end say where.
std::vector<model::Site> holding_sites(const std::vector<HeapSite>& sites, Symbolizer& symbolizer) {
  std::vector<model::Site> out;
  for (const HeapSite* site : leak_ranking(sites)) {
    if (out.size() == kFindingSites || site->runtime_once != nullptr) break;
    out.push_back(finding_site(*site, symbolizer));
  }
  return out;
}

// A stream that closed without its end record looks like a kill; when the recording saw the
// process exit with a code, its trace was lost instead (its connection closed while it ran on),
// and the report must say so rather than blame a signal.
void mark_lost_streams(model::Verdict& verdict) {
  for (model::HeapSummary& heap : verdict.heap) {
    if (heap.ended != model::StreamEnd::kKilled) continue;
    for (const model::ProcessSummary& process : verdict.processes) {
      if (process.pid == heap.pid && process.exit_code && !process.exit_signal)
        heap.ended = model::StreamEnd::kTraceLost;
    }
  }
}

// A leak the whole heap hides: request buffers or batches swing the heap's total by megabytes
// while one site's own live bytes rise steadily underneath. The site's series passed the same
// trend test as the heap's (significance, floor, persistence, one step forgiven), so heap_growth
// is confirmed on it, and the evidence names the site.
void confirm_growth_by_sites(model::Verdict& verdict, pid_t pid, ImageSites& image) {
  auto hypothesis = std::find_if(verdict.hypotheses.begin(), verdict.hypotheses.end(), [&](const model::Hypothesis& h) {
    return h.pid == pid && h.kind == model::HypothesisKind::kHeapGrowth;
  });
  if (hypothesis == verdict.hypotheses.end() || hypothesis->status == model::HypothesisStatus::kConfirmed) return;
  for (const model::Finding& f : verdict.findings) {
    if (f.pid == pid && f.kind == model::FindingKind::kHeapGrowth) return;
  }
  const HeapSite* fastest = nullptr;
  for (const HeapSite& site : image.heap) {
    if (site.growing && (!fastest || site.trend.slope_per_s > fastest->trend.slope_per_s)) fastest = &site;
  }
  if (!fastest) return;
  const ProcessHeapProfile& profile = *image.profile;
  uint64_t low = UINT64_MAX, high = 0;
  for (const HeapTimelinePoint& point : profile.timeline) {
    low = std::min(low, point.heap_live_bytes);
    high = std::max(high, point.heap_live_bytes);
  }
  const auto& instants = profile.heap_series.monotonic_ns;
  double span_s = instants.size() >= 2 ? seconds_between(instants.front(), instants.back()) : 0;
  model::Finding f;
  f.kind = model::FindingKind::kHeapGrowth;
  f.severity = model::Severity::kLeak;
  f.pid = pid;
  f.series = model::Series::kHeapSiteLive;
  f.unit = model::Unit::kBytes;
  f.rate_per_s = fastest->trend.slope_per_s;
  f.confidence = fastest->trend.confidence;
  f.start_level = fastest->trend.start_level;
  f.end_level = fastest->trend.end_level;
  model::Site place;
  place.function = fastest->function;
  place.file = fastest->file;
  place.line = static_cast<int>(fastest->line);
  f.evidence = fmt::format(
      "the live bytes allocated at {} rose from {} to {} over {} (Theil-Sen slope {}, Mann-Kendall {}), while the "
      "whole heap swung between {} and {} and hid it",
      model::site_label(place.function, place.file, place.line), level_text(f.start_level, Unit::kBytes),
      level_text(f.end_level, Unit::kBytes), span_text(span_s), rate_text(f.rate_per_s, Unit::kBytes),
      p_text(fastest->trend.p_value), model::format_bytes(low == UINT64_MAX ? 0 : low), model::format_bytes(high));
  f.sites = finding_sites(image.heap, image.symbolizer);
  std::erase_if(verdict.findings, [&](const model::Finding& other) {
    return other.pid == pid && other.kind == model::FindingKind::kNoGrowth;
  });
  verdict.findings.push_back(std::move(f));
  hypothesis->status = model::HypothesisStatus::kConfirmed;
  hypothesis->evidence = verdict.findings.back().evidence;
}

}  // namespace

void attach_heap_trace(model::Verdict& verdict, const HeapTrace& trace, const SiteOptions& options) {
  std::vector<ImageSites> images;
  for (const ProcessHeapProfile& profile : trace.processes) {
    std::unique_ptr<Symbolizer> own;
    Symbolizer& symbolizer = symbolizer_of(profile, options.debug_dirs, own);
    ImageSites image{&profile, std::move(own), symbolizer, {}, {}, {}};
    image.heap = heap_sites(profile, image.symbolizer, SiteMemory::kHeap, options.suppressions, &image.suppressed);
    image.mapped = heap_sites(profile, image.symbolizer, SiteMemory::kMapped, options.suppressions, &image.suppressed);
    verdict.heap.push_back(heap_summary(image, options));
    for (model::ProcessSummary& process : verdict.processes) {
      if (process.pid != profile.pid) continue;
      process.peak_heap_live_bytes = std::max(process.peak_heap_live_bytes.value_or(0), profile.heap.peak_live_bytes);
    }
    images.push_back(std::move(image));
  }
  mark_lost_streams(verdict);
  std::map<pid_t, size_t> tested = tested_image_of(trace);  // images[i] is trace.processes[i]'s
  if (options.sites_judge_growth) {
    for (const auto& [pid, index] : tested) confirm_growth_by_sites(verdict, pid, images[index]);
  }
  for (model::Finding& finding : verdict.findings) {
    bool heap = finding.kind == model::FindingKind::kHeapGrowth;
    if (!heap && finding.kind != model::FindingKind::kAnonGrowth && finding.kind != model::FindingKind::kShmemGrowth)
      continue;
    auto image = tested.find(finding.pid);
    if (image == tested.end()) continue;
    ImageSites* chosen = &images[image->second];
    if (heap || finding.kind == model::FindingKind::kShmemGrowth) {
      finding.sites = finding_sites(heap ? chosen->heap : chosen->mapped, chosen->symbolizer);
    } else {
      // Anon memory grows through direct mappings, and through the heap in ways its live bytes
      // understate: a vector doubling its capacity reserves in steps (its live bytes level off
      // between doublings) while its pages are touched, and resident, steadily.
      std::vector<HeapSite> either = chosen->mapped;
      either.insert(either.end(), chosen->heap.begin(), chosen->heap.end());
      finding.sites = finding_sites(either, chosen->symbolizer);
      if (finding.sites.empty()) finding.sites = holding_sites(either, chosen->symbolizer);
    }
    if (finding.sites.empty()) continue;
    const model::Site& top = finding.sites.front();
    if (top.growth_bytes_per_s > 0) {
      finding.evidence += fmt::format("; fastest-growing site: {} (+{}/s, {} live at the peak, {} at the end)",
                                      model::site_label(top.function, top.file, top.line),
                                      model::format_bytes(static_cast<uint64_t>(top.growth_bytes_per_s)),
                                      model::format_bytes(top.live_at_peak_bytes), model::format_bytes(top.live_bytes));
    } else {
      finding.evidence +=
          fmt::format("; no site's live bytes rose steadily; the most held at the end: {} ({} live)",
                      model::site_label(top.function, top.file, top.line), model::format_bytes(top.live_bytes));
    }
  }
  refresh_confirmed_evidence(verdict);
}

}  // namespace memdx::analyze
