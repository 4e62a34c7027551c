#include "report/html_data.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <queue>

#include "model/format.h"
#include "report/folded.h"

namespace memdx::report::html {
namespace {

using nlohmann::ordered_json;

// One series of a process's samples, as the script names and draws it.
struct SampleField {
  const char* name;
  std::optional<double> (*value)(const model::ProcessSample&);
};

std::optional<double> bytes(uint64_t value) {
  return static_cast<double>(value);
}
std::optional<double> bytes(const std::optional<uint64_t>& value) {
  if (!value) return std::nullopt;
  return static_cast<double>(*value);
}

// heap_live_bytes is not here: it comes from the heap trace when there is one (live_heap_points).
constexpr SampleField kSampleFields[] = {
    {"rss_bytes", [](const model::ProcessSample& s) { return bytes(s.rss_bytes); }},
    {"pss_bytes", [](const model::ProcessSample& s) { return bytes(s.pss_bytes); }},
    {"rss_anon_bytes", [](const model::ProcessSample& s) { return bytes(s.rss_anon_bytes); }},
    {"rss_file_bytes", [](const model::ProcessSample& s) { return bytes(s.rss_file_bytes); }},
    {"rss_shmem_bytes", [](const model::ProcessSample& s) { return bytes(s.rss_shmem_bytes); }},
    {"swap_bytes", [](const model::ProcessSample& s) { return bytes(s.swap_bytes); }},
    {"vsz_bytes", [](const model::ProcessSample& s) { return bytes(s.vsz_bytes); }},
    {"fds", [](const model::ProcessSample& s) -> std::optional<double> { return s.fds; }},
    {"threads", [](const model::ProcessSample& s) -> std::optional<double> { return s.threads; }},
};

std::vector<TimedValue> field_points(const std::vector<model::ProcessSample>& samples, const SampleField& field) {
  std::vector<TimedValue> points;
  points.reserve(samples.size());
  for (const model::ProcessSample& s : samples) {
    if (auto v = field.value(s)) points.push_back({s.t_ms, *v});
  }
  return points;
}

const model::ProcessRecord* record_of(const analyze::RecordingData& data, pid_t pid) {
  auto it = std::find_if(data.processes.begin(), data.processes.end(), [&](auto& p) { return p.pid == pid; });
  return it == data.processes.end() ? nullptr : &*it;
}

const model::ProcessSummary* summary_of(const model::Verdict& verdict, pid_t pid) {
  auto it = std::find_if(verdict.processes.begin(), verdict.processes.end(), [&](auto& p) { return p.pid == pid; });
  return it == verdict.processes.end() ? nullptr : &*it;
}

// The traced live heap on the recording's clock. The tracer stamps CLOCK_MONOTONIC; without the
// recording's monotonic origin, the series is aligned so that it starts when the process was
// first seen (the tracer starts with the process, within one sampling interval).
std::vector<TimedValue> live_heap_points(const analyze::RecordingData& data, pid_t pid,
                                         const std::vector<model::ProcessSample>& samples) {
  std::vector<TimedValue> points;
  auto traced = data.traced.find(pid);
  if (traced == data.traced.end() || traced->second.heap_live_bytes.empty()) {
    for (const model::ProcessSample& s : samples) {
      if (s.heap_live_bytes) points.push_back({s.t_ms, static_cast<double>(*s.heap_live_bytes)});
    }
    return points;
  }
  const auto& series = traced->second.heap_live_bytes;
  double offset_ms = 0;
  if (data.monotonic_origin_ns) {
    offset_ms = -static_cast<double>(*data.monotonic_origin_ns) / 1e6;
  } else {
    const model::ProcessRecord* record = record_of(data, pid);
    offset_ms = static_cast<double>(record ? record->first_seen_ms : 0) - series.front().t_s * 1000;
  }
  points.reserve(series.size());
  for (const analyze::SeriesPoint& p : series) {
    points.push_back({static_cast<int64_t>(std::llround(p.t_s * 1000 + offset_ms)), p.value});
  }
  return points;
}

// Integral values (bytes, counts) print without a fraction: "1048576", not "1048576.0".
ordered_json number(double value) {
  if (value == std::floor(value) && std::fabs(value) < 9e15) return static_cast<int64_t>(value);
  return value;
}

ordered_json values_json(const std::vector<std::optional<double>>& values) {
  ordered_json out = ordered_json::array();
  for (const auto& v : values) out.push_back(v ? number(*v) : ordered_json(nullptr));
  return out;
}

// {"max": [...], "min": [...]}; "min" is left out where it equals "max" (one sample per bucket,
// or a constant series): the script then reads max for both.
ordered_json min_max_json(const MinMax& series) {
  ordered_json out = {{"max", values_json(series.max)}};
  if (series.min != series.max) out["min"] = values_json(series.min);
  return out;
}

std::pair<int64_t, int64_t> time_range(const std::vector<std::vector<TimedValue>>& all) {
  int64_t first = INT64_MAX, last = INT64_MIN;
  for (const auto& points : all) {
    for (const TimedValue& p : points) {
      first = std::min(first, p.t_ms);
      last = std::max(last, p.t_ms);
    }
  }
  return {first, last};
}

// The full timeline of one process: every series on one grid, so that the script reads bucket
// i of each series at the same instant.
ordered_json timeline_json(const analyze::RecordingData& data, pid_t pid, const HtmlOptions& options) {
  std::vector<std::vector<TimedValue>> all;
  std::vector<const char*> names;
  std::vector<model::ProcessSample> loaded;
  const std::vector<model::ProcessSample>& samples = data.samples_of(pid, loaded);
  if (!samples.empty()) {
    for (const SampleField& field : kSampleFields) {
      all.push_back(field_points(samples, field));
      names.push_back(field.name);
    }
  }
  all.push_back(live_heap_points(data, pid, samples));
  names.push_back("heap_live_bytes");
  size_t most_points = 0;
  for (const auto& points : all) most_points = std::max(most_points, points.size());
  if (most_points == 0) return nullptr;
  auto [first, last] = time_range(all);
  BucketGrid grid = bucket_grid(first, last, most_points, options.buckets_per_series);
  ordered_json series = ordered_json::object();
  for (size_t i = 0; i < all.size(); ++i) {
    if (!all[i].empty()) series[names[i]] = min_max_json(downsample(all[i], grid));
  }
  return {{"t0_ms", grid.t0_ms}, {"step_ms", grid.step_ms}, {"series", series}};
}

// A sparkline: RSS maxima only, few buckets, for the processes without a full timeline.
ordered_json spark_json(const std::vector<model::ProcessSample>& samples, const HtmlOptions& options) {
  std::vector<TimedValue> rss = field_points(samples, kSampleFields[0]);
  if (rss.empty()) return nullptr;
  BucketGrid grid = bucket_grid(rss.front().t_ms, rss.back().t_ms, rss.size(), options.sparkline_buckets);
  return {{"t0_ms", grid.t0_ms}, {"step_ms", grid.step_ms}, {"rss_bytes", values_json(downsample(rss, grid).max)}};
}

ordered_json optional_json(const auto& value) {
  if (!value) return nullptr;
  return *value;
}

// The process's identity and exit, preferring the verdict's summary (what the text report says).
ordered_json process_json(const model::Verdict& verdict, const model::ProcessRecord& record) {
  ordered_json out = {{"pid", record.pid},
                      {"ppid", record.ppid},
                      {"command", model::joined(record.command)},
                      {"first_seen_ms", record.first_seen_ms},
                      {"exited_ms", optional_json(record.exited_ms)},
                      {"exit_code", optional_json(record.exit_code)},
                      {"exit_signal", optional_json(record.exit_signal)}};
  if (const model::ProcessSummary* summary = summary_of(verdict, record.pid)) {
    if (!summary->command.empty()) out["command"] = summary->command;
    if (summary->exited_s) out["exited_ms"] = std::llround(*summary->exited_s * 1000);
    if (summary->exit_code) out["exit_code"] = *summary->exit_code;
    if (summary->exit_signal) out["exit_signal"] = *summary->exit_signal;
    out["peak_rss_bytes"] = summary->peak_rss_bytes;
    out["peak_pss_bytes"] = optional_json(summary->peak_pss_bytes);
  }
  return out;
}

ordered_json meta_json(const model::Verdict& verdict, const analyze::RecordingData& data) {
  std::optional<pid_t> root = root_of(verdict);
  return {{"command", model::joined(data.meta.command)},
          {"started_at_utc", data.meta.started_at_utc},
          {"host", data.meta.host},
          {"kernel", data.meta.kernel},
          {"interval_ms", data.meta.interval_ms},
          // The diagnosis' duration: the last sample, system sample or exit of the recording.
          {"duration_ms", std::llround(verdict.target.duration_s * 1000)},
          {"root_pid", optional_json(root)},
          {"cgroup_max_bytes", optional_json(data.meta.cgroup_max_bytes)},
          {"mem_total_bytes", optional_json(data.meta.mem_total_bytes)}};
}

ordered_json flame_node_json(const FlameNode& node) {
  ordered_json out = {{"n", node.name}, {"v", node.value}};
  if (node.children.empty()) return out;
  ordered_json children = ordered_json::array();
  for (const FlameNode& child : node.children) children.push_back(flame_node_json(child));
  out["c"] = std::move(children);
  return out;
}

ordered_json flame_json(const analyze::HeapTrace& heap, FoldedMetric metric, const HtmlOptions& options) {
  FlameTree tree =
      flame_tree(render_folded(heap, metric, options.debug_dirs), options.flame_min_share, options.flame_max_nodes);
  return {{"total", tree.root.value},
          {"nodes", tree.kept_nodes},
          {"pruned", tree.pruned_nodes},
          {"root", flame_node_json(tree.root)}};
}

// The tree while it is built: children by name, values summed along each stack.
struct BuildNode {
  std::string name;
  uint64_t value = 0;
  std::map<std::string, size_t, std::less<>> children;
};

// "outer;...;leaf VALUE": the value follows the last space (frames may hold spaces, e.g.
// "pid 42 (app)" or "operator new(unsigned long)").
bool add_folded_line(std::vector<BuildNode>& nodes, std::string_view line) {
  size_t space = line.rfind(' ');
  if (space == std::string_view::npos || space == 0) return false;
  uint64_t value = 0;
  std::string_view digits = line.substr(space + 1);
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc() || end != digits.data() + digits.size()) return false;
  std::string_view stack = line.substr(0, space);
  size_t node = 0;
  nodes[0].value += value;
  for (size_t start = 0; start <= stack.size();) {
    size_t semicolon = std::min(stack.find(';', start), stack.size());
    std::string_view frame = stack.substr(start, semicolon - start);
    auto it = nodes[node].children.find(frame);
    if (it == nodes[node].children.end()) {
      it = nodes[node].children.emplace(std::string(frame), nodes.size()).first;
      nodes.push_back({std::string(frame), 0, {}});
    }
    node = it->second;
    nodes[node].value += value;
    start = semicolon + 1;
  }
  return true;
}

// Which nodes to keep: largest first from the root, so a node is only reached through its kept
// parent, until max_nodes are kept; nodes under min_value are never reached.
std::vector<bool> kept_nodes(const std::vector<BuildNode>& nodes, uint64_t min_value, size_t max_nodes) {
  std::vector<bool> kept(nodes.size(), false);
  auto smaller = [&](size_t a, size_t b) { return nodes[a].value < nodes[b].value; };
  std::priority_queue<size_t, std::vector<size_t>, decltype(smaller)> frontier(smaller);
  frontier.push(0);
  for (size_t count = 0; !frontier.empty() && count < std::max<size_t>(max_nodes, 1); ++count) {
    size_t node = frontier.top();
    frontier.pop();
    kept[node] = true;
    for (const auto& [name, child] : nodes[node].children) {
      if (nodes[child].value >= min_value && nodes[child].value > 0) frontier.push(child);
    }
  }
  return kept;
}

FlameNode kept_tree(const std::vector<BuildNode>& nodes, const std::vector<bool>& kept, size_t node) {
  FlameNode out{nodes[node].name, nodes[node].value, {}};
  for (const auto& [name, child] : nodes[node].children) {
    if (kept[child]) out.children.push_back(kept_tree(nodes, kept, child));
  }
  std::stable_sort(out.children.begin(), out.children.end(),
                   [](const FlameNode& a, const FlameNode& b) { return a.value > b.value; });
  return out;
}

}  // namespace

