// Pieces shared by the recording commands (run, watch, report): output paths checked before
// anything starts, recording metadata, and writing the verdict.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <functional>
#include <optional>

#include "model/recording.h"
#include "model/verdict.h"
#include "record/session.h"

namespace memdx::cli {

// "./memdx-<name>-<yyyymmdd-hhmmss>.memdx" in the current directory, name made file-safe.
std::string default_recording_path(const std::string& name);

// A file opened for writing when the command starts, so an unwritable path fails before the
// target runs rather than after a long recording. Throws RuntimeError with the reason.
class OutputFile {
 public:
  OutputFile() = default;
  explicit OutputFile(const std::string& path);
  bool is_open() const { return file_ != nullptr; }
  void write_all(const std::string& text);  // replaces the content; throws RuntimeError
  const std::string& path() const { return path_; }

 private:
  struct Closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::string path_;
  std::unique_ptr<std::FILE, Closer> file_;
};

// Metadata every recording starts with: time, host, kernel, version, interval, limits.
model::RecordingMeta make_meta(const std::string& kind, const std::vector<std::string>& command,
                               int64_t interval_ms, pid_t root);

// Analyses the finished recording and prints the summary; writes JSON when asked.
model::Verdict analyze_and_report(const std::string& recording_path, OutputFile& json_out);

struct RecordRequest {
  std::string out_path;
  model::RecordingMeta meta;
  std::optional<int64_t> duration_ms;
  bool quiet = false;         // no live view
  bool root_is_child = false;  // run: memdx started the root, reaps it and forwards signals
};

// The shared flow of run and watch: creates the recording (so a bad path fails before anything
// starts), calls start_root() for the root pid, records the tree until the session ends, and
// closes the file. When start_root() returns a negative pid, the empty recording is removed and
// nullopt returned.
std::optional<record::SessionResult> record_tree(const RecordRequest& request, const std::function<pid_t()>& start_root);

}  // namespace memdx::cli
