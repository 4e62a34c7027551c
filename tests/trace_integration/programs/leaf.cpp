// memdx_tracee_leaf: started by memdx_tracee_spawn; keeps a known number of blocks.
#include <cstdlib>

#include "stress_plan.h"
#include "tracee_common.h"

namespace plan = memdx::tracee::stress;

namespace {
void* kept[plan::kLeafBlocks];
}  // namespace

extern "C" __attribute__((noinline)) void leaf_blocks() {
  for (auto& block : kept) block = std::malloc(plan::kLeafBytes);  // site: leaf_blocks
}

int main() {
  memdx::tracee::say_pid("leaf");
  leaf_blocks();
  memdx::tracee::escape(kept);
  return 0;
}
