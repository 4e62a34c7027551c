// The numbers of the HTML report (report/html.h), as the JSON blob its script draws from:
// the downsampled per-process timelines and sparklines, and pruned flame graph trees. Internal to
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

#include "report/folded.h"
#include "report/html.h"

namespace memdx::report::html {

// A flame graph of the folded stacks (report/folded.h), as a tree whose node values include their
// children's. Nodes under min_share of the total are folded into their parent (its value already
// counts them), then only the max_nodes largest are kept, so that a caller is always kept before
// its callees.
struct FlameNode {
  std::string name;
  uint64_t value = 0;
  std::vector<FlameNode> children;  // largest first
};
struct FlameTree {
  FlameNode root;           // "all", the total
  size_t kept_nodes = 0;    // root included
  size_t pruned_nodes = 0;  // folded into their parents
};
FlameTree flame_tree(const std::vector<FoldedStack>& stacks, double min_share, size_t max_nodes);

// The tree's root as the diagnosis chose it (verdict.target.pid); none for a verdict without one.
std::optional<pid_t> root_of(const model::Verdict& verdict);

// The whole blob: meta, one entry per process (its "timeline" or "spark" when it has one), and
// the flame graphs ("flame": null without a heap trace).
nlohmann::ordered_json report_data(const HtmlInput& input, const HtmlOptions& options);

// The blob as the text of a <script type="application/json"> element: compact, invalid UTF-8
// replaced, and every '<', '>' and '&' written as a \u escape, so that no string inside (a
// command line holding "</script>" or "<!--") can end the element or open a comment.
std::string script_safe_json(const nlohmann::ordered_json& blob);

}  // namespace memdx::report::html
