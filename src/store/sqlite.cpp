#include "store/sqlite.h"

#include <cerrno>
#include <system_error>
#include <utility>

#include "store/store_error.h"

namespace memdx::store {
namespace {

const char* verb(Activity activity) {
  switch (activity) {
    case Activity::kCreating:
      return "create";
    case Activity::kOpening:
      return "open";
    case Activity::kWriting:
      return "write";
    case Activity::kReading:
      return "read";
  }
  return "use";
}

const char* gerund(Activity activity) {
  switch (activity) {
    case Activity::kCreating:
      return "creating";
    case Activity::kOpening:
      return "opening";
    case Activity::kWriting:
      return "writing";
    case Activity::kReading:
      return "reading";
  }
  return "using";
}

std::string system_error_text(int system_errno) {
  return std::error_code(system_errno, std::generic_category()).message();
}

StoreErrorKind error_kind(int result_code, int system_errno) {
  const int primary = result_code & 0xff;
  if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) return StoreErrorKind::kNotARecording;
  if (system_errno == EACCES || system_errno == EPERM || primary == SQLITE_PERM || primary == SQLITE_READONLY) {
    return StoreErrorKind::kPermissionDenied;
  }
  if (system_errno == ENOENT) return StoreErrorKind::kNotFound;
  return StoreErrorKind::kIo;
}

[[noreturn]] void throw_for(sqlite3* db, int result_code, const std::string& path, Activity activity) {
  std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(result_code);
  int system_errno = db != nullptr ? sqlite3_system_errno(db) : 0;
  throw StoreError(describe_error(result_code, path, activity, detail, system_errno),
                   error_kind(result_code, system_errno));
}

}  // namespace

std::string describe_error(int result_code, const std::string& path, Activity activity, std::string_view detail,
                           int system_errno) {
  const int primary = result_code & 0xff;
  if (primary == SQLITE_FULL || system_errno == ENOSPC) {
    return std::string("disk full while ") + gerund(activity) + " " + path;
  }
  switch (primary) {
    case SQLITE_NOTADB:
      return "cannot open recording " + path + ": not a memdx recording";
    case SQLITE_CORRUPT:
      return "recording " + path + " is damaged: " + std::string(detail);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "recording " + path + " is locked by another process; try again when it is done";
    case SQLITE_NOMEM:
      return std::string("out of memory while ") + gerund(activity) + " " + path;
    case SQLITE_CANTOPEN:
      // SQLite only says "unable to open database file"; the OS knows why.
      if (system_errno != 0) {
        return std::string("cannot ") + verb(activity) + " recording " + path + ": " + system_error_text(system_errno);
      }
      break;
    case SQLITE_IOERR:
      if (system_errno != 0) {
        return std::string("I/O error while ") + gerund(activity) + " " + path + ": " + system_error_text(system_errno);
      }
      return std::string("I/O error while ") + gerund(activity) + " " + path;
    default:
      break;
  }
  return std::string("cannot ") + verb(activity) + " recording " + path + ": " + std::string(detail);
}

// ---- Statement

Statement::Statement(sqlite3_stmt* stmt, std::string path, Activity activity)
    : stmt_(stmt), path_(std::move(path)), activity_(activity) {}

void Statement::fail(int result_code) const {
  throw_for(sqlite3_db_handle(stmt_.get()), result_code, path_, activity_);
}

Statement& Statement::bind_int(int index, int64_t value) {
  if (int rc = sqlite3_bind_int64(stmt_.get(), index, value); rc != SQLITE_OK) fail(rc);
  return *this;
}

Statement& Statement::bind_int(int index, std::optional<int64_t> value) {
  if (value) return bind_int(index, *value);
  if (int rc = sqlite3_bind_null(stmt_.get(), index); rc != SQLITE_OK) fail(rc);
  return *this;
}

