// proc::ancestry_of on processes the test starts: a grandchild's chain runs through its parent
// and the test up to init, stops where asked, and a gone process ends the walk without an error.
#include "proc/ancestry.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <optional>
#include <utility>
#include <vector>

namespace memdx::proc {
namespace {

// A child that starts a grandchild; both sleep until killed. Returns {child, grandchild}.
std::pair<pid_t, pid_t> start_two_generations() {
  int pipe_fds[2];
  EXPECT_EQ(::pipe(pipe_fds), 0);
  pid_t child = ::fork();
  if (child == 0) {
    pid_t grandchild = ::fork();
    if (grandchild == 0) {
      ::pause();
      ::_exit(0);
    }
    [[maybe_unused]] ssize_t written = ::write(pipe_fds[1], &grandchild, sizeof(grandchild));
    ::pause();
    ::_exit(0);
  }
  pid_t grandchild = 0;
  EXPECT_EQ(::read(pipe_fds[0], &grandchild, sizeof(grandchild)), static_cast<ssize_t>(sizeof(grandchild)));
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  return {child, grandchild};
}

TEST(Ancestry, RunsFromTheProcessThroughItsParentsToInit) {
  auto [child, grandchild] = start_two_generations();
  Ancestry ancestry = ancestry_of(ProcFs(), grandchild);
  ::kill(grandchild, SIGKILL);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ASSERT_GE(ancestry.chain.size(), 4u);
  EXPECT_EQ(ancestry.chain[0], grandchild);
  EXPECT_EQ(ancestry.chain[1], child);
  EXPECT_EQ(ancestry.chain[2], ::getpid());
  EXPECT_EQ(ancestry.chain[3], ::getppid());
  // Up to this pid namespace's init, unless a parent was started from outside it (ppid 0).
  EXPECT_TRUE(ancestry.chain.back() == 1 || ancestry.ended_at_gone);
}

TEST(Ancestry, StopsWhereAsked) {
  auto [child, grandchild] = start_two_generations();
  Ancestry ancestry = ancestry_of(ProcFs(), grandchild, ::getpid());
  Ancestry short_walk = ancestry_of(ProcFs(), grandchild, std::nullopt, 2);
  ::kill(grandchild, SIGKILL);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(ancestry.chain, (std::vector<pid_t>{grandchild, child, ::getpid()}));
  EXPECT_FALSE(ancestry.ended_at_gone);
  EXPECT_EQ(short_walk.chain, (std::vector<pid_t>{grandchild, child}));
}

TEST(Ancestry, AGoneProcessEndsTheWalk) {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  Ancestry ancestry = ancestry_of(ProcFs(), child);
  EXPECT_EQ(ancestry.chain, (std::vector<pid_t>{child}));
  EXPECT_TRUE(ancestry.ended_at_gone);
}

}  // namespace
}  // namespace memdx::proc
