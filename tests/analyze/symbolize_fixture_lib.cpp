// A shared library built like release code (-O2, no frame pointers, -g) whose functions report
// the return addresses a stack unwinder would see, for symbolize_test.cpp. Each call under test
// passes its own __LINE__, so the expected lines follow the code when it is edited.
#include "analyze/symbolize_fixture.h"

namespace fixture {

// Stores after each call keep the optimiser from turning the calls into tail jumps, which would
// leave no return address inside the function under test.
volatile unsigned long g_sink = 0;

// noipa: neither inlined nor cloned, so its return address is always in its caller.
__attribute__((noipa)) uintptr_t address_after_call(int call_line, int* call_line_out) {
  *call_line_out = call_line;
  return reinterpret_cast<uintptr_t>(__builtin_return_address(0));
}

class Widget {
 public:
  uintptr_t grow(unsigned long by_bytes);
  int call_line = 0;

 private:
  unsigned long size_bytes_ = 0;
};

__attribute__((noinline)) uintptr_t Widget::grow(unsigned long by_bytes) {
  size_bytes_ += by_bytes;
  uintptr_t address = address_after_call(__LINE__, &call_line);
  g_sink = size_bytes_;
  return address;
}

static inline __attribute__((always_inline)) uintptr_t inner_step(unsigned long* counter, Capture* capture,
                                                                  int caller_line) {
  capture->inline_call_line = caller_line;
  *counter += 3;
  uintptr_t address = address_after_call(__LINE__, &capture->call_line);
  g_sink = *counter;
  return address;
}

__attribute__((noinline)) uintptr_t outer_run(unsigned long start, Capture* capture) {
  unsigned long counter = start;
  uintptr_t address = inner_step(&counter, capture, __LINE__);
  g_sink = counter;
  return address;
}

}  // namespace fixture

extern "C" void memdx_fixture_grow(fixture::Capture* capture) {
  fixture::Widget widget;
  capture->return_address = widget.grow(16);
  capture->call_line = widget.call_line;
  capture->inline_call_line = 0;
}

extern "C" void memdx_fixture_inlined(fixture::Capture* capture) {
  capture->return_address = fixture::outer_run(5, capture);
}
