// Every failure is one line naming the recording and saying what is wrong, in words.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include "store/recording_reader.h"
#include "store/recording_writer.h"
#include "store/schema.h"
#include "store/sqlite.h"
#include "store/store_error.h"
#include "store/store_test_util.h"

namespace memdx::store {
namespace {

using memdx::testing::TempDir;
using memdx::testing::typical_meta;

std::string open_error(const std::string& path) {
  try {
    RecordingReader::open(path);
  } catch (const StoreError& e) {
    return e.what();
  }
  return "(opened)";
}

TEST(StoreErrors, MissingFile) {
  TempDir dir;
  const std::string path = dir.file("absent.memdx");
  EXPECT_EQ(open_error(path), "cannot open recording " + path + ": no such file");
  EXPECT_FALSE(std::filesystem::exists(path));  // opening must not create it
}

TEST(StoreErrors, Directory) {
  TempDir dir;
  const std::string path = dir.file("");
  EXPECT_EQ(open_error(path), "cannot open recording " + path + ": it is a directory");
}

TEST(StoreErrors, TextFileIsNotARecording) {
  TempDir dir;
  const std::string path = dir.file("notes.txt");
  std::ofstream(path) << "this is not a database, but it is long enough to have a header of sorts.\n";
  EXPECT_EQ(open_error(path), "cannot open recording " + path + ": not a memdx recording");
}

TEST(StoreErrors, EmptyFileIsNotARecording) {
  TempDir dir;
  const std::string path = dir.file("empty.memdx");
  std::ofstream(path).close();
  EXPECT_EQ(open_error(path), "cannot open recording " + path + ": not a memdx recording");
}

TEST(StoreErrors, OtherSqliteDatabaseIsNotARecording) {
  TempDir dir;
  const std::string path = dir.file("other.db");
  {
    Database db = Database::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, Activity::kCreating);
    db.exec("CREATE TABLE t (x INTEGER); PRAGMA user_version = 1;");
  }
  EXPECT_EQ(open_error(path), "cannot open recording " + path + ": not a memdx recording");
}

TEST(StoreErrors, NewerSchemaIsRefusedWithBothVersions) {
  TempDir dir;
  const std::string path = dir.file("future.memdx");
  RecordingWriter::create(path, typical_meta()).close();
  {
    Database db = Database::open(path, SQLITE_OPEN_READWRITE, Activity::kWriting);
    db.exec("PRAGMA user_version = 99");
  }
  EXPECT_EQ(open_error(path), "recording " + path +
                                  " was written by a newer memdx (schema 99, this memdx reads up to " +
                                  std::to_string(kSchemaVersion) + ")");
}

TEST(StoreErrors, CreateInAMissingDirectorySaysWhy) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/run.memdx");
  try {
    RecordingWriter::create(path, typical_meta());
    FAIL() << "created a recording in a missing directory";
  } catch (const StoreError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot create recording " + path + ": No such file or directory");
  }
}

TEST(StoreErrors, CreateOverADirectoryIsRefused) {
  TempDir dir;
  const std::string path = dir.file("");
  EXPECT_THROW(RecordingWriter::create(path, typical_meta(), /*overwrite=*/true), StoreError);
}

std::string create_error(const std::string& path, bool overwrite = false) {
  try {
    RecordingWriter::create(path, typical_meta(), overwrite);
  } catch (const StoreError& e) {
    return e.what();
  }
  return "(created)";
}

TEST(StoreErrors, CreateOntoAFifoIsRefusedAndTheFifoKept) {
  TempDir dir;
  const std::string path = dir.file("r.fifo");
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  EXPECT_EQ(
      create_error(path, /*overwrite=*/true),
      "cannot create recording " + path + ": it is a FIFO, not a file (a recording is a SQLite file memdx reads back)");
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST(StoreErrors, CreateThroughASymlinkIsRefused) {
  TempDir dir;
  const std::string target = dir.file("elsewhere.memdx");
  const std::string path = dir.file("r.memdx");
  std::filesystem::create_symlink(target, path);
  EXPECT_EQ(create_error(path, /*overwrite=*/true),
            "cannot create recording " + path + ": it is a symbolic link; give the path of the recording itself");
  EXPECT_FALSE(std::filesystem::exists(target));
  EXPECT_TRUE(std::filesystem::is_symlink(path));
}

TEST(StoreCreate, ADirectoryReachedThroughALinkIsFine) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("real"));
  std::filesystem::create_directory_symlink("real", dir.file("link"));
  RecordingWriter::create(dir.file("link/r.memdx"), typical_meta()).close();
  EXPECT_EQ(RecordingReader::open(dir.file("real/r.memdx")).meta().host, typical_meta().host);
}

