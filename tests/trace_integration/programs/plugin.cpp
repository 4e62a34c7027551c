// memdx_tracee_plugin.so, dlopen'ed by memdx_tracee_stress: its allocating function must
// be reported with this file's name even after the library is unloaded.
#include <cstdlib>

#include "stress_plan.h"

namespace plan = memdx::tracee::stress;

// Fills out[0 .. kPluginBlocks) with blocks the caller keeps.
extern "C" __attribute__((visibility("default"), noinline)) void plugin_blocks(void** out) {
  for (int i = 0; i < plan::kPluginBlocks; ++i) out[i] = std::malloc(plan::kPluginBytes);  // site: plugin_blocks
}
