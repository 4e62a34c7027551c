// An output file of a command (--json, --html, --pprof, --folded): opened when the command
// starts, so a path memdx cannot write fails before a long recording or analysis rather than
// after it, and written once, at the end. What the path names decides how (output_paths.h):
//  - `-`, /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N: that descriptor, written as it
//    is, never reopened nor truncated (`--json /dev/stdout -- app > out.txt` keeps app's lines);
//  - a missing name or a regular file (a symbolic link leads to the one it names, and stays): a
//    new private file (0600) is made in its directory, unnamed (O_TMPFILE) or with exclusive
//    creation, so a link planted there is never followed, and renamed over the name once whole;
//    a failed or interrupted command leaves neither half a file nor the temporary one;
//  - a character device or a FIFO (/dev/null, a named pipe, >(...)): opened for writing as it
//    is; a FIFO with no reader yet is opened when written, so memdx does not wait at the start;
//  - a directory, a block device (writing onto a disk would destroy it) or a socket: refused.
// Not thread-safe. Every failure throws RuntimeError with one line: "cannot write PATH: why".
#pragma once

#include <string>

namespace memdx::cli {

class OutputFile {
 public:
  OutputFile() = default;  // no file: write_all does nothing
  // Opens the output as above; an empty path is no file.
  explicit OutputFile(const std::string& path);
  OutputFile(OutputFile&& other) noexcept;
  OutputFile& operator=(OutputFile&& other) noexcept;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile();  // removes the temporary file if write_all never completed

  // True until write_all has written it.
  bool is_open() const { return kind_ != Kind::kNone; }
  // Writes to memdx's own standard output (`-`, /dev/stdout): other text must go elsewhere.
  bool is_standard_output() const { return kind_ == Kind::kDescriptor && fd_ == 1; }
  const std::string& path() const { return path_; }
  // Writes `bytes` (and renames the new file over the name); once only: later calls do nothing.
  void write_all(const std::string& bytes);

 private:
  enum class Kind {
    kNone,        // no file, or written already
    kDescriptor,  // an open descriptor of memdx's, not ours to close
    kReplace,     // a new file renamed over target_ once written
    kStream,      // a character device or FIFO at target_, written as it is
  };

  void open(const std::string& target);  // target: the path with its links followed
  void open_descriptor(int fd);
  void open_replacement(const std::string& target);
  void open_stream(const std::string& node, bool is_fifo);
  void open_waiting_fifo();
  void link_unnamed_file();
  int write_fully(const std::string& bytes) const;
  void replace_target();
  [[noreturn]] void fail(int error);
  [[noreturn]] void refuse(const std::string& why);
  void discard();

  std::string path_;  // as the user named it, for messages
  Kind kind_ = Kind::kNone;
  int fd_ = -1;            // owned unless kDescriptor; -1 for a FIFO that waits for its reader
  std::string target_;     // kReplace: the name replaced; kStream: the node
  std::string temp_path_;  // kReplace: the new file's name until it is renamed (none while unnamed)
};

}  // namespace memdx::cli
