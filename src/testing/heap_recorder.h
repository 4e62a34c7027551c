// The interface between libmemdx (memdx::testing::check_bounded, src/api/testing*.cpp) and the
// opt-in allocation recorder libmemdx_testing_heap.so (memdx::testing), which a test program links
// so that memory growth can be attributed to the code that allocated it.
//
// libmemdx never links the recorder: it looks up kHeapRecorderSymbol with dlsym(RTLD_DEFAULT)
// and works without it (numbers only, no sites). The name carries the version: a change to the
// table below gets a new name, so an old recorder is simply not found by a new libmemdx.
//
// Everything here is plain C types: the recorder is built without the C++ runtime's allocation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace memdx::testing {

inline constexpr const char* kHeapRecorderSymbol = "memdx_testing_heap_recorder_v1";
inline constexpr size_t kHeapRecorderMaxFrames = 32;

// One stack's live bytes now against the mark (HeapRecorder::mark).
struct HeapStackGrowth {
  uint32_t stack_id;
  int64_t growth_bytes;   // live bytes now - live bytes at the mark
  int64_t growth_blocks;  // live blocks now - live blocks at the mark
};

// The recorder's functions. All are thread-safe; none allocates through malloc. While armed the
// recorder unwinds every allocation of every thread (a few hundred ns each) and keeps, per
// distinct stack, the live bytes and blocks; disarmed, the malloc family only forwards to glibc.
struct HeapRecorder {
  // Forgets what an earlier arming recorded and starts recording. False when its tables cannot
  // be mapped (then it stays disarmed).
  bool (*arm)();
  void (*disarm)();
  // Remembers each stack's live bytes and blocks as the baseline of growth(), and restarts the
  // peak at the current net.
  void (*mark)();
  // Bytes allocated minus bytes freed since arm() (a block allocated before arm() counts its
  // usable size when freed, so this may go below zero), and the highest it reached since mark().
  int64_t (*net_bytes)();
  int64_t (*peak_net_bytes)();
  // The stacks whose live bytes grew since mark(), up to `capacity` of them, in no order; returns
  // how many it wrote.
  size_t (*growth)(HeapStackGrowth* out, size_t capacity);
  // The return addresses of a stack, innermost first (the caller of the malloc-family function
  // first); returns how many it wrote (0 for an unknown id).
  size_t (*stack)(uint32_t stack_id, uintptr_t* frames, size_t max_frames);
  // Allocations left unrecorded since arm() because a table was full: the sites are incomplete.
  uint64_t (*dropped)();
};

}  // namespace memdx::testing
