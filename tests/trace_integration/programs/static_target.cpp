// memdx_tracee_static: linked with -static, so LD_PRELOAD cannot reach it; prints a line and
// exits with a known code.
#include "tracee_common.h"

int main() {
  memdx::tracee::say("static target");
  return 7;
}
