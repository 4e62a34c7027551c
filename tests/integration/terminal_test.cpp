// memdx on a real terminal, one of tmux's (a server of the test's own): `run` never draws over
// its command's output, which shares the terminal; `watch` draws its live view where the watched
// process does not write, and erases it before the verdict.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/harness.h"

namespace memdx::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Lines = std::vector<std::string>;

bool starts_with(const std::string& line, const std::string& prefix) {
  return line.rfind(prefix, 0) == 0;
}
bool is_headline(const std::string& line) {
  return starts_with(line, "LEAK") || starts_with(line, "No leak");
}
bool is_live_view(const std::string& line) {
  return starts_with(line, "memdx ") && line.find("alive") != std::string::npos;
}

std::string quoted(const std::string& word) {
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string dump(const Lines& lines) {
  std::string text;
  for (const std::string& line : lines) text += "  |" + line + "\n";
  return text;
}

// A process that writes nothing to any terminal (its fds 0, 1 and 2 are /dev/null), killed at
// the end.
class QuietProcess {
 public:
  explicit QuietProcess(const std::vector<std::string>& argv) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int devnull = ::open("/dev/null", O_RDWR);
      for (int fd = 0; fd <= 2; ++fd) ::dup2(devnull, fd);
      std::vector<char*> args;
      for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~QuietProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  QuietProcess(const QuietProcess&) = delete;
  QuietProcess& operator=(const QuietProcess&) = delete;

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

class TerminalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmux_ = find_on_path("tmux");
    ASSERT_FALSE(tmux_.empty()) << "tmux is not installed: install the Debian package tmux (./run-tests installs "
                                   "what tools/bootstrap.sh lists)";
    // Inside a developer's tmux, TMUX would point the new session's clients at that server.
    ::unsetenv("TMUX");
    socket_ = "memdx-test-" + std::to_string(::getpid());
    dir_ = fs::temp_directory_path() / ("memdx-terminal-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }

  void TearDown() override {
    if (started_) {
      // The server leaves its socket behind.
      Finished socket = tmux({"display-message", "-p", "#{socket_path}"});
      tmux({"kill-server"});
      if (socket.exit_code == 0 && !socket.out.empty()) {
        std::error_code ignored;
        fs::remove(socket.out.substr(0, socket.out.find('\n')), ignored);
      }
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // tmux on the test's own server, without any configuration file.
  Finished tmux(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {tmux_, "-L", socket_, "-f", "/dev/null"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_for(argv, 20);
  }

  // A detached 120x50 session whose one pane runs `shell_command`, then stays.
  void start(const std::string& shell_command) {
    Finished started = tmux({"new-session", "-d", "-x", "120", "-y", "50", shell_command + "; exec sleep 600"});
    ASSERT_EQ(started.exit_code, 0) << "tmux new-session failed: " << started.err;
    started_ = true;
  }

  // The pane's text, with its history (the scrollback) or only what is on the screen, one entry
  // a line (wrapped lines joined), trailing blanks removed.
  Lines capture(bool with_history = true) {
    std::vector<std::string> args = {"capture-pane", "-p", "-J"};
    if (with_history) args.insert(args.end(), {"-S", "-"});
    Finished captured = tmux(args);
    EXPECT_EQ(captured.exit_code, 0) << "tmux capture-pane failed: " << captured.err;
    Lines lines;
    std::istringstream text(captured.out);
    for (std::string line; std::getline(text, line);) {
      line.erase(line.find_last_not_of(' ') + 1);
      lines.push_back(line);
    }
    while (!lines.empty() && lines.back().empty()) lines.pop_back();
    return lines;
  }

  // Captures until a capture has a line for which `wanted` holds, or the deadline passes; the last
  // capture, and whether it had one.
  std::pair<Lines, bool> capture_until(const std::function<bool(const std::string&)>& wanted, int limit_s) {
    auto deadline = Clock::now() + std::chrono::seconds(limit_s);
    for (;;) {
      Lines lines = capture();
      for (const std::string& line : lines) {
        if (wanted(line)) return {lines, true};
      }
      if (Clock::now() >= deadline) return {lines, false};
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  static bool saved(const std::string& line) { return starts_with(line, "memdx: recording saved"); }

  std::string tmux_;
  std::string socket_;
  fs::path dir_;
  bool started_ = false;
};

TEST_F(TerminalTest, RunNeverDrawsOverItsCommandsOutput) {
  start(quoted(memdx_path()) + " run --out " + quoted(path("r.memdx")) + " -- sh -c " +
        quoted("for i in 1 2 3 4 5 6 7 8 9 10; do echo line-$i; sleep 0.3; done"));
  if (HasFatalFailure()) return;
  auto [lines, finished] = capture_until(saved, 90);
  ASSERT_TRUE(finished) << "memdx run did not finish; the pane:\n" << dump(lines);
  // memdx's one line comes first, never between lines of its command's.
  EXPECT_TRUE(starts_with(lines.front(), "memdx: recording the command"))
      << "the terminal does not start with memdx's \"recording the command\" line:\n"
      << dump(lines);

  // Before the verdict: line-1 .. line-10 in order, each alone on its line (nothing of memdx's
  // drawn into or over them), then nothing but memdx's own one-line messages.
  auto headline = std::find_if(lines.begin(), lines.end(), is_headline);
  ASSERT_NE(headline, lines.end()) << "no verdict on the terminal:\n" << dump(lines);
  Lines printed;
  auto after_last = lines.begin();
  for (auto line = lines.begin(); line != headline; ++line) {
    if (line->find("line-") == std::string::npos) continue;
    printed.push_back(*line);
    after_last = line + 1;
  }
  Lines expected;
  for (int i = 1; i <= 10; ++i) expected.push_back("line-" + std::to_string(i));
  EXPECT_EQ(printed, expected) << "the command's lines, as the terminal shows them:\n" << dump(lines);
  for (auto line = after_last; line != headline; ++line) {
    EXPECT_TRUE(line->empty() || starts_with(*line, "memdx: ")) << "between line-10 and the verdict: " << *line;
  }
  // Once each on the whole terminal, the verdict's text included.
  for (const std::string& line : expected) {
    EXPECT_EQ(std::count(lines.begin(), lines.end(), line), 1) << line << ":\n" << dump(lines);
  }
  EXPECT_TRUE(std::none_of(lines.begin(), lines.end(), is_live_view)) << "a live view was drawn:\n" << dump(lines);
}

TEST_F(TerminalTest, WatchDrawsItsLiveViewAndErasesIt) {
  QuietProcess sleeper({find_on_path("sleep"), "60"});
  ASSERT_GT(sleeper.pid(), 0);
  start(quoted(memdx_path()) + " watch " + std::to_string(sleeper.pid()) + " --duration 3 --out " +
        quoted(path("r.memdx")));
  if (HasFatalFailure()) return;

  auto [during, drawn] = capture_until(is_live_view, 30);
  ASSERT_TRUE(drawn) << "no live view while memdx watch ran; the pane:\n" << dump(during);
  bool process_line = false;
  for (const std::string& line : during) process_line |= starts_with(line, "  pid ");
  EXPECT_TRUE(process_line) << "the live view has no process line:\n" << dump(during);

  auto [after, finished] = capture_until(saved, 60);
  ASSERT_TRUE(finished) << "memdx watch did not finish; the pane:\n" << dump(after);
  EXPECT_TRUE(std::any_of(after.begin(), after.end(), is_headline)) << "no verdict on the terminal:\n" << dump(after);
  Lines screen = capture(false);
  EXPECT_TRUE(std::none_of(screen.begin(), screen.end(), is_live_view)) << "the live view was left on the screen:\n"
                                                                        << dump(screen);
  // The view was drawn from the pane's top line, where its erasure ("\033[<n>F\033[J") clears the
  // whole screen: tmux (scroll-on-clear, on by default) first scrolls such a screen into the
  // history, so each frame would stay in the scrollback.
  EXPECT_TRUE(std::none_of(after.begin(), after.end(), is_live_view))
      << "frames of the live view were left in the terminal's scrollback:\n"
      << dump(after);
}

}  // namespace
}  // namespace memdx::test
