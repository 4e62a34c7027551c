// memdx run / watch / report on programs whose memory behaviour we built (tests/helpers/behave):
// each leak kind is found in the right process, healthy shapes are not called leaks, and the
// exit codes and recordings hold up under bad input, signals and SIGKILL.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "integration/harness.h"
#include "proc/process_files.h"
#include "proc/procfs.h"
#include "store/recording_reader.h"
#include "store/store_error.h"

namespace memdx::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Seconds each behaviour runs: past the 2 s warm-up and the 4 s minimum of the trend test.
constexpr const char* kSeconds = "7";

class RunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("memdx-run-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // memdx run --quiet --json J --out R -- behave MODE SECONDS, with fresh J and R each call
  // (memdx never overwrites a recording).
  CommandResult run_behave(const std::string& mode, std::vector<std::string> extra = {}) {
    ++runs_;
    std::vector<std::string> args = {"run", "--quiet", "--json", json_path(), "--out", recording_path()};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"--", helper_path("behave"), mode, kSeconds});
    return run_memdx(args);
  }

  std::string json_path() const { return path("v" + std::to_string(runs_) + ".json"); }
  std::string recording_path() const { return path("r" + std::to_string(runs_) + ".memdx"); }

  json verdict() const { return read_json(json_path()); }
  static json read_json(const std::string& file) {
    std::ifstream in(file);
    return json::parse(in);
  }

  fs::path dir_;
  int runs_ = 0;
};

// memdx run prints its verdict on stderr, after the command's own lines: the text from the
// headline on. The command's stdout is the command's alone.
std::string verdict_text(const CommandResult& r) {
  EXPECT_TRUE(r.out.empty()) << "memdx wrote on the command's stdout: " << r.out;
  for (const char* headline : {"\nLEAK", "\nNo leak"}) {
    if (r.err.rfind(headline + 1, 0) == 0) return r.err;
    if (size_t at = r.err.find(headline); at != std::string::npos) return r.err.substr(at + 1);
  }
  return {};
}

std::vector<json> leaks(const json& v) {
  std::vector<json> out;
  for (const json& f : v["findings"]) {
    if (f["severity"] == "leak") out.push_back(f);
  }
  return out;
}

bool has_kind(const json& v, const std::string& kind, const std::string& severity) {
  for (const json& f : v["findings"]) {
    if (f["kind"] == kind && (severity.empty() || f["severity"] == severity)) return true;
  }
  return false;
}

void expect_leak(const json& v, const std::string& kind) {
  std::vector<json> found = leaks(v);
  ASSERT_FALSE(found.empty()) << v.dump(2);
  bool matched = false;
  for (const json& f : found) matched = matched || f["kind"] == kind;
  EXPECT_TRUE(matched) << "expected a " << kind << " leak:\n" << v.dump(2);
  for (const json& f : found) {
    if (f["kind"] != kind) continue;
    EXPECT_EQ(f["pid"], v["target"]["pid"]) << f.dump(2);
    EXPECT_GT(f["confidence"].get<double>(), 0.95);
    EXPECT_FALSE(f["evidence"].get<std::string>().empty());
  }
}

// The status of hypothesis `name` for `pid` (the root by default); "absent" when the verdict has
// no such row.
std::string status_of(const json& v, const std::string& name, std::optional<int> pid = std::nullopt) {
  int wanted = pid.value_or(v["target"]["pid"].get<int>());
  for (const json& h : v["hypotheses"]) {
    if (h["name"] == name && h["pid"] == wanted) return h["status"];
  }
  return "absent";
}

// The differential diagnosis of one program: `confirmed` hold for the root, `eliminated` are
// ruled out by measurement; GPU memory is never pretended to be measured.
void expect_hypotheses(const json& v, const std::vector<std::string>& confirmed,
                       const std::vector<std::string>& eliminated) {
  for (const std::string& name : confirmed)
    EXPECT_EQ(status_of(v, name), "confirmed") << name << "\n" << v["hypotheses"].dump(2);
  for (const std::string& name : eliminated)
    EXPECT_EQ(status_of(v, name), "eliminated") << name << "\n" << v["hypotheses"].dump(2);
  EXPECT_EQ(status_of(v, "gpu_growth"), "not_measured");
}

