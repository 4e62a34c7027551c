// The interface between symbolize_test.cpp and the fixture library it dlopens: entry points that
// capture real return addresses from optimised code, with the source lines those must resolve to.
#pragma once

#include <cstdint>

namespace fixture {

struct Capture {
  uintptr_t return_address = 0;  // just after a call instruction in the fixture
  int call_line = 0;             // the line of that call
  int inline_call_line = 0;      // where the inlined function holding the call was called; 0 if none
};

}  // namespace fixture

// Looked up with dlsym, hence unmangled names.
extern "C" {
// The return address is inside fixture::Widget::grow(unsigned long), a real (noinline) function.
void memdx_fixture_grow(fixture::Capture* capture);
// The return address is inside an always_inline function inlined into fixture::outer_run.
void memdx_fixture_inlined(fixture::Capture* capture);
}
