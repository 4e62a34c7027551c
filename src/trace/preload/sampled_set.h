// Sampling mode (--sample-bytes): the addresses of the sampled allocations still live, so that
// only their frees are recorded. A lock-free open-addressed set; tombstones are reused.
#pragma once

#include <cstddef>

namespace memdx::trace {

// False when the set is full: the allocation is then not sampled.
bool sampled_set_insert(const void* address) noexcept;
// True when address was sampled (and is now removed).
bool sampled_set_erase(const void* address) noexcept;
size_t sampled_set_bytes() noexcept;

}  // namespace memdx::trace
