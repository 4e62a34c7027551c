// memdx_tracee_ctorlib.so, linked by memdx_tracee_ctor: a library whose constructor
// allocates while the program starts, as libstdc++'s exception pool and many C++ libraries'
// static initialisers do.
#include <cstdlib>

#include "stress_plan.h"

namespace plan = memdx::tracee::stress;

extern "C" {

__attribute__((visibility("default"))) void* ctor_lib_kept[plan::kCtorLibBlocks];

__attribute__((noinline, visibility("default"))) void ctor_lib_blocks() {
  for (auto& block : ctor_lib_kept) block = std::malloc(plan::kCtorLibBytes);  // site: ctor_lib_blocks
}

}  // extern "C"

__attribute__((constructor)) static void ctor_lib_init() {
  ctor_lib_blocks();
}
