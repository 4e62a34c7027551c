// memdx_tracee_dl_deep.so, loaded with RTLD_DEEPBIND: it prefers its own definitions to the
// program's (dl_preferred), and its malloc is libc's, reached without the global scope.
#include <cstdlib>

#include "dl_plan.h"
#include "tracee_common.h"

namespace plan = memdx::tracee::dl;

namespace {
void* kept;
}

extern "C" {

// The program defines one too: which one the library calls tells how it was bound.
__attribute__((noinline, visibility("default"))) const char* dl_preferred() {
  return "library";
}

__attribute__((noinline, visibility("default"))) const char* dl_deep_binding() {
  return dl_preferred();
}

__attribute__((noinline, visibility("default"))) void dl_deep_leak() {
  kept = std::malloc(plan::kDeepBytes);  // site: dl_deep_leak
  memdx::tracee::escape(kept);
}

}  // extern "C"
