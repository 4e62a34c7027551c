#include "cli/live_view.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cstdio>
#include <vector>

#include <fmt/format.h>

#include "model/format.h"

namespace memdx::cli {
namespace {

constexpr auto kRedrawInterval = std::chrono::milliseconds(500);
constexpr int64_t kTrendWindowMs = 5000;

// Compares the newest value with the one about kTrendWindowMs ago; 2% either way is noise.
const char* arrow(const std::deque<std::pair<int64_t, uint64_t>>& values) {
  if (values.size() < 2) return " ";
  double now = static_cast<double>(values.back().second);
  double then = static_cast<double>(values.front().second);
  if (now > then * 1.02) return "\u2191";
  if (now < then * 0.98) return "\u2193";
  return "\u2192";
}

// Whether one of the process's standard descriptors (input too: the terminal echoes what is
// typed for it) is the terminal device `terminal` names. Unknown counts as yes.
bool shares_terminal(pid_t pid, dev_t terminal) {
  for (int fd = 0; fd <= 2; ++fd) {
    struct stat st {};
    std::string path = fmt::format("/proc/{}/fd/{}", pid, fd);
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT && ::access(fmt::format("/proc/{}", pid).c_str(), F_OK) == 0) continue;  // fd closed
      return true;
    }
    if (S_ISCHR(st.st_mode) && st.st_rdev == terminal) return true;
  }
  return false;
}

}  // namespace

LiveView::LiveView(pid_t root) {
  struct stat terminal {};
  if (::isatty(STDERR_FILENO) != 1 || ::fstat(STDERR_FILENO, &terminal) != 0) return;
  enabled_ = !shares_terminal(root, terminal.st_rdev);
}

std::string LiveView::render(const record::TickStatus& status) {
  const auto& samples = *status.samples;
  uint64_t total_pss = 0;
  for (const auto& s : samples) {
    History& h = history_[s.pid];
    if (s.pss_bytes) h.pss_bytes = *s.pss_bytes;
    h.rss.emplace_back(status.t_ms, s.rss_bytes);
    while (h.rss.size() > 2 && status.t_ms - h.rss.front().first > kTrendWindowMs) h.rss.pop_front();
    total_pss += h.pss_bytes;
  }
  std::string out =
      fmt::format("memdx  {:>7.1f} s  {} process{} alive ({} seen)  total PSS {}\n",
                  static_cast<double>(status.t_ms) / 1000.0, status.processes_alive,
                  status.processes_alive == 1 ? "" : "es", status.processes_seen, model::format_bytes(total_pss));
  std::vector<const model::ProcessSample*> busiest;
  busiest.reserve(samples.size());
  for (const auto& s : samples) busiest.push_back(&s);
  std::sort(busiest.begin(), busiest.end(), [](auto* a, auto* b) { return a->rss_bytes > b->rss_bytes; });
  for (size_t i = 0; i < busiest.size() && i < 5; ++i) {
    const auto* s = busiest[i];
    out += fmt::format("  pid {:>7}  RSS {:>10} {}  anon {:>10}  fds {:>5}  threads {:>4}\n", s->pid,
                       model::format_bytes(s->rss_bytes), arrow(history_[s->pid].rss),
                       model::format_bytes(s->rss_anon_bytes), s->fds ? std::to_string(*s->fds) : "?", s->threads);
  }
  return out;
}

void LiveView::update(const record::TickStatus& status) {
  if (!enabled_) return;
  std::string text = render(status);  // every tick, so the trend history stays complete
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  clear();
  std::fputs(text.c_str(), stderr);
  std::fflush(stderr);
  lines_drawn_ = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

void LiveView::clear() {
  if (!enabled_ || lines_drawn_ == 0) return;
  // Up to the first drawn line, erase each line, and back up again. Not "erase to the end of the
  // screen": on a view drawn from the top row that clears the whole screen, which terminals such
  // as tmux first copy into the scrollback, a frame there for every redraw.
  std::string erase = fmt::format("\033[{}F", lines_drawn_);
  for (int i = 0; i < lines_drawn_; ++i) erase += "\033[2K\n";
  erase += fmt::format("\033[{}F", lines_drawn_);
  std::fputs(erase.c_str(), stderr);
  std::fflush(stderr);
  lines_drawn_ = 0;
}

}  // namespace memdx::cli
