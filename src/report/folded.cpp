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

std::string frame_name(const SourceFrame& frame) {
  return frame.function.empty() ? analyze::format_frame(frame) : frame.function;
}

// ';' separates frames and the last space the value: a name holding ';' would split its frame.
std::string folded_text_of(const std::vector<std::string>& frames) {
  std::string text;
  for (const std::string& frame : frames) {
    if (!text.empty()) text += ';';
    size_t start = text.size();
    text += frame;
    std::replace(text.begin() + static_cast<std::ptrdiff_t>(start), text.end(), ';', ':');
  }
  return text;
}

// "pid 4242 (server)": which process image a line belongs to, from its first module (the program).
std::string process_frame(const ProcessHeapProfile& profile) {
  if (profile.modules.empty()) return fmt::format("pid {}", profile.pid);
  const std::string& program = profile.modules.front().path;
  return fmt::format("pid {} ({})", profile.pid, program.substr(program.rfind('/') + 1));
}

// The stack's frames outermost first, without the runtime's frames at the leaf end.
std::vector<std::string> folded_frames(const std::vector<uint64_t>& stack, uint64_t seq,
                                       analyze::Symbolizer& symbolizer) {
  std::vector<const SourceFrame*> innermost_first;
  for (uint64_t address : stack) {
    for (const SourceFrame& frame : symbolizer.resolve_at(address, seq)) innermost_first.push_back(&frame);
  }
  auto program_leaf = std::find_if(innermost_first.begin(), innermost_first.end(),
                                   [](const SourceFrame* frame) { return !analyze::is_runtime_frame(*frame); });
  if (program_leaf == innermost_first.end()) program_leaf = innermost_first.begin();
  std::vector<std::string> frames;
  for (auto frame = innermost_first.rbegin(); frame != std::make_reverse_iterator(program_leaf); ++frame) {
    frames.push_back(frame_name(**frame));
  }
  return frames;
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

std::vector<FoldedStack> folded_stacks(const analyze::HeapTrace& trace, FoldedMetric metric,
                                       const std::vector<std::string>& debug_dirs) {
  std::map<std::vector<std::string>, uint64_t> bytes_by_frames;
  bool several_images = trace.processes.size() > 1;
  for (const ProcessHeapProfile& profile : trace.processes) {
    std::unique_ptr<analyze::Symbolizer> own;
    analyze::Symbolizer& symbolizer = analyze::symbolizer_of(profile, debug_dirs, own);
    static const std::vector<uint64_t> kNoFrames;
    for (const auto& [stack_id, value] : values_by_stack(profile, metric)) {
      if (value == 0) continue;
      auto found = profile.stacks.find(stack_id);
      std::vector<std::string> frames = folded_frames(found == profile.stacks.end() ? kNoFrames : found->second,
                                                      analyze::stack_seq(profile, stack_id), symbolizer);
      if (frames.empty()) frames.emplace_back("(no stack)");
      if (several_images) frames.insert(frames.begin(), process_frame(profile));
      bytes_by_frames[std::move(frames)] += value;
    }
  }
  std::vector<FoldedStack> stacks;
  stacks.reserve(bytes_by_frames.size());
  for (auto& [frames, value] : bytes_by_frames) stacks.push_back({frames, value});
  return stacks;
}

std::string render_folded(const analyze::HeapTrace& trace, FoldedMetric metric,
                          const std::vector<std::string>& debug_dirs) {
  // Sorted and merged as text: two names that differ only in ';' and ':' print as one line.
  std::map<std::string, uint64_t> bytes_by_line;
  for (const FoldedStack& stack : folded_stacks(trace, metric, debug_dirs)) {
    bytes_by_line[folded_text_of(stack.frames)] += stack.value;
  }
  std::string text;
  for (const auto& [stack, bytes] : bytes_by_line) text += fmt::format("{} {}\n", stack, bytes);
  return text;
}

}  // namespace memdx::report
