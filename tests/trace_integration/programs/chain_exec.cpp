// memdx_tracee_chain_exec: the image memdx_tracee_chain's child execs. It keeps blocks and
// forks a child that keeps blocks of its own.
#include <sys/wait.h>

#include <cstdlib>

#include "stress_plan.h"
#include "tracee_common.h"

namespace plan = memdx::tracee::stress;

namespace {
void* image_kept[plan::kChainExecImageBlocks];
void* grandchild_kept[plan::kChainGrandchildBlocks];
}  // namespace

extern "C" __attribute__((noinline)) void chain_exec_image_blocks() {
  for (auto& block : image_kept) block = std::malloc(plan::kChainBytes);  // site: chain_exec_image_blocks
}

extern "C" __attribute__((noinline)) void chain_grandchild_blocks() {
  for (auto& block : grandchild_kept) block = std::malloc(plan::kChainBytes);  // site: chain_grandchild_blocks
}

int main() {
  memdx::tracee::say_pid("chain-exec");
  chain_exec_image_blocks();
  memdx::tracee::escape(image_kept);
  pid_t child = ::fork();
  if (child < 0) return 2;
  if (child == 0) {
    memdx::tracee::say_pid("chain-grandchild");
    chain_grandchild_blocks();
    memdx::tracee::escape(grandchild_kept);
    std::exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
}
