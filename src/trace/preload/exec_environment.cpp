#include "trace/preload/exec_environment.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

#include "trace/format/wire.h"
#include "trace/preload/real.h"
#include "trace/preload/tracer.h"

namespace memdx::trace {
namespace {

const char* const kCarried[] = {wire::kEnvSocket, wire::kEnvKey, wire::kEnvCollectorPid, wire::kEnvMaxDepth,
                                wire::kEnvSampleBytes};
constexpr char kPreload[] = "LD_PRELOAD";
constexpr size_t kCarriedCount = sizeof(kCarried) / sizeof(kCarried[0]);
// "NAME=value" of each setting as this process started with it: the program may since have
// cleaned its own environment.
char carried_entries[kCarriedCount][256];

// "NAME=..." for the given NAME.
bool names(const char* entry, const char* name) noexcept {
  size_t length = std::strlen(name);
  return std::strncmp(entry, name, length) == 0 && entry[length] == '=';
}

bool is_carried(const char* entry) noexcept {
  for (const char* name : kCarried) {
    if (names(entry, name)) return true;
  }
  return false;
}

// Whether an LD_PRELOAD list (names separated by ':' or ' ', as the loader reads it) names `path`
// itself: a library whose path merely contains the tracer's is another library.
bool lists(const char* list, const char* path) noexcept {
  size_t length = std::strlen(path);
  for (const char* at = list; *at;) {
    size_t name = std::strcspn(at, ": ");
    if (name == length && std::strncmp(at, path, length) == 0) return true;
    at += name;
    if (*at) ++at;
  }
  return false;
}

// A bump allocator over one mmap'd block.
struct Arena {
  char* next;
  char* end;
  char* copy(const char* first, const char* second, const char* third) noexcept {
    size_t a = std::strlen(first), b = std::strlen(second), c = std::strlen(third);
    if (next + a + b + c + 1 > end) return nullptr;
    char* out = next;
    std::memcpy(out, first, a);
    std::memcpy(out + a, second, b);
    std::memcpy(out + a + b, third, c);
    out[a + b + c] = 0;
    next += a + b + c + 1;
    return out;
  }
};

}  // namespace

void remember_tracer_environment() noexcept {
  for (size_t i = 0; i < kCarriedCount; ++i) {
    const char* value = std::getenv(kCarried[i]);
    size_t name_bytes = std::strlen(kCarried[i]);
    if (!value || name_bytes + 1 + std::strlen(value) + 1 > sizeof(carried_entries[i])) continue;
    std::memcpy(carried_entries[i], kCarried[i], name_bytes);
    carried_entries[i][name_bytes] = '=';
    std::memcpy(carried_entries[i] + name_bytes + 1, value, std::strlen(value) + 1);
  }
}

ExecEnvironment environment_with_tracer(char* const* envp) noexcept {
  ExecEnvironment result{const_cast<char**>(envp), nullptr, 0};
  if (!*preload_entry() || !envp) return result;
  size_t count = 0, text_bytes = 0;
  for (char* const* entry = envp; *entry; ++entry, ++count) text_bytes += std::strlen(*entry) + 1;
  size_t bytes = (count + 8) * sizeof(char*) + text_bytes + size_t{4096} * 4;
  void* memory = real.mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return result;
  auto** out = static_cast<char**>(memory);
  Arena arena{reinterpret_cast<char*>(out + count + 8), static_cast<char*>(memory) + bytes};
  size_t used = 0;
  const char* existing_preload = nullptr;
  for (char* const* entry = envp; *entry; ++entry) {
    if (names(*entry, kPreload)) {
      existing_preload = *entry;
    } else if (!is_carried(*entry)) {
      out[used++] = *entry;
    }
  }
  char* preload = nullptr;
  if (existing_preload && lists(existing_preload + sizeof(kPreload), preload_entry())) {
    preload = const_cast<char*>(existing_preload);
  } else if (existing_preload) {
    preload = arena.copy("LD_PRELOAD=", preload_entry(), ":");
    if (preload) {
      arena.next -= 1;  // drop the terminator and append the caller's list
      if (!arena.copy("", existing_preload + sizeof(kPreload), "")) preload = nullptr;
    }
  } else {
    preload = arena.copy("LD_PRELOAD=", preload_entry(), "");
  }
  if (preload) out[used++] = preload;
  for (auto& entry : carried_entries) {
    if (entry[0]) out[used++] = entry;
  }
  out[used] = nullptr;
  result = {out, memory, bytes};
  return result;
}

void release_environment(ExecEnvironment& environment) noexcept {
  if (environment.memory) real.munmap(environment.memory, environment.memory_bytes);
  environment.memory = nullptr;
}

}  // namespace memdx::trace
