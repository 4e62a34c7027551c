// An output file of a command (--json, --html, --pprof, --folded): created when the command
// starts, so an unwritable path fails before a long recording or analysis rather than after it,
// and written beside its path and renamed over it once whole, so that a failed or interrupted
// command never leaves half a file (nor truncates the one that was there).
#pragma once

#include <string>

namespace memdx::cli {

class OutputFile {
 public:
  OutputFile() = default;  // no file: write_all does nothing
  // Creates PATH.partial; a path that is a directory, or whose directory cannot be written,
  // throws RuntimeError with the reason. An empty path is no file.
  explicit OutputFile(const std::string& path);
  OutputFile(OutputFile&& other) noexcept;
  OutputFile& operator=(OutputFile&& other) noexcept;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile();  // removes PATH.partial if write_all never completed

  bool is_open() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }
  // Writes `bytes` and renames the file over PATH; once only. Throws RuntimeError with the reason.
  void write_all(const std::string& bytes);

 private:
  [[noreturn]] void fail() const;
  void discard();

  std::string path_, partial_path_;
  int fd_ = -1;
};

}  // namespace memdx::cli
