// The recording pipeline (record/tree_recording.h) on processes the test starts: the environment
// that carries the heap tracer, and record_tree from the recording's creation to its closing,
// with the tracer injected into a real program and the observer told each step.
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "proc/procfs.h"
#include "record/meta.h"
#include "record/tree_recording.h"
#include "store/recording_reader.h"
#include "store/schema.h"
#include "store/store_test_util.h"
#include "trace/format/wire.h"

namespace memdx::record {
namespace {

using memdx::testing::TempDir;

size_t count_with_prefix(const std::vector<std::string>& environment, const std::string& prefix) {
  return static_cast<size_t>(std::count_if(environment.begin(), environment.end(),
                                           [&](const std::string& e) { return e.starts_with(prefix); }));
}

bool has(const std::vector<std::string>& environment, const std::string& entry) {
  return std::find(environment.begin(), environment.end(), entry) != environment.end();
}

CollectorAddress address() {
  CollectorAddress collector;
  collector.socket_path = "/tmp/memdx-test/socket";
  collector.key_hex = "00112233445566778899aabbccddeeff";
  collector.collector_pid = 4242;
  return collector;
}

TEST(TracedEnvironment, PutsTheTracerFirstAndKeepsTheRest) {
  std::vector<std::string> base = {"PATH=/usr/bin", "LD_PRELOAD=/opt/other.so:/opt/third.so", "HOME=/root"};
  std::vector<std::string> environment = traced_environment(base, "/lib/memdx/libmemdx_trace.so", address(), {});
  EXPECT_TRUE(has(environment, "PATH=/usr/bin"));
  EXPECT_TRUE(has(environment, "HOME=/root"));
  EXPECT_TRUE(has(environment, "LD_PRELOAD=/lib/memdx/libmemdx_trace.so:/opt/other.so:/opt/third.so"));
  EXPECT_EQ(count_with_prefix(environment, "LD_PRELOAD="), 1u);
  EXPECT_TRUE(has(environment, std::string(trace::wire::kEnvSocket) + "=/tmp/memdx-test/socket"));
  EXPECT_TRUE(has(environment, std::string(trace::wire::kEnvKey) + "=00112233445566778899aabbccddeeff"));
  EXPECT_TRUE(has(environment, std::string(trace::wire::kEnvCollectorPid) + "=4242"));
  EXPECT_TRUE(has(environment, std::string(trace::wire::kEnvMaxDepth) + "=64"));
  EXPECT_TRUE(has(environment, std::string(trace::wire::kEnvSampleBytes) + "=0"));
}

// A memdx run inside a memdx run: the inner one's settings replace the outer ones, never doubled
// (the tracer would read the first).
TEST(TracedEnvironment, ReplacesSettingsItInherited) {
  std::vector<std::string> base = {std::string(trace::wire::kEnvSocket) + "=/tmp/outer/socket",
                                   std::string(trace::wire::kEnvSampleBytes) + "=4096", "LD_PRELOAD=", "TERM=xterm"};
  TraceSettings settings;
  settings.sample_bytes = 524288;
  settings.max_depth = 16;
  std::vector<std::string> environment = traced_environment(base, "/t.so", address(), settings);
  EXPECT_EQ(count_with_prefix(environment, trace::wire::kEnvSocket), 1u);
  EXPECT_TRUE(has(environment, std::string(trace::wire::kEnvSocket) + "=/tmp/memdx-test/socket"));
  EXPECT_EQ(count_with_prefix(environment, trace::wire::kEnvSampleBytes), 1u);
  EXPECT_TRUE(has(environment, std::string(trace::wire::kEnvSampleBytes) + "=524288"));
  EXPECT_TRUE(has(environment, std::string(trace::wire::kEnvMaxDepth) + "=16"));
  EXPECT_TRUE(has(environment, "LD_PRELOAD=/t.so"));  // an empty LD_PRELOAD adds no empty entry
  EXPECT_TRUE(has(environment, "TERM=xterm"));
  EXPECT_EQ(environment.size(), 7u);
}

// Starts `argv` with `environment` (what record_tree chose): the root a command would be.
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& environment) {
  std::vector<char*> args, env;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  for (const std::string& e : environment) env.push_back(const_cast<char*>(e.c_str()));
  args.push_back(nullptr);
  env.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // as spawn_target does: the session blocked them
    ::execve(args[0], args.data(), env.data());
    ::_exit(127);
  }
  return pid;
}

TreeRecordingRequest request_for(const std::string& path, const std::vector<std::string>& command) {
  TreeRecordingRequest request;
  request.out_path = path;
  request.meta = make_meta(proc::ProcFs(), "run", command, 50, ::getpid());
  request.root_is_child = true;
  request.environment = current_environment();
  return request;
}

