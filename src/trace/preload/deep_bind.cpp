#include "trace/preload/deep_bind.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <malloc.h>
#include <sched.h>
#include <spawn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "trace/preload/real.h"

namespace memdx::trace {
namespace {

constexpr uint64_t kPageBytes = 4096;
using Dynamic = ElfW(Dyn);
using Symbol = ElfW(Sym);
using Relocation = ElfW(Rela);

// A function the tracer interposes: its global definition (the tracer's hook, unless the program
// defines it itself) and the definition next after the tracer (what dlsym(RTLD_NEXT) gave).
struct Routed {
  const char* name;
  void* global;
  void* next;
};

template <typename Fn>
void* address(Fn* function) noexcept {
  return reinterpret_cast<void*>(function);
}

// `&name` in this library is the global definition: the references go through the GOT.
constexpr size_t kRouted = 27;
void routed_functions(Routed* out) noexcept {
  const Routed all[kRouted] = {
      {"malloc", address(&::malloc), address(real.malloc)},
      {"free", address(&::free), address(real.free)},
      {"calloc", address(&::calloc), address(real.calloc)},
      {"realloc", address(&::realloc), address(real.realloc)},
      {"reallocarray", address(&::reallocarray), address(real.reallocarray)},
      {"posix_memalign", address(&::posix_memalign), address(real.posix_memalign)},
      {"aligned_alloc", address(&::aligned_alloc), address(real.aligned_alloc)},
      {"memalign", address(&::memalign), address(real.memalign)},
      {"valloc", address(&::valloc), address(real.valloc)},
      {"pvalloc", address(&::pvalloc), address(real.pvalloc)},
      {"mmap", address(&::mmap), address(real.mmap)},
      {"mmap64", address(&::mmap64), address(real.mmap)},  // one function in glibc on 64-bit
      {"munmap", address(&::munmap), address(real.munmap)},
      {"mremap", address(&::mremap), address(real.mremap)},
      {"dlopen", address(&::dlopen), address(real.dlopen)},
      {"dlclose", address(&::dlclose), address(real.dlclose)},
      {"execve", address(&::execve), address(real.execve)},
      {"execvpe", address(&::execvpe), address(real.execvpe)},
      {"fexecve", address(&::fexecve), address(real.fexecve)},
      {"posix_spawn", address(&::posix_spawn), address(real.posix_spawn)},
      {"posix_spawnp", address(&::posix_spawnp), address(real.posix_spawnp)},
      {"close", address(&::close), address(real.close)},
      {"dup2", address(&::dup2), address(real.dup2)},
      {"dup3", address(&::dup3), address(real.dup3)},
      {"unshare", address(&::unshare), address(real.unshare)},
      {"setns", address(&::setns), address(real.setns)},
      {"_exit", address(&::_exit), address(real.exit_now)},
  };
  for (size_t i = 0; i < kRouted; ++i) out[i] = all[i];
}

int routed_index(const Routed* routed, const char* name) noexcept {
  for (size_t i = 0; i < kRouted; ++i) {
    if (routed[i].name[0] == name[0] && std::strcmp(routed[i].name, name) == 0) return static_cast<int>(i);
  }
  return -1;
}

const void* link_map_of(const void* code) noexcept {
  dl_find_object found{};
  return _dl_find_object(const_cast<void*>(code), &found) == 0 ? found.dlfo_link_map : nullptr;
}

// The C runtime (where real.malloc lives), the loader and this library bind these functions as
// they must; they are never changed.
bool is_runtime(const void* link_map) noexcept {
  return link_map == nullptr || link_map == link_map_of(address(real.malloc)) ||
         link_map == link_map_of(address(&_dl_find_object)) || link_map == link_map_of(address(&route_through_tracer));
}

// The parts of the dynamic section the routing reads, as absolute addresses.
struct DynamicInfo {
  const Symbol* symbols = nullptr;
  const char* strings = nullptr;
  uint64_t strings_bytes = 0;
  const Relocation* plt_relocations = nullptr;
  uint64_t plt_bytes = 0;
  const Relocation* relocations = nullptr;
  uint64_t relocation_bytes = 0;
};

bool read_dynamic(const LoadedObject& object, DynamicInfo& info) noexcept {
  if (object.dynamic == 0) return false;
  // The loader rewrites these to absolute addresses; an object it did not (the vDSO) has offsets.
  auto absolute = [&](uint64_t value) { return value < object.load_bias ? value + object.load_bias : value; };
  bool plt_is_rela = true;
  for (auto* entry = reinterpret_cast<const Dynamic*>(object.dynamic); entry->d_tag != DT_NULL; ++entry) {
    const uint64_t value = entry->d_un.d_val;
    switch (entry->d_tag) {
      case DT_SYMTAB:
        info.symbols = reinterpret_cast<const Symbol*>(absolute(value));
        break;
      case DT_STRTAB:
        info.strings = reinterpret_cast<const char*>(absolute(value));
        break;
      case DT_STRSZ:
        info.strings_bytes = value;
        break;
      case DT_JMPREL:
        info.plt_relocations = reinterpret_cast<const Relocation*>(absolute(value));
        break;
      case DT_PLTRELSZ:
        info.plt_bytes = value;
        break;
      case DT_PLTREL:
        plt_is_rela = value == DT_RELA;
        break;
      case DT_RELA:
        info.relocations = reinterpret_cast<const Relocation*>(absolute(value));
        break;
      case DT_RELASZ:
        info.relocation_bytes = value;
        break;
      default:
        break;
    }
  }
  if (!plt_is_rela) info.plt_relocations = nullptr;
  return info.symbols && info.strings;
}

// Writes `value` into a GOT entry, lifting RELRO's read-only protection around the write.
void patch(const LoadedObject& object, uint64_t slot_address, void* value) noexcept {
  auto* slot = reinterpret_cast<void**>(slot_address);
  if (__atomic_load_n(slot, __ATOMIC_RELAXED) == value) return;
  const bool read_only = slot_address >= object.relro_start && slot_address < object.relro_end;
  void* page = reinterpret_cast<void*>(slot_address & ~(kPageBytes - 1));
  if (read_only && ::mprotect(page, kPageBytes, PROT_READ | PROT_WRITE) != 0) return;
  __atomic_store_n(slot, value, __ATOMIC_RELAXED);
  if (read_only) ::mprotect(page, kPageBytes, PROT_READ);
}

class Router {
 public:
  Router(const LoadedObject& object, void* handle) : object_(object), handle_(handle) { routed_functions(routed_); }
  ~Router() {
    if (dlsym_failed_) dlerror();  // the error our own dlsym left, which the program must not see
  }
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  void route(const DynamicInfo& info, const Relocation* relocations, uint64_t bytes) noexcept {
    if (!relocations) return;
    for (uint64_t i = 0; i < bytes / sizeof(Relocation); ++i) {
      const Relocation& relocation = relocations[i];
      const auto type = ELF64_R_TYPE(relocation.r_info);
      const auto symbol = ELF64_R_SYM(relocation.r_info);
      if ((type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) || symbol == 0) continue;
      const uint64_t name_offset = info.symbols[symbol].st_name;
      if (info.strings_bytes && name_offset >= info.strings_bytes) continue;
      const int index = routed_index(routed_, info.strings + name_offset);
      if (index < 0 || routed_[index].next == nullptr || routed_[index].global == routed_[index].next) continue;
      const uint64_t slot = object_.load_bias + relocation.r_offset;
      if (reaches_past_tracer(index, slot)) patch(object_, slot, routed_[index].global);
    }
  }

