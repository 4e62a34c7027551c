#include "trace/preload/modules.h"

#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "trace/format/wire.h"
#include "trace/preload/tracer.h"
#include "trace/preload/unwind.h"

namespace memdx::trace {
namespace {

constexpr size_t kMaxModules = 1024;
constexpr size_t kMaxPathBytes = 1024;

struct Module {
  uint64_t load_bias;
  uint64_t start;
  uint64_t end;
  bool loaded;
  bool seen;  // found by the current scan
  uint16_t path_bytes;
  char path[kMaxPathBytes];
};

// Static storage (zero-initialised, never destroyed): about 1 MiB of address space, touched
// only as modules appear.
Module modules[kMaxModules];
size_t module_count = 0;
pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;

void send_module(const Module& module) noexcept {
  uint8_t record[1 + 5 * wire::kMaxVarintBytes + kMaxPathBytes];
  uint8_t* out = record;
  *out++ = static_cast<uint8_t>(wire::Tag::kModule);
  out = wire::put_u64(out, current_seq());
  out = wire::put_u64(out, module.load_bias);
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
  out = wire::put_u64(out, module.load_bias);
  send_process_record(record, out);
}

Module* find(uint64_t load_bias, uint64_t start) noexcept {
  for (size_t i = 0; i < module_count; ++i) {
    if (modules[i].loaded && modules[i].load_bias == load_bias && modules[i].start == start) return &modules[i];
  }
  return nullptr;
}

// The main program has an empty name in the loader's list.
void set_path(Module& module, const char* name) noexcept {
  ssize_t length = 0;
  if (name && *name) {
    length = static_cast<ssize_t>(std::strlen(name));
    if (length > static_cast<ssize_t>(kMaxPathBytes)) length = kMaxPathBytes;
    std::memcpy(module.path, name, static_cast<size_t>(length));
  } else {
    length = readlink("/proc/self/exe", module.path, kMaxPathBytes);
    if (length < 0) length = 0;
  }
  module.path_bytes = static_cast<uint16_t>(length);
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
  if (Module* known = find(info->dlpi_addr, start)) {
    known->seen = true;
    return 0;
  }
  if (module_count == kMaxModules) return 0;
  Module& module = modules[module_count++];
  module.load_bias = info->dlpi_addr;
  module.start = start;
  module.end = end;
  module.loaded = true;
  module.seen = true;
  set_path(module, info->dlpi_name);
  send_module(module);
  return 0;
}

}  // namespace

void scan_modules() noexcept {
  pthread_mutex_lock(&modules_lock);
  for (size_t i = 0; i < module_count; ++i) modules[i].seen = false;
  dl_iterate_phdr(visit, nullptr);
  bool unloaded = false;
  for (size_t i = 0; i < module_count; ++i) {
    if (!modules[i].loaded || modules[i].seen) continue;
    modules[i].loaded = false;
    send_unmodule(modules[i]);
    unloaded = true;
  }
  pthread_mutex_unlock(&modules_lock);
  if (unloaded) unwind_forget_code();
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
