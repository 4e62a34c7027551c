// One line of progress on stderr for work that may take a while (reading a long heap trace):
// shown only when stderr is a terminal and the work has already taken a second, redrawn at most
// ten times a second, and erased when done, so short runs and scripts never see it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace memdx::cli {

class ProgressLine {
 public:
  explicit ProgressLine(std::string what);  // "reading the heap trace"
  ~ProgressLine();                          // erases the line
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  // done_bytes of total_bytes (0: unknown total) processed so far.
  void update(uint64_t done_bytes, uint64_t total_bytes);

 private:
  std::string what_;
  bool enabled_ = false;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace memdx::cli
