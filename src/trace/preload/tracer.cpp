#include "trace/preload/tracer.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "trace/preload/exec_environment.h"
#include "trace/preload/flusher.h"
#include "trace/preload/modules.h"
#include "trace/preload/raw_syscall.h"
#include "trace/preload/real.h"
#include "trace/preload/sampled_set.h"
#include "trace/preload/stack_table.h"
#include "trace/preload/stream.h"
#include "trace/preload/thread_log.h"
#include "trace/preload/unwind.h"

namespace memdx::trace {

__thread bool in_tracer __attribute__((tls_model("initial-exec"))) = false;
std::atomic<bool> tracing{false};

namespace {

// A thread checks the clock every this many events: often enough to flush a slow thread
// within about a tenth of a second, rarely enough to cost nothing on a busy one.
constexpr uint32_t kEventsPerClockCheck = 16;
constexpr uint64_t kFlushAgeNs = 100'000'000;
constexpr uint64_t kMarkerIntervalNs = 100'000'000;
// The frames of record_* and of the hook above the allocation's caller.
constexpr size_t kTracerFrames = 2;

struct Settings {
  StreamTarget target;
  uint64_t sample_bytes;
  uint32_t max_depth;
  char preload_path[4096];
};
Settings settings;

std::atomic<uint64_t> last_marker_ns{0};
std::atomic<bool> final_flush{false};  // after the library's destructor: flush every event
pthread_key_t thread_exit_key;
bool thread_exit_key_made = false;

// The ordering clock of events (wire.h). 64-cycle units keep the per-thread deltas to a byte
// or two at allocation rates that matter.
inline uint64_t sequence_now() noexcept {
#if defined(__x86_64__)
  return __builtin_ia32_rdtsc() >> 6;
#else
  return monotonic_ns() >> 3;
#endif
}

uint64_t read_env_u64(const char* name, uint64_t fallback) noexcept {
  const char* text = std::getenv(name);
  if (!text || !*text) return fallback;
  uint64_t value = 0;
  for (; *text; ++text) {
    if (*text < '0' || *text > '9') return fallback;
    value = value * 10 + static_cast<uint64_t>(*text - '0');
  }
  return value;
}

void copy_text(char* out, size_t capacity, const char* text) noexcept {
  size_t length = text ? std::strlen(text) : 0;
  if (length >= capacity) length = capacity - 1;
  if (length) std::memcpy(out, text, length);
  out[length] = 0;
}

// Kept open (high, out of the program's way, guarded by the close hooks like the socket): opening
// it for each marker would make the program's open-descriptor count flicker ten times a second.
std::atomic<int> statm_fd{-1};

// /proc/self/statm of this process: after fork the inherited one still shows the parent.
void open_statm() noexcept {
  int old = statm_fd.exchange(-1, std::memory_order_acq_rel);
  if (old >= 0) raw::close(old);
  int fd = raw::open_read_only("/proc/self/statm");
  if (fd < 0) return;
  int high = ::fcntl(fd, F_DUPFD_CLOEXEC, 512);
  if (high >= 0) {
    raw::close(fd);
    fd = high;
  }
  statm_fd.store(fd, std::memory_order_release);
}

uint64_t resident_bytes() noexcept {
  char text[128];
  int fd = statm_fd.load(std::memory_order_acquire);
  ssize_t got = fd >= 0 ? raw::pread(fd, text, sizeof(text) - 1, 0) : -1;
  if (got <= 0) return 0;
  text[got] = 0;
  const char* at = std::strchr(text, ' ');  // size, then resident (pages)
  if (!at) return 0;
  uint64_t pages = 0;
  for (++at; *at >= '0' && *at <= '9'; ++at) pages = pages * 10 + static_cast<uint64_t>(*at - '0');
  return pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

uint64_t tracer_bytes() noexcept {
  return thread_log_bytes() + stack_table_bytes() + sampled_set_bytes();
}

void send_marker() noexcept {
  uint8_t record[1 + 4 * wire::kMaxVarintBytes];
  uint8_t* out = record;
  *out++ = static_cast<uint8_t>(wire::Tag::kMarker);
  out = wire::put_u64(out, sequence_now());
  out = wire::put_u64(out, monotonic_ns());
  out = wire::put_u64(out, resident_bytes());
  out = wire::put_u64(out, tracer_bytes());
  send_process_record(record, out);
}

void send_note(wire::NoteCode code) noexcept {
  uint8_t record[1 + wire::kMaxVarintBytes];
  uint8_t* out = record;
  *out++ = static_cast<uint8_t>(wire::Tag::kNote);
  out = wire::put_u64(out, static_cast<uint64_t>(code));
  send_process_record(record, out);
}

// Periodic work, paid by whichever thread is recording: its own aged batch, then (one thread
// at a time) a marker and the batches of threads that have gone quiet.
void after_event(ThreadLog& log) noexcept {
  if (final_flush.load(std::memory_order_relaxed)) {
    flush_own(log);
    return;
  }
  if (log.events_until_clock_check-- > 0) return;
  log.events_until_clock_check = kEventsPerClockCheck;
  uint64_t now = coarse_ns();
  if (now - log.last_flush_ns >= kFlushAgeNs) flush_own(log);
  uint64_t last = last_marker_ns.load(std::memory_order_relaxed);
  if (now - last < kMarkerIntervalNs) return;
  if (!last_marker_ns.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
  send_marker();
  flush_all(false);
}

uint8_t* put_stack(uint8_t* out, uint32_t id, const uintptr_t* frames, size_t depth) noexcept {
  *out++ = static_cast<uint8_t>(wire::Tag::kStack);
  out = wire::put_u64(out, id);
  out = wire::put_u64(out, depth);
  for (size_t i = 0; i < depth; ++i) {
    out = i == 0 ? wire::put_u64(out, frames[0]) : wire::put_s64(out, static_cast<int64_t>(frames[i] - frames[i - 1]));
  }
  return out;
}

// The stack of the current allocation as an id, writing its definition into the log when this
// stream has not seen it. Returns false when the log has no room.
__attribute__((noinline)) bool stack_id_for_event(ThreadLog& log, size_t event_bytes, uint32_t* id) noexcept {
  uintptr_t frames[wire::kMaxMaxDepth];
  // +1: this function's own frame lies between record_* and the unwinder.
  size_t depth = capture_stack(frames, settings.max_depth, kTracerFrames + 1);
  bool became_full = false;
  StackLookup stack = lookup_stack(hash_stack(frames, depth), &became_full);
  if (became_full) send_note(wire::NoteCode::kStackTableFull);
  // A stack never seen may run through a library loaded since the last scan (dlopen, its
  // constructors included): its module record goes out first.
  if (stack.define && frames_in_unknown_module(frames, depth)) scan_modules_if_free();
  size_t definition_bytes = stack.define ? 1 + 2 * wire::kMaxVarintBytes + depth * wire::kMaxVarintBytes : 0;
  if (!reserve(log, event_bytes + definition_bytes)) return false;
  if (stack.define) commit(log, put_stack(write_cursor(log), stack.id, frames, depth));
  *id = stack.id;
  return true;
}

uint8_t* put_event_head(uint8_t* out, ThreadLog& log, wire::Tag tag, uint64_t seq) noexcept {
  if (seq < log.previous_seq) seq = log.previous_seq;  // a thread's seqs never go back
  *out++ = static_cast<uint8_t>(tag);
  out = wire::put_u64(out, seq - log.previous_seq);
  log.previous_seq = seq;
  return out;
}

uint8_t* put_address(uint8_t* out, const ThreadLog& log, const void* address) noexcept {
  return wire::put_s64(out, static_cast<int64_t>(reinterpret_cast<uint64_t>(address) - log.previous_address));
}

size_t recent_slot(const void* address) noexcept {
  return (reinterpret_cast<uint64_t>(address) >> 4) & (kRecentSlots - 1);
}

void remember_allocation(ThreadLog& log, const void* address) noexcept {
  auto at = reinterpret_cast<uint64_t>(address);
  log.previous_address = at;
  ++log.alloc_ordinal;
  size_t slot = recent_slot(address);
  log.recent_address[slot] = at;
  log.recent_ordinal[slot] = log.alloc_ordinal;
}

uint8_t* put_event_head(uint8_t* out, ThreadLog& log, wire::Tag tag) noexcept {
  return put_event_head(out, log, tag, sequence_now());
}

// kFreeRecent when the block is one of this thread's recent allocations, else kFree.
uint8_t* put_free(uint8_t* out, ThreadLog& log, const void* address, uint64_t seq) noexcept {
  size_t slot = recent_slot(address);
  uint64_t distance = log.alloc_ordinal - log.recent_ordinal[slot] + 1;
  if (log.recent_address[slot] == reinterpret_cast<uint64_t>(address) && distance <= wire::kRecentAllocs) {
    log.recent_address[slot] = 0;
    out = put_event_head(out, log, wire::Tag::kFreeRecent, seq);
    return wire::put_u64(out, distance);
  }
  out = put_event_head(out, log, wire::Tag::kFree, seq);
  return put_address(out, log, address);
}

// xorshift64*; the sampling needs speed, not cryptographic quality.
uint64_t next_random(ThreadLog& log) noexcept {
  uint64_t x = log.random_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  log.random_state = x;
  return x * 0x2545f4914f6cdd1dull;
}

// ln(x) for x in (0, 1], to about 1e-6: the library must not pull in libm.
double natural_log(double x) noexcept {
  uint64_t bits = 0;
  std::memcpy(&bits, &x, sizeof(bits));
  int exponent = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
  double mantissa = 0;  // in [1, 2)
  std::memcpy(&mantissa, &bits, sizeof(mantissa));
  double t = (mantissa - 1) / (mantissa + 1);
  double t2 = t * t;
  double ln_mantissa = 2 * t * (1 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 / 9))));
  return exponent * 0.6931471805599453 + ln_mantissa;
}

// Gaps between sampled bytes are exponential with the configured mean: each allocation of
// size s is then sampled with probability 1 - exp(-s / mean), which the reader inverts.
int64_t next_sample_gap(ThreadLog& log) noexcept {
  double uniform = static_cast<double>((next_random(log) >> 11) + 1) * (1.0 / 9007199254740992.0);
  double gap = -natural_log(uniform) * static_cast<double>(settings.sample_bytes);
  return static_cast<int64_t>(gap) + 1;
}

bool take_sample(ThreadLog& log, size_t size) noexcept {
  log.bytes_until_sample -= static_cast<int64_t>(size);
  if (log.bytes_until_sample > 0) return false;
  log.bytes_until_sample = next_sample_gap(log);
  return true;
}

void on_thread_exit(void* log) {
  release_thread_log(static_cast<ThreadLog*>(log));
}

void before_fork() noexcept {
  in_tracer = true;
  modules_lock_for_fork();
  stream_lock_for_fork();
}

void after_fork_parent() noexcept {
  stream_unlock_after_fork_parent();
  modules_unlock_after_fork_parent();
  in_tracer = false;
}

void after_fork_child() noexcept {
  modules_after_fork_child();
  thread_logs_after_fork_child();
  stack_table_new_stream();
  unwind_after_fork_child();
  last_marker_ns.store(0, std::memory_order_relaxed);
  // Always, traced or not: the prepare handler left the locks held in this copy, and a tracer that
  // stopped (memdx went away) would otherwise wait on them at the child's own next fork.
  stream_after_fork_child();
  flusher_after_fork_child();
  if (tracing_active()) open_statm();
  if (tracing_active() &&
      stream_open(settings.target, settings.sample_bytes, settings.max_depth, wire::kHelloAfterFork)) {
    send_known_modules();
    flusher_start();
  } else {
    stop_tracing();
  }
  in_tracer = false;
}

// Where the collector listens, the run's secret and the collector's pid, as memdx set them;
// false when any is missing or malformed (then nothing is traced).
bool read_stream_target(StreamTarget& target) noexcept {
  const char* path = std::getenv(wire::kEnvSocket);
  const char* key = std::getenv(wire::kEnvKey);
  if (!path || path[0] != '/' || std::strlen(path) >= sizeof(target.socket_path) || !key) return false;
  if (!wire::parse_key(key, target.key)) return false;
  uint64_t collector = read_env_u64(wire::kEnvCollectorPid, 0);
  if (collector == 0 || collector > 0x7fffffff) return false;
  target.collector_pid = static_cast<pid_t>(collector);
  copy_text(target.socket_path, sizeof(target.socket_path), path);
  return true;
}

void remember_preload_path() noexcept {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&tracer_init), &info) && info.dli_fname) {
    copy_text(settings.preload_path, sizeof(settings.preload_path), info.dli_fname);
  }
}

}  // namespace

