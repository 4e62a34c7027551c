// The module map of the traced process (every loaded ELF object with its address range), so the
// reader can resolve each stack against the files that were mapped when it was recorded.
//
// A module record goes out before the first event whose stack needs it: a new stack with a frame
// in an object the map does not know makes a scan first (that is how dlopen is noticed, the
// library's constructors included, without putting a frame of the tracer between the program and
// dlopen). An unload goes out as an unmodule record after the library's destructors ran (dlclose
// is scanned after it returns), and starts a new epoch of the stack table and of the unwinder's
// cache: another library may be loaded at the same addresses next.
#pragma once

#include <cstddef>
#include <cstdint>

namespace memdx::trace {

// Walks the loaded objects (dl_iterate_phdr); sends an unmodule record for each one gone, then a
// module record for each new one, and routes a new object's calls of the interposed functions
// through the tracer where it binds them past it (deep_bind.h). Waits for the module map's lock:
// for the tracer's start, fork and exec paths, never from a hook.
void scan_modules() noexcept;
// The same from a hook the program called (dlopen, dlclose): waits for the lock only briefly, and
// scans nothing when another thread holds it longer (that thread's scan sees the same objects).
// False when it did not scan.
bool scan_modules_from_hook() noexcept;

// For a new stack (unwound, not yet recorded): whether one of its return addresses lies in a
// loaded object the map has not recorded. Lock-free and allocation-free.
bool frames_in_unknown_module(const uintptr_t* frames, size_t depth) noexcept;
// Scans unless another thread holds the map's lock (never waits: it runs inside malloc).
void scan_modules_if_free() noexcept;

// The number of scans so far that found a new module. Objects loaded after a call to this are
// routed by route_modules_loaded_since(mark, handle) once they have been scanned.
uint64_t modules_mark() noexcept;
// The objects a dlopen with RTLD_DEEPBIND loaded (scanned since `mark`), routed by the
// resolution of `handle` (deep_bind.h). Scans first. Waits for the lock only briefly.
void route_modules_loaded_since(uint64_t mark, void* handle) noexcept;

// In a forked child, on its new stream: the modules known to the parent, from memory (the
// loader's lock may have been held by a thread that does not exist in the child).
void send_known_modules() noexcept;

void modules_lock_for_fork() noexcept;
void modules_unlock_after_fork_parent() noexcept;
void modules_after_fork_child() noexcept;

}  // namespace memdx::trace
