// The files memdx writes (--out, --json, --html) and the paths it is given for them: devices and
// FIFOs are written, never replaced; symbolic links planted beside an output are never followed;
// two outputs naming one file, or an output naming the recording being read, are refused before
// anything starts; recordings and reports are private (0600). Each test runs the real binary as
// the user would, in a private directory of its own (device nodes are made there with mknod, so
// no test ever touches /dev).
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "integration/harness.h"

namespace memdx::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kTimedOut = 124;  // timeout(1)'s

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool is_verdict(const std::string& text) {
  json v = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return !v.is_discarded() && v.is_object() && v.value("schema", "") == "memdx.verdict/1";
}

struct stat lstat_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st;
}

void expect_char_device(const std::string& path, unsigned major_number, unsigned minor_number) {
  struct stat st = lstat_of(path);
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << path << " is no longer a character device (mode " << std::oct << st.st_mode
                                   << ")";
  EXPECT_EQ(st.st_rdev, ::makedev(major_number, minor_number)) << path;
}

// A failure before anything started: one line on stderr, the target never ran.
void expect_refused(const CommandResult& r, int exit_code, const std::string& fragment, const std::string& marker) {
  EXPECT_EQ(r.exit_code, exit_code) << r.err;
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
  EXPECT_EQ(r.err.rfind("memdx: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << "expected '" << fragment << "' in: " << r.err;
  EXPECT_FALSE(fs::exists(marker)) << "the target ran although memdx refused its outputs";
}

// Reads a FIFO until its writer closes it, without ever blocking for good: opened non-blocking,
// polled until `limit` passes.
class FifoReader {
 public:
  FifoReader(const std::string& path, std::chrono::milliseconds open_after)
      : thread_([this, path, open_after] { read_all(path, open_after); }) {}
  ~FifoReader() {
    if (thread_.joinable()) thread_.join();
  }
  std::string received() {
    thread_.join();
    return received_;
  }

 private:
  void read_all(const std::string& path, std::chrono::milliseconds open_after) {
    std::this_thread::sleep_for(open_after);
    int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, 100);
      char buffer[65536];
      ssize_t n = ::read(fd, buffer, sizeof(buffer));
      if (n > 0) received_.append(buffer, static_cast<size_t>(n));
      if (n == 0 && !received_.empty()) break;  // the writer closed it
      if (n <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::close(fd);
  }

  std::string received_;
  std::thread thread_;
};

class OutputFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("memdx-outputs-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    marker_ = path("started");
    ::setenv("MEMDX_TEST_MARKER", marker_.c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("MEMDX_TEST_MARKER");
    fs::remove_all(dir_);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A private device node: (1, 3) is /dev/null's, (1, 7) /dev/full's.
  std::string make_device(const std::string& name, mode_t type, unsigned major_number, unsigned minor_number) {
    std::string node = path(name);
    EXPECT_EQ(::mknod(node.c_str(), type | 0666, ::makedev(major_number, minor_number)), 0) << std::strerror(errno);
    return node;
  }

  // memdx ARGS..., in the test's directory, killed after `limit_s` seconds (exit kTimedOut).
  CommandResult memdx_within(const std::vector<std::string>& args, int limit_s = 60) {
    std::vector<std::string> argv = {
        "/usr/bin/timeout", "--kill-after=5", std::to_string(limit_s), "/usr/bin/env", "-C",
        dir_.string(),      memdx_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv);
  }

  // memdx run --quiet --no-trace OPTIONS -- TARGET: by default a target that leaves the marker.
  CommandResult run_with(const std::vector<std::string>& options,
                         std::vector<std::string> target = {helper_path("behave"), "marker", "0"}) {
    std::vector<std::string> args = {"run", "--quiet", "--no-trace"};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back("--");
    args.insert(args.end(), target.begin(), target.end());
    return memdx_within(args);
  }

  // A finished recording to report on.
  std::string make_recording(const std::string& name) {
    std::string recording = path(name);
    CommandResult r = run_with({"--out", recording}, {"/bin/true"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    ::unlink(marker_.c_str());
    return recording;
  }

  fs::path dir_;
  std::string marker_;
};

// ---- devices, FIFOs, sockets

TEST_F(OutputFiles, JsonOntoACharacterDeviceLeavesTheNode) {
  std::string null_node = make_device("null", S_IFCHR, 1, 3);
  CommandResult r = run_with({"--out", path("r.memdx"), "--json", null_node, "--html", null_node});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  expect_char_device(null_node, 1, 3);
}

TEST_F(OutputFiles, AWriteErrorOnADeviceIsOneLine) {
  std::string full_node = make_device("full", S_IFCHR, 1, 7);
  CommandResult r = run_with({"--out", path("r.memdx"), "--json", full_node});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("memdx: cannot write " + full_node + ": No space left on device\n"), std::string::npos) << r.err;
  expect_char_device(full_node, 1, 7);
}

TEST_F(OutputFiles, OutOntoACharacterDeviceIsRefusedBeforeTheTargetStarts) {
  std::string null_node = make_device("null", S_IFCHR, 1, 3);
  CommandResult r = run_with({"--out", null_node});
  expect_refused(r, 1, "cannot create recording " + null_node + ": it is a character device", marker_);
  expect_char_device(null_node, 1, 3);
}

TEST_F(OutputFiles, OutOntoAFifoIsRefusedWithoutWaiting) {
  std::string fifo = path("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  CommandResult r = run_with({"--out", fifo});
  ASSERT_NE(r.exit_code, kTimedOut) << "memdx hung on the FIFO";
  expect_refused(r, 1, "it is a FIFO", marker_);
  EXPECT_TRUE(S_ISFIFO(lstat_of(fifo).st_mode));
}

TEST_F(OutputFiles, JsonOntoABlockDeviceIsRefusedAndTheNodeKept) {
  std::string disk = make_device("disk", S_IFBLK, 7, 0);
  CommandResult r = run_with({"--out", path("r.memdx"), "--json", disk});
  expect_refused(r, 1, "it is a block device", marker_);
  struct stat st = lstat_of(disk);
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ(st.st_rdev, ::makedev(7, 0));
}

TEST_F(OutputFiles, AMissingNameInDevIsRefusedNotCreated) {
  std::string mistyped = "/dev/memdx-no-such-device-" + std::to_string(::getpid());
  CommandResult r = run_with({"--out", path("r.memdx"), "--json", mistyped});
  expect_refused(r, 1, "there is no such device", marker_);
  EXPECT_NE(::access(mistyped.c_str(), F_OK), 0) << mistyped << " was created";
  ::unlink(mistyped.c_str());
}

TEST_F(OutputFiles, JsonOntoASocketIsRefused) {
  std::string socket_path = path("sock");
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0) << std::strerror(errno);
  CommandResult r = run_with({"--out", path("r.memdx"), "--json", socket_path});
  ::close(fd);
  expect_refused(r, 1, "it is a socket", marker_);
  EXPECT_TRUE(S_ISSOCK(lstat_of(socket_path).st_mode));
}

TEST_F(OutputFiles, JsonOntoAFifoReachesItsReader) {
  std::string fifo = path("verdict.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  FifoReader reader(fifo, std::chrono::milliseconds(0));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the reader is there first
  CommandResult r = run_with({"--out", path("r.memdx"), "--json", fifo});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(is_verdict(reader.received())) << "the reader got: " << reader.received();
  EXPECT_TRUE(S_ISFIFO(lstat_of(fifo).st_mode));
}

TEST_F(OutputFiles, AFifoWithoutAReaderYetDoesNotStopTheStart) {
  std::string fifo = path("verdict.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // The reader comes only after the target has run: memdx must start it all the same.
  FifoReader reader(fifo, std::chrono::milliseconds(1500));
  CommandResult r = run_with({"--out", path("r.memdx"), "--json", fifo});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(marker_)) << "the target did not run";
  EXPECT_TRUE(is_verdict(reader.received())) << "the reader got: " << reader.received();
  EXPECT_TRUE(S_ISFIFO(lstat_of(fifo).st_mode));
}

// ---- standard output and open descriptors

TEST_F(OutputFiles, JsonDashIsStandardOutput) {
  CommandResult r = run_with({"--out", path("r.memdx"), "--json", "-"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(is_verdict(r.out)) << "stdout: " << r.out;
  EXPECT_FALSE(fs::exists(path("-")));

  CommandResult again = memdx_within({"report", path("r.memdx"), "--json", "-"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(is_verdict(again.out)) << "stdout: " << again.out;
}

// `memdx run --json NAME -- app > out.txt`: the JSON follows what the target wrote, which stays.
void expect_json_after_the_targets_output(const fs::path& dir, const std::string& name) {
  std::string command =
      memdx_path() + " run --quiet --no-trace --out r.memdx --json " + name + " -- /bin/echo from-the-target > out.txt";
  CommandResult r =
      run_command({"/usr/bin/timeout", "60", "/usr/bin/env", "-C", dir.string(), "/bin/sh", "-c", command});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string out = read_file((dir / "out.txt").string());
  const std::string first = "from-the-target\n";
  ASSERT_EQ(out.substr(0, first.size()), first) << "out.txt: " << out;
  EXPECT_TRUE(is_verdict(out.substr(first.size()))) << "out.txt: " << out;
}

TEST_F(OutputFiles, DevStdoutIsWrittenWhereStandardOutputIs) {
  expect_json_after_the_targets_output(dir_, "/dev/stdout");
}

TEST_F(OutputFiles, ProcSelfFdIsWrittenWhereTheDescriptorIs) {
  expect_json_after_the_targets_output(dir_, "/proc/self/fd/1");
}

TEST_F(OutputFiles, AClosedDescriptorFailsBeforeTheTargetStarts) {
  CommandResult r = run_with({"--out", path("r.memdx"), "--json", "/dev/fd/9"});
  expect_refused(r, 1, "cannot write /dev/fd/9", marker_);
}

// ---- symbolic links

TEST_F(OutputFiles, SymlinksPlantedAtTemporaryNamesAreNotFollowed) {
  std::string outside = path("outside.txt");
  std::ofstream(outside) << "precious\n";
  std::vector<std::string> planted;
  for (const char* name : {"v.json.partial", "v.json.tmp", ".v.json.partial", "v.json~", ".v.json.swp"}) {
    planted.push_back(path(name));
    fs::create_symlink(outside, planted.back());
  }
  CommandResult r = run_with({"--out", path("r.memdx"), "--json", path("v.json")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(outside), "precious\n");
  EXPECT_TRUE(S_ISREG(lstat_of(path("v.json")).st_mode));
  EXPECT_TRUE(is_verdict(read_file(path("v.json"))));
  for (const std::string& link : planted) EXPECT_TRUE(S_ISLNK(lstat_of(link).st_mode)) << link;
  // Nothing else is left beside the outputs.
  for (const auto& entry : fs::directory_iterator(dir_)) {
    std::string name = entry.path().filename().string();
    EXPECT_TRUE(name == "outside.txt" || name == "v.json" || name == "r.memdx" || name == "started" ||
                entry.is_symlink())
        << "left behind: " << name;
  }
}

TEST_F(OutputFiles, AnOutputThatIsASymlinkReplacesTheFileItNames) {
  std::ofstream(path("real.json")) << "old\n";
  fs::create_symlink("real.json", path("v.json"));
  fs::create_symlink("real.html", path("v.html"));  // dangling: the file is made where it points
  CommandResult r = run_with({"--out", path("r.memdx"), "--json", path("v.json"), "--html", path("v.html")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(S_ISLNK(lstat_of(path("v.json")).st_mode));
  EXPECT_TRUE(S_ISLNK(lstat_of(path("v.html")).st_mode));
  EXPECT_TRUE(is_verdict(read_file(path("real.json"))));
  EXPECT_NE(read_file(path("real.html")).find("<html"), std::string::npos);
}

TEST_F(OutputFiles, ADirectoryReachedThroughALinkIsFine) {
  fs::create_directories(path("real"));
  fs::create_directory_symlink("real", path("link"));
  CommandResult r = run_with({"--out", path("link/r.memdx"), "--json", path("link/v.json")}, {"/bin/true"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  CommandResult again = memdx_within({"report", "link/r.memdx", "--html", "link/v.html"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(is_verdict(read_file(path("real/v.json"))));
  EXPECT_TRUE(fs::is_regular_file(path("real/v.html")));
}

TEST_F(OutputFiles, ASymlinkOfAnotherUserInAStickyDirectoryIsNotFollowed) {
  // /tmp's rule (the kernel's protected_symlinks): memdx run as root must not write where a
  // link planted by someone else points.
  fs::create_directories(path("shared"));
  ASSERT_EQ(::chmod(path("shared").c_str(), 01777), 0);
  std::string outside = path("outside.txt");
  std::ofstream(outside) << "precious\n";
  std::string link = path("shared/v.json");
  fs::create_symlink(outside, link);
  ASSERT_EQ(::lchown(link.c_str(), 65534, 65534), 0) << std::strerror(errno);
  CommandResult r = run_with({"--out", path("r.memdx"), "--json", link});
  expect_refused(r, 1, "cannot write " + link, marker_);
  EXPECT_EQ(read_file(outside), "precious\n");
  EXPECT_TRUE(S_ISLNK(lstat_of(link).st_mode));
}

TEST_F(OutputFiles, ARecordingIsNeverWrittenThroughASymlink) {
  std::string outside = path("elsewhere.memdx");
  fs::create_symlink(outside, path("r.memdx"));
  CommandResult r = run_with({"--out", path("r.memdx")});
  expect_refused(r, 1, "symbolic link", marker_);
  EXPECT_FALSE(fs::exists(outside)) << "memdx created the recording where a planted link pointed";
  EXPECT_TRUE(S_ISLNK(lstat_of(path("r.memdx")).st_mode));
}

TEST_F(OutputFiles, AStaleWalThatIsASymlinkIsRemovedNotFollowed) {
  std::string outside = path("outside.txt");
  std::ofstream(outside) << "precious\n";
  fs::create_symlink(outside, path("r.memdx-wal"));
  CommandResult r = run_with({"--out", path("r.memdx")}, {"/bin/true"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(outside), "precious\n");
}

// ---- outputs that name the same file

TEST_F(OutputFiles, RunRefusesOutputsThatNameOneFile) {
  std::string shared = path("same");
  for (const auto& options :
       {std::vector<std::string>{"--out", shared, "--json", shared},
        std::vector<std::string>{"--out", path("r.memdx"), "--json", shared, "--html", shared},
        std::vector<std::string>{"--out", path("r.memdx"), "--json", shared, "--html", "./same"},
        std::vector<std::string>{"--out", path("r.memdx"), "--json", "-", "--html", "/dev/fd/1"}}) {
    CommandResult r = run_with(options);
    expect_refused(r, 2, "name the same file", marker_);
    EXPECT_NE(r.err.find("give each output its own path"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(shared));
    EXPECT_FALSE(fs::exists(path("r.memdx")));
  }
  CommandResult named = run_with({"--out", shared, "--json", shared});
  EXPECT_NE(named.err.find("--json and --out name the same file (" + shared + ")"), std::string::npos) << named.err;
}

TEST_F(OutputFiles, WatchRefusesOutputsThatNameOneFile) {
  CommandResult r = memdx_within({"watch", std::to_string(::getpid()), "--quiet", "--duration", "1", "--out",
                                  path("r.memdx"), "--json", path("v"), "--html", path("v")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "memdx: --html and --json name the same file (" + path("v") + "): give each output its own path\n");
  EXPECT_FALSE(fs::exists(path("r.memdx")));
}

TEST_F(OutputFiles, TraceRefusesARecordingOntoADevice) {
  std::string null_node = make_device("null", S_IFCHR, 1, 3);
  CommandResult r = memdx_within({"trace", "-o", null_node, "--", helper_path("behave"), "marker", "0"});
  expect_refused(r, 1, "cannot create recording " + null_node + ": it is a character device", marker_);
  expect_char_device(null_node, 1, 3);
}

TEST_F(OutputFiles, ReportRefusesToWriteOverTheRecordingItReads) {
  std::string recording = make_recording("r.memdx");
  std::string before = read_file(recording);
  ASSERT_FALSE(before.empty());
  for (const auto& options :
       {std::vector<std::string>{"--json", recording}, std::vector<std::string>{"--html", "./r.memdx"},
        std::vector<std::string>{"--pprof", path("./../" + dir_.filename().string() + "/r.memdx")},
        std::vector<std::string>{"--json", path("v.json"), "--folded", path("v.json")}}) {
    std::vector<std::string> args = {"report", recording};
    args.insert(args.end(), options.begin(), options.end());
    CommandResult r = memdx_within(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_EQ(read_file(recording), before) << "the recording was modified";
    EXPECT_FALSE(fs::exists(path("v.json")));
  }
  CommandResult r = memdx_within({"report", recording, "--json", recording});
  EXPECT_EQ(r.err, "memdx: --json names the recording being read (" + recording + "): the report would replace it\n");
}

TEST_F(OutputFiles, RunRefusesToRecordOverItsOwnOutputRedirect) {
  // `memdx run --out r.memdx --json - > r.memdx`: standard output is the recording.
  std::string command = memdx_path() + " run --quiet --no-trace --out r.memdx --json - -- " + helper_path("behave") +
                        " marker 0 > r.memdx";
  CommandResult r =
      run_command({"/usr/bin/timeout", "60", "/usr/bin/env", "-C", dir_.string(), "/bin/sh", "-c", command});
  expect_refused(r, 2, "name the same file", marker_);
}

// ---- permissions

TEST_F(OutputFiles, RecordingsAndReportsAreCreatedPrivate) {
  mode_t old_mask = ::umask(022);
  CommandResult r =
      run_with({"--out", path("r.memdx"), "--json", path("v.json"), "--html", path("v.html")}, {"/bin/true"});
  CommandResult again = memdx_within({"report", path("r.memdx"), "--json", path("again.json")});
  ::umask(old_mask);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(again.exit_code, 0) << again.err;
  for (const char* name : {"r.memdx", "v.json", "v.html", "again.json"}) {
    EXPECT_EQ(lstat_of(path(name)).st_mode & 0777, 0600u) << name;
  }
}

// ---- memdx report on what is not a recording

TEST_F(OutputFiles, ReportOnSomethingThatIsNoFileSaysWhatItIs) {
  std::string fifo = path("f");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string null_node = make_device("null", S_IFCHR, 1, 3);
  fs::create_directories(path("d.memdx"));
  for (const auto& [file, what] :
       std::vector<std::pair<std::string, std::string>>{{fifo, "is a FIFO"},
                                                        {null_node, "is a character device"},
                                                        {"/dev/null", "is a character device"},
                                                        {path("d.memdx"), "is a directory"}}) {
    auto start = std::chrono::steady_clock::now();
    CommandResult r = memdx_within({"report", file}, 20);
    ASSERT_NE(r.exit_code, kTimedOut) << "memdx report hung on " << file;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.err, "memdx: " + file + " " + what + ", not a recording\n");
  }
  expect_char_device(null_node, 1, 3);
}

// ---- behaviour kept

TEST_F(OutputFiles, UnusablePathsFailBeforeTheTargetStarts) {
  expect_refused(run_with({"--out", path("r.memdx"), "--json", dir_.string()}), 1, "is a directory", marker_);
  expect_refused(run_with({"--out", path("r.memdx"), "--html", path("missing/r.html")}), 1,
                 "cannot write " + path("missing/r.html") + ": No such file or directory", marker_);
  expect_refused(run_with({"--out", path("missing/r.memdx")}), 1, "No such file or directory", marker_);
  EXPECT_FALSE(fs::exists(path("r.memdx")));
}

TEST_F(OutputFiles, ARecordingIsNeverOverwritten) {
  std::string recording = make_recording("r.memdx");
  std::string before = read_file(recording);
  CommandResult r = run_with({"--out", recording, "--json", path("v.json")});
  expect_refused(r, 1, "already exists", marker_);
  EXPECT_EQ(read_file(recording), before);
  EXPECT_FALSE(fs::exists(path("v.json"))) << "a refused run left its JSON file";
}

TEST_F(OutputFiles, AKilledRunLeavesNoTemporaryFile) {
  std::string command = memdx_path() +
                        " run --quiet --no-trace --out r.memdx --json v.json --html v.html -- /bin/sleep 2 &"
                        " sleep 0.5; kill -9 $!; wait";
  CommandResult r =
      run_command({"/usr/bin/timeout", "60", "/usr/bin/env", "-C", dir_.string(), "/bin/sh", "-c", command});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(path("r.memdx"))) << "memdx was killed before it made its files: the test tested nothing";
  for (const auto& entry : fs::directory_iterator(dir_)) {
    std::string name = entry.path().filename().string();
    EXPECT_EQ(name.rfind("r.memdx", 0), 0u) << "left behind: " << name;
  }
}

TEST_F(OutputFiles, AnExistingReportIsReplacedWhole) {
  std::ofstream(path("v.json")) << std::string(1 << 20, 'x');  // longer than the verdict
  CommandResult r = run_with({"--out", path("r.memdx"), "--json", path("v.json")}, {"/bin/true"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(is_verdict(read_file(path("v.json"))));
}

}  // namespace
}  // namespace memdx::test
