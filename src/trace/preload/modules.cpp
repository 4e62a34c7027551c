#include "trace/preload/modules.h"

#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "trace/format/wire.h"
#include "trace/preload/deep_bind.h"
#include "trace/preload/stack_table.h"
#include "trace/preload/tracer.h"
#include "trace/preload/unwind.h"

namespace memdx::trace {
namespace {

constexpr size_t kMaxModules = 1024;
constexpr size_t kMaxPathBytes = 1024;
// A hook waits this long at most for the map's lock (another thread's scan takes microseconds).
constexpr int kHookLockAttempts = 200;
constexpr long kHookLockPauseNs = 100'000;

struct Module {
  LoadedObject object;
  uint64_t start;
  uint64_t end;
  uint64_t map_start;      // the loader's start of the object's mapping (_dl_find_object)
  uint64_t found_in_scan;  // the number of the scan that found it
  bool loaded;             // recorded and not yet unloaded
  bool fresh;              // found by the current scan, not yet recorded
  bool seen;               // found by the current scan
  bool main_program;
  uint16_t path_bytes;
  char path[kMaxPathBytes];
};

// Static storage (zero-initialised, never destroyed): about 1 MiB of address space, touched
// only as modules appear. An entry whose module was unloaded is reused. No constructor may run
// over it: the first scan can come before this library's constructors (tracer.h).
static_assert(std::is_trivially_default_constructible_v<Module>);
Module modules[kMaxModules];
size_t module_count = 0;
pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
uint64_t scans = 0;  // under the lock
std::atomic<uint64_t> new_module_scans{0};
bool initial_scan_done = false;  // under the lock: what the first scan finds is not routed

// ---- The objects already recorded, by link map: read lock-free from inside malloc ----------
//
// Open addressing keyed by the loader's link map, with the mapping's start as the value (a link
// map freed by dlclose and reused for another library at another address must not match).
// Written under modules_lock only; a key is published after its value, and an unloaded object's
// key becomes a tombstone that a later insert may reuse.
constexpr size_t kKnownSlots = 4 * kMaxModules;
constexpr uint64_t kEmpty = 0;
constexpr uint64_t kTombstone = 1;
struct KnownSlot {
  std::atomic<uint64_t> link_map;
  std::atomic<uint64_t> map_start;
};
KnownSlot known[kKnownSlots];

size_t known_home(uint64_t link_map) noexcept {
  return static_cast<size_t>((link_map >> 4) * 0x9e3779b97f4a7c15ull >> 52) & (kKnownSlots - 1);
}

bool is_known(const void* link_map, uint64_t map_start) noexcept {
  const auto key = reinterpret_cast<uint64_t>(link_map);
  size_t index = known_home(key);
  for (size_t probe = 0; probe < kKnownSlots; ++probe, index = (index + 1) & (kKnownSlots - 1)) {
    const uint64_t seen = known[index].link_map.load(std::memory_order_acquire);
    if (seen == kEmpty) return false;
    if (seen == key) return known[index].map_start.load(std::memory_order_relaxed) == map_start;
  }
  return false;
}

void remember_known(const Module& module) noexcept {
  const auto key = reinterpret_cast<uint64_t>(module.object.link_map);
  if (key <= kTombstone) return;
  size_t index = known_home(key);
  for (size_t probe = 0; probe < kKnownSlots; ++probe, index = (index + 1) & (kKnownSlots - 1)) {
    const uint64_t seen = known[index].link_map.load(std::memory_order_relaxed);
    if (seen == key) {
      known[index].map_start.store(module.map_start, std::memory_order_release);
      return;
    }
    if (seen != kEmpty && seen != kTombstone) continue;
    known[index].map_start.store(module.map_start, std::memory_order_relaxed);
    known[index].link_map.store(key, std::memory_order_release);
    return;
  }
}

void forget_known(const Module& module) noexcept {
  const auto key = reinterpret_cast<uint64_t>(module.object.link_map);
  if (key <= kTombstone) return;
  size_t index = known_home(key);
  for (size_t probe = 0; probe < kKnownSlots; ++probe, index = (index + 1) & (kKnownSlots - 1)) {
    const uint64_t seen = known[index].link_map.load(std::memory_order_relaxed);
    if (seen == kEmpty) return;
    if (seen == key && known[index].map_start.load(std::memory_order_relaxed) == module.map_start) {
      known[index].link_map.store(kTombstone, std::memory_order_release);
      return;
    }
  }
}

// ---- Records ---------------------------------------------------------------------------------

void send_module(const Module& module) noexcept {
  uint8_t record[1 + 5 * wire::kMaxVarintBytes + kMaxPathBytes];
  uint8_t* out = record;
  *out++ = static_cast<uint8_t>(wire::Tag::kModule);
  out = wire::put_u64(out, current_seq());
  out = wire::put_u64(out, module.object.load_bias);
  out = wire::put_u64(out, module.start);
  out = wire::put_u64(out, module.end);
  out = wire::put_u64(out, module.path_bytes);
  std::memcpy(out, module.path, module.path_bytes);
  send_process_record(record, out + module.path_bytes);
}

void send_unmodule(const Module& module) noexcept {
  uint8_t record[1 + 2 * wire::kMaxVarintBytes];
  uint8_t* out = record;
  *out++ = static_cast<uint8_t>(wire::Tag::kUnmodule);
  out = wire::put_u64(out, current_seq());
  out = wire::put_u64(out, module.object.load_bias);
  send_process_record(record, out);
}

// ---- The scan ----------------------------------------------------------------------------------

// Whether a loaded object is this module: the same place and the same file (another library may
// be loaded where an unloaded one was, its link map even at the same address).
bool is_same(const Module& module, const dl_phdr_info& info, uint64_t start, uint64_t end) noexcept {
  if (module.object.load_bias != info.dlpi_addr || module.start != start || module.end != end) return false;
  const char* name = info.dlpi_name ? info.dlpi_name : "";
  if (*name == 0) return module.main_program;
  size_t length = std::strlen(name);
  if (length > kMaxPathBytes) length = kMaxPathBytes;
  return !module.main_program && module.path_bytes == length && std::memcmp(module.path, name, length) == 0;
}

// The loader lists objects in load order, the order they were recorded in: the search starts
// after the previous match, so that a scan costs one step per object, not one per pair (a
// program that dlopens hundreds of libraries scans at every dlopen).
size_t search_from = 0;  // under the lock

Module* find_recorded(const dl_phdr_info& info, uint64_t start, uint64_t end) noexcept {
  for (size_t step = 0; step < module_count; ++step) {
    const size_t i = (search_from + step) % module_count;
    Module& module = modules[i];
    if ((module.loaded || module.fresh) && is_same(module, info, start, end)) {
      search_from = i + 1;
      return &module;
    }
  }
  return nullptr;
}

Module* free_entry() noexcept {
  for (size_t i = 0; i < module_count; ++i) {
    if (!modules[i].loaded && !modules[i].fresh) return &modules[i];
  }
  return module_count < kMaxModules ? &modules[module_count++] : nullptr;
}

// The main program has an empty name in the loader's list.
void set_path(Module& module, const char* name) noexcept {
  ssize_t length = 0;
  module.main_program = !name || !*name;
  if (!module.main_program) {
    length = static_cast<ssize_t>(std::strlen(name));
    if (length > static_cast<ssize_t>(kMaxPathBytes)) length = kMaxPathBytes;
    std::memcpy(module.path, name, static_cast<size_t>(length));
  } else {
    length = readlink("/proc/self/exe", module.path, kMaxPathBytes);
    if (length < 0) length = 0;
  }
  module.path_bytes = static_cast<uint16_t>(length);
}

// The loader's link map of an object, once _dl_find_object knows it (it learns of a new object
// after relocating it, a little after dl_iterate_phdr lists it).
void find_link_map(Module& module) noexcept {
  if (module.object.link_map) return;
  dl_find_object found{};
  if (_dl_find_object(reinterpret_cast<void*>(module.start), &found) != 0) return;  // NOLINT(performance-no-int-to-ptr)
  module.object.link_map = found.dlfo_link_map;
  module.map_start = reinterpret_cast<uint64_t>(found.dlfo_map_start);
}

void describe(Module& module, const dl_phdr_info& info) noexcept {
  module.object = {};
  module.object.load_bias = info.dlpi_addr;
  for (int i = 0; i < info.dlpi_phnum; ++i) {
    const ElfW(Phdr)& header = info.dlpi_phdr[i];
    if (header.p_type == PT_DYNAMIC) module.object.dynamic = info.dlpi_addr + header.p_vaddr;
    if (header.p_type != PT_GNU_RELRO) continue;
    // As the loader protects it: whole pages only.
    module.object.relro_start = (info.dlpi_addr + header.p_vaddr) & ~uint64_t{4095};
    module.object.relro_end = (info.dlpi_addr + header.p_vaddr + header.p_memsz) & ~uint64_t{4095};
  }
}

int visit(dl_phdr_info* info, size_t, void*) {
  uint64_t start = UINT64_MAX, end = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& header = info->dlpi_phdr[i];
    if (header.p_type != PT_LOAD) continue;
    uint64_t begin = info->dlpi_addr + header.p_vaddr;
    if (begin < start) start = begin;
    if (begin + header.p_memsz > end) end = begin + header.p_memsz;
  }
  if (end == 0) return 0;
  if (Module* recorded = find_recorded(*info, start, end)) {
    recorded->seen = true;
    return 0;
  }
  Module* module = free_entry();
  if (!module) return 0;
  describe(*module, *info);
  module->start = start;
  module->end = end;
  module->map_start = 0;
  module->loaded = false;
  module->fresh = true;
  module->seen = true;
  module->found_in_scan = scans;
  set_path(*module, info->dlpi_name);
  return 0;
}

// Unloads first, so that a library loaded where another was is recorded after the other is gone.
// Returns whether something was unloaded. Call with the lock held.
bool scan_locked() noexcept {
  ++scans;
  search_from = 0;
  for (size_t i = 0; i < module_count; ++i) modules[i].seen = false;
  dl_iterate_phdr(visit, nullptr);
  bool unloaded = false;
  for (size_t i = 0; i < module_count; ++i) {
    Module& module = modules[i];
    if (!module.loaded || module.seen) continue;
    module.loaded = false;
    forget_known(module);
    send_unmodule(module);
    unloaded = true;
  }
  // The stack ids and cached unwind rules of this epoch may name code that is gone: a library
  // loaded at the same addresses later must get stacks of its own.
  if (unloaded) {
    stack_table_new_epoch();
    unwind_forget_code();
  }
  bool found = false;
  for (size_t i = 0; i < module_count; ++i) {
    Module& module = modules[i];
    if (module.loaded && !module.object.link_map) {
      find_link_map(module);
      remember_known(module);
    }
    if (!module.fresh) continue;
    module.fresh = false;
    module.loaded = true;
    found = true;
    find_link_map(module);
    remember_known(module);
    send_module(module);
    if (initial_scan_done) route_through_tracer(module.object, nullptr);
  }
  initial_scan_done = true;
  if (found) new_module_scans.store(scans, std::memory_order_release);
  return unloaded;
}

bool lock_briefly() noexcept {
  for (int attempt = 0; attempt < kHookLockAttempts; ++attempt) {
    if (pthread_mutex_trylock(&modules_lock) == 0) return true;
    timespec pause{0, kHookLockPauseNs};
    ::nanosleep(&pause, nullptr);
  }
  return false;
}

}  // namespace