TEST(StoreCreate, TheRecordingIsPrivate) {
  TempDir dir;
  const std::string path = dir.file("r.memdx");
  mode_t old_mask = ::umask(0);
  RecordingWriter writer = RecordingWriter::create(path, typical_meta());
  ::umask(old_mask);
  for (const std::string& file : {path, path + "-wal"}) {  // the WAL holds the metadata until close
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0) << file;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << file;
  }
}

TEST(StoreCreate, AStaleJournalThatIsASymlinkIsRemovedNotFollowed) {
  TempDir dir;
  const std::string path = dir.file("r.memdx");
  const std::string outside = dir.file("outside.txt");
  std::ofstream(outside) << "precious\n";
  std::filesystem::create_symlink(outside, path + "-wal");
  RecordingWriter::create(path, typical_meta()).close();
  std::ifstream in(outside);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "precious");
}

TEST(StoreErrors, MessagesAreWordsNotCodes) {
  EXPECT_EQ(describe_error(SQLITE_FULL, "r.memdx", Activity::kWriting, "database or disk is full"),
            "disk full while writing r.memdx");
  EXPECT_EQ(describe_error(SQLITE_IOERR_WRITE, "r.memdx", Activity::kWriting, "disk I/O error", ENOSPC),
            "disk full while writing r.memdx");
  EXPECT_EQ(describe_error(SQLITE_IOERR_READ, "r.memdx", Activity::kReading, "disk I/O error", EIO),
            "I/O error while reading r.memdx: Input/output error");
  EXPECT_EQ(describe_error(SQLITE_CORRUPT, "r.memdx", Activity::kReading, "database disk image is malformed"),
            "recording r.memdx is damaged: database disk image is malformed");
  EXPECT_EQ(describe_error(SQLITE_BUSY, "r.memdx", Activity::kWriting, "database is locked"),
            "recording r.memdx is locked by another process; try again when it is done");
  EXPECT_EQ(describe_error(SQLITE_READONLY, "r.memdx", Activity::kWriting, "attempt to write a readonly database"),
            "cannot write recording r.memdx: attempt to write a readonly database");
}

// A real "disk full": the writer in a child whose file size limit is 256 KiB.
TEST(StoreErrors, FileSizeLimitStopsTheWriterWithOneLine) {
  TempDir dir;
  const std::string path = dir.file("full.memdx");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    signal(SIGXFSZ, SIG_IGN);  // let write() fail instead of killing the process
    constexpr rlim_t kLimitBytes = rlim_t{256} * 1024;
    rlimit limit{kLimitBytes, kLimitBytes};
    setrlimit(RLIMIT_FSIZE, &limit);
    std::string message = "(no error)";
    try {
      RecordingWriter writer = RecordingWriter::create(path, typical_meta());
      std::vector<model::ProcessSample> tick(50);
      for (int64_t t = 0; t < 100000; ++t) {
        for (size_t i = 0; i < tick.size(); ++i) {
          tick[i].pid = static_cast<pid_t>(i + 1);
          tick[i].t_ms = t * 200;
          tick[i].rss_bytes = static_cast<uint64_t>(t) * 4096 * (i + 1);
        }
        writer.add_samples(tick);
        writer.commit();
      }
    } catch (const StoreError& e) {
      message = e.what();
    }
    ssize_t ignored = write(fds[1], message.data(), message.size());
    (void)ignored;
    _exit(0);
  }
  close(fds[1]);
  std::string message;
  char buffer[512];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) message.append(buffer, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);

  // A short write reads as "disk full" to SQLite; a write refused outright (EFBIG) as an I/O error.
  const bool disk_full = message == "disk full while writing " + path;
  const bool io_error = message.rfind("I/O error while writing " + path, 0) == 0;
  EXPECT_TRUE(disk_full || io_error) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace memdx::store
