// libmemdx_testing_heap.so: the malloc family, defined here so that a test program linking this
// library (before libc, as every DT_NEEDED library is) allocates through it. Each function
// forwards to glibc's own (__libc_malloc and its siblings, exported for exactly this purpose);
// while the recorder is armed it also records each live block with the stack that allocated it,
// so that memdx::testing::check_bounded can name the code that holds growing memory.
//
// The rules of the injected tracer hold here too: a thread-local guard checked first, no
// allocation through malloc (the tables are mmap'd), no exceptions, no C++ runtime, the stack
// unwound (memdx_trace_unwind) before the lock is taken. One mutex serialises the tables: the
// recorder is armed only while a check runs, in a test, where simplicity beats throughput.
#include "testing/heap_recorder.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>

#include "trace/preload/unwind.h"

// glibc's own allocation functions, which it exports for allocators that stand in front of it.
// NOLINTBEGIN(bugprone-reserved-identifier): their names are glibc's
extern "C" {
void* __libc_malloc(size_t size);
void __libc_free(void* ptr);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* ptr, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void* __libc_valloc(size_t size);
void* __libc_pvalloc(size_t size);
}
// NOLINTEND(bugprone-reserved-identifier)

#define MEMDX_EXPORT extern "C" __attribute__((visibility("default")))

