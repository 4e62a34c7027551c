// memdx_tracee_dl MODE ARGS: libraries loaded and unloaded while the tracer watches.
//   dtor LIB               dlopen and dlclose LIB (memdx_tracee_dl_dtor.so)
//   keep LIB               dlopen LIB, call dl_keep_leak, never dlclose
//   deepbind LIB now|lazy  dlopen LIB with RTLD_DEEPBIND, print which dl_preferred it binds to,
//                          call dl_deep_leak
//   deepown LIB            dlopen LIB with RTLD_DEEPBIND, print whose malloc its own calls reach
//   same LIB_A LIB_B       dlopen LIB_A, call dl_same_leak, dlclose; then the same with LIB_B,
//                          left loaded; prints "same address" when B was loaded where A was
//   bare NAME [deepbind]   dlopen NAME, a file name found only through this program's RUNPATH,
//                          call dl_keep_leak
#include <dlfcn.h>
#include <link.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "tracee_common.h"

using memdx::tracee::say;

// The program's own definition, exported (-rdynamic): a library loaded without RTLD_DEEPBIND
// binds its call of dl_preferred here.
extern "C" __attribute__((visibility("default"), noinline)) const char* dl_preferred() {
  return "program";
}

namespace {

void* open_library(const char* path, int flags) {
  void* library = dlopen(path, flags);
  if (library == nullptr) {
    const char* error = dlerror();
    say(error ? error : "dlopen failed");
  }
  return library;
}

bool call(void* library, const char* function) {
  auto* entry = reinterpret_cast<void (*)()>(dlsym(library, function));
  if (entry == nullptr) return false;
  entry();
  return true;
}

// The load bias of a loaded library (dlinfo's link map l_addr); 0 when it cannot be had.
unsigned long load_address(void* library) {
  link_map* map = nullptr;
  if (dlinfo(library, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr) return 0;
  return static_cast<unsigned long>(map->l_addr);
}

int run_dtor(const char* path) {
  void* library = open_library(path, RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) return 3;
  if (dlclose(library) != 0) return 4;
  say("closed");
  return 0;
}

int run_keep(const char* path, int flags) {
  void* library = open_library(path, flags);
  if (library == nullptr || !call(library, "dl_keep_leak")) return 3;
  say("kept");
  return 0;
}

int run_deepbind(const char* path, const std::string& binding) {
  int flags = RTLD_LOCAL | RTLD_DEEPBIND | (binding == "lazy" ? RTLD_LAZY : RTLD_NOW);
  void* library = open_library(path, flags);
  if (library == nullptr) return 3;
  auto* which = reinterpret_cast<const char* (*)()>(dlsym(library, "dl_deep_binding"));
  if (which == nullptr || !call(library, "dl_deep_leak")) return 4;
  say(which());
  return 0;
}

int run_deep_own(const char* path) {
  void* library = open_library(path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (library == nullptr) return 3;
  auto* which = reinterpret_cast<const char* (*)()>(dlsym(library, "dl_own_allocator"));
  if (which == nullptr) return 4;
  say(which());
  return 0;
}

// One loop, so that both libraries' allocations come from the same call instructions of this
// program: loaded at the same address, the two stacks are the same return addresses.
int run_same(const char* first, const char* second) {
  const char* paths[] = {first, second};
  unsigned long addresses[2] = {};
  for (int i = 0; i < 2; ++i) {
    void* library = open_library(paths[i], RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr || !call(library, "dl_same_leak")) return 3;
    addresses[i] = load_address(library);
    if (i == 0 && dlclose(library) != 0) return 4;
  }
  char line[128];
  std::snprintf(line, sizeof(line), "first 0x%lx second 0x%lx", addresses[0], addresses[1]);
  say(addresses[0] == addresses[1] ? "same address" : line);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "dtor" && argc == 3) return run_dtor(argv[2]);
  if (mode == "keep" && argc == 3) return run_keep(argv[2], RTLD_NOW | RTLD_LOCAL);
  if (mode == "deepbind" && argc == 4) return run_deepbind(argv[2], argv[3]);
  if (mode == "deepown" && argc == 3) return run_deep_own(argv[2]);
  if (mode == "same" && argc == 4) return run_same(argv[2], argv[3]);
  if (mode == "bare" && (argc == 3 || argc == 4)) {
    bool deep = argc == 4 && std::strcmp(argv[3], "deepbind") == 0;
    return run_keep(argv[2], RTLD_NOW | RTLD_LOCAL | (deep ? RTLD_DEEPBIND : 0));
  }
  say("usage: memdx_tracee_dl dtor LIB | keep LIB | deepbind LIB now|lazy | deepown LIB | same LIB_A LIB_B | bare NAME "
      "[deepbind]");
  return 2;
}
