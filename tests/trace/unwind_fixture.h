#pragma once
// Call chains for the unwinder's tests and benchmark, compiled without frame pointers (see
// tests/trace/CMakeLists.txt), so that unwinding them needs the CFI.
#include <cstddef>

extern "C" {

// The function at the bottom of a chain; its result is passed back up.
using UnwindLeafFn = size_t (*)(void* context);

// Number of functions in the fixed chain below.
inline constexpr int kUnwindChainLength = 12;

// Enters a chain of 12 distinct functions with different frame shapes (large frames, alloca
// with an RBP-based CFA, RBP clobbered with garbage and saved, many callee-saved registers,
// a 64-byte-aligned local, several epilogues) at function `first` (0..11), so the chain below
// the caller is kUnwindChainLength - first frames deep, then calls leaf(context).
size_t unwind_fixture_chain_from(int first, UnwindLeafFn leaf, void* context);

// Recurses `depth` levels (one frame each), then calls leaf(context).
size_t unwind_fixture_recurse(int depth, UnwindLeafFn leaf, void* context);

// std::sort of 64 integers with a comparator that calls leaf(context) on its first call only.
size_t unwind_fixture_std_sort(UnwindLeafFn leaf, void* context);

// A hand-written function whose CFA is a DWARF expression (equal to RSP+16 while it calls
// leaf): libgcc can unwind through it, memdx's unwinder stops there by design.
size_t unwind_fixture_expression_cfa(UnwindLeafFn leaf, void* context);

// Calls leaf(context) through unwind_twin_middle from unwind_twin_a (which = 0) or unwind_twin_b
// (which = 1): two functions with identical frames, so the leaf runs with the same registers
// and stack pointer either way and only the return address one level further out differs.
size_t unwind_fixture_twins(int which, UnwindLeafFn leaf, void* context);

// In the dlopen'ed fixture modules: a chain of three functions, then leaf(context).
size_t unwind_fixture_dso_chain(UnwindLeafFn leaf, void* context);
}
