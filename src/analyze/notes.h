// Plain-language notes on a snapshot: what the numbers mean and what is harmless.
#pragma once

#include <cstdint>
#include <vector>

#include "model/snapshot.h"

namespace memdx::analyze {

// Thresholds of the notes, in one place so tests and docs can refer to them.
struct NoteThresholds {
  double reservation_vsz_to_rss = 10.0;                    // VSZ >= 10x RSS ...
  uint64_t reservation_min_vsz_bytes = uint64_t{1} << 30;  // ... and VSZ >= 1 GiB
  double shared_rss_to_pss = 1.5;                          // RSS >= 1.5x PSS ...
  uint64_t shared_min_bytes = 16ull << 20;                 // ... and RSS - PSS >= 16 MiB
  double near_limit_fraction = 0.10;                       // within 10% of memory.max
  double low_available_fraction = 0.10;                    // MemAvailable under 10% of MemTotal
};

std::vector<model::Note> notes_for(const model::InspectReport& report, const NoteThresholds& thresholds = {});

}  // namespace memdx::analyze