Statement& Statement::bind_real(int index, std::optional<double> value) {
  int rc = value ? sqlite3_bind_double(stmt_.get(), index, *value) : sqlite3_bind_null(stmt_.get(), index);
  if (rc != SQLITE_OK) fail(rc);
  return *this;
}

Statement& Statement::bind_text(int index, std::string_view text) {
  int rc = sqlite3_bind_text64(stmt_.get(), index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) fail(rc);
  return *this;
}

Statement& Statement::bind_blob(int index, std::span<const std::byte> bytes) {
  // A null pointer would bind NULL; an empty chunk is still a (zero-length) blob.
  static constexpr std::byte kEmpty{};
  const void* data = bytes.empty() ? &kEmpty : bytes.data();
  if (int rc = sqlite3_bind_blob64(stmt_.get(), index, data, bytes.size(), SQLITE_TRANSIENT); rc != SQLITE_OK) fail(rc);
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(rc);
}

void Statement::run() {
  struct ResetOnExit {
    Statement* self;
    ~ResetOnExit() { self->reset(); }
  } reset_on_exit{this};
  while (step()) {
  }
}

void Statement::reset() {
  // The error of a failed step is reported by step itself; reset only repeats it.
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL;
}

int64_t Statement::int_at(int column) const {
  return sqlite3_column_int64(stmt_.get(), column);
}

std::optional<int64_t> Statement::optional_int_at(int column) const {
  if (is_null(column)) return std::nullopt;
  return int_at(column);
}

std::optional<double> Statement::optional_real_at(int column) const {
  if (is_null(column)) return std::nullopt;
  return sqlite3_column_double(stmt_.get(), column);
}

std::string Statement::text_at(int column) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), column));
  if (text == nullptr) return {};
  return std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt_.get(), column)));
}

void Statement::read_row_blob(const char* table, const char* column, int64_t rowid, std::vector<std::byte>& out) const {
  sqlite3_blob* opened = nullptr;
  int rc = sqlite3_blob_open(sqlite3_db_handle(stmt_.get()), "main", table, column, rowid, 0, &opened);
  std::unique_ptr<sqlite3_blob, int (*)(sqlite3_blob*)> blob(opened, sqlite3_blob_close);
  if (rc != SQLITE_OK) fail(rc);
  const auto size = static_cast<size_t>(sqlite3_blob_bytes(blob.get()));
  if (size > out.capacity()) {
    std::vector<std::byte>().swap(out);  // the old buffer freed before the new one is taken
    out.reserve(size);
  }
  out.resize(size);
  if (size > 0) {
    rc = sqlite3_blob_read(blob.get(), out.data(), static_cast<int>(size), 0);
    if (rc != SQLITE_OK) fail(rc);
  }
}

// ---- Database

Database::Database(sqlite3* db, std::string path, Activity activity)
    : db_(db), path_(std::move(path)), activity_(activity) {}

Database Database::open(const std::string& path, int flags, Activity activity) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Database db(raw, path, activity);  // owns the handle even when the open failed
  if (rc != SQLITE_OK) throw_for(raw, rc, path, activity);
  // Readers and the writer share the file: wait out short locks (a checkpoint, WAL recovery).
  sqlite3_busy_timeout(raw, 5000);
  return db;
}

void Database::exec(const char* sql) {
  if (int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr); rc != SQLITE_OK) fail(rc);
}

Statement Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                              nullptr);
  if (rc != SQLITE_OK) fail(rc);
  return Statement(stmt, path_, activity_);
}

int64_t Database::query_int(const char* sql) {
  Statement stmt = prepare(sql);
  return stmt.step() ? stmt.int_at(0) : 0;
}

void Database::close() {
  if (!db_) return;
  int rc = sqlite3_close(db_.get());
  if (rc != SQLITE_OK) fail(rc);  // still owned: the destructor retries with close_v2
  (void)db_.release();            // closed above
}

void Database::fail(int result_code) const {
  throw_for(db_.get(), result_code, path_, activity_);
}

}  // namespace memdx::store
