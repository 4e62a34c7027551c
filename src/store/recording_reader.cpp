#include "store/recording_reader.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

#include "store/schema.h"
#include "store/sqlite.h"
#include "store/store_error.h"

namespace memdx::store {
namespace {

// Schema 1 has no gpu_bytes column: its samples read as not measured.
std::string sample_columns(int schema_version) {
  return std::string(
             "SELECT pid, t_ms, rss_kib, anon_kib, file_kib, shmem_kib, vsz_kib, swap_kib, pss_kib, fds, threads, "
             "heap_live_bytes, ") +
         (schema_version >= 2 ? "gpu_bytes" : "NULL") + " FROM samples ";
}

model::ProcessSample sample_from_row(const Statement& row) {
  model::ProcessSample s;
  s.pid = static_cast<pid_t>(row.int_at(0));
  s.t_ms = row.int_at(1);
  s.rss_bytes = kib_to_bytes(row.int_at(2));
  s.rss_anon_bytes = kib_to_bytes(row.int_at(3));
  s.rss_file_bytes = kib_to_bytes(row.int_at(4));
  s.rss_shmem_bytes = kib_to_bytes(row.int_at(5));
  s.vsz_bytes = kib_to_bytes(row.int_at(6));
  s.swap_bytes = kib_to_bytes(row.int_at(7));
  if (auto pss_kib = row.optional_int_at(8)) s.pss_bytes = kib_to_bytes(*pss_kib);
  if (auto fds = row.optional_int_at(9)) s.fds = static_cast<uint32_t>(*fds);
  s.threads = static_cast<uint32_t>(row.int_at(10));
  if (auto heap = row.optional_int_at(11)) s.heap_live_bytes = static_cast<uint64_t>(*heap);
  if (auto gpu = row.optional_int_at(12)) s.gpu_bytes = static_cast<uint64_t>(*gpu);
  return s;
}

std::optional<uint64_t> optional_u64(const Statement& row, int column) {
  if (auto value = row.optional_int_at(column)) return static_cast<uint64_t>(*value);
  return std::nullopt;
}

std::optional<int> optional_small_int(const Statement& row, int column) {
  if (auto value = row.optional_int_at(column)) return static_cast<int>(*value);
  return std::nullopt;
}

void apply_meta_row(model::RecordingMeta& meta, const std::string& key, const Statement& row) {
  if (key == meta_key::kCommand) {
    meta.command = decode_command(row.text_at(1));
  } else if (key == meta_key::kKind) {
    meta.kind = row.text_at(1);
  } else if (key == meta_key::kStartedAtUtc) {
    meta.started_at_utc = row.text_at(1);
  } else if (key == meta_key::kStartedAtUnixMs) {
    meta.started_at_unix_ms = row.int_at(1);
  } else if (key == meta_key::kHost) {
    meta.host = row.text_at(1);
  } else if (key == meta_key::kKernel) {
    meta.kernel = row.text_at(1);
  } else if (key == meta_key::kMemdxVersion) {
    meta.memdx_version = row.text_at(1);
  } else if (key == meta_key::kIntervalMs) {
    meta.interval_ms = row.int_at(1);
  } else if (key == meta_key::kCgroupMaxBytes) {
    meta.cgroup_max_bytes = optional_u64(row, 1);
  } else if (key == meta_key::kMemTotalBytes) {
    meta.mem_total_bytes = optional_u64(row, 1);
  }
}

}  // namespace

// ---- TraceChunkCursor

TraceChunkCursor::TraceChunkCursor(std::unique_ptr<Statement> stmt) : stmt_(std::move(stmt)) {}
TraceChunkCursor::TraceChunkCursor(TraceChunkCursor&&) noexcept = default;
TraceChunkCursor& TraceChunkCursor::operator=(TraceChunkCursor&&) noexcept = default;
TraceChunkCursor::~TraceChunkCursor() = default;

std::optional<TraceChunk> TraceChunkCursor::next() {
  TraceChunk chunk;
  if (!next_into(chunk)) return std::nullopt;
  return chunk;
}

bool TraceChunkCursor::next_into(TraceChunk& chunk) {
  if (!stmt_ || !stmt_->step()) {
    stmt_.reset();  // ends the read transaction; the connection closes with its last statement
    return false;
  }
  chunk.id = stmt_->int_at(0);
  chunk.kind = stmt_->text_at(1);
  chunk.pid = static_cast<pid_t>(stmt_->int_at(2));
  chunk.t_ms = stmt_->int_at(3);
  // Read apart from the row: SQLite would otherwise hold its own copy of each chunk beside ours.
  stmt_->read_row_blob("trace_chunks", "data", chunk.id, chunk.data);
  return true;
}

// ---- RecordingReader

struct RecordingReader::Impl {
  Database db;
  int schema_version = 0;
};

RecordingReader::RecordingReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RecordingReader::RecordingReader(RecordingReader&&) noexcept = default;
RecordingReader& RecordingReader::operator=(RecordingReader&&) noexcept = default;
RecordingReader::~RecordingReader() = default;

RecordingReader RecordingReader::open(const std::string& path) {
  // SQLite would only say "unable to open database file".
  std::error_code error;
  if (std::filesystem::status(path, error).type() == std::filesystem::file_type::not_found) {
    throw StoreError("cannot open recording " + path + ": no such file", StoreErrorKind::kNotFound);
  }
  if (std::filesystem::is_directory(path, error)) {
    throw StoreError("cannot open recording " + path + ": it is a directory", StoreErrorKind::kNotARecording);
  }
  Database db = Database::open(path, SQLITE_OPEN_READONLY, Activity::kOpening);
  const int version = check_schema(db);
  // Everything is read once, in order: a page cache would only hold pages never read again
  // (the trace's chunks are most of the file).
  db.exec("PRAGMA cache_size = -256");
  db.set_activity(Activity::kReading);
  return RecordingReader(std::make_unique<Impl>(Impl{std::move(db), version}));
}

int RecordingReader::schema_version() const {
  return impl_->schema_version;
}

const std::string& RecordingReader::path() const {
  return impl_->db.path();
}

model::RecordingMeta RecordingReader::meta() const {
  model::RecordingMeta meta;
  Statement rows = impl_->db.prepare("SELECT key, value FROM meta");
  while (rows.step()) apply_meta_row(meta, rows.text_at(0), rows);
  return meta;
}

std::optional<std::string> RecordingReader::meta_value(std::string_view key) const {
  Statement row = impl_->db.prepare("SELECT value FROM meta WHERE key = ?1");
  row.bind_text(1, key);
  if (!row.step() || row.is_null(0)) return std::nullopt;
  return row.text_at(0);
}

std::vector<model::ProcessRecord> RecordingReader::processes() const {
  std::vector<model::ProcessRecord> processes;
  Statement rows = impl_->db.prepare(
      "SELECT pid, ppid, command, first_seen_ms, exited_ms, exit_code, exit_signal FROM processes "
      "ORDER BY first_seen_ms, pid");
  while (rows.step()) {
    model::ProcessRecord& p = processes.emplace_back();
    p.pid = static_cast<pid_t>(rows.int_at(0));
    p.ppid = static_cast<pid_t>(rows.int_at(1));
    p.command = decode_command(rows.text_at(2));
    p.first_seen_ms = rows.int_at(3);
    p.exited_ms = rows.optional_int_at(4);
    p.exit_code = optional_small_int(rows, 5);
    p.exit_signal = optional_small_int(rows, 6);
  }
  // Which GPUs each process held memory on: one meta row, rewritten as devices appear.
  Statement devices = impl_->db.prepare("SELECT value FROM meta WHERE key = ?1");
  devices.bind_text(1, meta_key::kGpuDevices);
  if (devices.step()) {
    auto parsed = nlohmann::json::parse(devices.text_at(0), nullptr, /*allow_exceptions=*/false);
    for (model::ProcessRecord& p : processes) {
      if (!parsed.is_object() || !parsed.contains(std::to_string(p.pid))) continue;
      for (const auto& device : parsed[std::to_string(p.pid)]) {
        if (device.is_string()) p.gpu_devices.push_back(device.get<std::string>());
      }
    }
  }
  return processes;
}

std::vector<model::ProcessSample> RecordingReader::samples(pid_t pid) const {
  std::vector<model::ProcessSample> samples;
  Statement rows = impl_->db.prepare(sample_columns(impl_->schema_version) + "WHERE pid = ?1 ORDER BY t_ms");
  rows.bind_int(1, int64_t{pid});
  while (rows.step()) samples.push_back(sample_from_row(rows));
  return samples;
}

void RecordingReader::for_each_sample(const std::function<void(const model::ProcessSample&)>& visit) const {
  Statement rows = impl_->db.prepare(sample_columns(impl_->schema_version) + "ORDER BY pid, t_ms");
  while (rows.step()) visit(sample_from_row(rows));
}

int64_t RecordingReader::sample_count() const {
  return impl_->db.query_int("SELECT count(*) FROM samples");
}

std::vector<model::SystemSample> RecordingReader::system_samples() const {
  std::vector<model::SystemSample> samples;
  Statement rows = impl_->db.prepare(
      "SELECT t_ms, mem_available_bytes, swap_free_bytes, cgroup_current_bytes, psi_some_avg10 "
      "FROM system_samples ORDER BY t_ms");
  while (rows.step()) {
    model::SystemSample& s = samples.emplace_back();
    s.t_ms = rows.int_at(0);
    // 0 is how the file says "not read" (SystemSample).
    if (int64_t available = rows.int_at(1); available > 0) s.mem_available_bytes = static_cast<uint64_t>(available);
    if (int64_t swap_free = rows.int_at(2); swap_free > 0 || s.mem_available_bytes) {
      s.swap_free_bytes = static_cast<uint64_t>(swap_free);
    }
    s.cgroup_current_bytes = optional_u64(rows, 3);
    s.psi_some_avg10 = rows.optional_real_at(4);
  }
  return samples;
}

uint64_t RecordingReader::trace_chunk_bytes() const {
  // length() of a blob reads its record header, not its pages.
  return static_cast<uint64_t>(impl_->db.query_int("SELECT COALESCE(SUM(length(data)), 0) FROM trace_chunks"));
}

TraceChunkCursor RecordingReader::trace_chunks() const {
  auto rows =
      std::make_unique<Statement>(impl_->db.prepare("SELECT id, kind, pid, t_ms FROM trace_chunks ORDER BY id"));
  return TraceChunkCursor(std::move(rows));
}

}  // namespace memdx::store
