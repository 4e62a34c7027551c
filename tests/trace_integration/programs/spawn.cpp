// memdx_tracee_spawn MODE: starts memdx_tracee_leaf in one of the ways a tracer can lose a
// child, waits for it and exits with its exit code.
//   vfork       vfork + execv
//   spawn       posix_spawn
//   clean-env   fork + execve with an environment of PATH alone (no LD_PRELOAD)
#include <spawn.h>
#include <sys/wait.h>

#include "tracee_common.h"

extern char** environ;

namespace {

int wait_for(pid_t child) {
  int status = 0;
  if (child < 0 || ::waitpid(child, &status, 0) != child) return 2;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  std::string leaf = memdx::tracee::sibling_path("memdx_tracee_leaf");
  char* leaf_argv[] = {leaf.data(), nullptr};
  memdx::tracee::say_pid("spawner");
  if (mode == "vfork") {
    pid_t child = ::vfork();
    if (child == 0) {
      ::execv(leaf.c_str(), leaf_argv);
      ::_exit(127);
    }
    return wait_for(child);
  }
  if (mode == "spawn") {
    pid_t child = -1;
    if (::posix_spawn(&child, leaf.c_str(), nullptr, nullptr, leaf_argv, environ) != 0) return 2;
    return wait_for(child);
  }
  if (mode == "clean-env") {
    pid_t child = ::fork();
    if (child == 0) {
      char path[] = "PATH=/usr/bin";
      char* clean_env[] = {path, nullptr};
      ::execve(leaf.c_str(), leaf_argv, clean_env);
      ::_exit(127);
    }
    return wait_for(child);
  }
  memdx::tracee::say("usage: memdx_tracee_spawn vfork|spawn|clean-env");
  return 64;
}
