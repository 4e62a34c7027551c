// The heap trace wire format: what libmemdx_trace.so sends over its socket and what memdx's
// reader decodes. One header, shared by both sides, so they cannot drift apart. Header-only and
// free of the C++ runtime (no std::string, no exceptions): the injected library includes it.
//
// A traced process image opens one stream (a UNIX stream socket to memdx's collector). After
// exec the new image opens a new stream; a forked child opens its own. A stream is:
//
//   StreamHello, then Batch*   where Batch = BatchHeader + payload_bytes of records
//
// Thread batches (kind kThread) carry the records of one thread in the order it made them;
// their varint deltas continue from that thread's previous batch in the same stream. Process
// batches (kind kProcess) carry module maps, markers and the end record, each self-contained.
// Every event holds a sequence value ("seq") from the invariant time-stamp counter, in units
// of 64 cycles, read after the real malloc returned and before the real free ran: sorting by it
// orders a free after the allocation it frees even when the two happened on different threads
// (handing a pointer to another thread takes longer than 64 cycles; the reader still matches a
// free to an allocation of equal seq). A per-process atomic
// counter would give the same order, but every event of every thread would then write one
// shared cache line. Process records carry the same clock, so markers fall into place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace memdx::trace::wire {

inline constexpr char kStreamMagic[8] = {'M', 'D', 'X', 'T', 'R', 'A', 'C', 'E'};
inline constexpr uint32_t kVersion = 2;
// Version 2 added kProtect and kMapNoAccess; a reader of version 2 reads version 1 too.
inline constexpr uint32_t kOldestReadableVersion = 1;
inline constexpr uint32_t kBatchMagic = 0x4254444du;  // "MDTB", checked on every batch

// Environment variables the tracer reads (set by memdx, carried across exec by the tracer).
inline constexpr char kEnvSocket[] = "MEMDX_TRACE_SOCKET";  // path of the collector's socket
// The run's secret, 32 hex digits: the first bytes on every connection (StreamAuth), so that the
// collector admits only processes memdx started.
inline constexpr char kEnvKey[] = "MEMDX_TRACE_KEY";
// The collector's pid: the tracer sends nothing to a socket whose listener is any other process
// (SO_PEERCRED), so a name taken over after memdx exited learns nothing.
inline constexpr char kEnvCollectorPid[] = "MEMDX_TRACE_COLLECTOR";
inline constexpr char kEnvMaxDepth[] = "MEMDX_TRACE_MAX_DEPTH";        // frames per stack, default 64
inline constexpr char kEnvSampleBytes[] = "MEMDX_TRACE_SAMPLE_BYTES";  // 0 or absent: every call
inline constexpr uint32_t kDefaultMaxDepth = 64;
inline constexpr uint32_t kMaxMaxDepth = 256;

// Sent before the hello on every connection and consumed by the collector (never stored): the
// run's secret from kEnvKey.
inline constexpr char kAuthMagic[8] = {'M', 'D', 'X', 'A', 'U', 'T', 'H', '1'};
inline constexpr size_t kKeyBytes = 16;
struct StreamAuth {
  char magic[8];
  uint8_t key[kKeyBytes];
};

// kKeyBytes as 2 * kKeyBytes lowercase hex digits; false when `text` is not exactly that.
inline bool parse_key(const char* text, uint8_t* key) noexcept {
  for (size_t i = 0; i < 2 * kKeyBytes; ++i) {
    const char c = text[i];
    const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return false;
    key[i / 2] = static_cast<uint8_t>(i % 2 == 0 ? digit << 4 : key[i / 2] | digit);
  }
  return text[2 * kKeyBytes] == 0;
}

struct StreamHello {
  char magic[8];
  uint32_t version;
  uint32_t hello_bytes;  // sizeof(StreamHello) as the writer knew it
  int32_t pid;
  int32_t ppid;
  uint64_t start_monotonic_ns;  // CLOCK_MONOTONIC when the stream opened
  uint64_t sample_bytes;        // mean bytes between samples; 0 = every allocation recorded
  uint32_t max_depth;
  uint32_t flags;  // kHelloAfterFork, kHelloAfterExec
};
inline constexpr uint32_t kHelloAfterFork = 1u << 0;
inline constexpr uint32_t kHelloAfterExec = 1u << 1;

// kThreadStart is kThread for the first batch of a thread (or of a reused buffer, or of the
// forking thread in a child): the reader starts that thread's deltas from zero.
enum class BatchKind : uint32_t { kThread = 1, kProcess = 2, kThreadStart = 3 };

struct BatchHeader {
  uint32_t magic;          // kBatchMagic
  uint32_t kind;           // BatchKind
  int32_t tid;             // thread of the records (kThread), writer thread (kProcess)
  uint32_t payload_bytes;  // records that follow
};
inline constexpr uint32_t kMaxBatchPayloadBytes = 1u << 20;
// How far back kFreeRecent may reach; the reader keeps this many addresses per thread.
inline constexpr uint32_t kRecentAllocs = 4096;

