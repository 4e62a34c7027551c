// Scratch directories and typical values for the recording tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "model/recording.h"

namespace memdx::testing {

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "memdx-store-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed for " << pattern;
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Designated initializers that leave out the optional fields would trip -Wextra.
inline model::ProcessRecord process_record(pid_t pid, pid_t ppid, std::vector<std::string> command,
                                           int64_t first_seen_ms) {
  model::ProcessRecord p;
  p.pid = pid;
  p.ppid = ppid;
  p.command = std::move(command);
  p.first_seen_ms = first_seen_ms;
  return p;
}

inline model::SystemSample system_sample(int64_t t_ms, uint64_t mem_available_bytes, uint64_t swap_free_bytes) {
  model::SystemSample s;
  s.t_ms = t_ms;
  s.mem_available_bytes = mem_available_bytes;
  s.swap_free_bytes = swap_free_bytes;
  return s;
}

inline model::RecordingMeta typical_meta() {
  model::RecordingMeta meta;
  meta.command = {"./server", "--port", "8080", "with space", ""};
  meta.kind = "run";
  meta.started_at_utc = "2026-11-24T01:20:55Z";
  meta.started_at_unix_ms = 1795050055123;
  meta.host = "build-07";
  meta.kernel = "6.1.0-18-amd64";
  meta.memdx_version = "0.1.0";
  meta.interval_ms = 200;
  meta.cgroup_max_bytes = uint64_t{8} << 30;
  meta.mem_total_bytes = uint64_t{64} << 30;
  return meta;
}

}  // namespace memdx::testing
