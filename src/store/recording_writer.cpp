#include "store/recording_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>
#include <utility>

#include "store/file_type.h"
#include "store/schema.h"
#include "store/sqlite.h"
#include "store/store_error.h"

namespace memdx::store {
namespace {

// Prepared once, reused for every row.
struct Statements {
  explicit Statements(Database& db)
      : begin(db.prepare("BEGIN")),
        commit(db.prepare("COMMIT")),
        put_meta(db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")),
        put_process(db.prepare(
            "INSERT OR REPLACE INTO processes (pid, ppid, command, first_seen_ms, exited_ms, exit_code, exit_signal) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")),
        mark_exited(db.prepare("UPDATE processes SET exited_ms = ?2, exit_code = ?3, exit_signal = ?4 WHERE pid = ?1")),
        put_sample(db.prepare(
            "INSERT OR REPLACE INTO samples (pid, t_ms, rss_kib, anon_kib, file_kib, shmem_kib, vsz_kib, swap_kib, "
            "pss_kib, fds, threads, heap_live_bytes, gpu_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
            "?12, "
            "?13)")),
        put_system_sample(
            db.prepare("INSERT OR REPLACE INTO system_samples (t_ms, mem_available_bytes, swap_free_bytes, "
                       "cgroup_current_bytes, psi_some_avg10) VALUES (?1, ?2, ?3, ?4, ?5)")),
        put_trace_chunk(db.prepare("INSERT INTO trace_chunks (kind, pid, t_ms, data) VALUES (?1, ?2, ?3, ?4)")),
        // Keeps, per pid and bucket, the sample with the highest RSS (the earliest on ties).
        // Deletes the others by `IN`: a row-value `NOT IN` of the keepers would rescan the
        // list for NULLs on every miss and make thinning quadratic.
        thin(db.prepare(R"sql(
            DELETE FROM samples WHERE (pid, t_ms) IN (
              SELECT pid, t_ms FROM (
                SELECT pid, t_ms, row_number() OVER (
                  PARTITION BY pid, t_ms / ?2 ORDER BY rss_kib DESC, t_ms) AS rank_in_bucket
                FROM samples WHERE pid IN (SELECT pid FROM processes) AND t_ms >= ?3 AND t_ms < ?1)
              WHERE rank_in_bucket > 1))sql")) {}

  Statement begin;
  Statement commit;
  Statement put_meta;
  Statement put_process;
  Statement mark_exited;
  Statement put_sample;
  Statement put_system_sample;
  Statement put_trace_chunk;
  Statement thin;
};

std::optional<int64_t> to_optional_int(std::optional<uint64_t> value) {
  if (!value) return std::nullopt;
  return static_cast<int64_t>(*value);  // wraps above 2^63; the reader casts back
}

std::optional<int64_t> to_optional_int(std::optional<int> value) {
  if (!value) return std::nullopt;
  return *value;
}

[[noreturn]] void refuse(const std::string& path, const std::string& why, StoreErrorKind kind = StoreErrorKind::kIo) {
  throw StoreError("cannot create recording " + path + ": " + why, kind);
}

StoreErrorKind kind_of(int system_errno) {
  return system_errno == EACCES || system_errno == EPERM ? StoreErrorKind::kPermissionDenied : StoreErrorKind::kIo;
}

[[noreturn]] void refuse_type(const std::string& path, mode_t mode) {
  refuse(path,
         std::string("it is ") + file_type_name(mode) + ", not a file (a recording is a SQLite file memdx reads back)");
}

// What may stand at a recording's path: nothing, or a regular file that is empty (made by
// mktemp, say) or that the caller lets memdx overwrite. Anything else is refused, never
// removed: a device node, a FIFO or a directory is not memdx's to delete. A symbolic link is
// refused too: root writing where a link planted in /tmp points would let anyone pick the file.
void check_existing(const std::string& path, bool overwrite) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    refuse(path, std::strerror(errno), kind_of(errno));
  }
  if (S_ISLNK(st.st_mode)) {
    struct stat target {};
    if (::stat(path.c_str(), &target) == 0 && !S_ISREG(target.st_mode)) refuse_type(path, target.st_mode);
    refuse(path, "it is a symbolic link; give the path of the recording itself");
  }
  if (!S_ISREG(st.st_mode)) refuse_type(path, st.st_mode);
  if (st.st_size > 0 && !overwrite)
    throw StoreError("recording " + path + " already exists; not overwriting it", StoreErrorKind::kAlreadyExists);
  if (::unlink(path.c_str()) != 0) refuse(path, std::strerror(errno), kind_of(errno));
}

// SQLite would replay an old recording's leftover -wal into a new file of the same name.
// unlink never follows a link (it removes the link itself); other kinds of file are left alone.
void remove_stale_companions(const std::string& path) {
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    const std::string companion = path + suffix;
    struct stat st {};
    if (::lstat(companion.c_str(), &st) != 0) continue;
    if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
      refuse(path, companion + " is " + file_type_name(st.st_mode) + " where SQLite keeps its journal");
    }
    if (::unlink(companion.c_str()) != 0 && errno != ENOENT) refuse(path, companion + ": " + std::strerror(errno));
  }
}

