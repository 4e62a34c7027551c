// memdx_tracee_dl_keep.so: loaded and never unloaded; its block is never freed.
#include <cstdlib>

#include "dl_plan.h"
#include "tracee_common.h"

namespace plan = memdx::tracee::dl;

namespace {
void* kept;
}

extern "C" __attribute__((noinline, visibility("default"))) void dl_keep_leak() {
  kept = std::malloc(plan::kKeepBytes);  // site: dl_keep_leak
  memdx::tracee::escape(kept);
}
