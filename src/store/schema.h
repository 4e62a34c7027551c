// The layout of a recording file, version 1, and how values are encoded in it.
//
// A recording is one SQLite database, in WAL mode while it is written (a finished one is back
// in rollback-journal mode, a single file). `PRAGMA application_id` marks it as memdx's,
// `PRAGMA user_version` holds the schema version: a reader accepts versions up to its own and
// refuses newer ones with a message saying so. Tables:
//
//   meta           key/value pairs: RecordingMeta plus anything later issues add (put_meta)
//   processes      one row per pid of the tree; a reused pid replaces the earlier row
//   samples        one row per process per tick, keyed (pid, t_ms), WITHOUT ROWID
//   system_samples one row per tick for the machine and the target's cgroup
//   trace_chunks   opaque tracer batches (kind, pid, t_ms, bytes), in arrival order
//
// Per-process sizes are stored in whole KiB (the unit /proc reports them in), which keeps the
// integers short: SQLite stores an integer in 0-8 bytes by magnitude, and 0 and 1 in none.
// heap_live_bytes comes from the tracer, byte exact, and stays in bytes. Absent optional values
// are NULL (one header byte, no payload). Measured by tests/store/sample_size_test.cpp: about
// 50 bytes of file per process sample (47 for the samples table), where bytes would cost 56.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace memdx::store {

class Database;

// 2: samples.gpu_bytes. A version-1 file reads with every gpu_bytes absent.
inline constexpr int kSchemaVersion = 2;
inline constexpr int64_t kApplicationId = 0x6d656d64;  // "memd"

// Keys of the meta table that RecordingMeta maps to.
namespace meta_key {
inline constexpr const char* kCommand = "command";  // JSON array of strings
inline constexpr const char* kKind = "kind";
inline constexpr const char* kStartedAtUtc = "started_at_utc";
inline constexpr const char* kStartedAtUnixMs = "started_at_unix_ms";
inline constexpr const char* kHost = "host";
inline constexpr const char* kKernel = "kernel";
inline constexpr const char* kMemdxVersion = "memdx_version";
inline constexpr const char* kIntervalMs = "interval_ms";
inline constexpr const char* kCgroupMaxBytes = "cgroup_max_bytes";
inline constexpr const char* kMemTotalBytes = "mem_total_bytes";
// Keys beyond RecordingMeta (RecordingWriter::put_meta), written as the recording goes.
inline constexpr const char* kRootPid = "root_pid";                                   // the pid the tree is rooted at
inline constexpr const char* kMonotonicOriginNs = "monotonic_origin_ns";              // CLOCK_MONOTONIC at t_ms 0
inline constexpr const char* kTraceRefusedConnections = "trace_refused_connections";  // how many
inline constexpr const char* kTraceRefused = "trace_refused";  // JSON: the first few, pid, uid and why
inline constexpr const char* kGpuDevices = "gpu_devices";      // JSON: {"PID": ["nvidia0 (NVIDIA H200)", ...]}
}  // namespace meta_key

// Creates the tables of a new, empty recording and stamps its id and version. Runs inside the
// caller's transaction.
void create_schema(Database& db);

// Checks that `db` is a memdx recording this memdx can read; returns its schema version.
// Throws StoreError ("not a memdx recording", "written by a newer memdx ...").
int check_schema(Database& db);

// Sizes in bytes <-> the whole KiB stored; a remainder rounds up (never understates).
int64_t bytes_to_kib(uint64_t bytes);
uint64_t kib_to_bytes(int64_t kib);

// An argv as a JSON array. Bytes that are not UTF-8 become U+FFFD: commands are for display.
std::string encode_command(const std::vector<std::string>& command);
// The inverse; text that is not a JSON array of strings yields an empty command.
std::vector<std::string> decode_command(const std::string& json);

}  // namespace memdx::store