void scan_modules() noexcept {
  pthread_mutex_lock(&modules_lock);
  scan_locked();
  pthread_mutex_unlock(&modules_lock);
}

bool scan_modules_from_hook() noexcept {
  if (!lock_briefly()) return false;
  scan_locked();
  pthread_mutex_unlock(&modules_lock);
  return true;
}

bool frames_in_unknown_module(const uintptr_t* frames, size_t depth) noexcept {
  uintptr_t checked_start = 0, checked_end = 0;  // the object the previous frame was in
  for (size_t i = 0; i < depth; ++i) {
    // The call instruction before the return address: a call at the very end of an object's
    // code returns to the next object's first byte.
    const uintptr_t call = frames[i] - 1;
    if (frames[i] == 0 || (call >= checked_start && call < checked_end)) continue;
    dl_find_object found{};
    if (_dl_find_object(reinterpret_cast<void*>(call), &found) != 0) continue;  // NOLINT(performance-no-int-to-ptr)
    if (!is_known(found.dlfo_link_map, reinterpret_cast<uint64_t>(found.dlfo_map_start))) return true;
    checked_start = reinterpret_cast<uintptr_t>(found.dlfo_map_start);
    checked_end = reinterpret_cast<uintptr_t>(found.dlfo_map_end);
  }
  return false;
}

void scan_modules_if_free() noexcept {
  if (pthread_mutex_trylock(&modules_lock) != 0) return;
  scan_locked();
  pthread_mutex_unlock(&modules_lock);
}

uint64_t modules_mark() noexcept {
  return new_module_scans.load(std::memory_order_acquire);
}

void route_modules_loaded_since(uint64_t mark, void* handle) noexcept {
  if (!lock_briefly()) return;
  scan_locked();
  for (size_t i = 0; i < module_count; ++i) {
    if (modules[i].loaded && modules[i].found_in_scan > mark) route_through_tracer(modules[i].object, handle);
  }
  pthread_mutex_unlock(&modules_lock);
}

void send_known_modules() noexcept {
  for (size_t i = 0; i < module_count; ++i) {
    if (modules[i].loaded) send_module(modules[i]);
  }
}

void modules_lock_for_fork() noexcept {
  pthread_mutex_lock(&modules_lock);
}
void modules_unlock_after_fork_parent() noexcept {
  pthread_mutex_unlock(&modules_lock);
}
void modules_after_fork_child() noexcept {
  modules_lock = PTHREAD_MUTEX_INITIALIZER;
}

}  // namespace memdx::trace
