// The JSON form of the verdict (memdx.verdict/1, see DESIGN.md), whose value types are
// memdx/verdict.h's, and helpers on them that stay inside memdx.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "memdx/verdict.h"

namespace memdx::model {

// The value types are the public ones (memdx/verdict.h): one definition for the library and memdx.
using memdx::Finding;
using memdx::has_leak;
using memdx::HeapSitePath;
using memdx::HeapSiteSummary;
using memdx::HeapSummary;
using memdx::Hypothesis;
using memdx::ProcessSummary;
using memdx::Site;
using memdx::SuppressedStacks;
using memdx::Target;
using memdx::UnnamedFrame;
using memdx::Verdict;

// memdx.verdict/1, "schema" first.
nlohmann::ordered_json to_json(const Verdict& verdict);

// The finding of `kind` about `pid`, or null: the finding a hypothesis of that name stands on.
const Finding* find_finding(const std::vector<Finding>& findings, pid_t pid, std::string_view kind);

// Where a site's code is, as a reader scans it: "telemetry.cpp:42" (the file's base name), or ""
// without debug information.
std::string source_place(const std::string& file, int line);

}  // namespace memdx::model
