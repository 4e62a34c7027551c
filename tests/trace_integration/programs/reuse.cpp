// memdx_tracee_reuse: threads whose events reach the recording far out of seq order, so that
// only an exact replay of the trace gives the right figures.
//
//   reuse  Thread A frees a 4,000 B block and goes idle, its free still in its tracer buffer;
//          thread B at once gets the same address (one malloc arena for both, and the block
//          was the last before the heap's top), keeps it to the end, and makes 400,000 more
//          events. Prints "reused 1" when B's block had A's address. Truth: B's block is live
//          at the end, A's was freed.
//   many   Eight threads pass blocks to each other through mailboxes: each allocates a round of
//          blocks, hands them to the next thread, frees the round it was handed, and between
//          rounds either makes a burst of 150,000 events or sleeps 150 ms holding its buffer.
//          Every thread keeps its last round; the main thread frees what is left in the
//          mailboxes. Prints "many done".
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <thread>
#include <vector>

#include "tracee_common.h"

using memdx::tracee::escape;
using memdx::tracee::say;

namespace {

constexpr size_t kBlockBytes = 4000;

std::atomic<void*> freed_by_a{nullptr};
std::atomic<bool> a_freed{false};
std::atomic<bool> b_ready{false};
void* kept_by_b = nullptr;

}  // namespace

extern "C" {

__attribute__((noinline)) void* a_alloc() {
  void* block = std::malloc(kBlockBytes);  // site: a_alloc
  escape(block);                           // not a tail call: the function stays on the stack
  return block;
}

__attribute__((noinline)) void* b_alloc() {
  void* block = std::malloc(kBlockBytes);  // site: b_alloc
  escape(block);                           // not a tail call: the function stays on the stack
  return block;
}

__attribute__((noinline)) void churn(int pairs) {
  for (int i = 0; i < pairs; ++i) {
    void* block = std::malloc(32);  // site: churn
    escape(block);
    std::free(block);
  }
}

__attribute__((noinline)) void* round_alloc(size_t bytes) {
  void* block = std::malloc(bytes);  // site: round_alloc
  escape(block);
  return block;
}

}  // extern "C"

namespace {

int run_reuse() {
  // One arena for every thread: a block of 4,000 B (too big for the per-thread caches) freed by
  // A is the block malloc gives B next.
  mallopt(M_ARENA_MAX, 1);
  // Each thread's first allocations (malloc's per-thread cache, the tracer's buffer) are made
  // before A's block, so that nothing lies between A's block and the top of the heap: freed, it
  // goes back to the top, and B's next block of the same size starts at the same address.
  std::thread a([] {
    churn(10);
    while (!b_ready) std::this_thread::yield();
    void* block = a_alloc();
    freed_by_a = block;
    std::free(block);
    a_freed = true;
    // Idle: the free waits in A's buffer until the tracer's flusher sends it.
    timespec pause{1, 0};
    ::nanosleep(&pause, nullptr);
  });
  std::thread b([] {
    churn(10);
    b_ready = true;
    while (!a_freed) std::this_thread::yield();
    kept_by_b = b_alloc();
    churn(200'000);
  });
  a.join();
  b.join();
  char line[64];
  std::snprintf(line, sizeof(line), "reused %d", kept_by_b == freed_by_a.load() ? 1 : 0);
  say(line);
  return 0;
}

constexpr int kThreads = 8;
constexpr int kRounds = 6;
constexpr int kBlocksPerRound = 500;

struct Mailbox {
  pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  std::vector<void*> blocks;  // reserved up front: the vector itself does not allocate later
};
Mailbox mailboxes[kThreads];
std::vector<void*> kept_rounds[kThreads];

void many_thread(int t) {
  std::vector<void*> round;
  round.reserve(kBlocksPerRound);
  std::vector<void*> handed;
  handed.reserve(kBlocksPerRound * kRounds);
  for (int r = 0; r < kRounds; ++r) {
    round.clear();
    for (int i = 0; i < kBlocksPerRound; ++i) round.push_back(round_alloc(static_cast<size_t>(16 + (t * 7 + i) % 200)));
    if (r + 1 == kRounds) {
      kept_rounds[t] = round;  // allocates once: the last round is kept to the end
      break;
    }
    Mailbox& next = mailboxes[(t + 1) % kThreads];
    pthread_mutex_lock(&next.lock);
    next.blocks.insert(next.blocks.end(), round.begin(), round.end());
    pthread_mutex_unlock(&next.lock);
    Mailbox& mine = mailboxes[t];
    pthread_mutex_lock(&mine.lock);
    handed.assign(mine.blocks.begin(), mine.blocks.end());
    mine.blocks.clear();
    pthread_mutex_unlock(&mine.lock);
    for (void* block : handed) std::free(block);
    if ((t + r) % 2 == 0) {
      churn(75'000);
    } else {
      timespec pause{0, 150'000'000};
      ::nanosleep(&pause, nullptr);
    }
  }
}

int run_many() {
  for (Mailbox& box : mailboxes) box.blocks.reserve(kBlocksPerRound * kRounds);
  for (auto& kept : kept_rounds) kept.reserve(kBlocksPerRound);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(many_thread, t);
  for (std::thread& thread : threads) thread.join();
  // What was handed over after its receiver's last round: freed by yet another thread.
  for (Mailbox& box : mailboxes) {
    for (void* block : box.blocks) std::free(block);
    box.blocks.clear();
  }
  say("many done");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "reuse") == 0) return run_reuse();
  if (argc > 1 && std::strcmp(argv[1], "many") == 0) return run_many();
  std::fprintf(stderr, "usage: %s reuse|many\n", argv[0]);
  return 2;
}
