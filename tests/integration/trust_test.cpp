// memdx on programs and situations that once made it hang a target, lose what it recorded, lie in
// its verdict or let another process in (tests/helpers/trust_target.cpp makes most of them). Each
// test reproduces the failure it guards against.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "integration/harness.h"
#include "proc/process_files.h"
#include "proc/procfs.h"

namespace memdx::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

const json* heap_of(const json& verdict, pid_t pid) {
  for (const json& image : verdict["heap"]) {
    if (image["pid"] == pid) return &image;
  }
  return nullptr;
}

uint64_t site_allocations(const json& image, const std::string& function) {
  uint64_t total = 0;
  for (const json& site : image["sites"]) {
    if (site["function"].get<std::string>().find(function) != std::string::npos)
      total += site["allocations"].get<uint64_t>();
  }
  return total;
}

std::string status_of(const json& verdict, const std::string& name, pid_t pid) {
  for (const json& h : verdict["hypotheses"]) {
    if (h["name"] == name && h["pid"] == pid) return h["status"];
  }
  return "";
}

// The children of `pid`, from /proc/PID/task/PID/children.
std::vector<pid_t> children_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  std::vector<pid_t> out;
  for (pid_t child = 0; in >> child;) out.push_back(child);
  return out;
}

std::map<std::string, std::string> environment_of(pid_t pid) {
  std::string text = read_file("/proc/" + std::to_string(pid) + "/environ");
  std::map<std::string, std::string> out;
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\0', at);
    std::string entry = text.substr(at, end - at);
    if (size_t equals = entry.find('='); equals != std::string::npos)
      out[entry.substr(0, equals)] = entry.substr(equals + 1);
    at = end == std::string::npos ? text.size() : end + 1;
  }
  return out;
}

