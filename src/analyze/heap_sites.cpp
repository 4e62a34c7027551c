#include "analyze/heap_sites.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

namespace memdx::analyze {
namespace {

std::string basename_of(const std::string& path) { return path.substr(path.rfind('/') + 1); }

}  // namespace

// The runtime's own frames say how memory was allocated, not who wanted it: the C and C++
// runtime libraries and the loader (by module), the allocation functions themselves (by exact
// name: a program's own malloc_pool() is a site), and library templates compiled into the program.
bool is_runtime_frame(const SourceFrame& frame) {
  std::string module = basename_of(frame.module);
  for (const char* prefix : {"libc.so.", "libstdc++.so.", "libc++.so.", "libc++abi.so.", "libgcc_s.so.", "ld-linux"}) {
    if (module.rfind(prefix, 0) == 0) return true;
  }
  if (module == "libmemdx_trace.so") return true;
  static const std::set<std::string> kAllocationFunctions = {
      "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc", "memalign",
      "valloc", "pvalloc", "mmap", "mmap64", "munmap", "mremap"};
  if (kAllocationFunctions.count(frame.function)) return true;
  for (const char* prefix : {"operator new", "operator delete", "__cxa_"}) {
    if (frame.function.rfind(prefix, 0) == 0) return true;
  }
  // Library templates instantiated in the program ("std::vector<int>::push_back(...)", or with
  // the return type first: "void std::vector<...>::_M_realloc_insert<...>(...)").
  std::string_view name = std::string_view(frame.function).substr(0, frame.function.find('('));
  for (const char* scope : {"std::", "__gnu_cxx::"}) {
    size_t at = name.find(scope);
    if (at == 0 || (at != std::string_view::npos && name[at - 1] == ' ' && name.substr(0, at).find('<') == std::string_view::npos)) return true;
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
SiteKey site_of(const std::vector<uint64_t>& stack, Symbolizer& symbolizer) {
  std::optional<SiteKey> innermost;
  for (uint64_t address : stack) {
    for (const SourceFrame& frame : symbolizer.resolve(address)) {
      if (!innermost) innermost = site_key(frame);
      if (!is_runtime_frame(frame)) return site_key(frame);
    }
  }
  return innermost.value_or(SiteKey{"(no stack)", "", 0});
}

void add(AllocationStats& into, const AllocationStats& stats) {
  into.allocations += stats.allocations;
  into.frees += stats.frees;
  into.allocated_bytes += stats.allocated_bytes;
  into.live_bytes += stats.live_bytes;
  into.live_blocks += stats.live_blocks;
  into.peak_live_bytes += stats.peak_live_bytes;  // an upper bound: the stacks' peaks need not coincide
}

// The stack from the site's frame outwards: the allocator's and the runtime's frames inside
// it say how, not who.
std::vector<std::string> formatted_stack(const std::vector<uint64_t>& stack, Symbolizer& symbolizer) {
  std::vector<std::string> all, from_site;
  for (uint64_t address : stack) {
    for (const SourceFrame& frame : symbolizer.resolve(address)) {
      all.push_back(format_frame(frame));
      if (!from_site.empty() || !is_runtime_frame(frame)) from_site.push_back(all.back());
    }
  }
  return from_site.empty() ? all : from_site;
}

}  // namespace

std::string format_frame(const SourceFrame& frame) {
  if (frame.function.empty()) {
    return fmt::format("{}+0x{:x}", frame.module.empty() ? "?" : basename_of(frame.module), frame.module_offset);
  }
  if (frame.file.empty()) return frame.function;
  return fmt::format("{} ({}:{})", frame.function, basename_of(frame.file), frame.line);
}

Symbolizer symbolizer_for(const ProcessHeapProfile& profile) {
  std::vector<ModuleMapping> modules;
  for (const TraceModule& module : profile.modules) {
    if (module.path.empty() || module.path[0] != '/') continue;  // linux-vdso.so.1 and the like
    modules.push_back({module.path, module.load_bias, module.start, module.end});
  }
  return Symbolizer(std::move(modules));
}

std::vector<HeapSite> heap_sites(const ProcessHeapProfile& profile, Symbolizer& symbolizer, size_t limit) {
  std::map<SiteKey, HeapSite> sites;
  std::map<SiteKey, uint64_t> largest_stack_bytes;
  for (const auto& [stack_id, stats] : profile.heap_by_stack) {
    auto frames = profile.stacks.find(stack_id);
    static const std::vector<uint64_t> kNoFrames;
    const std::vector<uint64_t>& stack = frames == profile.stacks.end() ? kNoFrames : frames->second;
    SiteKey key = site_of(stack, symbolizer);
    HeapSite& site = sites[key];
    if (site.function.empty()) std::tie(site.function, site.file, site.line) = std::tie(key.function, key.file, key.line);
    add(site.stats, stats);
    uint64_t weight = std::max(stats.live_bytes, stats.allocated_bytes);
    if (site.stack.empty() || weight > largest_stack_bytes[key]) {
      largest_stack_bytes[key] = weight;
      site.stack = formatted_stack(stack, symbolizer);
    }
  }
  std::vector<HeapSite> ordered;
  for (auto& [key, site] : sites) ordered.push_back(std::move(site));
  std::sort(ordered.begin(), ordered.end(), [](const HeapSite& a, const HeapSite& b) {
    return std::tie(a.stats.live_bytes, a.stats.peak_live_bytes, a.stats.allocated_bytes) >
           std::tie(b.stats.live_bytes, b.stats.peak_live_bytes, b.stats.allocated_bytes);
  });
  if (limit && ordered.size() > limit) ordered.resize(limit);
  return ordered;
}

namespace {

// How the process image's stream ended: its own end record (exit, exec, abort), or none: then
// it died without running its exit path (a signal such as SIGKILL), or the recording stopped
// first ("cut short": memdx ended while it ran).
std::string ending_of(const ProcessHeapProfile& profile) {
  if (profile.end) {
    switch (profile.end->reason) {
      case trace::wire::EndReason::kExec: return "exec";
      case trace::wire::EndReason::kAbort: return "abort";
      case trace::wire::EndReason::kExit: return "exit";
    }
  }
  return profile.closed_cleanly ? "killed" : "cut short";
}

model::HeapSiteSummary site_summary(HeapSite site) {
  model::HeapSiteSummary out;
  out.function = std::move(site.function);
  out.file = std::move(site.file);
  out.line = static_cast<int>(site.line);
  out.allocations = site.stats.allocations;
  out.allocated_bytes = site.stats.allocated_bytes;
  out.peak_live_bytes = site.stats.peak_live_bytes;
  out.final_live_bytes = site.stats.live_bytes;
  out.final_live_blocks = site.stats.live_blocks;
  out.stack = std::move(site.stack);
  return out;
}

model::HeapSummary heap_summary(const ProcessHeapProfile& profile, size_t site_limit) {
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
  out.unmatched_frees = profile.unmatched_frees;
  out.maps = profile.mapped.maps;
  out.mapped_bytes = profile.mapped.mapped_bytes;
  out.peak_mapped_live_bytes = profile.mapped.peak_live_bytes;
  out.final_mapped_live_bytes = profile.mapped.live_bytes;
  out.peak_tracer_bytes = profile.peak_tracer_bytes;
  out.distinct_stacks = profile.stacks.size();
  Symbolizer symbolizer = symbolizer_for(profile);
  for (HeapSite& site : heap_sites(profile, symbolizer, site_limit)) out.sites.push_back(site_summary(std::move(site)));
  return out;
}

}  // namespace

void attach_heap_trace(model::Verdict& verdict, const HeapTrace& trace, size_t site_limit) {
  for (const ProcessHeapProfile& profile : trace.processes) {
    verdict.heap.push_back(heap_summary(profile, site_limit));
    for (model::ProcessSummary& process : verdict.processes) {
      if (process.pid != profile.pid) continue;
      process.peak_heap_live_bytes = std::max(process.peak_heap_live_bytes.value_or(0), profile.heap.peak_live_bytes);
    }
  }
}

}  // namespace memdx::analyze