BucketGrid bucket_grid(int64_t first_ms, int64_t last_ms, size_t points, size_t max_buckets) {
  BucketGrid grid;
  grid.t0_ms = first_ms;
  int64_t span_ms = std::max<int64_t>(last_ms - first_ms, 0);
  auto wanted = static_cast<int64_t>(std::clamp<size_t>(std::min(points, max_buckets), 1, SIZE_MAX / 2));
  if (wanted == 1 || span_ms == 0) {
    grid.step_ms = span_ms + 1;
    grid.count = 1;
    return grid;
  }
  // Bucket centres at the first and the last instant: regular samples land one per bucket.
  grid.step_ms = std::max<int64_t>((span_ms + wanted - 2) / (wanted - 1), 1);
  grid.count = static_cast<size_t>((span_ms + grid.step_ms / 2) / grid.step_ms) + 1;
  return grid;
}

size_t bucket_of(const BucketGrid& grid, int64_t t_ms) {
  int64_t offset = std::max<int64_t>(t_ms - grid.t0_ms + grid.step_ms / 2, 0) / grid.step_ms;
  return std::min(static_cast<size_t>(offset), grid.count - 1);
}

MinMax downsample(const std::vector<TimedValue>& points, const BucketGrid& grid) {
  MinMax out;
  out.min.assign(grid.count, std::nullopt);
  out.max.assign(grid.count, std::nullopt);
  if (grid.count == 0) return out;
  for (const TimedValue& p : points) {
    size_t i = bucket_of(grid, p.t_ms);
    out.min[i] = out.min[i] ? std::min(*out.min[i], p.value) : p.value;
    out.max[i] = out.max[i] ? std::max(*out.max[i], p.value) : p.value;
  }
  return out;
}

