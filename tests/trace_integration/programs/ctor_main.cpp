// memdx_tracee_ctor: main allocates after memdx_tracee_ctorlib.so's constructor did.
#include <cstdlib>

#include "stress_plan.h"
#include "tracee_common.h"

namespace plan = memdx::tracee::stress;

extern "C" void* ctor_lib_kept[plan::kCtorLibBlocks];

namespace {
void* main_kept[plan::kCtorMainBlocks];
}  // namespace

extern "C" __attribute__((noinline)) void ctor_main_blocks() {
  for (auto& block : main_kept) block = std::malloc(plan::kCtorMainBytes);  // site: ctor_main_blocks
}

int main() {
  ctor_main_blocks();
  memdx::tracee::escape(main_kept);
  return ctor_lib_kept[0] != nullptr ? 0 : 1;
}
