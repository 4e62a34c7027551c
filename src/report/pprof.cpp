#include "report/pprof.h"

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "analyze/heap_sites.h"
#include "model/gzip.h"
#include "proto/profile.pb.h"

namespace memdx::report {
namespace {

namespace pb = perftools::profiles;
using analyze::ProcessHeapProfile;
using analyze::SourceFrame;

// One traced process image while its samples are added: its modules' mapping ids (in the order
// of profile.modules) and its symbolizer.
struct ProcessScope {
  const ProcessHeapProfile& process;
  size_t index = 0;
  std::vector<uint64_t> mapping_ids;
  std::unique_ptr<analyze::Symbolizer> own_symbolizer;  // when the replay built none
  analyze::Symbolizer& symbolizer;
};

// Builds one Profile: strings, mappings, locations and functions are each stored once, keyed by
// what identifies them, and referred to by index or id.
class ProfileBuilder {
 public:
  ProfileBuilder() {
    string_id("");  // string_table[0] must be ""
    for (const char* type : {"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"}) {
      pb::ValueType* sample_type = profile_.add_sample_type();
      sample_type->set_type(string_id(type));
      sample_type->set_unit(string_id(std::string_view(type).ends_with("objects") ? "count" : "bytes"));
    }
    profile_.set_default_sample_type(string_id("inuse_space"));
  }

  void add_process(const ProcessHeapProfile& process, size_t index, const std::vector<std::string>& debug_dirs) {
    std::unique_ptr<analyze::Symbolizer> own;
    analyze::Symbolizer& symbolizer = analyze::symbolizer_of(process, debug_dirs, own);
    ProcessScope scope{process, index, {}, std::move(own), symbolizer};
    for (const analyze::TraceModule& module : process.modules) scope.mapping_ids.push_back(mapping_id(module));
    std::vector<uint32_t> stack_ids;
    for (const auto& [stack_id, stats] : process.heap_by_stack) stack_ids.push_back(stack_id);
    std::sort(stack_ids.begin(), stack_ids.end());  // the same trace gives the same file
    for (uint32_t stack_id : stack_ids) add_sample(scope, stack_id, process.heap_by_stack.at(stack_id));
  }

  pb::Profile& profile() { return profile_; }

  int64_t string_id(std::string_view text) {
    auto [entry, added] = strings_.try_emplace(std::string(text), profile_.string_table_size());
    if (added) profile_.add_string_table(entry->first);
    return entry->second;
  }

 private:
  void add_sample(ProcessScope& scope, uint32_t stack_id, const analyze::AllocationStats& stats) {
    if (stats.allocations == 0 && stats.allocated_bytes == 0 && stats.live_blocks == 0) return;
    pb::Sample* sample = profile_.add_sample();
    auto stack = scope.process.stacks.find(stack_id);
    if (stack != scope.process.stacks.end()) {
      const uint64_t seq = analyze::stack_seq(scope.process, stack_id);
      for (uint64_t address : stack->second) sample->add_location_id(location_id(scope, address, seq));
    }
    for (uint64_t value : {stats.allocations, stats.allocated_bytes, stats.live_blocks, stats.live_bytes}) {
      sample->add_value(static_cast<int64_t>(value));
    }
    pb::Label* pid = sample->add_label();
    pid->set_key(string_id("pid"));
    pid->set_num(scope.process.pid);
  }

  uint64_t mapping_id(const analyze::TraceModule& module) { return mapping_id(module.path, module.start, module.end); }
  uint64_t mapping_id(const std::string& path, uint64_t start, uint64_t end) {
    auto [entry, added] = mappings_.try_emplace({path, start, end}, profile_.mapping_size() + 1);
    if (!added) return entry->second;
    pb::Mapping* mapping = profile_.add_mapping();
    mapping->set_id(entry->second);
    mapping->set_memory_start(start);
    mapping->set_memory_limit(end);
    mapping->set_filename(string_id(path));
    return entry->second;
  }

  // The module holding the call instruction before a return address when the stack was recorded
  // (`seq`); 0 when none does. Modules the symbolizer does not read (the vDSO): the last mapped.
  uint64_t mapping_of(const ProcessScope& scope, uint64_t return_address, uint64_t seq) {
    if (const analyze::ModuleMapping* module = scope.symbolizer.module_at(return_address, seq)) {
      return mapping_id(module->path, module->start, module->end);
    }
    uint64_t call_address = return_address - 1;
    for (size_t i = scope.process.modules.size(); i-- > 0;) {
      const analyze::TraceModule& module = scope.process.modules[i];
      if (call_address >= module.start && call_address < module.end) return scope.mapping_ids[i];
    }
    return 0;
  }

