// The JSON form of the verdict (memdx.verdict/1, see DESIGN.md), whose value types are
// memdx/verdict.h's, and helpers on them that stay inside memdx.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json_fwd.hpp>

#include "memdx/verdict.h"
#include "model/format.h"

namespace memdx::model {

// The value types are the public ones (memdx/verdict.h): one definition for the library and memdx.
using memdx::Finding;
using memdx::FindingKind;
using memdx::has_leak;
using memdx::HeapSitePath;
using memdx::HeapSiteSummary;
using memdx::HeapSummary;
using memdx::Hypothesis;
using memdx::HypothesisKind;
using memdx::HypothesisStatus;
using memdx::LimitKind;
using memdx::ProcessSummary;
using memdx::Series;
using memdx::Severity;
using memdx::Site;
using memdx::StreamEnd;
using memdx::SuppressedStacks;
using memdx::Target;
using memdx::to_string;
using memdx::Unit;
using memdx::UnnamedFrame;
using memdx::Verdict;

// memdx.verdict/1, "schema" first.
nlohmann::ordered_json to_json(const Verdict& verdict);

// The finding of `kind` about `pid`, or null.
const Finding* find_finding(const std::vector<Finding>& findings, pid_t pid, FindingKind kind);
// The finding a hypothesis of `kind` stands on, or null (child_growth, swap_growth and
// limit_approach stand on none of their own).
const Finding* find_finding(const std::vector<Finding>& findings, pid_t pid, HypothesisKind kind);
std::optional<FindingKind> finding_kind_of(HypothesisKind kind);

// The unit a series counts in: bytes, fds or threads.
Unit unit_of(Series series);

}  // namespace memdx::model

namespace memdx::model {

// The verdict's enums, which fmt writes by their names (to_string), as the text shows them.
template <typename E>
concept VerdictEnum = std::is_same_v<E, FindingKind> || std::is_same_v<E, Severity> ||
    std::is_same_v<E, HypothesisKind> || std::is_same_v<E, HypothesisStatus> || std::is_same_v<E, Series> ||
    std::is_same_v<E, Unit> || std::is_same_v<E, LimitKind> || std::is_same_v<E, StreamEnd>;

}  // namespace memdx::model

template <memdx::model::VerdictEnum E>
struct fmt::formatter<E> : fmt::formatter<std::string_view> {
  auto format(E value, fmt::format_context& context) const {
    return fmt::formatter<std::string_view>::format(memdx::to_string(value), context);
  }
};