FlameTree flame_tree(std::string_view folded, double min_share, size_t max_nodes) {
  std::vector<BuildNode> nodes{{"all", 0, {}}};
  FlameTree tree;
  for (size_t start = 0; start < folded.size();) {
    size_t newline = std::min(folded.find('\n', start), folded.size());
    std::string_view line = folded.substr(start, newline - start);
    if (!line.empty() && !add_folded_line(nodes, line)) ++tree.unparsed_lines;
    start = newline + 1;
  }
  auto min_value = static_cast<uint64_t>(std::ceil(static_cast<double>(nodes[0].value) * min_share));
  std::vector<bool> kept = kept_nodes(nodes, min_value, max_nodes);
  tree.kept_nodes = static_cast<size_t>(std::count(kept.begin(), kept.end(), true));
  tree.pruned_nodes = nodes.size() - tree.kept_nodes;
  tree.root = kept_tree(nodes, kept, 0);
  return tree;
}

std::optional<pid_t> root_of(const model::Verdict& verdict) {
  if (verdict.target.pid == 0) return std::nullopt;
  return verdict.target.pid;
}

std::set<pid_t> timeline_processes(const model::Verdict& verdict, const HtmlOptions& options) {
  std::vector<std::pair<uint64_t, pid_t>> by_size;  // peak, pid
  for (const model::ProcessSummary& p : verdict.processes) {
    if (p.peak_rss_bytes == 0) continue;  // never sampled: nothing to draw
    by_size.emplace_back(p.peak_pss_bytes.value_or(0) ? *p.peak_pss_bytes : p.peak_rss_bytes, p.pid);
  }
  std::sort(by_size.begin(), by_size.end(),
            [](auto& a, auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  std::set<pid_t> chosen;
  if (auto root = root_of(verdict); root && options.processes_with_timelines > 0) chosen.insert(*root);
  for (const auto& [peak, pid] : by_size) {
    if (chosen.size() >= options.processes_with_timelines) break;
    chosen.insert(pid);
  }
  return chosen;
}

nlohmann::ordered_json report_data(const model::Verdict& verdict, const analyze::RecordingData& data,
                                   const analyze::HeapTrace& heap, const std::set<pid_t>& with_timelines,
                                   const HtmlOptions& options) {
  ordered_json processes = ordered_json::array();
  std::vector<model::ProcessSample> loaded;  // one process's samples at a time
  for (const model::ProcessRecord& record : data.processes) {
    ordered_json process = process_json(verdict, record);
    if (with_timelines.count(record.pid)) {
      process["timeline"] = timeline_json(data, record.pid, options);
    } else if (const auto& samples = data.samples_of(record.pid, loaded); !samples.empty()) {
      process["spark"] = spark_json(samples, options);
    }
    processes.push_back(std::move(process));
  }
  ordered_json flame = nullptr;
  if (!heap.processes.empty()) {
    flame = {{"peak", flame_json(heap, FoldedMetric::kPeak, options)},
             {"growth", flame_json(heap, FoldedMetric::kGrowth, options)}};
  }
  return {{"schema", "memdx.html/1"},
          {"meta", meta_json(verdict, data)},
          {"processes", std::move(processes)},
          {"flame", std::move(flame)}};
}

std::string script_safe_json(const nlohmann::ordered_json& blob) {
  // Compact: model::json_text's indentation would put every one of the thousands of chart values
  // on a line of its own. The same error handler replaces invalid UTF-8 with U+FFFD.
  std::string text = blob.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size() + text.size() / 16);
  for (char c : text) {
    // Outside strings JSON has none of these characters, so escaping them everywhere is safe.
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace memdx::report::html
