// memdx_tracee_dl_same_a.so and memdx_tracee_dl_same_b.so, from this one source: the same code
// at the same offsets, each leaking from a function of its own (SAME_LEAK, SAME_BYTES), so that
// loaded at the same address one after the other, their stacks are the same addresses.
#include <cstdlib>

#include "dl_plan.h"
#include "tracee_common.h"

namespace {
void* kept;
}

extern "C" __attribute__((noinline, visibility("default"))) void SAME_LEAK() {
  kept = std::malloc(SAME_BYTES);  // site: SAME_LEAK
  memdx::tracee::escape(kept);
}

// The entry point, by one name in both libraries.
extern "C" __attribute__((noinline, visibility("default"))) void dl_same_leak() {
  SAME_LEAK();
}
