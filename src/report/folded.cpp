#include "report/folded.h"

#include <algorithm>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "analyze/heap_sites.h"

namespace memdx::report {
namespace {

using analyze::AllocationStats;
using analyze::ProcessHeapProfile;
using analyze::SourceFrame;

// ';' separates frames and the last space the value: a name holding ';' would split its frame.
std::string frame_name(const SourceFrame& frame) {
  std::string name = frame.function.empty() ? analyze::format_frame(frame) : frame.function;
  std::replace(name.begin(), name.end(), ';', ':');
  return name;
}

// "pid 4242 (server)": which process image a line belongs to, from its first module (the program).
std::string process_frame(const ProcessHeapProfile& profile) {
  if (profile.modules.empty()) return fmt::format("pid {}", profile.pid);
  const std::string& program = profile.modules.front().path;
  return fmt::format("pid {} ({})", profile.pid, program.substr(program.rfind('/') + 1));
}

// The stack's frames outermost first, without the runtime's frames at the leaf end.
std::string folded_stack(const std::vector<uint64_t>& stack, uint64_t seq, analyze::Symbolizer& symbolizer) {
  std::vector<const SourceFrame*> innermost_first;
  for (uint64_t address : stack) {
    for (const SourceFrame& frame : symbolizer.resolve_at(address, seq)) innermost_first.push_back(&frame);
  }
  auto program_leaf = std::find_if(innermost_first.begin(), innermost_first.end(),
                                   [](const SourceFrame* frame) { return !analyze::is_runtime_frame(*frame); });
  if (program_leaf == innermost_first.end()) program_leaf = innermost_first.begin();
  std::string folded;
  for (auto frame = innermost_first.rbegin(); frame != std::make_reverse_iterator(program_leaf); ++frame) {
    if (!folded.empty()) folded += ';';
    folded += frame_name(**frame);
  }
  return folded;
}

// Each stack's value for the metric; stacks absent or 0 are not printed.
std::unordered_map<uint32_t, uint64_t> values_by_stack(const ProcessHeapProfile& profile, FoldedMetric metric) {
  if (metric == FoldedMetric::kGrowth) {
    // Memory grows through the heap and through direct mappings (anon, shmem): both count.
    std::unordered_map<uint32_t, uint64_t> growth = analyze::growth_bytes_by_stack(profile);
    for (const auto& [stack_id, bytes] : analyze::growth_bytes_by_stack(profile, true)) growth[stack_id] += bytes;
    return growth;
  }
  std::unordered_map<uint32_t, uint64_t> values;
  for (const auto& [stack_id, stats] : profile.heap_by_stack) {
    switch (metric) {
      case FoldedMetric::kPeak:
        values[stack_id] = stats.live_at_peak_bytes;
        break;
      case FoldedMetric::kLeaked:
        values[stack_id] = stats.live_bytes;
        break;
      case FoldedMetric::kAllocated:
        values[stack_id] = stats.allocated_bytes;
        break;
      case FoldedMetric::kGrowth:
        break;
    }
  }
  return values;
}

}  // namespace

std::optional<FoldedMetric> folded_metric_named(std::string_view name) {
  if (name == "peak") return FoldedMetric::kPeak;
  if (name == "growth") return FoldedMetric::kGrowth;
  if (name == "leaked") return FoldedMetric::kLeaked;
  if (name == "allocated") return FoldedMetric::kAllocated;
  return std::nullopt;
}

std::string render_folded(const analyze::HeapTrace& trace, FoldedMetric metric,
                          const std::vector<std::string>& debug_dirs) {
  std::map<std::string, uint64_t> bytes_by_folded_stack;
  bool several_images = trace.processes.size() > 1;
  for (const ProcessHeapProfile& profile : trace.processes) {
    std::unique_ptr<analyze::Symbolizer> own;
    analyze::Symbolizer& symbolizer = analyze::symbolizer_of(profile, debug_dirs, own);
    std::string root = several_images ? process_frame(profile) : "";
    static const std::vector<uint64_t> kNoFrames;
    for (const auto& [stack_id, value] : values_by_stack(profile, metric)) {
      if (value == 0) continue;
      auto frames = profile.stacks.find(stack_id);
      std::string stack = folded_stack(frames == profile.stacks.end() ? kNoFrames : frames->second,
                                       analyze::stack_seq(profile, stack_id), symbolizer);
      if (stack.empty()) stack = "(no stack)";
      if (!root.empty()) stack.insert(0, root + ";");
      bytes_by_folded_stack[stack] += value;
    }
  }
  std::string text;
  for (const auto& [stack, bytes] : bytes_by_folded_stack) text += fmt::format("{} {}\n", stack, bytes);
  return text;
}

}  // namespace memdx::report