// The whole pipeline with the tracer: a shell that allocates connects to the collector, its trace
// is stored, and the observer hears each step in order.
TEST(RecordTree, InjectsTheTracerAndStoresWhatItSent) {
  TempDir dir;
  const std::string path = dir.file("tree.memdx");
  const std::vector<std::string> command = {"/bin/sh", "-c", "x=$(seq 1 2000); sleep 0.3; echo ${#x} >/dev/null"};
  TreeRecordingRequest request = request_for(path, command);
  request.tracer_library = MEMDX_TRACER_LIBRARY;
  std::vector<std::string> steps;
  pid_t started = 0;
  TreeRecordingObserver observer;
  observer.before_root_starts = [&] { steps.push_back("before"); };
  observer.root_started = [&](pid_t root) {
    steps.push_back("started");
    started = root;
  };
  observer.on_tick = [&](const TickStatus&) {
    if (steps.back() != "tick") steps.push_back("tick");
  };
  observer.session_ended = [&](const SessionResult& session) {
    steps.push_back("ended");
    EXPECT_EQ(session.end, SessionResult::End::kRootExited);
  };
  std::vector<std::string> given;
  std::optional<TreeRecordingOutcome> outcome =
      record_tree(proc::ProcFs(), request, observer, [&](const std::vector<std::string>& environment) {
        given = environment;
        return spawn(command, environment);
      });
  ASSERT_TRUE(outcome);
  EXPECT_EQ(steps, (std::vector<std::string>{"before", "started", "tick", "ended"}));
  EXPECT_EQ(count_with_prefix(given, std::string("LD_PRELOAD=") + MEMDX_TRACER_LIBRARY), 1u);
  ASSERT_TRUE(outcome->session.root_wait_status);
  EXPECT_TRUE(WIFEXITED(*outcome->session.root_wait_status));
  EXPECT_EQ(WEXITSTATUS(*outcome->session.root_wait_status), 0);
  EXPECT_FALSE(outcome->session.store_error);
  ASSERT_TRUE(outcome->trace);
  EXPECT_GE(outcome->trace->streams, 1u);  // the shell (and its children) loaded the tracer
  EXPECT_GT(outcome->trace->bytes_received, 0u);
  EXPECT_EQ(outcome->trace->refused_count, 0u);

  store::RecordingReader reader = store::RecordingReader::open(path);
  EXPECT_EQ(reader.meta_value(store::meta_key::kRootPid), std::to_string(started));
  size_t chunks = 0;
  store::TraceChunkCursor cursor = reader.trace_chunks();
  while (cursor.next()) ++chunks;
  EXPECT_GE(chunks, 1u);
  ASSERT_FALSE(reader.processes().empty());
  EXPECT_EQ(reader.processes().front().pid, started);
}

// A command that could not start: nothing recorded, and no empty recording left behind.
TEST(RecordTree, RemovesTheRecordingWhenTheRootCannotStart) {
  TempDir dir;
  const std::string path = dir.file("never.memdx");
  bool started = false;
  TreeRecordingObserver observer;
  observer.root_started = [&](pid_t) { started = true; };
  std::optional<TreeRecordingOutcome> outcome = record_tree(proc::ProcFs(), request_for(path, {"missing"}), observer,
                                                            [](const std::vector<std::string>&) { return -1; });
  EXPECT_FALSE(outcome);
  EXPECT_FALSE(started);
  struct stat st {};
  EXPECT_NE(::stat(path.c_str(), &st), 0);
}

// A host that waits its own way (libmemdx) keeps its signals: record_tree blocks none of them.
TEST(RecordTree, LeavesTheSignalsOfAHostThatWaitsItsOwnWay) {
  sigset_t session_signals;
  sigemptyset(&session_signals);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&session_signals, sig);
  ::pthread_sigmask(SIG_UNBLOCK, &session_signals, nullptr);  // an earlier test's session blocked them
  TempDir dir;
  const std::vector<std::string> command = {"/bin/sleep", "30"};
  TreeRecordingRequest request = request_for(dir.file("host.memdx"), command);
  int waits = 0;
  TreeRecordingObserver observer;
  observer.wait_for_stop = [&](int64_t) { return ++waits == 2; };
  pid_t root = 0;
  std::optional<TreeRecordingOutcome> outcome =
      record_tree(proc::ProcFs(), request, observer,
                  [&](const std::vector<std::string>& environment) { return root = spawn(command, environment); });
  ::kill(root, SIGKILL);
  ::waitpid(root, nullptr, 0);
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->session.end, SessionResult::End::kInterrupted);
  EXPECT_EQ(waits, 2);
  sigset_t blocked;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &blocked);
  EXPECT_FALSE(sigismember(&blocked, SIGINT));
  EXPECT_FALSE(sigismember(&blocked, SIGCHLD));
}

}  // namespace
}  // namespace memdx::record
