#include "trace_integration/trace_support.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace memdx::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

[[noreturn]] void exec_child(const std::vector<std::string>& argv, int out, int err) {
  ::setpgid(0, 0);
  ::dup2(out, STDOUT_FILENO);
  ::dup2(err, STDERR_FILENO);
  int devnull = ::open("/dev/null", O_RDONLY);
  ::dup2(devnull, STDIN_FILENO);
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  ::_exit(127);
}

// Reads both pipes until they close or the deadline passes; false on the deadline.
bool drain_until(int out, int err, std::string& out_text, std::string& err_text, Clock::time_point deadline) {
  pollfd fds[2] = {{out, POLLIN, 0}, {err, POLLIN, 0}};
  std::string* sinks[2] = {&out_text, &err_text};
  int open_count = 2;
  while (open_count > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    int ready = ::poll(fds, 2, static_cast<int>(left));
    if (ready < 0 && errno != EINTR) fail("poll");
    for (int i = 0; i < 2 && ready > 0; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[65536];
      ssize_t n = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else {
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  return true;
}

}  // namespace

Finished run_for(const std::vector<std::string>& argv, int limit_s) {
  int out[2];
  int err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) fail("pipe");
  pid_t pid = ::fork();
  if (pid < 0) fail("fork");
  if (pid == 0) exec_child(argv, out[1], err[1]);
  ::setpgid(pid, pid);  // also here: no race with the kill below
  ::close(out[1]);
  ::close(err[1]);
  Finished run;
  auto deadline = Clock::now() + std::chrono::seconds(limit_s);
  if (!drain_until(out[0], err[0], run.out, run.err, deadline)) {
    run.timed_out = true;
    ::kill(-pid, SIGKILL);
  }
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() >= deadline) {
      run.timed_out = true;
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    ::usleep(2000);
  }
  if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) run.signal = WTERMSIG(status);
  return run;
}

std::string tracee_path(const std::string& name) { return std::string(MEMDX_TRACEE_DIR) + "/memdx_tracee_" + name; }
std::string tracee_source(const std::string& file) { return std::string(MEMDX_TRACEE_SOURCE_DIR) + "/" + file; }

std::string find_on_path(const std::string& name) {
  const char* path_env = std::getenv("PATH");
  std::stringstream dirs(path_env ? path_env : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return "";
}

void SiteSums::add(const json& site) {
  ++sites;
  allocations += site["allocations"].get<uint64_t>();
  allocated_bytes += site["allocated_bytes"].get<uint64_t>();
  peak_live_bytes += site["peak_live_bytes"].get<uint64_t>();
  final_live_bytes += site["final_live_bytes"].get<uint64_t>();
  final_live_blocks += site["final_live_blocks"].get<uint64_t>();
  files.insert(site["file"].get<std::string>());
  lines.insert(site["line"].get<int>());
}

SiteSums site_sums(const json& heap_entry, std::string_view function) {
  SiteSums sums;
  for (const json& site : heap_entry["sites"]) {
    if (site["function"].get<std::string>() == function) sums.add(site);
  }
  return sums;
}

std::set<int> marked_lines(const std::string& source_file, std::string_view function) {
  std::ifstream in(source_file);
  std::set<int> lines;
  std::string marker = "// site: " + std::string(function);
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    size_t at = line.find(marker);
    if (at != std::string::npos && at + marker.size() == line.size()) lines.insert(number);
  }
  return lines;
}

std::map<std::string, std::vector<PrintedPid>> printed_pids(const std::string& out) {
  std::map<std::string, std::vector<PrintedPid>> found;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string label;
    PrintedPid printed;
    if (fields >> label >> printed.pid >> printed.ppid) found[label].push_back(printed);
  }
  return found;
}

std::vector<json> heap_entries_of(const json& verdict, pid_t pid) {
  std::vector<json> entries;
  for (const json& entry : verdict["heap"]) {
    if (entry["pid"].get<pid_t>() == pid) entries.push_back(entry);
  }
  return entries;
}

void TraceTest::SetUp() {
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(test->test_suite_name()) + "-" + test->name();
  for (char& c : name) {
    if (c == '/') c = '_';
  }
  dir_ = fs::temp_directory_path() / ("memdx-trace-" + std::to_string(::getpid()) + "-" + name);
  fs::create_directories(dir_);
}

void TraceTest::TearDown() {
  if (!dir_.empty()) fs::remove_all(dir_);
}

Finished TraceTest::trace(const std::vector<std::string>& command, int limit_s) {
  recording_ = path("r" + std::to_string(++recordings_) + ".memdx");
  std::vector<std::string> argv = {memdx_path(), "trace", "-o", recording_, "--"};
  argv.insert(argv.end(), command.begin(), command.end());
  Finished run = run_for(argv, limit_s);
  EXPECT_FALSE(run.timed_out) << "memdx trace ran past " << limit_s << " s";
  return run;
}

json TraceTest::report() {
  std::string json_path = recording_ + ".json";
  Finished run = run_for({memdx_path(), "report", recording_, "--json", json_path});
  EXPECT_EQ(run.exit_code, 0) << "memdx report failed: " << run.err;
  if (run.exit_code != 0) return json::object();
  std::ifstream in(json_path);
  return json::parse(in);
}

}  // namespace memdx::test
