// The environment the tracer's exec and posix_spawn hooks pass on when the program gives its own
// (environment_with_tracer): the program's entries, LD_PRELOAD naming the tracer, and memdx's
// MEMDX_TRACE_* settings as this process started with them. Compiled from the tracer's own
// sources: tracer_init() runs as in a traced process, with settings that name no collector
// (nothing connects, nothing is traced), and finds the library's path as the loader named it.
// In this test that path is the test program's own (dladdr of the main program); the tracer never
// reads it from the LD_PRELOAD variable, so the test sets none.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trace/format/wire.h"
#include "trace/preload/exec_environment.h"
#include "trace/preload/real.h"
#include "trace/preload/tracer.h"

namespace memdx::trace {
namespace {

// The settings memdx gives a traced process. The socket does not exist: tracer_init reads and
// checks the settings, then fails to connect and leaves tracing off.
const std::string kSocket = "/nonexistent/memdx-exec-environment-test/collector.sock";
const std::string kKey = "00112233445566778899aabbccddeeff";
const std::string kMaxDepth = "17";
const std::string kSampleBytes = "4096";

std::string collector_pid() {
  return std::to_string(::getpid());
}

std::string entry(const char* name, const std::string& value) {
  return std::string(name) + "=" + value;
}

std::string tracer_preload() {
  return entry("LD_PRELOAD", preload_entry());
}

// The MEMDX_TRACE_* entries as this process started with them.
std::vector<std::string> carried_settings() {
  return {entry(wire::kEnvSocket, kSocket), entry(wire::kEnvKey, kKey), entry(wire::kEnvCollectorPid, collector_pid()),
          entry(wire::kEnvMaxDepth, kMaxDepth), entry(wire::kEnvSampleBytes, kSampleBytes)};
}

// Starts the tracer as a traced process would, then changes this process's environment the way a
// program may: the settings are gone or different by the time it execs.
class TracedProcess : public ::testing::Environment {
 public:
  void SetUp() override {
    ::setenv(wire::kEnvSocket, kSocket.c_str(), 1);
    ::setenv(wire::kEnvKey, kKey.c_str(), 1);
    ::setenv(wire::kEnvCollectorPid, collector_pid().c_str(), 1);
    ::setenv(wire::kEnvMaxDepth, kMaxDepth.c_str(), 1);
    ::setenv(wire::kEnvSampleBytes, kSampleBytes.c_str(), 1);
    tracer_init();                  // remembers the environment, finds the real functions and the library's path
    remember_tracer_environment();  // again: a second call leaves the same settings
    ::unsetenv(wire::kEnvSocket);
    ::unsetenv(wire::kEnvKey);
    ::unsetenv(wire::kEnvCollectorPid);
    ::setenv(wire::kEnvMaxDepth, "3", 1);
    ::unsetenv(wire::kEnvSampleBytes);
  }
};
const auto* const kTracedProcess = ::testing::AddGlobalTestEnvironment(new TracedProcess);

// An envp array made from strings; the strings stay where they are while it lives.
class Envp {
 public:
  explicit Envp(std::vector<std::string> entries) : entries_(std::move(entries)) {
    for (std::string& e : entries_) pointers_.push_back(e.data());
    pointers_.push_back(nullptr);
  }
  char* const* get() const { return pointers_.data(); }
  char* at(size_t i) const { return pointers_[i]; }