void send_process_record(const uint8_t* begin, const uint8_t* end) noexcept {
  iovec piece{const_cast<uint8_t*>(begin), static_cast<size_t>(end - begin)};
  if (!stream_send(wire::BatchKind::kProcess, static_cast<pid_t>(gettid()), &piece, 1)) stop_tracing();
}

void stop_tracing() noexcept {
  tracing.store(false, std::memory_order_relaxed);
}

namespace {

std::atomic<int> init_state{0};  // 0 not yet, 1 starting, 2 started (tracing or not)

// The unwinder finds code through _dl_find_object, which the loader sets up after relocation:
// until then an allocation is not traced.
bool loader_ready() noexcept {
  dl_find_object found{};
  return _dl_find_object(reinterpret_cast<void*>(&tracer_init), &found) == 0;
}

}  // namespace

bool start_tracing_if_due() noexcept {
  if (init_state.load(std::memory_order_acquire) != 0 || in_tracer || !loader_ready()) return tracing_active();
  tracer_init();
  return tracing_active();
}

void tracer_init() noexcept {
  int expected = 0;
  if (!init_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) return;
  in_tracer = true;
  remember_tracer_environment();
  resolve_real_functions();
  if (!read_stream_target(settings.target) || !real.malloc) {
    init_state.store(2, std::memory_order_release);
    in_tracer = false;
    return;
  }
  settings.sample_bytes = read_env_u64(wire::kEnvSampleBytes, 0);
  uint64_t depth = read_env_u64(wire::kEnvMaxDepth, wire::kDefaultMaxDepth);
  settings.max_depth = static_cast<uint32_t>(depth < 1 ? 1 : depth > wire::kMaxMaxDepth ? wire::kMaxMaxDepth : depth);
  remember_preload_path();
  open_statm();
  thread_exit_key_made = pthread_key_create(&thread_exit_key, on_thread_exit) == 0;
  pthread_atfork(before_fork, after_fork_parent, after_fork_child);
  if (stream_open(settings.target, settings.sample_bytes, settings.max_depth, 0)) {
    tracing.store(true, std::memory_order_relaxed);
    scan_modules();
    send_marker();
  }
  init_state.store(2, std::memory_order_release);
  in_tracer = false;
}

