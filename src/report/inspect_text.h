// The terminal rendering of `memdx inspect`: numbers first, explained in plain words.
#pragma once

#include <string>

#include "model/snapshot.h"

namespace memdx::report {

// How much of a snapshot the inspect text shows. Not "TextOptions": verdict_text.h has that name in
// this namespace, and two different structs under one name break the one-definition rule.
struct InspectTextOptions {
  size_t top_regions = 8;
  size_t top_modules = 5;
  size_t width = 100;  // notes are wrapped to this many columns
};

std::string render_inspect_text(const model::InspectReport& report, const InspectTextOptions& options = {});

// Wraps `text` to `width` columns; continuation lines start with `indent`.
std::string wrap(const std::string& text, size_t width, const std::string& indent);

}  // namespace memdx::report
