// Shared by the tracee programs: keeping the optimiser from removing allocations the tests
// count, and printing without allocating inside the functions the tests look for.
#pragma once

#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <string>

namespace memdx::tracee {

// The pointer escapes to memory the compiler cannot see: a malloc/free or new/delete pair
// around it cannot be elided (GCC removes unused pairs at -O2).
inline void escape(void* pointer) {
  asm volatile("" : : "g"(pointer) : "memory");
}

// One line on stdout with write(2): no stdio buffer, so nothing allocates and nothing is lost
// when the process ends by _exit, abort or SIGKILL.
inline void say(const char* text) {
  char line[256];
  size_t length = std::strlen(text);
  if (length > sizeof(line) - 1) length = sizeof(line) - 1;
  std::memcpy(line, text, length);
  line[length] = '\n';
  ssize_t ignored = ::write(STDOUT_FILENO, line, length + 1);
  (void)ignored;
}

// "<label> <pid> <ppid>" on stdout.
inline void say_pid(const char* label) {
  char line[128];
  std::snprintf(line, sizeof(line), "%s %d %d", label, static_cast<int>(::getpid()), static_cast<int>(::getppid()));
  say(line);
}

// The path of another tracee program built next to this one.
inline std::string sibling_path(const char* name) {
  char self[PATH_MAX] = {};
  ssize_t length = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  std::string dir = length > 0 ? std::string(self, static_cast<size_t>(length)) : std::string(".");
  return dir.substr(0, dir.rfind('/') + 1) + name;
}

}  // namespace memdx::tracee
