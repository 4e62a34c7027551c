// Numbers in the words of findings and hypotheses: sizes in binary units, counts plain, rates per
// second, p-values the way a reader compares them.
#pragma once

#include <cstdint>
#include <string>

#include "memdx/verdict.h"

namespace memdx::analyze {

// A non-negative level rounded to whole bytes (negative clamps to 0).
uint64_t to_bytes(double value);

// "27.0 MiB" for bytes, "42" for a count.
std::string level_text(double value, Unit unit);

// "2.40 MiB/s" for bytes, "20 fds/s" for a count.
std::string rate_text(double value_per_s, Unit unit);

// "p<0.001", "p=0.23".
std::string p_text(double p);

// "42 s", "25 min", "3.5 h", "2.1 days": a projected duration, rounded for reading.
std::string duration_text(double seconds);

// A measured span: "9.8 s" (tenths, as the samples resolve it) up to 90 s, then as duration_text
// ("24.0 h" rather than "86400.0 s").
std::string span_text(double seconds);

}  // namespace memdx::analyze