  // Every address of a recorded stack is a return address. The location holds the address of the
  // call, inside the call instruction, as profile.proto asks of non-leaf frames: a tool that
  // symbolizes it itself (frames without a function are left to it) then names the line of the
  // call, not the line after it (often the closing brace).
  uint64_t location_id(ProcessScope& scope, uint64_t address, uint64_t seq) {
    uint64_t mapping = address == 0 ? 0 : mapping_of(scope, address, seq);
    // The same module at the same place is the same code in every process (a forked child); an
    // address outside every module means nothing beyond its own process.
    auto key = std::make_tuple(mapping, mapping ? 0 : scope.index, address);
    auto [entry, added] = locations_.try_emplace(key, profile_.location_size() + 1);
    if (!added) return entry->second;
    pb::Location* location = profile_.add_location();
    location->set_id(entry->second);
    location->set_mapping_id(mapping);
    location->set_address(address == 0 ? 0 : address - 1);
    // Frames without a function are left without a line, so that pprof may symbolize them itself.
    for (const SourceFrame& frame : scope.symbolizer.resolve_at(address, seq)) {
      if (frame.function.empty()) continue;
      pb::Line* line = location->add_line();
      line->set_function_id(function_id(frame));
      line->set_line(frame.line);
      if (mapping) mark_symbolized(profile_.mutable_mapping(static_cast<int>(mapping - 1)), frame);
    }
    return entry->second;
  }

  static void mark_symbolized(pb::Mapping* mapping, const SourceFrame& frame) {
    mapping->set_has_functions(true);
    mapping->set_has_inline_frames(true);  // the symbolizer gives inlined frames whenever DWARF has them
    if (!frame.file.empty()) mapping->set_has_filenames(true);
    if (frame.line != 0) mapping->set_has_line_numbers(true);
  }

  uint64_t function_id(const SourceFrame& frame) {
    auto [entry, added] = functions_.try_emplace({frame.function, frame.file}, profile_.function_size() + 1);
    if (!added) return entry->second;
    pb::Function* function = profile_.add_function();
    function->set_id(entry->second);
    function->set_name(string_id(frame.function));
    function->set_system_name(function->name());  // the mangled name is not kept
    function->set_filename(string_id(frame.file));
    return entry->second;
  }

  pb::Profile profile_;
  std::unordered_map<std::string, int64_t> strings_;
  std::map<std::tuple<std::string, uint64_t, uint64_t>, uint64_t> mappings_;  // (path, start, limit)
  std::map<std::tuple<uint64_t, size_t, uint64_t>, uint64_t> locations_;      // (mapping, process, address)
  std::map<std::pair<std::string, std::string>, uint64_t> functions_;         // (name, file)
};

// From the first traced process's start to the last instant any stream reported.
int64_t trace_duration_ns(const analyze::HeapTrace& trace) {
  uint64_t first_ns = std::numeric_limits<uint64_t>::max();
  uint64_t last_ns = 0;
  for (const ProcessHeapProfile& process : trace.processes) {
    first_ns = std::min(first_ns, process.start_monotonic_ns);
    if (!process.timeline.empty()) last_ns = std::max(last_ns, process.timeline.back().monotonic_ns);
    if (process.end) last_ns = std::max(last_ns, process.end->monotonic_ns);
  }
  return last_ns > first_ns ? static_cast<int64_t>(last_ns - first_ns) : 0;
}

// The profile's header: what its values mean, when it ran, how it was sampled.
void describe(ProfileBuilder& builder, const analyze::HeapTrace& trace, int64_t start_unix_ns) {
  pb::Profile& profile = builder.profile();
  profile.set_time_nanos(start_unix_ns);
  profile.set_duration_nanos(trace_duration_ns(trace));
  profile.mutable_period_type()->set_type(builder.string_id("space"));
  profile.mutable_period_type()->set_unit(builder.string_id("bytes"));
  uint64_t sample_bytes = trace.processes.empty() ? 0 : trace.processes.front().sample_bytes;
  profile.set_period(sample_bytes > 0 ? static_cast<int64_t>(sample_bytes) : 1);
  profile.add_comment(builder.string_id("memdx heap trace: inuse_* is what was still live when the trace ended"));
  if (sample_bytes > 0) {
    profile.add_comment(builder.string_id("sampled: every value is an estimate scaled from the sampled allocations"));
  }
}

}  // namespace

std::string render_pprof(const analyze::HeapTrace& trace, int64_t start_unix_ns,
                         const std::vector<std::string>& debug_dirs) {
  ProfileBuilder builder;
  describe(builder, trace, start_unix_ns);
  for (size_t i = 0; i < trace.processes.size(); ++i) builder.add_process(trace.processes[i], i, debug_dirs);
  std::string bytes;
  if (builder.profile().ByteSizeLong() > static_cast<size_t>(std::numeric_limits<int32_t>::max()) ||
      !builder.profile().SerializeToString(&bytes)) {
    throw std::runtime_error("the profile is too large for the pprof format (over 2 GiB before compression)");
  }
  return model::gzip(bytes, model::GzipLevel::kDefault);
}

}  // namespace memdx::report