void register_thread_exit(ThreadLog* log) noexcept {
  if (thread_exit_key_made) pthread_setspecific(thread_exit_key, log);
}

void start_sampling(ThreadLog& log) noexcept {
  log.random_state = (static_cast<uint64_t>(log.tid) << 32) ^ monotonic_ns() ^ 0x9e3779b97f4a7c15ull;
  if (log.random_state == 0) log.random_state = 1;
  log.bytes_until_sample = settings.sample_bytes ? next_sample_gap(log) : 0;
}

void record_alloc(const void* address, size_t size) noexcept {
  ThreadLog* log = current_thread_log();
  if (!log) return;
  if (settings.sample_bytes) {
    if (!take_sample(*log, size) || !sampled_set_insert(address)) return;
  }
  uint32_t stack_id = 0;
  if (!stack_id_for_event(*log, wire::kMaxVarintBytes * 5, &stack_id)) return;
  uint8_t* out = put_event_head(write_cursor(*log), *log, wire::Tag::kAlloc);
  out = put_address(out, *log, address);
  out = wire::put_u64(out, size);
  out = wire::put_u64(out, stack_id);
  remember_allocation(*log, address);
  commit(*log, out);
  after_event(*log);
}

void record_free(const void* address) noexcept {
  record_free_at(address, sequence_now());
}

