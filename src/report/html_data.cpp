#include "report/html_data.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <queue>

#include "model/format.h"
#include "report/folded.h"

namespace memdx::report::html {
namespace {

using nlohmann::ordered_json;

const model::ProcessSummary* summary_of(const model::Verdict& verdict, pid_t pid) {
  auto it = std::find_if(verdict.processes.begin(), verdict.processes.end(), [&](auto& p) { return p.pid == pid; });
  return it == verdict.processes.end() ? nullptr : &*it;
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
ordered_json min_max_json(const analyze::MinMax& series) {
  ordered_json out = {{"max", values_json(series.max)}};
  if (series.min != series.max) out["min"] = values_json(series.min);
  return out;
}

// The full timeline of one process: every series on one grid, so that the script reads bucket
// i of each series at the same instant.
ordered_json timeline_json(const analyze::Timeline& timeline) {
  ordered_json series = ordered_json::object();
  for (const analyze::TimelineSeries& s : timeline.series) series[s.name] = min_max_json(s.values);
  return {{"t0_ms", timeline.grid.t0_ms}, {"step_ms", timeline.grid.step_ms}, {"series", series}};
}

ordered_json spark_json(const analyze::Sparkline& spark) {
  return {
      {"t0_ms", spark.grid.t0_ms}, {"step_ms", spark.grid.step_ms}, {"rss_bytes", values_json(spark.rss_max_bytes)}};
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

ordered_json meta_json(const model::Verdict& verdict, const model::RecordingMeta& meta) {
  std::optional<pid_t> root = root_of(verdict);
  return {{"command", model::joined(meta.command)},
          {"started_at_utc", meta.started_at_utc},
          {"host", meta.host},
          {"kernel", meta.kernel},
          {"interval_ms", meta.interval_ms},
          // The diagnosis' duration: the last sample, system sample or exit of the recording.
          {"duration_ms", std::llround(verdict.target.duration_s * 1000)},
          {"root_pid", optional_json(root)},
          {"cgroup_max_bytes", optional_json(meta.cgroup_max_bytes)},
          {"mem_total_bytes", optional_json(meta.mem_total_bytes)}};
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
      flame_tree(folded_stacks(heap, metric, options.debug_dirs), options.flame_min_share, options.flame_max_nodes);
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

// Adds one stack's value to every node along it, making the nodes it reaches first.
void add_stack(std::vector<BuildNode>& nodes, const FoldedStack& stack) {
  size_t node = 0;
  nodes[0].value += stack.value;
  for (const std::string& frame : stack.frames) {
    auto it = nodes[node].children.find(frame);
    if (it == nodes[node].children.end()) {
      it = nodes[node].children.emplace(frame, nodes.size()).first;
      nodes.push_back({frame, 0, {}});
    }
    node = it->second;
    nodes[node].value += stack.value;
  }
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

FlameTree flame_tree(const std::vector<FoldedStack>& stacks, double min_share, size_t max_nodes) {
  std::vector<BuildNode> nodes{{"all", 0, {}}};
  FlameTree tree;
  for (const FoldedStack& stack : stacks) add_stack(nodes, stack);
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

nlohmann::ordered_json report_data(const HtmlInput& input, const HtmlOptions& options) {
  ordered_json processes = ordered_json::array();
  for (const model::ProcessRecord& record : input.processes) {
    ordered_json process = process_json(input.verdict, record);
    if (input.timelines.full.count(record.pid)) {
      auto timeline = input.timelines.timelines.find(record.pid);
      process["timeline"] = timeline == input.timelines.timelines.end() ? nullptr : timeline_json(timeline->second);
    } else if (auto spark = input.timelines.sparklines.find(record.pid); spark != input.timelines.sparklines.end()) {
      process["spark"] = spark_json(spark->second);
    }
    processes.push_back(std::move(process));
  }
  ordered_json flame = nullptr;
  if (!input.heap.processes.empty()) {
    flame = {{"peak", flame_json(input.heap, FoldedMetric::kPeak, options)},
             {"growth", flame_json(input.heap, FoldedMetric::kGrowth, options)}};
  }
  return {{"schema", "memdx.html/1"},
          {"meta", meta_json(input.verdict, input.meta)},
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