// memdx started in the background with its output in files; killed with its process group if a
// test leaves it behind.
class Background {
 public:
  // `args` are memdx's when the first is not a path.
  Background(std::vector<std::string> args, const std::string& out_path, const std::string& err_path) {
    if (args.empty() || args.front().find('/') == std::string::npos) args.insert(args.begin(), memdx_path());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      int null = ::open("/dev/null", O_RDONLY);
      int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(null, 0);
      ::dup2(out, 1);
      ::dup2(err, 2);
      std::vector<char*> argv;
      for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~Background() {
    if (!reaped_) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }

  // The command memdx started, once it runs (nullopt after `limit`).
  std::optional<pid_t> target(std::chrono::milliseconds limit = std::chrono::seconds(10)) const {
    for (auto end = Clock::now() + limit; Clock::now() < end;
         std::this_thread::sleep_for(std::chrono::milliseconds(20))) {
      std::vector<pid_t> children = children_of(pid_);
      if (!children.empty()) return children.front();
    }
    return std::nullopt;
  }

  // memdx's wait status, or nullopt after `limit` (then it is killed).
  std::optional<int> wait(std::chrono::seconds limit) {
    for (auto end = Clock::now() + limit; Clock::now() < end;
         std::this_thread::sleep_for(std::chrono::milliseconds(20))) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        return status;
      }
    }
    return std::nullopt;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

class TrustTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("memdx-trust-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  static std::string target() { return helper_path("trust_target"); }

  json report_json(const std::string& recording) {
    CommandResult r = run_memdx({"report", recording, "--json", path("report.json")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return read_json(path("report.json"));
  }

  fs::path dir_;
};

// ---- Daemons --------------------------------------------------------------------------------

// The command starts a daemon (double fork, setsid) and exits at once. By default memdx stops with
// the command and says which process it leaves; --follow records the daemon to its end, leak and
// site included.
TEST_F(TrustTest, ADaemonIsNamedByDefaultAndRecordedWithFollow) {
  Finished quick = run_for({memdx_path(), "run", "--quiet", "--json", path("quick.json"), "--out", path("quick.memdx"),
                            "--", target(), "daemon", "3"},
                           60);
  ASSERT_FALSE(quick.timed_out);
  EXPECT_EQ(quick.exit_code, 0) << quick.err;
  EXPECT_EQ(quick.out, "started\n");
  EXPECT_NE(quick.err.find("not recorded further"), std::string::npos) << quick.err;
  EXPECT_NE(quick.err.find("memdx run --follow"), std::string::npos) << quick.err;

  Finished followed = run_for({memdx_path(), "run", "--follow", "--quiet", "--json", path("v.json"), "--out",
                               path("r.memdx"), "--", target(), "daemon", "8"},
                              120);
  ASSERT_FALSE(followed.timed_out);
  EXPECT_EQ(followed.exit_code, 0) << followed.err;
  EXPECT_NE(followed.err.find("recording until"), std::string::npos) << followed.err;
  json v = read_json(path("v.json"));
  EXPECT_GE(v["target"]["duration_s"].get<double>(), 7.0) << v["target"].dump();
  bool daemon_leaks = false;
  for (const json& f : v["findings"]) {
    if (f["severity"] != "leak" || f["pid"] == v["target"]["pid"]) continue;
    for (const json& site : f["sites"])
      daemon_leaks |= site["function"].get<std::string>().find("daemon_leak") != std::string::npos;
  }
  EXPECT_TRUE(daemon_leaks) << v["findings"].dump(1);
}

// A command that lives a millisecond can be reaped before memdx first looks at /proc: it is
// recorded all the same, with its exit code (it once vanished from the verdict now and then).
TEST_F(TrustTest, AnInstantCommandIsRecordedWithItsExitCode) {
  for (int i = 0; i < 10; ++i) {
    std::string json_path = path("v" + std::to_string(i) + ".json");
    CommandResult r = run_memdx({"run", "--quiet", "--json", json_path, "--out",
                                 path("r" + std::to_string(i) + ".memdx"), "--", "/bin/sh", "-c", "exit 3"});
    ASSERT_EQ(r.exit_code, 3) << r.err;
    json v = read_json(json_path);
    EXPECT_EQ(v["target"]["exit_code"], 3) << v["target"].dump();
    ASSERT_EQ(v["processes"].size(), 1u) << v["processes"].dump();
    EXPECT_EQ(v["processes"][0]["command"], "/bin/sh -c exit 3");
  }
}

// Hundreds of processes that live a millisecond each: each connects to the collector and may be
// gone before its credentials are checked (a /proc read failing mid-way once threw on the
// collector's thread and killed memdx).
TEST_F(TrustTest, ShortLivedProcessesByTheHundredAreAllTraced) {
  for (int round = 0; round < 3; ++round) {
    std::string recording = path("r" + std::to_string(round) + ".memdx");
    Finished r = run_for({memdx_path(), "trace", "-o", recording, "--", "/bin/bash", "-c",
                          "for i in $(seq 300); do /bin/true; done; echo done"},
                         120);
    ASSERT_FALSE(r.timed_out);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "done\n");
    // bash and its $(seq) (3 images), then a fork and an exec'd /bin/true for each of the 300.
    EXPECT_NE(r.err.find("traced 603 process images"), std::string::npos) << r.err;
  }
}

// ---- The tracer's delivery ------------------------------------------------------------------

// A thread allocates, then blocks for good; the process is SIGKILLed 3 s later. What the thread
// recorded must have reached memdx long before (the flusher sends a quiet thread's buffer).
TEST_F(TrustTest, AnIdleThreadsAllocationsSurviveASigkill) {
  Background memdx({"trace", "-o", path("r.memdx"), "--", target(), "idle_thread"}, path("out"), path("err"));
  std::optional<pid_t> traced = memdx.target();
  ASSERT_TRUE(traced);
  for (auto end = Clock::now() + std::chrono::seconds(10); Clock::now() < end && read_file(path("out")) != "ready\n";) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(read_file(path("out")), "ready\n");
  std::this_thread::sleep_for(std::chrono::seconds(3));
  ::kill(*traced, SIGKILL);
  std::optional<int> status = memdx.wait(std::chrono::seconds(30));
  ASSERT_TRUE(status);
  EXPECT_EQ(WEXITSTATUS(*status), 128 + SIGKILL) << read_file(path("err"));
  json v = report_json(path("r.memdx"));
  const json* image = heap_of(v, *traced);
  ASSERT_TRUE(image) << v["heap"].dump(1);
  EXPECT_EQ((*image)["ended"], "killed");
  EXPECT_EQ(site_allocations(*image, "idle_allocations"), 1000u) << image->dump(1);
}

// A program closes every descriptor (four ways), then allocates, forks and exits: the trace goes
// on, and the process ends by its exit, not as "killed".
class CloseAllTest : public TrustTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(CloseAllTest, ClosingEveryDescriptorKeepsTheTrace) {
  Finished r = run_for({memdx_path(), "trace", "-o", path("r.memdx"), "--", target(), "close_all", GetParam()}, 60);
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 7) << r.err;
  json v = report_json(path("r.memdx"));
  ASSERT_EQ(v["heap"].size(), 2u) << v["heap"].dump(1);
  for (const json& image : v["heap"]) {
    EXPECT_EQ(image["ended"], "exit") << image.dump(1);
    EXPECT_EQ(site_allocations(image, "after_closing"), 500u) << image.dump(1);
  }
}

INSTANTIATE_TEST_SUITE_P(Ways, CloseAllTest, ::testing::Values("loop", "close_range", "closefrom", "dup2"),
                         [](const auto& way) { return std::string(way.param); });

// unshare(CLONE_NEWUSER or CLONE_VM) needs a single-threaded process: the tracer's flusher thread steps aside
// for it, so the program does under memdx what it does alone.
TEST_F(TrustTest, AProgramThatMustBeSingleThreadedStillIs) {
  // 200 times: the tracer's thread must be wholly gone from the kernel's view each time, not
  // merely joined (the kernel removes a joined thread a moment later).
  Finished native = run_for({target(), "unshare", "vm"}, 30);
  ASSERT_EQ(native.out, "unshare ok\n") << native.err;
  for (int run = 0; run < 3; ++run) {
    Finished traced = run_for(
        {memdx_path(), "trace", "-o", path("r" + std::to_string(run) + ".memdx"), "--", target(), "unshare", "vm"}, 60);
    EXPECT_EQ(traced.out, native.out) << traced.err;
    EXPECT_EQ(traced.exit_code, 0);
  }
}

TEST_F(TrustTest, AProgramThatEntersAUserNamespaceStillCan) {
  Finished native = run_for({target(), "unshare", "user"}, 30);
  if (native.out.find("Operation not permitted") != std::string::npos ||
      native.out.find("No space left") != std::string::npos) {
    GTEST_SKIP() << "this machine refuses user namespaces to every program: " << native.out;
  }
  ASSERT_EQ(native.out, "unshare ok\n") << native.err;
  Finished traced = run_for({memdx_path(), "trace", "-o", path("r.memdx"), "--", target(), "unshare", "user"}, 60);
  EXPECT_EQ(traced.out, native.out) << traced.err;
  EXPECT_EQ(traced.exit_code, 0);
}

// ---- The collector admits only its own tracer ------------------------------------------------

// Connects to the UNIX socket at `socket_path` and sends `bytes`; -1 with errno when it cannot.
int connect_and_send(const std::string& socket_path, const std::string& bytes) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", socket_path.c_str());
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    int error = errno;
    ::close(fd);
    errno = error;
    return -1;
  }
  [[maybe_unused]] ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  return fd;
}