void record_free_at(const void* address, uint64_t seq) noexcept {
  if (settings.sample_bytes && !sampled_set_erase(address)) return;
  ThreadLog* log = current_thread_log();
  if (!log || !reserve(*log, kMaxEventBytes)) return;
  commit(*log, put_free(write_cursor(*log), *log, address, seq));
  after_event(*log);
}

void record_mmap(const void* address, size_t length, int prot, int flags, int fd) noexcept {
  ThreadLog* log = current_thread_log();
  uint32_t stack_id = 0;
  if (!log || !stack_id_for_event(*log, wire::kMaxVarintBytes * 5, &stack_id)) return;
  uint32_t map_flags = 0;
  if (flags & MAP_ANONYMOUS) map_flags |= wire::kMapAnonymous;
  if (flags & MAP_SHARED) map_flags |= wire::kMapShared;
  if (fd >= 0 && !(flags & MAP_ANONYMOUS)) map_flags |= wire::kMapFile;
  if (prot == PROT_NONE) map_flags |= wire::kMapNoAccess;
  uint8_t* out = put_event_head(write_cursor(*log), *log, wire::Tag::kMmap);
  out = put_address(out, *log, address);
  out = wire::put_u64(out, length);
  out = wire::put_u64(out, map_flags);
  out = wire::put_u64(out, stack_id);
  commit(*log, out);
  after_event(*log);
}

