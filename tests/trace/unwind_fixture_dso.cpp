// The dlopen'ed fixture modules (tests/trace/CMakeLists.txt builds this twice, as two modules
// with different UNWIND_DSO_PAD_BYTES): a chain of three frame-pointer-less functions. Both
// builds have the same code layout and differ only in their frame sizes, so when the second
// module is mapped where the first was, rules cached for the first would unwind it wrongly.
#include <cstdint>

#include "trace/unwind_fixture.h"

#ifndef UNWIND_DSO_PAD_BYTES
#error "UNWIND_DSO_PAD_BYTES must be defined"
#endif

namespace {

template <typename T>
__attribute__((always_inline)) inline void opaque(T& value) {
  asm volatile("" : "+r"(value));
}

__attribute__((noinline)) size_t dso_level_2(UnwindLeafFn leaf, void* context) {
  volatile char pad[UNWIND_DSO_PAD_BYTES];
  pad[0] = 1;
  size_t result = leaf(context);
  opaque(result);
  return result + static_cast<size_t>(pad[0]);
}

__attribute__((noinline)) size_t dso_level_1(UnwindLeafFn leaf, void* context) {
  volatile char pad[UNWIND_DSO_PAD_BYTES];
  pad[0] = 1;
  size_t result = dso_level_2(leaf, context);
  opaque(result);
  return result + static_cast<size_t>(pad[0]);
}

}  // namespace

extern "C" __attribute__((visibility("default"), noinline)) size_t unwind_fixture_dso_chain(UnwindLeafFn leaf,
                                                                                            void* context) {
  volatile char pad[UNWIND_DSO_PAD_BYTES];
  pad[0] = 1;
  size_t result = dso_level_1(leaf, context);
  opaque(result);
  return result + static_cast<size_t>(pad[0]);
}
