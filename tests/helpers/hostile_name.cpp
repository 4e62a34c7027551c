// Names itself with terminal escape sequences, as a hostile or careless program can: argv[0] and
// an argument (through a re-exec of itself) and comm (prctl). Says ready, then lives until its
// stdin closes. Arguments given to it are kept after the hostile ones (a test's unique token).
#include <sys/prctl.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "helper_common.h"

namespace {

constexpr const char* kNamedFlag = "--named";

// argv[0] retitles the window and clears the screen when printed raw; the argument turns text red.
[[noreturn]] void exec_with_hostile_argv(int argc, char** argv) {
  std::vector<const char*> args = {"\x1b]0;pwned\x07\x1b[2Jevil", kNamedFlag, "\x1b[31mred"};
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  ::execv("/proc/self/exe", const_cast<char* const*>(args.data()));
  ::_exit(127);
}

}  // namespace

int main(int argc, char** argv) {
  memdx::test::die_with_parent();
  if (argc < 2 || std::strcmp(argv[1], kNamedFlag) != 0) exec_with_hostile_argv(argc, argv);
  ::prctl(PR_SET_NAME, "\x1b[2Jcomm");
  memdx::test::signal_ready();
  memdx::test::wait_for_stdin_eof();
  return 0;
}
