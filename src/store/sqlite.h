// A thin RAII layer over the SQLite C API, private to the store: one owner per sqlite3* and per
// sqlite3_stmt* (copy deleted, moves allowed), and every failure turned into a StoreError whose
// one-line message names the recording. Not thread-safe: one connection per thread.
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace memdx::store {

// What the connection was doing when SQLite failed; it picks the wording of the message.
enum class Activity { kCreating, kOpening, kWriting, kReading };

// The one-line message for a failed SQLite call on recording `path`. `detail` is SQLite's
// text (sqlite3_errmsg/errstr); `system_errno` the OS error behind it, 0 when none.
std::string describe_error(int result_code, const std::string& path, Activity activity, std::string_view detail,
                           int system_errno = 0);

class Statement {
 public:
  Statement(Statement&&) noexcept = default;
  Statement& operator=(Statement&&) noexcept = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() = default;

  // Parameters are numbered from 1, as in SQL's ?1.
  Statement& bind_int(int index, int64_t value);
  Statement& bind_int(int index, std::optional<int64_t> value);  // nullopt binds NULL
  Statement& bind_real(int index, std::optional<double> value);  // nullopt binds NULL
  Statement& bind_text(int index, std::string_view text);
  Statement& bind_blob(int index, std::span<const std::byte> bytes);

  // Advances to the next row: true when one is ready, false when the statement is done.
  bool step();
  // Runs a statement that returns no rows, then resets it for reuse (also when it throws).
  void run();
  // Makes the statement ready to run again and clears its parameters.
  void reset();

  // Columns of the current row, numbered from 0.
  bool is_null(int column) const;
  int64_t int_at(int column) const;
  std::optional<int64_t> optional_int_at(int column) const;
  std::optional<double> optional_real_at(int column) const;
  std::string text_at(int column) const;
  // The blob in `column` of `table`'s row `rowid`, read straight into `out` (incremental blob
  // I/O): a large blob is not first assembled in SQLite's own copy, as a result column's is.
  void read_row_blob(const char* table, const char* column, int64_t rowid, std::vector<std::byte>& out) const;

 private:
  friend class Database;
  struct Finalizer {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
  };
  Statement(sqlite3_stmt* stmt, std::string path, Activity activity);
  [[noreturn]] void fail(int result_code) const;

  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
  std::string path_;  // for messages
  Activity activity_;
};

class Database {
 public:
  // Opens `path` with sqlite3_open_v2 `flags`; throws StoreError worded for `activity`.
  static Database open(const std::string& path, int flags, Activity activity);

  Database(Database&&) noexcept = default;
  Database& operator=(Database&&) noexcept = default;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database() = default;  // sqlite3_close_v2: safe even while statements are still alive

  // Runs SQL that returns no rows we need (several statements allowed).
  void exec(const char* sql);
  Statement prepare(std::string_view sql);
  // The first column of the first row, e.g. of "PRAGMA user_version".
  int64_t query_int(const char* sql);

  // Later failures are worded for this activity (a created recording is then written).
  void set_activity(Activity activity) { activity_ = activity; }
  // Closes now, so that a failing close (an unfinished checkpoint) can be reported.
  void close();
  bool is_open() const { return db_ != nullptr; }
  bool in_transaction() const { return db_ && sqlite3_get_autocommit(db_.get()) == 0; }
  int64_t changes() const { return sqlite3_changes64(db_.get()); }
  const std::string& path() const { return path_; }

  [[noreturn]] void fail(int result_code) const;

 private:
  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  Database(sqlite3* db, std::string path, Activity activity);

  std::unique_ptr<sqlite3, Closer> db_;
  std::string path_;
  Activity activity_;
};

}  // namespace memdx::store