// While a traced program runs: another user cannot reach the socket at all (a private 0700
// directory), and a root process outside the traced tree is refused, noted, and changes nothing.
TEST_F(TrustTest, TheCollectorAdmitsOnlyTheTracedTree) {
  ASSERT_EQ(::geteuid(), 0u) << "this test switches users: it runs as root, as ./run-tests does";
  Background memdx({"run", "--quiet", "--json", path("v.json"), "--out", path("r.memdx"), "--", target(), "sleep", "4"},
                   path("out"), path("err"));
  std::optional<pid_t> traced = memdx.target();
  ASSERT_TRUE(traced);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::string socket_path = environment_of(*traced)["MEMDX_TRACE_SOCKET"];
  ASSERT_FALSE(socket_path.empty());
  struct stat directory {};
  ASSERT_EQ(::stat(fs::path(socket_path).parent_path().c_str(), &directory), 0);
  EXPECT_EQ(directory.st_mode & 0777, 0700u);

  // Another user, through setpriv: the connection itself is denied.
  CommandResult other =
      run_command({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c",
                   "import socket,sys\n"
                   "s=socket.socket(socket.AF_UNIX)\n"
                   "try:\n s.connect(sys.argv[1]); print('connected')\n"
                   "except OSError as e: print('denied', e.errno)\n",
                   socket_path});
  EXPECT_EQ(other.out.rfind("denied 13", 0), 0u) << other.out << other.err;

  // Root, outside the tree, with garbage and then with a forged secret.
  int garbage = connect_and_send(socket_path, std::string(4096, 'x'));
  ASSERT_GE(garbage, 0) << std::strerror(errno);
  std::string forged = std::string("MDXAUTH1") + std::string(16, '\0') + "MDXTRACE";
  int forger = connect_and_send(socket_path, forged);
  ASSERT_GE(forger, 0);
  char byte = 0;
  // Closed by the collector: end of stream, or a reset since it left the garbage unread.
  EXPECT_LE(::recv(garbage, &byte, 1, 0), 0) << "the collector did not close the connection";
  ::close(garbage);
  ::close(forger);

  std::optional<int> status = memdx.wait(std::chrono::seconds(60));
  ASSERT_TRUE(status);
  std::string err = read_file(path("err"));
  EXPECT_EQ(WEXITSTATUS(*status), 0) << err;
  EXPECT_NE(err.find("refused 2 connections"), std::string::npos) << err;
  EXPECT_NE(err.find("not a process of the traced tree"), std::string::npos) << err;
  json v = read_json(path("v.json"));
  ASSERT_EQ(v["heap"].size(), 1u) << v["heap"].dump(1);
  EXPECT_EQ(v["heap"][0]["pid"], *traced);
  // Noted in the recording.
  CommandResult meta = run_command(
      {"/usr/bin/sqlite3", path("r.memdx"), "select value from meta where key = 'trace_refused_connections'"});
  EXPECT_EQ(meta.out, "2\n") << meta.err;
}