// Makes the empty file SQLite then opens: exclusive creation never follows a link planted at the
// path, and 0600 keeps the command lines and paths a recording holds private (SQLite gives its
// -wal and -shm the main file's mode).
void create_private_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) refuse(path, std::strerror(errno));
  ::close(fd);
}

void prepare_path(const std::string& path, bool overwrite) {
  check_existing(path, overwrite);
  remove_stale_companions(path);
  create_private_file(path);
}

void write_meta(Statement& put, const model::RecordingMeta& meta) {
  auto text = [&put](const char* key, std::string_view value) { put.bind_text(1, key).bind_text(2, value).run(); };
  auto number = [&put](const char* key, std::optional<int64_t> value) {
    if (value) put.bind_text(1, key).bind_int(2, *value).run();
  };
  text(meta_key::kCommand, encode_command(meta.command));
  text(meta_key::kKind, meta.kind);
  text(meta_key::kStartedAtUtc, meta.started_at_utc);
  number(meta_key::kStartedAtUnixMs, meta.started_at_unix_ms);
  text(meta_key::kHost, meta.host);
  text(meta_key::kKernel, meta.kernel);
  text(meta_key::kMemdxVersion, meta.memdx_version);
  number(meta_key::kIntervalMs, meta.interval_ms);
  number(meta_key::kCgroupMaxBytes, to_optional_int(meta.cgroup_max_bytes));
  number(meta_key::kMemTotalBytes, to_optional_int(meta.mem_total_bytes));
}

}  // namespace

struct RecordingWriter::Impl {
  std::string path;
  std::optional<Database> db;
  std::optional<Statements> statements;  // destroyed before db
  Clock::time_point last_commit = Clock::now();
  // Per bucket size, the cutoff of the previous thinning: a later pass starts from the bucket
  // holding it, so the periodic thinning of a long run touches only rows that aged meanwhile
  // (and each pid's rows through the primary key) instead of re-sorting every old sample.
  std::map<int64_t, int64_t> thinned_below_ms;

  Statements& open_statements() {
    if (!statements) throw StoreError("cannot write recording " + path + ": it is already closed");
    return *statements;
  }

  // Every write joins the open transaction; commit() or commit_if_due() ends it.
  Statements& in_transaction() {
    Statements& s = open_statements();
    if (!db->in_transaction()) s.begin.run();
    return s;
  }
};

RecordingWriter::RecordingWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RecordingWriter::RecordingWriter(RecordingWriter&&) noexcept = default;
RecordingWriter& RecordingWriter::operator=(RecordingWriter&&) noexcept = default;

RecordingWriter::~RecordingWriter() {
  if (!impl_) return;
  try {
    close();
  } catch (const StoreError&) {
    // Nowhere to report it; what was committed is in the file.
  }
}

RecordingWriter RecordingWriter::create(const std::string& path, const model::RecordingMeta& meta, bool overwrite) {
  prepare_path(path, overwrite);
  // prepare_path made the file. No SQLITE_OPEN_NOFOLLOW: it refuses a link anywhere in the path,
  // and a recording's directory may well be reached through one.
  Database db = Database::open(path, SQLITE_OPEN_READWRITE, Activity::kCreating);
  // auto_vacuum must precede the first table; WAL must be set outside a transaction.
  db.exec("PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
  db.exec("BEGIN");
  create_schema(db);
  {
    Statement put_meta = db.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)");
    write_meta(put_meta, meta);
  }
  db.exec("COMMIT");

  auto impl = std::make_unique<Impl>();
  impl->path = path;
  db.set_activity(Activity::kWriting);
  impl->db.emplace(std::move(db));
  impl->statements.emplace(*impl->db);
  return RecordingWriter(std::move(impl));
}

void RecordingWriter::put_meta(std::string_view key, std::string_view value) {
  impl_->in_transaction().put_meta.bind_text(1, key).bind_text(2, value).run();
}

void RecordingWriter::put_meta(std::string_view key, int64_t value) {
  impl_->in_transaction().put_meta.bind_text(1, key).bind_int(2, value).run();
}

void RecordingWriter::add_process(const model::ProcessRecord& process) {
  impl_->in_transaction()
      .put_process.bind_int(1, process.pid)
      .bind_int(2, process.ppid)
      .bind_text(3, encode_command(process.command))
      .bind_int(4, process.first_seen_ms)
      .bind_int(5, process.exited_ms)
      .bind_int(6, to_optional_int(process.exit_code))
      .bind_int(7, to_optional_int(process.exit_signal))
      .run();
}