TEST_F(RunTest, AnonymousGrowthIsALeakOfTheRoot) {
  CommandResult r = run_behave("anon");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json v = verdict();
  EXPECT_EQ(v["schema"], "memdx.verdict/1");
  expect_leak(v, "anon_growth");
  EXPECT_EQ(verdict_text(r).rfind("LEAK", 0), 0u) << r.err;
  expect_hypotheses(v, {"anon_growth"},
                    {"heap_growth", "allocator_retention", "reservation_only", "shmem_growth", "fd_growth",
                     "thread_growth", "child_growth", "swap_growth"});
  // The terminal summary: the verdict, then the confirmed hypotheses with their evidence.
  EXPECT_NE(verdict_text(r).find("Confirmed:\n  [leak] anon_growth pid"), std::string::npos) << r.err;
  // The command has exited: no next step names its pid.
  std::string pid = std::to_string(v["target"]["pid"].get<int>());
  EXPECT_EQ(verdict_text(r).find("memdx inspect " + pid), std::string::npos) << r.err;
  EXPECT_EQ(verdict_text(r).find("memdx watch"), std::string::npos) << r.err;
}

TEST_F(RunTest, TracedHeapGrowthNamesItsSiteAndRulesOutTheRest) {
  CommandResult r = run_behave("heap");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json v = verdict();
  expect_leak(v, "heap_growth");
  expect_hypotheses(v, {"heap_growth", "limit_approach"},
                    {"anon_growth", "allocator_retention", "reservation_only", "file_growth", "shmem_growth",
                     "fd_growth", "thread_growth", "child_growth", "swap_growth"});
  EXPECT_NE(verdict_text(r).find("Next:\n  pid "), std::string::npos) << r.err;
  EXPECT_NE(verdict_text(r).find("heap_growth: look at `"), std::string::npos) << r.err;
  EXPECT_NE(verdict_text(r).find("tick_heap"), std::string::npos) << r.err;
}

TEST_F(RunTest, FreedMemoryKeptByTheAllocatorIsRetentionNotGrowth) {
  CommandResult r = run_behave("retention");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json v = verdict();
  EXPECT_TRUE(leaks(v).empty()) << v.dump(2);
  expect_hypotheses(v, {"allocator_retention"}, {"heap_growth", "anon_growth", "reservation_only", "limit_approach"});
}

