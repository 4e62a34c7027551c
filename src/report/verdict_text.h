// The terminal rendering of a verdict, printed by `memdx run` / `memdx watch` at exit and by
// `memdx report`: the verdict on the first line (leak or no leak, which kind, which process, what
// rate), then the evidence with its numbers, then what to look at next, then one row per process.
#pragma once

#include <string>

#include "model/verdict.h"

namespace memdx::report {

std::string render_verdict_text(const model::Verdict& verdict);

// "42 s", "25 min", "3.5 h", "2.1 days": a projected duration, rounded for reading.
std::string format_duration(double seconds);

}  // namespace memdx::report
