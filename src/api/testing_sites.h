// The code that holds a check's growth: the recorder's grown stacks (testing/heap_recorder.h),
// symbolized in this process and grouped by call site. Internal to libmemdx.
#pragma once

#include <cstddef>
#include <vector>

#include "memdx/testing_checks.h"
#include "testing/heap_recorder.h"

namespace memdx::api {

// The recorder's stacks that grew since its mark, grouped by their first frame of the program's
// own code (heap_sites.h's is_runtime_frame; frames of the recorder and of libmemdx are skipped
// too), most growth first, at most `max_sites`. Reads /proc/self/exe and the loaded modules'
// debug information (libdw): tens of milliseconds and some MiB, so only for a failing check.
std::vector<testing::GrowthSite> name_growth_sites(const testing::HeapRecorder& recorder,
                                                   const std::vector<testing::HeapStackGrowth>& grown,
                                                   size_t max_sites);

}  // namespace memdx::api