 private:
  bool reaches_past_tracer(int index, uint64_t slot) noexcept {
    const Routed& function = routed_[index];
    if (!handle_) return *reinterpret_cast<void* const*>(slot) == function.next;
    if (!resolved_[index]) {
      resolved_[index] = true;
      deep_[index] = dlsym(handle_, function.name);
      if (!deep_[index]) dlsym_failed_ = true;
    }
    return deep_[index] == function.next;
  }

  const LoadedObject& object_;
  void* handle_;
  Routed routed_[kRouted];
  bool resolved_[kRouted] = {};
  void* deep_[kRouted] = {};  // what the handle's own scope resolves each name to
  bool dlsym_failed_ = false;
};

bool has_dynamic_tag(const Dynamic* dynamic, int64_t tag) noexcept {
  for (; dynamic && dynamic->d_tag != DT_NULL; ++dynamic) {
    if (dynamic->d_tag == tag) return true;
  }
  return false;
}

}  // namespace

void route_through_tracer(const LoadedObject& object, void* handle) noexcept {
#if defined(__x86_64__)
  if (is_runtime(object.link_map)) return;
  DynamicInfo info;
  if (!read_dynamic(object, info)) return;
  Router router(object, handle);
  router.route(info, info.plt_relocations, info.plt_bytes);
  router.route(info, info.relocations, info.relocation_bytes);
#else
  (void)object;
  (void)handle;
#endif
}

bool dlopen_caller_independent(const char* file, const void* caller) noexcept {
  if (file == nullptr || std::strchr(file, '$') != nullptr) return false;
  dl_find_object found{};
  if (_dl_find_object(const_cast<void*>(caller), &found) != 0) return false;
  Lmid_t namespace_id = LM_ID_BASE;
  if (dlinfo(found.dlfo_link_map, RTLD_DI_LMID, &namespace_id) != 0 || namespace_id != LM_ID_BASE) return false;
  if (std::strchr(file, '/') != nullptr) return true;
  // A bare name: the loader searches the RPATH of the caller and of the executable, LD_LIBRARY_PATH,
  // then the caller's RUNPATH. This library has neither RPATH nor RUNPATH, so only an executable
  // without a RUNPATH is searched the same from here.
  return found.dlfo_link_map == _r_debug.r_map && !has_dynamic_tag(found.dlfo_link_map->l_ld, DT_RUNPATH);
}

}  // namespace memdx::trace
