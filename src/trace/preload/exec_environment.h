// exec and posix_spawn with an explicit environment could drop the tracer (a program that
// builds a clean environment for its children). The environment passed on is the caller's, with
// LD_PRELOAD naming this library and memdx's MEMDX_TRACE_* settings as this process got them.
#pragma once

namespace memdx::trace {

struct ExecEnvironment {
  char** envp;   // what to pass to the real exec; the caller's own when nothing was needed
  void* memory;  // mmap'd storage of the new array and strings, or null
  unsigned long memory_bytes;
};

// Called once at start-up, before the program can change its environment.
void remember_tracer_environment() noexcept;

// Never allocates through malloc (a vforked or about-to-exec process must not).
ExecEnvironment environment_with_tracer(char* const* envp) noexcept;
void release_environment(ExecEnvironment& environment) noexcept;

}  // namespace memdx::trace
