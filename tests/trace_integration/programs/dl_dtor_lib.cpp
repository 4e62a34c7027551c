// memdx_tracee_dl_dtor.so: memory taken while the library loads (a constructor function and a
// C++ static object) and given back by their destructors, which dlclose runs.
#include <cstdlib>

#include "dl_plan.h"
#include "tracee_common.h"

namespace plan = memdx::tracee::dl;

namespace {

void* load_block;

struct StaticHolder {
  StaticHolder() : bytes(allocate()) {}
  ~StaticHolder() { delete[] bytes; }
  __attribute__((noinline)) static char* allocate() {
    char* block = new char[plan::kStaticBytes];  // site: StaticHolder::allocate
    memdx::tracee::escape(block);
    return block;
  }
  char* bytes;
};
StaticHolder holder;

}  // namespace

extern "C" __attribute__((noinline, visibility("default"))) void dl_dtor_allocate() {
  load_block = std::malloc(plan::kLoadBytes);  // site: dl_dtor_allocate
  memdx::tracee::escape(load_block);
}

__attribute__((constructor)) static void at_load() {
  dl_dtor_allocate();
}
__attribute__((destructor)) static void at_unload() {
  std::free(load_block);
}
