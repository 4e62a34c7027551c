#include "store/schema.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "store/sqlite.h"
#include "store/store_error.h"

namespace memdx::store {
namespace {

constexpr const char* kCreateTables = R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY NOT NULL,
  value                              -- no type: integers stay integers, text stays text
) WITHOUT ROWID;

CREATE TABLE processes (
  pid           INTEGER PRIMARY KEY,
  ppid          INTEGER NOT NULL,
  command       TEXT NOT NULL,       -- JSON array of argv
  first_seen_ms INTEGER NOT NULL,
  exited_ms     INTEGER,
  exit_code     INTEGER,
  exit_signal   INTEGER
);

CREATE TABLE samples (
  pid             INTEGER NOT NULL,
  t_ms            INTEGER NOT NULL,
  rss_kib         INTEGER NOT NULL,
  anon_kib        INTEGER NOT NULL,
  file_kib        INTEGER NOT NULL,
  shmem_kib       INTEGER NOT NULL,
  vsz_kib         INTEGER NOT NULL,
  swap_kib        INTEGER NOT NULL,
  pss_kib         INTEGER,           -- NULL: smaps_rollup not read on this tick
  fds             INTEGER,           -- NULL: /proc/PID/fd not readable (another user's process)
  threads         INTEGER NOT NULL,
  heap_live_bytes INTEGER,           -- NULL: no heap tracer
  gpu_bytes       INTEGER,           -- NULL: GPU memory not measured (schema 2)
  PRIMARY KEY (pid, t_ms)
) WITHOUT ROWID;

CREATE TABLE system_samples (
  t_ms                 INTEGER PRIMARY KEY,
  mem_available_bytes  INTEGER NOT NULL,
  swap_free_bytes      INTEGER NOT NULL,
  cgroup_current_bytes INTEGER,
  psi_some_avg10       REAL
);

CREATE TABLE trace_chunks (
  id   INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  pid  INTEGER NOT NULL,
  t_ms INTEGER NOT NULL,
  data BLOB NOT NULL
);
)sql";

[[noreturn]] void not_a_recording(const Database& db) {
  throw StoreError("cannot open recording " + db.path() + ": not a memdx recording", StoreErrorKind::kNotARecording);
}

}  // namespace

void create_schema(Database& db) {
  db.exec(kCreateTables);
  db.exec(fmt::format("PRAGMA application_id = {}; PRAGMA user_version = {};", kApplicationId, kSchemaVersion).c_str());
}

int check_schema(Database& db) {
  // A file that is not SQLite at all fails here with SQLITE_NOTADB, worded the same way.
  const int64_t application_id = db.query_int("PRAGMA application_id");
  const int64_t version = db.query_int("PRAGMA user_version");
  if (application_id != kApplicationId || version < 1) not_a_recording(db);
  if (version > kSchemaVersion) {
    throw StoreError(fmt::format("recording {} was written by a newer memdx (schema {}, this memdx reads up to {})",
                                 db.path(), version, kSchemaVersion),
                     StoreErrorKind::kNotARecording);
  }
  return static_cast<int>(version);
}

int64_t bytes_to_kib(uint64_t bytes) {
  return static_cast<int64_t>(bytes / 1024 + (bytes % 1024 != 0 ? 1 : 0));
}

uint64_t kib_to_bytes(int64_t kib) {
  return static_cast<uint64_t>(kib) * 1024;
}

std::string encode_command(const std::vector<std::string>& command) {
  return nlohmann::json(command).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::string> decode_command(const std::string& json) {
  auto parsed = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> command;
  if (!parsed.is_array()) return command;
  for (const auto& arg : parsed) {
    if (arg.is_string()) command.push_back(arg.get<std::string>());
  }
  return command;
}

}  // namespace memdx::store
