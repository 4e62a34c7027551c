#include "cli/progress_line.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "model/format.h"

namespace memdx::cli {

namespace {
constexpr auto kQuietFor = std::chrono::seconds(1);
constexpr auto kRedrawEvery = std::chrono::milliseconds(100);
}  // namespace

ProgressLine::ProgressLine(std::string what)
    : what_(std::move(what)), enabled_(::isatty(STDERR_FILENO) == 1), started_(std::chrono::steady_clock::now()) {}

ProgressLine::~ProgressLine() {
  if (drawn_) std::fputs("\r\033[K", stderr);
}

void ProgressLine::update(uint64_t done_bytes, uint64_t total_bytes) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - started_ < kQuietFor || now - last_draw_ < kRedrawEvery) return;
  last_draw_ = now;
  double elapsed_s = std::chrono::duration<double>(now - started_).count();
  std::string line;
  if (total_bytes > 0 && done_bytes <= total_bytes) {
    double fraction = static_cast<double>(done_bytes) / static_cast<double>(total_bytes);
    constexpr int kBarWidth = 30;
    int filled = static_cast<int>(fraction * kBarWidth);
    line =
        fmt::format("memdx: {} [{}{}] {:3.0f}% of {}, {:.0f} s", what_, std::string(filled, '#'),
                    std::string(kBarWidth - filled, ' '), fraction * 100, model::format_bytes(total_bytes), elapsed_s);
  } else {
    line = fmt::format("memdx: {}: {} read, {:.0f} s", what_, model::format_bytes(done_bytes), elapsed_s);
  }
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace memdx::cli