// Record tags, one byte each, then the fields listed, as LEB128 varints: u = unsigned,
// s = signed (zigzag). In thread batches "seq" is the delta from that thread's previous seq (u),
// and "addr" the delta from the address of that thread's previous kAlloc (s): allocators hand
// out neighbouring blocks, so the deltas stay short.
enum class Tag : uint8_t {
  // thread batches; every event starts with seq
  kAlloc = 1,       // seq, addr (s), size (u), stack_id (u)
  kFree = 2,        // seq, addr (s)
  kStack = 3,       // stack_id (u), depth (u), frame[0] (u, absolute), frame[i] - frame[i-1] (s)...
                    // Written right before the thread's first event that uses it (possibly at the
                    // start of the thread's next batch): that event's seq is when it was recorded,
                    // and its frames are of the modules mapped then. An id is never reused for
                    // another stack in a stream; after an unload, identical frames get a new id.
  kMmap = 4,        // seq, addr (s), length (u), map_flags (u: MapFlag bits), stack_id (u)
  kMunmap = 5,      // seq, addr (s), length (u)
  kFreeRecent = 6,  // seq, distance (u): frees the block of this thread's kAlloc that many
                    // kAllocs back (1 = the latest), 1..kRecentAllocs; most frees are of blocks
                    // the same thread allocated shortly before, and a small repeating number
                    // compresses far better than an address
  kProtect = 7,     // seq, addr (s), length (u), access (u: 1 readable or writable, 0 PROT_NONE):
                    // an mprotect() that succeeded
  // process batches (absolute values)
  kModule = 16,    // seq (u), load_bias (u), start (u), end (u), path_len (u), path bytes; sent
                   // before the first event whose stack has a frame in the module (its library
                   // may have run before that, its constructors for one: a module counts as mapped
                   // from the unload before its record, since nothing is unloaded meanwhile)
  kUnmodule = 17,  // seq (u), load_bias (u): the latest module of that bias is gone, after
                   // everything its destructors did; another may be loaded at its addresses next
  kMarker = 18,    // seq (u), monotonic_ns (u), rss_bytes (u), tracer_bytes (u)
  kEnd = 19,       // seq (u), monotonic_ns (u), reason (u: EndReason), status (s)
  kNote = 20,      // code (u: NoteCode)
};

enum MapFlag : uint32_t {
  kMapAnonymous = 1u << 0,
  kMapShared = 1u << 1,
  kMapFile = 1u << 2,      // backed by a file descriptor
  kMapNoAccess = 1u << 3,  // mapped PROT_NONE: address space reserved, no memory behind it
};

enum class EndReason : uint32_t { kExit = 1, kExec = 2, kAbort = 3 };

enum class NoteCode : uint32_t {
  kStackTableFull = 1,  // stacks are no longer deduplicated in the target
  kBufferFailed = 2,    // a thread could not get a buffer: its events are missing
};

// --- varint encoding (shared; the writer's hot path uses these) ---

inline uint8_t* put_u64(uint8_t* out, uint64_t value) noexcept {
  while (value >= 0x80) {
    *out++ = static_cast<uint8_t>(value | 0x80);
    value >>= 7;
  }
  *out++ = static_cast<uint8_t>(value);
  return out;
}

inline uint64_t zigzag(int64_t value) noexcept {
  return (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
}

inline int64_t unzigzag(uint64_t value) noexcept {
  return static_cast<int64_t>(value >> 1) ^ -static_cast<int64_t>(value & 1);
}

inline uint8_t* put_s64(uint8_t* out, int64_t value) noexcept {
  return put_u64(out, zigzag(value));
}

// The most bytes one varint takes.
inline constexpr size_t kMaxVarintBytes = 10;

// Decodes one varint from [*cursor, end); false when the input ends inside it or it is longer
// than 10 bytes (a corrupt stream), leaving *cursor unspecified.
inline bool get_u64(const uint8_t** cursor, const uint8_t* end, uint64_t* value) noexcept {
  uint64_t result = 0;
  const uint8_t* at = *cursor;
  for (unsigned shift = 0; shift < 70; shift += 7) {
    if (at == end) return false;
    const uint8_t byte = *at++;
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *cursor = at;
      *value = result;
      return true;
    }
  }
  return false;
}

inline bool get_s64(const uint8_t** cursor, const uint8_t* end, int64_t* value) noexcept {
  uint64_t raw = 0;
  if (!get_u64(cursor, end, &raw)) return false;
  *value = unzigzag(raw);
  return true;
}

}  // namespace memdx::trace::wire
