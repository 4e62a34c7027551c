// The numbers of the HTML report (report/html.h), as the JSON blob its script draws from:
// downsampled per-process timelines, sparklines and pruned flame graph trees. Internal to
// memdx_report; declared here so that the tests can check each step on its own.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/html.h"

namespace memdx::report::html {

// Equal time buckets centred on t0_ms + i * step_ms, i < count: bucket i holds the instants
// within half a step of its centre.
struct BucketGrid {
  int64_t t0_ms = 0;
  int64_t step_ms = 1;
  size_t count = 0;
};

// At most max_buckets buckets over [first_ms, last_ms], centred on both ends, and no more than
// there are points: a short recording keeps one bucket per sample (a sample up to half an
// interval late still lands in its own bucket).
BucketGrid bucket_grid(int64_t first_ms, int64_t last_ms, size_t points, size_t max_buckets);

// The bucket of an instant; instants outside the grid count in its first or last bucket.
size_t bucket_of(const BucketGrid& grid, int64_t t_ms);

struct TimedValue {
  int64_t t_ms = 0;
  double value = 0;
};

// Each bucket's minimum and maximum; nullopt where no point fell in the bucket.
struct MinMax {
  std::vector<std::optional<double>> min;
  std::vector<std::optional<double>> max;
};
MinMax downsample(const std::vector<TimedValue>& points, const BucketGrid& grid);

// A flame graph of folded stacks (report/folded.h), as a tree whose node values include their
// children's. Nodes under min_share of the total are folded into their parent (its value already
// counts them), then only the max_nodes largest are kept, so that a caller is always kept before
// its callees.
struct FlameNode {
  std::string name;
  uint64_t value = 0;
  std::vector<FlameNode> children;  // largest first
};
struct FlameTree {
  FlameNode root;             // "all", the total
  size_t kept_nodes = 0;      // root included
  size_t pruned_nodes = 0;    // folded into their parents
  size_t unparsed_lines = 0;  // lines without a "stack VALUE" shape
};
FlameTree flame_tree(std::string_view folded, double min_share, size_t max_nodes);

// The processes drawn with full timelines: the root, then the largest by peak PSS (peak RSS when
// PSS was never read), up to options.processes_with_timelines in all.
std::set<pid_t> timeline_processes(const model::Verdict& verdict, const HtmlOptions& options);

// The tree's root as the diagnosis chose it (verdict.target.pid); none for a verdict without one.
std::optional<pid_t> root_of(const model::Verdict& verdict);

// The whole blob: meta, one entry per process (a "timeline" for those in `with_timelines`, a
// "spark" for the others), and the flame graphs ("flame": null without a heap trace).
nlohmann::ordered_json report_data(const model::Verdict& verdict, const analyze::RecordingData& data,
                                   const analyze::HeapTrace& heap, const std::set<pid_t>& with_timelines,
                                   const HtmlOptions& options);

// The blob as the text of a <script type="application/json"> element: compact, invalid UTF-8
// replaced, and every '<', '>' and '&' written as a \u escape, so that no string inside (a
// command line holding "</script>" or "<!--") can end the element or open a comment.
std::string script_safe_json(const nlohmann::ordered_json& blob);

}  // namespace memdx::report::html
