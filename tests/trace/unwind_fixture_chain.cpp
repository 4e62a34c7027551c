// Call chains for the unwinder's tests, built with -O2 -fomit-frame-pointer -fno-inline
// -fno-optimize-sibling-calls and no sanitizers (tests/trace/CMakeLists.txt): unwinding them
// needs their CFI. Each function of the fixed chain has a different frame shape, so that the
// chain covers the CFA rules GCC emits on x86_64.
#include <alloca.h>

#include <algorithm>
#include <cstdint>

#include "trace/unwind_fixture.h"

namespace {

using ChainFn = size_t (*)(UnwindLeafFn, void*);

// Keeps value in a register and opaque to the optimizer.
template <typename T>
__attribute__((always_inline)) inline void opaque(T& value) {
  asm volatile("" : "+r"(value));
}

extern "C" {
size_t unwind_chain_0(UnwindLeafFn leaf, void* context);
size_t unwind_chain_1(UnwindLeafFn leaf, void* context);
size_t unwind_chain_2(UnwindLeafFn leaf, void* context);
size_t unwind_chain_3(UnwindLeafFn leaf, void* context);
size_t unwind_chain_4(UnwindLeafFn leaf, void* context);
size_t unwind_chain_5(UnwindLeafFn leaf, void* context);
size_t unwind_chain_6(UnwindLeafFn leaf, void* context);
size_t unwind_chain_7(UnwindLeafFn leaf, void* context);
size_t unwind_chain_8(UnwindLeafFn leaf, void* context, long a, long b, long c, long d, long e, long f);
size_t unwind_chain_9(UnwindLeafFn leaf, void* context);
size_t unwind_chain_10(UnwindLeafFn leaf, void* context);
size_t unwind_chain_11(UnwindLeafFn leaf, void* context);
}

}  // namespace

