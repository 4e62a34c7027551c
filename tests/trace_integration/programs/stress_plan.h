// Counts shared by memdx_tracee_stress, its plugin, the chain and spawn programs, and the test.
#pragma once

#include <cstddef>

namespace memdx::tracee::stress {

// "threads": kStressThreads threads start together; each makes kStressPerThread allocations of
// sizes 16 + (i % 8) * 16 in stress_blocks, freeing every other one.
constexpr int kStressThreads = 16;
constexpr int kStressPerThread = 5000;
constexpr size_t stress_size(int i) {
  return 16 + static_cast<size_t>(i % 8) * 16;
}

// "dlopen": the plugin's plugin_blocks keeps this many blocks of this size.
constexpr int kPluginBlocks = 37;
constexpr size_t kPluginBytes = 88;

// "signal": SIGUSR1 raised this many times; the handler keeps one block each time.
constexpr int kSignals = 25;
constexpr size_t kSignalBytes = 40;

// "exit-thread" and "abort": blocks kept by before_the_end before the process ends.
constexpr int kBeforeEndBlocks = 300;
constexpr size_t kBeforeEndBytes = 24;
constexpr int kExitThreadCode = 3;

// "sigkill": allocate_slowly allocates up to this many blocks, a few per millisecond.
constexpr int kSlowMaxBlocks = 20000;
constexpr size_t kSlowBytes = 32;

// The fork/exec chain: each image's named function keeps this many 100-byte blocks.
constexpr size_t kChainBytes = 100;
constexpr int kChainParentBlocks = 11;      // chain_parent_blocks, in the first image
constexpr int kChainBeforeExecBlocks = 7;   // chain_before_exec_blocks, in its forked child
constexpr int kChainExecImageBlocks = 13;   // chain_exec_image_blocks, in the image the child execs
constexpr int kChainGrandchildBlocks = 17;  // chain_grandchild_blocks, in that image's forked child

// memdx_tracee_leaf: leaf_blocks keeps this many 56-byte blocks.
constexpr int kLeafBlocks = 19;
constexpr size_t kLeafBytes = 56;

// memdx_tracee_ctorlib.so: its ELF constructor keeps this many blocks in ctor_lib_blocks,
// before main of memdx_tracee_ctor, which keeps kCtorMainBlocks in ctor_main_blocks.
constexpr int kCtorLibBlocks = 9;
constexpr size_t kCtorLibBytes = 12345;
constexpr int kCtorMainBlocks = 4;
constexpr size_t kCtorMainBytes = 777;

// "allocator-names": program functions whose names begin like the allocator's own, each
// keeping kNamedBlocks blocks of kNamedBytes.
constexpr int kNamedBlocks = 6;
constexpr size_t kNamedBytes = 144;

}  // namespace memdx::tracee::stress
