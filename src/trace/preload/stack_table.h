// Deduplicates stacks in the target: a stack's frames go out once, with an id; each event then
// carries only the id. Lock-free, so threads never wait on one another to look a stack up.
#pragma once

#include <cstddef>
#include <cstdint>

namespace memdx::trace {

struct StackLookup {
  uint32_t id;
  bool define;  // true: the caller writes the frames out before its first use of id
};

// 64-bit hash of a stack. Collisions would merge two stacks; at 2^-64 per pair they are left
// to chance, as the table never stores the frames themselves.
uint64_t hash_stack(const uintptr_t* frames, size_t depth) noexcept;

// The id of a stack by its hash. A stack seen for the first time in this stream (or whose
// entry another thread is still writing, or when the table is full) is returned with
// define = true. Returns define = true and a fresh id each time once the table is full; the
// first such call sets *became_full.
StackLookup lookup_stack(uint64_t hash, bool* became_full) noexcept;

// A library was unloaded: from now on every stack gets a new id, defined anew, even one whose
// return addresses equal a stack recorded before (another library may now be mapped there). The
// entries of earlier epochs stay in the table, unreachable, until it fills.
void stack_table_new_epoch() noexcept;

// A forked child starts a new stream: every stack must be defined again in it, under the same
// ids (the table is kept, only marked as not yet defined in this stream).
void stack_table_new_stream() noexcept;

// Bytes of the table's memory touched so far (an upper bound), for the tracer's own footprint.
size_t stack_table_bytes() noexcept;

}  // namespace memdx::trace
