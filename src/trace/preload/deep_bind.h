// Libraries loaded with RTLD_DEEPBIND. Such a library looks its symbols up in itself and its own
// dependencies before the global scope, so its malloc is libc's, reached without passing the
// tracer (which the global scope puts first). heaptrack strips the flag from dlopen; that changes
// every binding of the library (the reason it asked for RTLD_DEEPBIND is usually its own copy of
// some other library's symbols). Here the flag stays, and only the library's references to the
// functions the tracer interposes are pointed at the global definitions afterwards, in its GOT:
// the library keeps its own definitions of everything else, and of those functions too when it (or
// one of its own dependencies) defines them itself (an allocator of its own is left alone).
//
// What this cannot see: allocations of the library's constructors (they run inside dlopen, before
// the GOT can be changed), and calls through addresses the library took (&malloc in its data).
#pragma once

#include <cstdint>

namespace memdx::trace {

// A loaded object, as dl_iterate_phdr describes it. Trivial, without initializers: the module map
// keeps these in static storage that must be zero before any constructor runs, since the tracer
// may start from another library's constructor, before this library's own.
struct LoadedObject {
  uint64_t load_bias;
  uint64_t dynamic;                 // address of its dynamic section; 0 when it has none
  uint64_t relro_start, relro_end;  // PT_GNU_RELRO, page-rounded; empty when none
  const void* link_map;             // from _dl_find_object; null when not found
};

// Points the object's GOT entries (JUMP_SLOT and GLOB_DAT) for the functions the tracer interposes
// at their global definitions where the object reaches past the tracer. With `handle` (a dlopen
// with RTLD_DEEPBIND that loaded the object): every entry of a name that the handle's own scope
// resolves to the definition next after the tracer, bound or still lazy. Without: only entries
// already bound to that next definition (nothing else binds there: a library loaded with
// RTLD_DEEPBIND the tracer did not see loading). The C runtime, the loader and the tracer itself
// are never changed. Calls dlsym; leaves dlerror() as a successful dlopen does (no error).
void route_through_tracer(const LoadedObject& object, void* handle) noexcept;

// Whether the loader would find the same file, in the same namespace, if the tracer called dlopen
// for `file` instead of `caller` (a return address in the program): the file is named by a path
// without dynamic string tokens ($ORIGIN...), or by a bare name that the calling executable has no
// RUNPATH of its own to search for; and the caller is in the base namespace. When false the hook
// must leave dlopen to the program's own call (a sibling call from the hook), so that the caller's
// RUNPATH, RPATH, $ORIGIN and namespace still apply.
bool dlopen_caller_independent(const char* file, const void* caller) noexcept;

}  // namespace memdx::trace