 private:
  std::vector<std::string> entries_;
  std::vector<char*> pointers_;
};

std::multiset<std::string> as_set(char* const* envp) {
  std::multiset<std::string> out;
  for (; *envp; ++envp) out.emplace(*envp);
  return out;
}

std::set<char*> pointers_of(char* const* envp) {
  std::set<char*> out;
  for (; *envp; ++envp) out.insert(*envp);
  return out;
}

std::multiset<std::string> as_set(std::vector<std::string> entries) {
  return {entries.begin(), entries.end()};
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Frees the new array when the test ends, whatever it asserted.
struct Passed {
  ExecEnvironment environment;
  explicit Passed(char* const* envp) : environment(environment_with_tracer(envp)) {}
  ~Passed() { release_environment(environment); }
  Passed(const Passed&) = delete;
  Passed& operator=(const Passed&) = delete;
};

TEST(ExecEnvironment, TheTracerStartedWithALibraryPath) {
  ASSERT_NE(preload_entry(), nullptr);
  EXPECT_NE(std::string(preload_entry()), "");
  EXPECT_FALSE(tracing_active());  // no collector: the settings were read, nothing connected
}

TEST(ExecEnvironment, ACleanEnvironmentGetsTheTracerAndEverySetting) {
  Envp envp({"PATH=/usr/bin:/bin", "HOME=/home/someone"});
  Passed passed(envp.get());
  ASSERT_NE(passed.environment.memory, nullptr);
  EXPECT_NE(passed.environment.envp, envp.get());
  EXPECT_EQ(as_set(passed.environment.envp),
            as_set(concat({"PATH=/usr/bin:/bin", "HOME=/home/someone", tracer_preload()}, carried_settings())));
  // The caller's own strings are passed on, not copies.
  std::set<char*> pointers = pointers_of(passed.environment.envp);
  EXPECT_TRUE(pointers.contains(envp.at(0)));
  EXPECT_TRUE(pointers.contains(envp.at(1)));
}

TEST(ExecEnvironment, AnEmptyEnvironmentGetsTheTracerAndEverySetting) {
  Envp envp({});
  Passed passed(envp.get());
  EXPECT_EQ(as_set(passed.environment.envp), as_set(concat({tracer_preload()}, carried_settings())));
}

TEST(ExecEnvironment, ANullEnvironmentIsPassedOnAsItIs) {
  ExecEnvironment environment = environment_with_tracer(nullptr);
  EXPECT_EQ(environment.envp, nullptr);
  EXPECT_EQ(environment.memory, nullptr);
  release_environment(environment);  // nothing to free
}

TEST(ExecEnvironment, AnEnvironmentThatCarriesEverythingKeepsItsEntries) {
  std::vector<std::string> entries = concat({"TERM=xterm", tracer_preload(), "LANG=C.UTF-8"}, carried_settings());
  Envp envp(entries);
  Passed passed(envp.get());
  EXPECT_EQ(as_set(passed.environment.envp), as_set(entries));
  // The caller's LD_PRELOAD already names the tracer: that very entry goes on.
  EXPECT_TRUE(pointers_of(passed.environment.envp).contains(envp.at(1)));
}

TEST(ExecEnvironment, AnotherPreloadListGetsTheTracerFirst) {
  Envp envp({"LD_PRELOAD=/opt/a/liba.so:/opt/b/libb.so", "USER=someone"});
  Passed passed(envp.get());
  EXPECT_EQ(
      as_set(passed.environment.envp),
      as_set(concat({"LD_PRELOAD=" + std::string(preload_entry()) + ":/opt/a/liba.so:/opt/b/libb.so", "USER=someone"},
                    carried_settings())));
}

TEST(ExecEnvironment, APreloadListThatNamesTheTracerIsKeptInItsOrder) {
  std::string list = "LD_PRELOAD=/opt/a/liba.so:" + std::string(preload_entry()) + ":/opt/b/libb.so";
  Envp envp({list});
  Passed passed(envp.get());
  EXPECT_EQ(as_set(passed.environment.envp), as_set(concat({list}, carried_settings())));
}

// The loader separates names with spaces too.
TEST(ExecEnvironment, ASpaceSeparatedListThatNamesTheTracerIsKept) {
  std::string list = "LD_PRELOAD=/opt/a/liba.so " + std::string(preload_entry());
  Envp envp({list});
  Passed passed(envp.get());
  EXPECT_EQ(as_set(passed.environment.envp), as_set(concat({list}, carried_settings())));
}

// A library whose path merely contains the tracer's (a copy in another directory, a renamed old
// build) is another library: the tracer still goes first.
TEST(ExecEnvironment, ALibraryWhosePathContainsTheTracersIsAnotherLibrary) {
  for (const std::string& lookalike :
       {"/elsewhere/" + std::string(preload_entry()), std::string(preload_entry()) + ".old"}) {
    Envp envp({"LD_PRELOAD=" + lookalike});
    Passed passed(envp.get());
    EXPECT_EQ(as_set(passed.environment.envp),
              as_set(concat({"LD_PRELOAD=" + std::string(preload_entry()) + ":" + lookalike}, carried_settings())));
  }
}

TEST(ExecEnvironment, AnEmptyPreloadListGetsTheTracer) {
  Envp envp({"LD_PRELOAD="});
  Passed passed(envp.get());
  std::multiset<std::string> got = as_set(passed.environment.envp);
  std::vector<std::string> preloads;
  for (const std::string& e : got) {
    if (e.starts_with("LD_PRELOAD=")) preloads.push_back(e);
  }
  ASSERT_EQ(preloads.size(), 1u);
  // The loader skips empty names in the list: a trailing separator is harmless.
  EXPECT_TRUE(preloads[0] == tracer_preload() || preloads[0] == tracer_preload() + ":") << preloads[0];
  EXPECT_EQ(got.size(), 1 + carried_settings().size());
}

// A program that copies an old environment (another run's socket and key, a setting memdx no
// longer gave) sends this run's settings on, each once.
TEST(ExecEnvironment, StaleSettingsAreReplacedByThisRunsOwn) {
  Envp envp({entry(wire::kEnvSocket, "/tmp/old-run/collector.sock"),
             entry(wire::kEnvKey, "ffffffffffffffffffffffffffffffff"), entry(wire::kEnvCollectorPid, "1"),
             entry(wire::kEnvMaxDepth, "3"), entry(wire::kEnvSampleBytes, "0"), "SHELL=/bin/sh", tracer_preload()});
  Passed passed(envp.get());
  EXPECT_EQ(as_set(passed.environment.envp), as_set(concat({"SHELL=/bin/sh", tracer_preload()}, carried_settings())));
}

// Thousands of entries and a long preload list: the new array and every string fit in the one
// mapping, none is lost.
TEST(ExecEnvironment, ALargeEnvironmentIsPassedOnWhole) {
  constexpr size_t kEntries = 5000;
  std::vector<std::string> entries;
  for (size_t i = 0; i < kEntries; ++i) {
    entries.push_back("VARIABLE_" + std::to_string(i) + "=" + std::string(i % 300, 'x'));
  }
  std::string others;
  for (int i = 0; i < 200; ++i) others += ":/opt/preloaded/lib" + std::to_string(i) + ".so";
  std::vector<std::string> given = entries;
  given.push_back("LD_PRELOAD=" + others.substr(1));
  given.push_back(entry(wire::kEnvKey, "ffffffffffffffffffffffffffffffff"));
  Envp envp(given);
  Passed passed(envp.get());
  ASSERT_NE(passed.environment.memory, nullptr);
  entries.push_back("LD_PRELOAD=" + std::string(preload_entry()) + others);
  EXPECT_EQ(as_set(passed.environment.envp), as_set(concat(entries, carried_settings())));
  // The caller's strings go on as they are; the new preload list was built in the one mapping.
  const char* begin = static_cast<const char*>(passed.environment.memory);
  const char* end = begin + passed.environment.memory_bytes;
  std::set<char*> passed_on = pointers_of(passed.environment.envp);
  for (size_t i = 0; i < kEntries; ++i) EXPECT_TRUE(passed_on.contains(envp.at(i))) << envp.at(i);
  for (const char* e : passed_on) {
    if (std::string_view(e).starts_with("LD_PRELOAD=")) {
      EXPECT_TRUE(e >= begin && e < end);
    }
  }
}

TEST(ExecEnvironment, ReleasingUnmapsTheEnvironment) {
  Envp envp({"PATH=/bin"});
  ExecEnvironment environment = environment_with_tracer(envp.get());
  ASSERT_NE(environment.memory, nullptr);
  void* memory = environment.memory;
  size_t bytes = environment.memory_bytes;
  ASSERT_GT(bytes, 0u);
  unsigned char resident[64];
  ASSERT_LE(bytes / static_cast<size_t>(::sysconf(_SC_PAGESIZE)) + 1, sizeof(resident));
  EXPECT_EQ(::mincore(memory, bytes, resident), 0);
  release_environment(environment);
  EXPECT_EQ(environment.memory, nullptr);
  // mincore fails with ENOMEM on a range that is not mapped.
  errno = 0;
  EXPECT_EQ(::mincore(memory, bytes, resident), -1);
  EXPECT_EQ(errno, ENOMEM);
  release_environment(environment);  // a second release frees nothing
}

}  // namespace
}  // namespace memdx::trace