namespace memdx::testing {
namespace {

// Live blocks: open addressing with linear probing, address 0 marks a free slot; 2^18 slots of
// 24 bytes (6 MiB of address space, touched where blocks land), filled to three quarters at most.
constexpr unsigned kBlockBits = 18;
constexpr size_t kBlockSlots = size_t{1} << kBlockBits;
constexpr size_t kMaxBlocks = kBlockSlots / 4 * 3;
// Distinct stacks: dense records by id, found through a hash index twice their number.
constexpr size_t kMaxStacks = size_t{1} << 14;
constexpr size_t kStackSlots = kMaxStacks * 2;

struct Block {
  uintptr_t address;
  uint64_t size;
  uint32_t stack_id;
};

struct StackIndexSlot {
  uint64_t hash;  // 0: free
  uint32_t stack_id;
};

struct StackRecord {
  uint32_t depth;
  int64_t live_bytes, live_blocks;
  int64_t mark_bytes, mark_blocks;
  uintptr_t frames[kHeapRecorderMaxFrames];
};

struct Tables {
  Block* blocks;
  StackIndexSlot* index;
  StackRecord* stacks;
};
constexpr size_t kTablesBytes =
    kBlockSlots * sizeof(Block) + kStackSlots * sizeof(StackIndexSlot) + kMaxStacks * sizeof(StackRecord);

pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
std::atomic<bool> armed{false};
// Guarded by table_lock.
void* tables_memory = nullptr;
Tables tables{};
size_t block_count = 0;
uint32_t stack_count = 0;
int64_t net_bytes_now = 0;
int64_t peak_bytes = 0;
uint64_t dropped_count = 0;

// Initial-exec: a thread's first access neither allocates nor locks (the library is loaded at
// start-up, as a DT_NEEDED dependency, so it has static TLS).
__attribute__((tls_model("initial-exec"))) thread_local bool in_recorder = false;

class Locked {
 public:
  Locked() noexcept { pthread_mutex_lock(&table_lock); }
  ~Locked() { pthread_mutex_unlock(&table_lock); }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;
};

size_t block_home(uintptr_t address) noexcept {
  // Fibonacci hashing: the top bits of the product, blocks being at least 16-byte aligned.
  return static_cast<size_t>(((address >> 4) * 0x9e3779b97f4a7c15ull) >> (64 - kBlockBits));
}

uint64_t hash_frames(const uintptr_t* frames, size_t depth) noexcept {
  uint64_t hash = 0xcbf29ce484222325ull ^ depth;
  for (size_t i = 0; i < depth; ++i) {
    hash = (hash ^ frames[i]) * 0xff51afd7ed558ccdull;
    hash ^= hash >> 29;
  }
  return hash | 1;  // never 0, the free slot
}

// The id of the stack (1-based), added when new; 0 when the stack table is full.
uint32_t intern_stack(const uintptr_t* frames, size_t depth) noexcept {
  uint64_t hash = hash_frames(frames, depth);
  for (size_t i = hash & (kStackSlots - 1);; i = (i + 1) & (kStackSlots - 1)) {
    StackIndexSlot& slot = tables.index[i];
    if (slot.hash == 0) {
      if (stack_count == kMaxStacks) return 0;
      StackRecord& record = tables.stacks[stack_count];
      record.depth = static_cast<uint32_t>(depth);
      std::memcpy(record.frames, frames, depth * sizeof(uintptr_t));
      slot.hash = hash;
      slot.stack_id = ++stack_count;
      return slot.stack_id;
    }
    if (slot.hash != hash) continue;
    const StackRecord& record = tables.stacks[slot.stack_id - 1];
    if (record.depth == depth && std::memcmp(record.frames, frames, depth * sizeof(uintptr_t)) == 0)
      return slot.stack_id;
  }
}

void add_net(int64_t bytes) noexcept {
  net_bytes_now += bytes;
  if (net_bytes_now > peak_bytes) peak_bytes = net_bytes_now;
}

void count_on_stack(uint32_t stack_id, int64_t bytes, int64_t blocks) noexcept {
  StackRecord& record = tables.stacks[stack_id - 1];
  record.live_bytes += bytes;
  record.live_blocks += blocks;
}

// The slot holding `address`, or kBlockSlots.
size_t find_block(uintptr_t address) noexcept {
  for (size_t i = block_home(address);; i = (i + 1) & (kBlockSlots - 1)) {
    if (tables.blocks[i].address == address) return i;
    if (tables.blocks[i].address == 0) return kBlockSlots;
  }
}

// Backward-shift deletion: later blocks of the same probe run move up, so lookups never need
// tombstones.
void erase_slot(size_t hole) noexcept {
  for (size_t next = (hole + 1) & (kBlockSlots - 1); tables.blocks[next].address != 0;
       next = (next + 1) & (kBlockSlots - 1)) {
    size_t home = block_home(tables.blocks[next].address);
    bool between = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next);
    if (between) continue;
    tables.blocks[hole] = tables.blocks[next];
    hole = next;
  }
  tables.blocks[hole].address = 0;
  --block_count;
}

// Forgets a block; false when it was not recorded.
bool forget_block(uintptr_t address) noexcept {
  size_t slot = find_block(address);
  if (slot == kBlockSlots) return false;
  const Block& block = tables.blocks[slot];
  count_on_stack(block.stack_id, -static_cast<int64_t>(block.size), -1);
  add_net(-static_cast<int64_t>(block.size));
  erase_slot(slot);
  return true;
}

void remember_block(uintptr_t address, uint64_t size, const uintptr_t* frames, size_t depth) noexcept {
  // An address still recorded was freed by a path the recorder did not see: the block is gone.
  forget_block(address);
  add_net(static_cast<int64_t>(size));
  uint32_t stack_id = block_count < kMaxBlocks ? intern_stack(frames, depth) : 0;
  if (stack_id == 0) {
    ++dropped_count;
    return;
  }
  size_t slot = block_home(address);
  while (tables.blocks[slot].address != 0) slot = (slot + 1) & (kBlockSlots - 1);
  tables.blocks[slot] = Block{address, size, stack_id};
  ++block_count;
  count_on_stack(stack_id, static_cast<int64_t>(size), 1);
}

// Out of line, so that the unwinder skips exactly this function and the hook above it: the
// first frame recorded is in the code that called the malloc-family function.
__attribute__((noinline)) void note_alloc(void* ptr, size_t size) noexcept {
  if (!ptr || in_recorder) return;
  in_recorder = true;
  uintptr_t frames[kHeapRecorderMaxFrames];
  size_t depth = memdx::trace::capture_stack(frames, kHeapRecorderMaxFrames, 2);
  {
    Locked locked;
    if (armed.load(std::memory_order_relaxed)) remember_block(reinterpret_cast<uintptr_t>(ptr), size, frames, depth);
  }
  in_recorder = false;
}

// Before the block is given back: its usable size is read when it was not recorded.
void note_free(void* ptr) noexcept {
  if (!ptr || in_recorder) return;
  in_recorder = true;
  {
    Locked locked;
    if (armed.load(std::memory_order_relaxed) && !forget_block(reinterpret_cast<uintptr_t>(ptr))) {
      add_net(-static_cast<int64_t>(malloc_usable_size(ptr)));
    }
  }
  in_recorder = false;
}

bool recording() noexcept {
  return armed.load(std::memory_order_relaxed);
}

// The tables, mapped afresh (zero pages, nothing resident until used).
bool map_tables() noexcept {
  if (tables_memory) munmap(tables_memory, kTablesBytes);
  tables_memory = nullptr;
  void* memory =
      mmap(nullptr, kTablesBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (memory == MAP_FAILED) return false;
  tables_memory = memory;
  auto* bytes = static_cast<unsigned char*>(memory);
  tables.blocks = reinterpret_cast<Block*>(bytes);
  tables.index = reinterpret_cast<StackIndexSlot*>(bytes + kBlockSlots * sizeof(Block));
  tables.stacks =
      reinterpret_cast<StackRecord*>(bytes + kBlockSlots * sizeof(Block) + kStackSlots * sizeof(StackIndexSlot));
  return true;
}

bool arm() {
  in_recorder = true;
  bool mapped = false;
  {
    Locked locked;
    armed.store(false, std::memory_order_relaxed);
    mapped = map_tables();
    block_count = 0;
    stack_count = 0;
    net_bytes_now = peak_bytes = 0;
    dropped_count = 0;
    armed.store(mapped, std::memory_order_relaxed);
  }
  in_recorder = false;
  return mapped;
}

void disarm() {
  Locked locked;
  armed.store(false, std::memory_order_relaxed);
}

void mark() {
  Locked locked;
  if (!tables_memory) return;
  for (uint32_t i = 0; i < stack_count; ++i) {
    tables.stacks[i].mark_bytes = tables.stacks[i].live_bytes;
    tables.stacks[i].mark_blocks = tables.stacks[i].live_blocks;
  }
  peak_bytes = net_bytes_now;
}

int64_t net_bytes() {
  Locked locked;
  return net_bytes_now;
}

int64_t peak_net_bytes() {
  Locked locked;
  return peak_bytes;
}

size_t growth(HeapStackGrowth* out, size_t capacity) {
  Locked locked;
  size_t written = 0;
  if (!tables_memory) return 0;
  for (uint32_t i = 0; i < stack_count && written < capacity; ++i) {
    const StackRecord& record = tables.stacks[i];
    int64_t grown = record.live_bytes - record.mark_bytes;
    if (grown > 0) out[written++] = HeapStackGrowth{i + 1, grown, record.live_blocks - record.mark_blocks};
  }
  return written;
}

size_t stack(uint32_t stack_id, uintptr_t* frames, size_t max_frames) {
  Locked locked;
  if (!tables_memory || stack_id == 0 || stack_id > stack_count) return 0;
  const StackRecord& record = tables.stacks[stack_id - 1];
  size_t depth = record.depth < max_frames ? record.depth : max_frames;
  std::memcpy(frames, record.frames, depth * sizeof(uintptr_t));
  return depth;
}

uint64_t dropped() {
  Locked locked;
  return dropped_count;
}

constexpr HeapRecorder kRecorder{arm, disarm, mark, net_bytes, peak_net_bytes, growth, stack, dropped};

// A fork while another thread holds the lock would leave it locked forever in the child.
void before_fork() {
  pthread_mutex_lock(&table_lock);
}
void after_fork_parent() {
  pthread_mutex_unlock(&table_lock);
}
void after_fork_child() {
  pthread_mutex_unlock(&table_lock);
  memdx::trace::unwind_after_fork_child();
}

__attribute__((constructor)) void install_fork_handlers() {
  pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

// realloc and reallocarray. The old block is forgotten before glibc releases it: once released,
// another thread may be given its address and record it, which a later forget would erase. A
// realloc that fails (out of memory) thus leaves its block unrecorded: it leaves the sites, not
// the heap figures.
__attribute__((always_inline)) inline void* reallocate(void* ptr, size_t size) {
  if (!recording()) return __libc_realloc(ptr, size);
  note_free(ptr);
  void* moved = __libc_realloc(ptr, size);
  note_alloc(moved, size);
  return moved;
}

}  // namespace
}  // namespace memdx::testing

using memdx::testing::note_alloc;
using memdx::testing::note_free;
using memdx::testing::recording;

MEMDX_EXPORT const memdx::testing::HeapRecorder* memdx_testing_heap_recorder_v1() {
  return &memdx::testing::kRecorder;
}

MEMDX_EXPORT void* malloc(size_t size) {
  void* ptr = __libc_malloc(size);
  if (recording()) note_alloc(ptr, size);
  return ptr;
}

MEMDX_EXPORT void free(void* ptr) {
  if (recording()) note_free(ptr);
  __libc_free(ptr);
}

MEMDX_EXPORT void* calloc(size_t count, size_t size) {
  void* ptr = __libc_calloc(count, size);
  if (recording()) note_alloc(ptr, count * size);
  return ptr;
}

MEMDX_EXPORT void* realloc(void* ptr, size_t size) {
  return memdx::testing::reallocate(ptr, size);
}

MEMDX_EXPORT void* reallocarray(void* ptr, size_t count, size_t size) {
  size_t bytes = 0;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return memdx::testing::reallocate(ptr, bytes);
}

MEMDX_EXPORT void* memalign(size_t alignment, size_t size) {
  void* ptr = __libc_memalign(alignment, size);
  if (recording()) note_alloc(ptr, size);
  return ptr;
}

MEMDX_EXPORT void* aligned_alloc(size_t alignment, size_t size) {
  void* ptr = __libc_memalign(alignment, size);
  if (recording()) note_alloc(ptr, size);
  return ptr;
}

MEMDX_EXPORT int posix_memalign(void** out, size_t alignment, size_t size) {
  if (alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0 || alignment == 0) return EINVAL;
  void* ptr = __libc_memalign(alignment, size);
  if (!ptr) return ENOMEM;
  if (recording()) note_alloc(ptr, size);
  *out = ptr;
  return 0;
}

MEMDX_EXPORT void* valloc(size_t size) {
  void* ptr = __libc_valloc(size);
  if (recording()) note_alloc(ptr, size);
  return ptr;
}

MEMDX_EXPORT void* pvalloc(size_t size) {
  void* ptr = __libc_pvalloc(size);
  if (recording()) note_alloc(ptr, size);
  return ptr;
}