// A traced daemon outlives memdx; someone binds a listener where memdx's socket was. The daemon's
// new images (fork + exec) connect, see a listener that is not memdx's collector, and send nothing.
TEST_F(TrustTest, ALeftoverProcessSendsNothingToWhoeverTakesTheSocket) {
  Finished r = run_for({memdx_path(), "run", "--quiet", "--out", path("r.memdx"), "--", target(), "daemon", "6"}, 60);
  ASSERT_FALSE(r.timed_out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The daemon: a trust_target whose parent is gone, still carrying memdx's environment.
  pid_t daemon = 0;
  proc::ProcFs procfs;
  auto pids = procfs.list_pids();
  ASSERT_TRUE(pids.ok());
  std::string socket_path;
  for (pid_t pid : *pids) {
    auto cmdline = procfs.read_pid_file(pid, "cmdline");
    if (!cmdline.ok() || cmdline->find("trust_target") == std::string::npos ||
        cmdline->find("daemon") == std::string::npos)
      continue;
    auto env = environment_of(pid);
    if (env.count("MEMDX_TRACE_SOCKET") == 0 || env["MEMDX_TRACE_SOCKET"].find(dir_.string()) == 0) continue;
    daemon = pid;
    socket_path = env["MEMDX_TRACE_SOCKET"];
  }
  ASSERT_NE(daemon, 0) << "the daemon is not running";
  fs::create_directories(fs::path(socket_path).parent_path());
  int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", socket_path.c_str());
  ASSERT_EQ(::bind(listener, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0) << std::strerror(errno);
  ASSERT_EQ(::listen(listener, 64), 0);
  int connections = 0;
  size_t bytes = 0;
  for (auto end = Clock::now() + std::chrono::seconds(2); Clock::now() < end;) {
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    ++connections;
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0;) bytes += static_cast<size_t>(n);
    ::close(fd);
  }
  ::close(listener);
  ::unlink(socket_path.c_str());
  ::rmdir(fs::path(socket_path).parent_path().c_str());
  ::kill(daemon, SIGKILL);
  EXPECT_GT(connections, 0) << "no leftover image tried to connect: the test proves nothing";
  EXPECT_EQ(bytes, 0u);
}

// ---- Limits and faults ----------------------------------------------------------------------

// 150 processes under a descriptor limit of 256 (hard and soft): memdx cannot keep two files and a
// connection per process. It keeps fewer open and records every process to its real end, instead
// of calling the root exited at its first failed read.
TEST_F(TrustTest, OutOfDescriptorsKeepsSampling) {
  Finished r = run_for({"/usr/bin/prlimit", "--nofile=256:256", memdx_path(), "run", "--quiet", "--json",
                        path("v.json"), "--out", path("r.memdx"), "--", target(), "tree", "150", "4"},
                       120);
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json v = read_json(path("v.json"));
  EXPECT_GE(v["target"]["duration_s"].get<double>(), 3.5) << v["target"].dump();
  EXPECT_EQ(v["processes"].size(), 151u);
  for (const json& p : v["processes"]) {
    ASSERT_FALSE(p["exited_s"].is_null()) << p.dump();
    EXPECT_GE(p["exited_s"].get<double>(), 3.5) << "pid " << p["pid"] << " was called exited early: " << p.dump();
  }
}

// Without root, another user's descriptors cannot be counted: fd_growth is not measured, never
// "0 fds, eliminated". As root the same leak is confirmed.
TEST_F(TrustTest, AnotherUsersDescriptorsAreNotMeasured) {
  ASSERT_EQ(::geteuid(), 0u) << "this test switches users: it runs as root, as ./run-tests does";
  fs::permissions(dir_, fs::perms::all);
  Background leaker({target(), "fds", "20"}, path("leaker.out"), path("leaker.err"));
  std::string pid = std::to_string(leaker.pid());
  // A copy the other user can run wherever the build lies (a checkout in a private directory):
  // watch needs nothing beside the binary.
  std::string memdx_copy = path("memdx");
  fs::copy_file(memdx_path(), memdx_copy);
  fs::permissions(memdx_copy, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
  auto watch = [&](const std::string& name, std::optional<uid_t> uid) {
    CommandResult r = run_command({memdx_copy, "watch", pid, "--duration", "7", "--quiet", "--json",
                                   path(name + ".json"), "--out", path(name + ".memdx")},
                                  uid);
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.err;
    return read_json(path(name + ".json"));
  };
  json as_nobody = watch("nobody", 65534);
  EXPECT_EQ(status_of(as_nobody, "fd_growth", leaker.pid()), "not_measured") << as_nobody["hypotheses"].dump(1);
  json as_root = watch("root", std::nullopt);
  EXPECT_EQ(status_of(as_root, "fd_growth", leaker.pid()), "confirmed") << as_root["hypotheses"].dump(1);
}

// A reader that stops after one line: memdx is not killed by SIGPIPE, and still writes its JSON.
TEST_F(TrustTest, AClosedPipeStillGetsTheJsonWritten) {
  ASSERT_EQ(
      run_memdx({"run", "--quiet", "--no-trace", "--out", path("r.memdx"), "--", target(), "sleep", "0.2"}).exit_code,
      0);
  Finished report =
      run_for({"/bin/bash", "-c",
               "set -o pipefail; \"$0\" report \"$1\" --json \"$2\" | head -1 >/dev/null; echo \"status $?\"",
               memdx_path(), path("r.memdx"), path("report.json")},
              60);
  EXPECT_EQ(report.out, "status 0\n") << report.err;
  EXPECT_EQ(read_json(path("report.json"))["schema"], "memdx.verdict/1");
  // run: the command's own stdout is the closed pipe; it dies of SIGPIPE, memdx does not.
  Finished run = run_for({"/bin/bash", "-c",
                          "set -o pipefail; \"$0\" run --quiet --json \"$1\" --out \"$2\" -- yes | head -1 >/dev/null; "
                          "echo \"status $?\"",
                          memdx_path(), path("run.json"), path("run.memdx")},
                         60);
  EXPECT_EQ(run.out, "status 141\n") << run.err;  // 128 + SIGPIPE: the command's, passed through
  EXPECT_NE(run.err.find("killed by signal SIGPIPE"), std::string::npos) << run.err;
  EXPECT_EQ(read_json(path("run.json"))["schema"], "memdx.verdict/1");
}

// The recording on a 2 MiB tmpfs fills it: memdx says so in one line, stops writing, follows the
// command to its end, gives a verdict from what was written and exits with the command's code.
TEST_F(TrustTest, AFullDiskStopsTheWritingNotTheSupervision) {
  ASSERT_EQ(::geteuid(), 0u) << "this test mounts a tmpfs in a mount namespace of its own: it runs as root";
  fs::create_directories(path("small"));
  std::string script =
      "mount -t tmpfs -o size=2m tmpfs \"$1\" && exec \"$0\" run --quiet --out \"$1/r.memdx\" -- "
      "perl -e 'for $j (1..5) { for (1..300000) { push @a, \"x\" x 10; } @a = (); sleep 1 } exit 5'";
  Finished r = run_for(
      {"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, memdx_path(), path("small")},
      120);
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("disk full while writing"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("follows the command to its end"), std::string::npos) << r.err;
  EXPECT_TRUE(r.err.find("\nNo leak") != std::string::npos || r.err.find("\nLEAK") != std::string::npos ||
              r.err.find("memdx: no verdict") != std::string::npos)
      << r.err;
  EXPECT_EQ(r.out, "");
}

// Ctrl-C while memdx analyses a large trace ends it at once, keeps the recording, and says how to
// analyse it again.
TEST_F(TrustTest, AnInterruptDuringTheAnalysisStopsIt) {
  Finished traced = run_for({memdx_path(), "trace", "-o", path("r.memdx"), "--", "/usr/bin/perl", "-e",
                             "for $j (1..8) { for (1..400000) { push @a, \"x\" x 10; } @a = (); }"},
                            120);
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  std::string before = read_file(path("r.memdx"));
  // How long the analysis takes here, to interrupt it in its middle.
  auto started = Clock::now();
  ASSERT_EQ(run_memdx({"report", path("r.memdx")}).exit_code, 0);
  auto full = Clock::now() - started;
  ASSERT_GT(full, std::chrono::milliseconds(400)) << "the trace is too small to interrupt its analysis";
  Background report({"report", path("r.memdx")}, path("out"), path("err"));
  std::this_thread::sleep_for(full / 4);
  auto interrupted = Clock::now();
  ::kill(report.pid(), SIGINT);
  std::optional<int> status = report.wait(std::chrono::seconds(30));
  ASSERT_TRUE(status);
  EXPECT_LT(Clock::now() - interrupted, full / 2) << "the analysis went on after Ctrl-C";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 128 + SIGINT) << *status;
  std::string err = read_file(path("err"));
  EXPECT_NE(err.find("interrupted while analysing; the recording is kept: memdx report " + path("r.memdx")),
            std::string::npos)
      << err;
  EXPECT_EQ(read_file(path("r.memdx")), before);
}

// A program built with AddressSanitizer: memdx says why it cannot trace it and samples it; ASan
// never sees a library preloaded before its runtime (it would abort the program).
TEST_F(TrustTest, ASanitizerBuiltProgramIsSampledWithOneLineWhy) {
  Finished r =
      run_for({memdx_path(), "run", "--quiet", "--out", path("r.memdx"), "--", helper_path("asan_target")}, 60);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "asan ok 7000\n");
  EXPECT_NE(r.err.find("is built with AddressSanitizer"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--no-trace"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("ASan runtime does not come first"), std::string::npos) << r.err;
}

// memdx installed where LD_PRELOAD cannot reach (a space in the path): one line says why; the
// command runs untouched, without the loader's complaint in its output.
TEST_F(TrustTest, AnInstallPathWithASpaceIsSaidNotSilentlyUntraced) {
  fs::path installed = dir_ / "my tools";
  fs::create_directories(installed);
  fs::copy_file(memdx_path(), installed / "memdx");
  fs::copy_file(fs::path(memdx_path()).parent_path() / "libmemdx_trace.so", installed / "libmemdx_trace.so");
  Finished r = run_for(
      {(installed / "memdx").string(), "run", "--quiet", "--out", path("r.memdx"), "--", target(), "close_all", "loop"},
      60);
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_NE(r.err.find("LD_PRELOAD cannot carry"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("ld.so"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace memdx::test
