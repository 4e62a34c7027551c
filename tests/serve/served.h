// `memdx serve` and the programs it watches, run for real by the serve tests: the server in the
// background on a free loopback port, and an HTTP client of cpp-httplib's to ask it.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "integration/harness.h"

namespace memdx::test {

// Forks and execs argv with stdout and stderr to /dev/null; the process group is its own.
inline pid_t spawn(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    int null_fd = ::open("/dev/null", O_RDWR);
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

// A behave helper (tests/helpers/behave.cpp) in MODE for SECONDS; killed and reaped at the end.
class Behaving {
 public:
  // `tag`: an extra argument the helper ignores, for a NAME target to match this test's helpers
  // only (other tests run the same helper at the same time).
  Behaving(const std::string& mode, double seconds, const std::string& tag = "")
      : pid_(spawn(tag.empty() ? std::vector<std::string>{helper_path("behave"), mode, std::to_string(seconds)}
                               : std::vector<std::string>{helper_path("behave"), mode, std::to_string(seconds), tag})) {
  }
  ~Behaving() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  Behaving(const Behaving&) = delete;
  Behaving& operator=(const Behaving&) = delete;
  pid_t pid() const { return pid_; }
  // Waits for it to exit by itself.
  void wait() { ::waitpid(pid_, nullptr, 0); }

 private:
  pid_t pid_;
};

// A fresh directory under /tmp, removed with what it holds.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/memdx-serve-XXXXXX";
    if (::mkdtemp(pattern) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A port no one listens on now (bound to 0 and released).
inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// `memdx serve --listen LISTEN ARGS...`, until stop() or destruction. `wrapper`: a command that
// runs it (its last arguments), unshare(1) into a PID namespace of the test's own, say. LISTEN is
// port 0 of 127.0.0.1 or of [::1].
class Served {
 public:
  explicit Served(const std::vector<std::string>& args, const std::vector<std::string>& wrapper = {},
                  const std::string& listen = "127.0.0.1:0") {
    int err_pipe[2];
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::dup2(err_pipe[1], 2);
      int null_fd = ::open("/dev/null", O_RDWR);
      ::dup2(null_fd, 0);
      ::dup2(null_fd, 1);
      std::vector<std::string> argv = wrapper;
      for (const std::string& arg : {memdx_path(), std::string("serve"), std::string("--listen"), listen}) {
        argv.push_back(arg);
      }
      argv.insert(argv.end(), args.begin(), args.end());
      std::vector<char*> raw;
      for (const std::string& arg : argv) raw.push_back(const_cast<char*>(arg.c_str()));
      raw.push_back(nullptr);
      ::execv(raw[0], raw.data());
      ::_exit(127);
    }
    ::close(err_pipe[1]);
    err_fd_ = err_pipe[0];
    // The line that says where it serves, within 15 s.
    std::regex serving(R"(serving http://(127\.0\.0\.1|\[::1\]):([0-9]+)/metrics)");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (port_ == 0 && std::chrono::steady_clock::now() < deadline) {
      if (!read_some(200)) break;
      std::smatch match;
      if (std::regex_search(err_, match, serving)) {
        host_ = match[1] == "[::1]" ? "::1" : match[1].str();
        port_ = std::stoi(match[2]);
      }
    }
  }
  ~Served() {
    if (pid_ > 0 && !stopped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (err_fd_ >= 0) ::close(err_fd_);
  }
  Served(const Served&) = delete;
  Served& operator=(const Served&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& err() const { return err_; }

  // SIGTERM; the exit code (-1 when it did not exit within 10 s or was killed by a signal).
  int stop() {
    ::kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        stopped_ = true;
        while (read_some(0)) {
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  struct Answer {
    int status = 0;  // 0: no answer
    std::string body;
    std::string content_type;
  };
  Answer request(const std::string& method, const std::string& path, const httplib::Headers& headers = {},
                 const std::string& body = "") const {
    httplib::Client client(host_, port_);
    client.set_connection_timeout(5, 0);
    client.set_read_timeout(10, 0);
    httplib::Result result =
        method == "POST" ? client.Post(path, headers, body, "text/plain") : client.Get(path, headers);
    Answer answer;
    if (!result) return answer;
    answer.status = result->status;
    answer.body = result->body;
    answer.content_type = result->get_header_value("Content-Type");
    return answer;
  }
  std::string metrics(const httplib::Headers& headers = {}) const { return request("GET", "/metrics", headers).body; }

 private:
  // Appends what stderr has within timeout_ms; false at its end.
  bool read_some(int timeout_ms) {
    pollfd fd{err_fd_, POLLIN, 0};
    if (::poll(&fd, 1, timeout_ms) <= 0) return timeout_ms > 0;
    char buffer[4096];
    ssize_t got = ::read(err_fd_, buffer, sizeof(buffer));
    if (got <= 0) return false;
    err_.append(buffer, static_cast<size_t>(got));
    return true;
  }

  pid_t pid_ = -1;
  int err_fd_ = -1;
  std::string host_ = "127.0.0.1";
  int port_ = 0;
  bool stopped_ = false;
  std::string err_;
};

// The value of the sample of `metric` whose labels include pid="PID"; nullopt when absent.
inline std::optional<double> sample_of(const std::string& metrics, const std::string& metric, pid_t pid) {
  std::istringstream lines(metrics);
  std::string line;
  std::string prefix = metric + "{pid=\"" + std::to_string(pid) + "\"";
  while (std::getline(lines, line)) {
    if (line.rfind(prefix, 0) == 0) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nullopt;
}

// The pids /health lists as served.
inline std::set<pid_t> served_pids(const Served& served) {
  std::set<pid_t> pids;
  std::string body = served.request("GET", "/health").body;
  std::regex pid(R"re("pid": ([0-9]+))re");
  for (auto it = std::sregex_iterator(body.begin(), body.end(), pid); it != std::sregex_iterator(); ++it) {
    pids.insert(static_cast<pid_t>(std::stol((*it)[1])));
  }
  return pids;
}

// The lines of `metrics` that are samples of `metric` (any labels).
inline std::vector<std::string> samples_named(const std::string& metrics, const std::string& metric) {
  std::vector<std::string> found;
  std::istringstream lines(metrics);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(metric + "{", 0) == 0) found.push_back(line);
  }
  return found;
}

// VmRSS of /proc/PID/status in bytes.
inline double vm_rss_bytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) * 1024;
  }
  return 0;
}

}  // namespace memdx::test
