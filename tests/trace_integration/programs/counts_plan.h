// What memdx_tracee_counts allocates, shared by the program and the test that checks the trace:
// per thread, each named function makes a fixed number of allocations of fixed sizes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace memdx::tracee::counts {

constexpr int kThreads = 8;

constexpr int kKeepCount = 100;  // malloc, kept until exit
constexpr size_t kKeepBytes = 48;
constexpr int kTemporaryCount = 1000;  // malloc + free
constexpr size_t kTemporaryBytes = 64;
constexpr size_t kReallocStepBytes = 32;  // realloc(nullptr, 32), then 64, 96, ...; the last kept
constexpr int kReallocSteps = 20;         // reallocs after the first
constexpr int kReallocArraySteps = 5;     // reallocarray(p, i, 100) for i = 1..5; the last kept
constexpr size_t kReallocArrayMemberBytes = 100;
constexpr int kCallocCount = 50;  // calloc(10, 24), kept
constexpr size_t kCallocMembers = 10;
constexpr size_t kCallocMemberBytes = 24;
constexpr int kPosixMemalignCount = 30;  // posix_memalign(64, 200), kept
constexpr size_t kPosixMemalignBytes = 200;
constexpr int kAlignedAllocCount = 30;  // aligned_alloc(256, 512), kept
constexpr size_t kAlignedAllocBytes = 512;
constexpr int kLegacyCount = 10;  // memalign(128, 300), valloc(1000), pvalloc(5000) each, kept
constexpr size_t kMemalignBytes = 300;
constexpr size_t kVallocBytes = 1000;
constexpr size_t kPvallocBytes = 5000;  // the size asked for: pvalloc's page rounding is the allocator's
constexpr int kNewCount = 40;           // new Object (72 bytes) and new int[25], kept
constexpr size_t kObjectBytes = 72;
constexpr size_t kIntArrayLength = 25;
constexpr int kNewDeleteCount = 200;  // new Object / delete and new char[33] / delete[]
constexpr size_t kCharArrayLength = 33;
constexpr int kPeakCount = 64;  // malloc, held until every thread holds its own, then freed
constexpr size_t kPeakBytes = 4096;

struct SiteTotals {
  std::string_view function;  // as memdx reports it, demangled
  uint64_t allocations;
  uint64_t allocated_bytes;
  uint64_t final_live_bytes;
  uint64_t final_live_blocks;
};

constexpr uint64_t kT = kThreads;
constexpr uint64_t kReallocSum = kReallocStepBytes * (kReallocSteps + 1) * (kReallocSteps + 2) / 2;
constexpr uint64_t kReallocArraySum = kReallocArrayMemberBytes * kReallocArraySteps * (kReallocArraySteps + 1) / 2;
constexpr uint64_t kLegacyBytes = kMemalignBytes + kVallocBytes + kPvallocBytes;
constexpr uint64_t kNewBytes = kObjectBytes + kIntArrayLength * sizeof(int);

// Per process: kThreads threads each.
constexpr std::array<SiteTotals, 11> kSites = {{
    {"keep_blocks", kT* kKeepCount, kT* kKeepCount* kKeepBytes, kT* kKeepCount* kKeepBytes, kT* kKeepCount},
    {"temporary_blocks", kT* kTemporaryCount, kT* kTemporaryCount* kTemporaryBytes, 0, 0},
    {"grow_with_realloc", kT*(kReallocSteps + 1), kT* kReallocSum, kT* kReallocStepBytes*(kReallocSteps + 1), kT},
    {"grow_with_reallocarray", kT* kReallocArraySteps, kT* kReallocArraySum,
     kT* kReallocArrayMemberBytes* kReallocArraySteps, kT},
    {"zeroed_blocks", kT* kCallocCount, kT* kCallocCount* kCallocMembers* kCallocMemberBytes,
     kT* kCallocCount* kCallocMembers* kCallocMemberBytes, kT* kCallocCount},
    {"posix_memalign_blocks", kT* kPosixMemalignCount, kT* kPosixMemalignCount* kPosixMemalignBytes,
     kT* kPosixMemalignCount* kPosixMemalignBytes, kT* kPosixMemalignCount},
    {"aligned_alloc_blocks", kT* kAlignedAllocCount, kT* kAlignedAllocCount* kAlignedAllocBytes,
     kT* kAlignedAllocCount* kAlignedAllocBytes, kT* kAlignedAllocCount},
    {"legacy_aligned_blocks", kT* kLegacyCount * 3, kT* kLegacyCount* kLegacyBytes, kT* kLegacyCount* kLegacyBytes,
     kT* kLegacyCount * 3},
    {"new_objects(int)", kT* kNewCount * 2, kT* kNewCount* kNewBytes, kT* kNewCount* kNewBytes, kT* kNewCount * 2},
    {"new_delete_pairs(int)", kT* kNewDeleteCount * 2, kT* kNewDeleteCount*(kObjectBytes + kCharArrayLength), 0, 0},
    {"peak_blocks", kT* kPeakCount, kT* kPeakCount* kPeakBytes, 0, 0},
}};
// peak_blocks' own peak: every thread holds all its blocks at once.
constexpr uint64_t kPeakSiteBytes = kT * kPeakCount * kPeakBytes;

constexpr uint64_t kept_bytes() {
  uint64_t sum = 0;
  for (const SiteTotals& site : kSites) sum += site.final_live_bytes;
  return sum;
}
// Everything kept is allocated before the peak blocks, and nothing else is live then.
constexpr uint64_t kExpectedPeakBytes = kept_bytes() + kPeakSiteBytes;

}  // namespace memdx::tracee::counts