bool RecordingWriter::mark_exited(pid_t pid, int64_t exited_ms, std::optional<int> exit_code,
                                  std::optional<int> exit_signal) {
  impl_->in_transaction()
      .mark_exited.bind_int(1, pid)
      .bind_int(2, exited_ms)
      .bind_int(3, to_optional_int(exit_code))
      .bind_int(4, to_optional_int(exit_signal))
      .run();
  return impl_->db->changes() > 0;
}

void RecordingWriter::add_samples(std::span<const model::ProcessSample> samples) {
  if (samples.empty()) return;
  Statement& put = impl_->in_transaction().put_sample;
  for (const model::ProcessSample& s : samples) {
    std::optional<int64_t> pss_kib;
    if (s.pss_bytes) pss_kib = bytes_to_kib(*s.pss_bytes);
    put.bind_int(1, s.pid)
        .bind_int(2, s.t_ms)
        .bind_int(3, bytes_to_kib(s.rss_bytes))
        .bind_int(4, bytes_to_kib(s.rss_anon_bytes))
        .bind_int(5, bytes_to_kib(s.rss_file_bytes))
        .bind_int(6, bytes_to_kib(s.rss_shmem_bytes))
        .bind_int(7, bytes_to_kib(s.vsz_bytes))
        .bind_int(8, bytes_to_kib(s.swap_bytes))
        .bind_int(9, pss_kib)
        .bind_int(10, s.fds ? std::optional<int64_t>(*s.fds) : std::nullopt)
        .bind_int(11, int64_t{s.threads})
        .bind_int(12, to_optional_int(s.heap_live_bytes))
        .bind_int(13, to_optional_int(s.gpu_bytes))
        .run();
  }
}

void RecordingWriter::add_system_sample(const model::SystemSample& sample) {
  impl_->in_transaction()
      .put_system_sample.bind_int(1, sample.t_ms)
      .bind_int(2, static_cast<int64_t>(sample.mem_available_bytes.value_or(0)))
      .bind_int(3, static_cast<int64_t>(sample.swap_free_bytes.value_or(0)))
      .bind_int(4, to_optional_int(sample.cgroup_current_bytes))
      .bind_real(5, sample.psi_some_avg10)
      .run();
}

void RecordingWriter::add_trace_chunk(std::string_view kind, pid_t pid, int64_t t_ms, std::span<const std::byte> data) {
  impl_->in_transaction()
      .put_trace_chunk.bind_text(1, kind)
      .bind_int(2, pid)
      .bind_int(3, t_ms)
      .bind_blob(4, data)
      .run();
}

int64_t RecordingWriter::thin_samples(int64_t older_than_ms, int64_t keep_every_ms) {
  if (keep_every_ms <= 0) throw std::invalid_argument("thin_samples: keep_every_ms must be positive");
  int64_t& done_below_ms = impl_->thinned_below_ms[keep_every_ms];
  int64_t from_ms = done_below_ms / keep_every_ms * keep_every_ms;
  if (older_than_ms <= from_ms) return 0;
  impl_->in_transaction().thin.bind_int(1, older_than_ms).bind_int(2, keep_every_ms).bind_int(3, from_ms).run();
  done_below_ms = std::max(done_below_ms, older_than_ms);
  return impl_->db->changes();
}

int64_t RecordingWriter::thin_for_long_run(int64_t now_ms) {
  constexpr int64_t kMinuteMs = int64_t{60} * 1000;
  return thin_samples(now_ms - 10 * kMinuteMs, 1000) + thin_samples(now_ms - 60 * kMinuteMs, int64_t{10} * 1000);
}

bool RecordingWriter::commit_if_due(Clock::time_point now) {
  if (!impl_->db || !impl_->db->in_transaction() || now - impl_->last_commit < kCommitInterval) return false;
  impl_->open_statements().commit.run();
  impl_->last_commit = now;
  return true;
}

void RecordingWriter::commit() {
  if (!impl_->db || !impl_->db->in_transaction()) return;
  impl_->open_statements().commit.run();
  impl_->last_commit = Clock::now();
}

void RecordingWriter::close() {
  if (!impl_->db) return;
  commit();
  // Pages freed by thinning go back to the file system.
  impl_->db->exec("PRAGMA incremental_vacuum");
  // Back to a rollback journal: the WAL is folded into the file, and readers of the finished
  // recording, read-only, no longer leave -wal and -shm files beside it. Only a reader that
  // still has the file open can prevent it; the recording is complete either way.
  try {
    impl_->db->exec("PRAGMA journal_mode = DELETE");
  } catch (const StoreError&) {
  }
  impl_->statements.reset();
  impl_->db->close();
  impl_->db.reset();
}

const std::string& RecordingWriter::path() const {
  return impl_->path;
}

}  // namespace memdx::store
