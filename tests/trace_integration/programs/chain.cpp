// memdx_tracee_chain: the first image of a fork-then-exec chain. It keeps blocks, forks; the
// child keeps blocks of its own and execs memdx_tracee_chain_exec, which forks again. Each
// image prints "<label> <pid> <ppid>" so the test can match the trace's processes.
#include <sys/wait.h>

#include <cstdlib>

#include "stress_plan.h"
#include "tracee_common.h"

namespace plan = memdx::tracee::stress;

namespace {
void* parent_kept[plan::kChainParentBlocks];
void* child_kept[plan::kChainBeforeExecBlocks];
}  // namespace

extern "C" __attribute__((noinline)) void chain_parent_blocks() {
  for (auto& block : parent_kept) block = std::malloc(plan::kChainBytes);  // site: chain_parent_blocks
}

extern "C" __attribute__((noinline)) void chain_before_exec_blocks() {
  for (auto& block : child_kept) block = std::malloc(plan::kChainBytes);  // site: chain_before_exec_blocks
}

int main() {
  std::string next = memdx::tracee::sibling_path("memdx_tracee_chain_exec");
  memdx::tracee::say_pid("chain-parent");
  chain_parent_blocks();
  memdx::tracee::escape(parent_kept);
  pid_t child = ::fork();
  if (child < 0) return 2;
  if (child == 0) {
    memdx::tracee::say_pid("chain-child");
    chain_before_exec_blocks();
    memdx::tracee::escape(child_kept);
    ::execl(next.c_str(), next.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
}