void record_munmap(const void* address, size_t length) noexcept {
  ThreadLog* log = current_thread_log();
  if (!log || !reserve(*log, kMaxEventBytes)) return;
  uint8_t* out = put_event_head(write_cursor(*log), *log, wire::Tag::kMunmap);
  out = put_address(out, *log, address);
  commit(*log, wire::put_u64(out, length));
  after_event(*log);
}

void record_protect(const void* address, size_t length, int prot) noexcept {
  ThreadLog* log = current_thread_log();
  if (!log || !reserve(*log, kMaxEventBytes)) return;
  uint8_t* out = put_event_head(write_cursor(*log), *log, wire::Tag::kProtect);
  out = put_address(out, *log, address);
  out = wire::put_u64(out, length);
  commit(*log, wire::put_u64(out, prot == PROT_NONE ? 0 : 1));
  after_event(*log);
}

void finish_process(wire::EndReason reason, int status) noexcept {
  if (!tracing_active()) return;
  flush_all(true);
  send_marker();
  uint8_t record[1 + 4 * wire::kMaxVarintBytes];
  uint8_t* out = record;
  *out++ = static_cast<uint8_t>(wire::Tag::kEnd);
  out = wire::put_u64(out, sequence_now());
  out = wire::put_u64(out, monotonic_ns());
  out = wire::put_u64(out, static_cast<uint64_t>(reason));
  out = wire::put_s64(out, status);
  send_process_record(record, out);
  if (reason == wire::EndReason::kExit) final_flush.store(true, std::memory_order_relaxed);
}

const char* preload_entry() noexcept {
  return settings.preload_path;
}

size_t tracer_descriptors(int* out) noexcept {
  size_t count = 0;
  for (int fd : {stream_descriptor(), statm_fd.load(std::memory_order_acquire)}) {
    if (fd >= 0) out[count++] = fd;
  }
  if (count == 2 && out[0] > out[1]) {
    int first = out[1];
    out[1] = out[0];
    out[0] = first;
  }
  return count;
}

void tracer_move_descriptor_off(int fd) noexcept {
  if (fd < 0) return;
  stream_move_off(fd);
  int statm = fd;
  if (statm_fd.load(std::memory_order_acquire) != fd) return;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, fd + 1);  // the program's dup2 then closes the old number
  if (moved >= 0 && !statm_fd.compare_exchange_strong(statm, moved, std::memory_order_acq_rel)) raw::close(moved);
}

uint64_t current_seq() noexcept {
  return sequence_now();
}

}  // namespace memdx::trace