// A command that exits at once: too short to judge. The advice runs it again (quoted for a shell,
// its escape sequences shown, not sent); it never watches a pid that is gone.
TEST_F(RunTest, AnExitedCommandIsRunAgainNotWatched) {
  CommandResult r = run_memdx(
      {"run", "--quiet", "--no-trace", "--out", recording_path(), "--", "/bin/sh", "-c", "exit 0", "\x1b[2Jarg"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string text = verdict_text(r);
  EXPECT_EQ(text.rfind("No leak found: the run was too short to judge", 0), 0u) << r.err;
  EXPECT_NE(text.find("memdx run -- /bin/sh -c 'exit 0' '\\x1b[2Jarg'\n"), std::string::npos) << r.err;
  EXPECT_EQ(text.find("memdx watch"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
}

TEST_F(RunTest, ReservedAddressSpaceIsOnlyAReservation) {
  CommandResult r = run_behave("reserve");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json v = verdict();
  EXPECT_TRUE(leaks(v).empty()) << v.dump(2);
  expect_hypotheses(v, {"reservation_only"}, {"heap_growth", "anon_growth", "allocator_retention", "limit_approach"});
}

TEST_F(RunTest, HeapGrowthShowsAsAnonGrowthWithoutTheTracer) {
  CommandResult r = run_behave("heap", {"--no-trace"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json v = verdict();
  bool anon_or_heap = has_kind(v, "anon_growth", "leak") || has_kind(v, "heap_growth", "leak");
  EXPECT_TRUE(anon_or_heap) << v.dump(2);
  EXPECT_EQ(status_of(v, "heap_growth"), "not_measured");
  EXPECT_EQ(status_of(v, "allocator_retention"), "not_measured");
  EXPECT_EQ(status_of(v, "anon_growth"), "confirmed");
}

TEST_F(RunTest, FdGrowthIsFound) {
  ASSERT_EQ(run_behave("fds").exit_code, 0);
  expect_leak(verdict(), "fd_growth");
  expect_hypotheses(verdict(), {"fd_growth"}, {"heap_growth", "thread_growth", "shmem_growth", "child_growth"});
}

TEST_F(RunTest, ThreadGrowthIsFound) {
  ASSERT_EQ(run_behave("threads").exit_code, 0);
  expect_leak(verdict(), "thread_growth");
  expect_hypotheses(verdict(), {"thread_growth"}, {"heap_growth", "fd_growth", "shmem_growth", "child_growth"});
}

TEST_F(RunTest, SharedMemoryGrowthIsFound) {
  ASSERT_EQ(run_behave("shmem").exit_code, 0);
  expect_leak(verdict(), "shmem_growth");
  expect_hypotheses(verdict(), {"shmem_growth"}, {"heap_growth", "anon_growth", "fd_growth", "thread_growth"});
}

TEST_F(RunTest, PageCacheGrowthIsInfoNotALeak) {
  ASSERT_EQ(run_behave("file").exit_code, 0);
  json v = verdict();
  EXPECT_TRUE(leaks(v).empty()) << v.dump(2);
  EXPECT_TRUE(has_kind(v, "file_growth", "info")) << v.dump(2);
  expect_hypotheses(v, {"file_growth"}, {"heap_growth", "anon_growth", "shmem_growth", "limit_approach"});
}

TEST_F(RunTest, HealthyProgramsAreNotLeaks) {
  for (const char* mode : {"flat", "sawtooth", "startup"}) {
    CommandResult r = run_behave(mode);
    ASSERT_EQ(r.exit_code, 0) << mode << ": " << r.err;
    json v = verdict();
    EXPECT_TRUE(leaks(v).empty()) << mode << ":\n" << v.dump(2);
    EXPECT_TRUE(has_kind(v, "no_growth", "")) << mode << ":\n" << v.dump(2);
    EXPECT_EQ(verdict_text(r).rfind("No leak", 0), 0u) << mode << ": " << r.err;
    for (const json& h : v["hypotheses"]) EXPECT_NE(h["status"], "confirmed") << mode << ": " << h.dump();
    // A sawtooth's few cycles may leave its heap and anon inconclusive: never confirmed (above).
    expect_hypotheses(v, {}, {"fd_growth", "thread_growth", "shmem_growth", "limit_approach"});
  }
}

TEST_F(RunTest, ChildLeakIsAttributedToTheChild) {
  ASSERT_EQ(run_behave("child").exit_code, 0);
  json v = verdict();
  std::vector<json> found = leaks(v);
  ASSERT_FALSE(found.empty()) << v.dump(2);
  for (const json& f : found) EXPECT_NE(f["pid"], v["target"]["pid"]) << f.dump(2);
  EXPECT_GE(v["processes"].size(), 2u);
  expect_hypotheses(v, {"child_growth"}, {"heap_growth", "anon_growth"});
  EXPECT_EQ(status_of(v, "heap_growth", found.front()["pid"].get<int>()), "confirmed") << v["hypotheses"].dump(2);
}

TEST_F(RunTest, FailOnLeakExitsThree) {
  EXPECT_EQ(run_behave("fds", {"--fail-on-leak"}).exit_code, 3);
  EXPECT_EQ(run_behave("flat", {"--fail-on-leak"}).exit_code, 0);
}

TEST_F(RunTest, TargetExitCodeAndSignalArePassedOn) {
  CommandResult exited = run_behave("exit7");
  EXPECT_EQ(exited.exit_code, 7) << exited.err;
  EXPECT_EQ(verdict()["target"]["exit_code"], 7);

  CommandResult killed = run_behave("sigterm");
  EXPECT_EQ(killed.exit_code, 128 + SIGTERM) << killed.err;
  EXPECT_NE(killed.err.find("SIGTERM"), std::string::npos) << killed.err;
  json v = verdict();  // still written
  EXPECT_EQ(v["schema"], "memdx.verdict/1");
  EXPECT_TRUE(fs::exists(recording_path()));
}

TEST_F(RunTest, CommandNotFoundExits127) {
  CommandResult r = run_memdx({"run", "--quiet", "--out", path("r.memdx"), "--", "memdx-no-such-command"});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("command not found"), std::string::npos) << r.err;
  std::string text_file = path("notes.txt");
  std::ofstream(text_file) << "not a program\n";
  fs::permissions(text_file, fs::perms::owner_read | fs::perms::owner_write);
  CommandResult not_executable = run_memdx({"run", "--quiet", "--out", path("r.memdx"), "--", text_file});
  EXPECT_EQ(not_executable.exit_code, 127) << not_executable.err;
  EXPECT_EQ(line_count(not_executable.err), 1u) << not_executable.err;

  // Executable bits but no valid binary format: the kernel refuses it at exec time.
  fs::permissions(text_file, fs::perms::owner_all);
  std::ofstream(text_file) << "\x7f"
                              "ELF garbage\n";
  CommandResult bad_format = run_memdx({"run", "--quiet", "--out", path("r2.memdx"), "--", text_file});
  EXPECT_EQ(bad_format.exit_code, 127) << bad_format.err;
  EXPECT_EQ(line_count(bad_format.err), 1u) << bad_format.err;
  EXPECT_FALSE(fs::exists(path("r2.memdx"))) << "no recording is left behind when the command cannot start";
}

TEST_F(RunTest, UnwritableOutputsFailBeforeTheTargetStarts) {
  std::string marker = path("started");
  ::setenv("MEMDX_TEST_MARKER", marker.c_str(), 1);
  for (auto args : {std::vector<std::string>{"--out", "/nonexistent-dir/r.memdx"},
                    std::vector<std::string>{"--out", path("r.memdx"), "--json", "/nonexistent-dir/v.json"},
                    std::vector<std::string>{"--out", path("r2.memdx"), "--html", "/nonexistent-dir/r.html"},
                    std::vector<std::string>{"--out", path("r3.memdx"), "--html", dir_.string()}}) {
    std::vector<std::string> full = {"run", "--quiet"};
    full.insert(full.end(), args.begin(), args.end());
    full.insert(full.end(), {"--", helper_path("behave"), "marker", "1"});
    CommandResult r = run_memdx(full);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
    EXPECT_TRUE(r.err.find("/nonexistent-dir/") != std::string::npos ||
                r.err.find("is a directory") != std::string::npos)
        << r.err;
    EXPECT_FALSE(fs::exists(marker)) << "the target ran although memdx could not write its output";
  }
  ::unsetenv("MEMDX_TEST_MARKER");
}

TEST_F(RunTest, ReportReanalysesARecordingAndRejectsOtherFiles) {
  ASSERT_EQ(run_behave("fds").exit_code, 0);
  CommandResult again = run_memdx({"report", recording_path(), "--json", path("again.json")});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  std::ifstream in(path("again.json"));
  json v = json::parse(in);
  EXPECT_TRUE(has_kind(v, "fd_growth", "leak"));

  std::ofstream(path("not-a-recording.memdx")) << "hello, world\n";
  CommandResult bad = run_memdx({"report", path("not-a-recording.memdx")});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(line_count(bad.err), 1u) << bad.err;

  // A recording cut short on disk.
  fs::copy_file(recording_path(), path("cut.memdx"));
  fs::resize_file(path("cut.memdx"), fs::file_size(path("cut.memdx")) / 3);
  CommandResult cut = run_memdx({"report", path("cut.memdx")});
  EXPECT_EQ(cut.exit_code, 1) << cut.out;
  EXPECT_EQ(line_count(cut.err), 1u) << cut.err;

  CommandResult missing = run_memdx({"report", path("missing.memdx")});
  EXPECT_EQ(missing.exit_code, 1);
}

// Kills and reaps the processes reparented to this test (a child subreaper).
void kill_orphans() {
  proc::ProcFs fs;
  auto pids = fs.list_pids();
  ASSERT_TRUE(pids.ok());
  for (pid_t pid : *pids) {
    auto text = fs.read_pid_file(pid, "stat");
    if (!text.ok()) continue;
    auto stat = proc::parse_stat(*text);
    if (stat && stat->ppid == ::getpid()) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
}

// SIGKILL memdx mid-run: the recording still opens and holds samples up to the last second.
TEST_F(RunTest, RecordingSurvivesSigkillOfMemdx) {
  // The target outlives memdx; as subreaper this test inherits it and can end it.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  pid_t memdx = ::fork();
  if (memdx == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, STDOUT_FILENO);
    ::dup2(devnull, STDERR_FILENO);
    std::string out = path("r.memdx");
    std::string helper = helper_path("behave");
    ::execl(memdx_path().c_str(), "memdx", "run", "--quiet", "--out", out.c_str(), "--", helper.c_str(), "anon", "30",
            nullptr);
    ::_exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  ::kill(memdx, SIGKILL);
  ::waitpid(memdx, nullptr, 0);
  kill_orphans();

  store::RecordingReader reader = store::RecordingReader::open(path("r.memdx"));
  int64_t last_ms = 0;
  int64_t samples = 0;
  reader.for_each_sample([&](const model::ProcessSample& s) {
    last_ms = std::max(last_ms, s.t_ms);
    ++samples;
  });
  EXPECT_GE(samples, 10);
  // Killed at ~3.5 s: samples committed at least once a second reach past 2.3 s.
  EXPECT_GE(last_ms, 2300) << "samples: " << samples;
  CommandResult report = run_memdx({"report", path("r.memdx")});
  EXPECT_EQ(report.exit_code, 0) << report.err;
}

TEST_F(RunTest, WatchFindsGrowthAndEndsWithTheDuration) {
  pid_t target = ::fork();
  if (target == 0) {
    std::string helper = helper_path("behave");
    ::execl(helper.c_str(), helper.c_str(), "fds", "30", nullptr);
    ::_exit(127);
  }
  auto started = std::chrono::steady_clock::now();
  CommandResult r = run_memdx({"watch", std::to_string(target), "--duration", "7", "--quiet", "--json", path("v.json"),
                               "--out", path("r.memdx")});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ::kill(target, SIGKILL);
  ::waitpid(target, nullptr, 0);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(seconds, 15.0);
  json v = read_json(path("v.json"));
  expect_leak(v, "fd_growth");
}

TEST_F(RunTest, WatchEndsCleanlyWhenThePidVanishes) {
  pid_t target = ::fork();
  if (target == 0) {
    std::string helper = helper_path("behave");
    ::execl(helper.c_str(), helper.c_str(), "flat", "2", nullptr);
    ::_exit(127);
  }
  // Reap it from a thread so it does not linger as a zombie under the test.
  std::thread reaper([target] { ::waitpid(target, nullptr, 0); });
  CommandResult r =
      run_memdx({"watch", std::to_string(target), "--quiet", "--json", path("v.json"), "--out", path("r.memdx")});
  reaper.join();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("exited"), std::string::npos) << r.err;
  EXPECT_EQ(read_json(path("v.json"))["schema"], "memdx.verdict/1");
}

}  // namespace
}  // namespace memdx::test
