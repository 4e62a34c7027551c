// Shared by memdx_tracee_dl, the libraries it loads and the test: what each library
// allocates, and where it is expected to be named.
#pragma once

#include <cstddef>

namespace memdx::tracee::dl {

// memdx_tracee_dl_dtor.so: allocated while the library loads, freed while it unloads.
inline constexpr size_t kLoadBytes = 5000;    // by its constructor function (malloc)
inline constexpr size_t kStaticBytes = 3000;  // by a C++ static object (new[])
// memdx_tracee_dl_keep.so: never unloaded, its block never freed.
inline constexpr size_t kKeepBytes = 6000;
// memdx_tracee_dl_deep.so, loaded with RTLD_DEEPBIND: its block never freed.
inline constexpr size_t kDeepBytes = 4000;
// memdx_tracee_dl_same_a.so and _b.so, one loaded after the other where the first was.
inline constexpr size_t kSameABytes = 7000;
inline constexpr size_t kSameBBytes = 9000;

}  // namespace memdx::tracee::dl