extern "C" {

// A plain frame: RSP-based CFA, small fixed offset.
__attribute__((noinline)) size_t unwind_chain_0(UnwindLeafFn leaf, void* context) {
  size_t result = unwind_chain_1(leaf, context);
  opaque(result);
  return result + 1;
}

// A large frame: the CFA offset needs a multi-byte uleb128.
__attribute__((noinline)) size_t unwind_chain_1(UnwindLeafFn leaf, void* context) {
  volatile char buffer[8192];
  buffer[0] = 1;
  size_t result = unwind_chain_2(leaf, context);
  opaque(result);
  return result + buffer[0];
}

// alloca of a run-time size forces RBP as frame pointer even with -fomit-frame-pointer:
// the CFA is RBP + 16 at the call.
__attribute__((noinline)) size_t unwind_chain_2(UnwindLeafFn leaf, void* context) {
  uintptr_t size_bytes = 32 + (reinterpret_cast<uintptr_t>(context) & 0x70);
  opaque(size_bytes);
  auto* scratch = static_cast<volatile char*>(alloca(size_bytes));
  scratch[0] = 2;
  size_t result = unwind_chain_3(leaf, context);
  opaque(result);
  return result + static_cast<size_t>(scratch[0]);
}

// Saves RBP as an ordinary callee-saved register and puts garbage in it while calling on: the
// caller above (unwind_chain_2) needs the saved value, recovered from the CFI's rule for RBP.
__attribute__((noinline)) size_t unwind_chain_3(UnwindLeafFn leaf, void* context) {
  asm volatile("movq $0x2bad, %%rbp" ::: "rbp");
  size_t result = unwind_chain_4(leaf, context);
  opaque(result);
  return result + 1;
}

// Many values live across the call: pushes of RBX, RBP, R12-R15 before it.
__attribute__((noinline)) size_t unwind_chain_4(UnwindLeafFn leaf, void* context) {
  auto a = reinterpret_cast<uintptr_t>(context);
  uintptr_t b = a ^ 7, c = a + 11, d = a * 5, e = a ^ 0x55, f = a + 3;
  asm volatile("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d), "+r"(e), "+r"(f));
  size_t result = unwind_chain_5(leaf, context);
  asm volatile("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d), "+r"(e), "+r"(f));
  return result + ((a ^ b ^ c ^ d ^ e ^ f) == 1 ? 1 : 0);
}

// An early return after the prologue: the CFI gets DW_CFA_remember_state / restore_state
// around the first epilogue, and the call lies after the restore.
__attribute__((noinline)) size_t unwind_chain_5(UnwindLeafFn leaf, void* context) {
  auto a = reinterpret_cast<uintptr_t>(context);
  uintptr_t b = a * 9;
  asm volatile("" : "+r"(a), "+r"(b));
  // Claimed likely so that GCC lays out this return (and its epilogue) before the call.
  if (__builtin_expect(a == 1, 1)) return b;  // never true: context is a pointer
  size_t result = unwind_chain_6(leaf, context);
  asm volatile("" : "+r"(a), "+r"(b));
  return result + (a == b ? 1 : 0);
}

// An over-aligned local: the stack is realigned, with RBP as frame pointer.
__attribute__((noinline)) size_t unwind_chain_6(UnwindLeafFn leaf, void* context) {
  alignas(64) volatile char aligned[64];
  aligned[0] = 1;
  size_t result = unwind_chain_7(leaf, context);
  opaque(result);
  return result + aligned[0];
}

// Passes arguments on the stack: the CFA offset changes around the call (pushes).
__attribute__((noinline)) size_t unwind_chain_7(UnwindLeafFn leaf, void* context) {
  long x = 5;
  opaque(x);
  size_t result = unwind_chain_8(leaf, context, x, x + 1, x + 2, x + 3, x + 4, x + 5);
  opaque(result);
  return result + 1;
}

__attribute__((noinline)) size_t unwind_chain_8(UnwindLeafFn leaf, void* context, long a, long b, long c, long d,
                                                long e, long f) {
  size_t result = unwind_chain_9(leaf, context);
  opaque(result);
  return result + static_cast<size_t>(a + b + c + d + e + f);
}

// A frame that only realigns the stack for the call.
__attribute__((noinline)) size_t unwind_chain_9(UnwindLeafFn leaf, void* context) {
  size_t result = unwind_chain_10(leaf, context);
  opaque(result);
  return result;
}

// A frame over 64 KiB.
__attribute__((noinline)) size_t unwind_chain_10(UnwindLeafFn leaf, void* context) {
  volatile char buffer[70000];
  buffer[0] = 1;
  size_t result = unwind_chain_11(leaf, context);
  opaque(result);
  return result + buffer[0];
}

// Calls the leaf through a pointer.
__attribute__((noinline)) size_t unwind_chain_11(UnwindLeafFn leaf, void* context) {
  opaque(leaf);
  size_t result = leaf(context);
  opaque(result);
  return result;
}

__attribute__((noinline)) size_t unwind_fixture_chain_from(int first, UnwindLeafFn leaf, void* context) {
  static constexpr ChainFn kChain[] = {unwind_chain_0, unwind_chain_1, unwind_chain_2,  unwind_chain_3,
                                       unwind_chain_4, unwind_chain_5, unwind_chain_6,  unwind_chain_7,
                                       nullptr,        unwind_chain_9, unwind_chain_10, unwind_chain_11};
  static_assert(sizeof(kChain) / sizeof(kChain[0]) == kUnwindChainLength);
  size_t result = 0;
  if (first == 8) {  // the one with stack arguments
    result = unwind_chain_8(leaf, context, 1, 2, 3, 4, 5, 6);
  } else if (first >= 0 && first < kUnwindChainLength) {
    result = kChain[first](leaf, context);
  }
  opaque(result);
  return result;
}

__attribute__((noinline)) size_t unwind_fixture_recurse(int depth, UnwindLeafFn leaf, void* context) {
  if (depth <= 0) return leaf(context);
  size_t result = unwind_fixture_recurse(depth - 1, leaf, context);
  opaque(result);  // keeps GCC from turning the recursion into a loop
  return result + 1;
}

__attribute__((noinline)) size_t unwind_fixture_std_sort(UnwindLeafFn leaf, void* context) {
  int values[64];
  for (int i = 0; i < 64; ++i) values[i] = (i * 37) % 64;
  size_t result = 0;
  bool called = false;
  std::sort(values, values + 64, [&](int left, int right) {
    if (!called) {
      called = true;
      result = leaf(context);
    }
    return left < right;
  });
  opaque(result);
  return result;
}

}  // extern "C"

// unwind_fixture_expression_cfa: CFA = DW_OP_breg7(RSP) + 16 while it calls the leaf, written
// as DW_CFA_def_cfa_expression (0x0f, block length 2, DW_OP_breg7 = 0x77, sleb128 16 = 0x10).
asm(R"(
  .text
  .globl unwind_fixture_expression_cfa
  .type unwind_fixture_expression_cfa, @function
unwind_fixture_expression_cfa:
  .cfi_startproc
  subq $8, %rsp
  .cfi_escape 0x0f, 0x02, 0x77, 0x10
  movq %rdi, %rax
  movq %rsi, %rdi
  call *%rax
  addq $8, %rsp
  .cfi_def_cfa %rsp, 8
  ret
  .cfi_endproc
  .size unwind_fixture_expression_cfa, .-unwind_fixture_expression_cfa
)");

extern "C" {

__attribute__((noinline)) size_t unwind_twin_middle(UnwindLeafFn leaf, void* context) {
  size_t result = leaf(context);
  opaque(result);
  return result;
}

__attribute__((noinline)) size_t unwind_twin_a(UnwindLeafFn leaf, void* context) {
  size_t result = unwind_twin_middle(leaf, context);
  opaque(result);
  return result;
}

__attribute__((noinline)) size_t unwind_twin_b(UnwindLeafFn leaf, void* context) {
  size_t result = unwind_twin_middle(leaf, context);
  opaque(result);
  return result;
}

__attribute__((noinline)) size_t unwind_fixture_twins(int which, UnwindLeafFn leaf, void* context) {
  size_t result = which == 0 ? unwind_twin_a(leaf, context) : unwind_twin_b(leaf, context);
  opaque(result);
  return result;
}
}
