// Benchmarks of the work behind `memdx inspect` on big targets: one process with 10,000
// mappings, and `--tree` over 200 processes. Both targets are real processes, spawned from the
// fixtures built next to this binary, so the figures include the kernel's cost of generating
// /proc files, which is most of the cost (see bench/README.md).
//
//   build/bench/memdx_bench_inspect [--benchmark_filter=REGEX] [other Google Benchmark flags]
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "analyze/notes.h"
#include "analyze/snapshot.h"
#include "model/snapshot.h"
#include "proc/procfs.h"
#include "proc/smaps.h"
#include "report/inspect_text.h"

namespace {

using memdx::analyze::SnapshotOptions;
using memdx::model::InspectReport;
using memdx::proc::ProcFs;

constexpr const char* kMappingCount = "10000";
constexpr const char* kTreeCount = "200";

// A fixture process whose stdin pipe we hold: closing it tells the fixture to exit.
class Fixture {
 public:
  static std::optional<Fixture> start(const std::string& path, const char* count);
  Fixture(Fixture&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)), stdin_fd_(std::exchange(other.stdin_fd_, -1)), target_(other.target_) {}
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;
  Fixture& operator=(Fixture&&) = delete;
  ~Fixture() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
  }

  pid_t target() const { return target_; }  // the pid the fixture printed as ready

 private:
  Fixture(pid_t pid, int stdin_fd) : pid_(pid), stdin_fd_(stdin_fd) {}

  pid_t pid_;
  int stdin_fd_;
  pid_t target_ = 0;
};

// Reads the "ready <pid>" line byte by byte: nothing beyond it may be consumed.
std::optional<pid_t> read_ready_line(int fd) {
  std::string line;
  char c = 0;
  while (line.size() < 64) {
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n != 1 || c == '\n') break;
    line += c;
  }
  int pid = 0;
  if (std::sscanf(line.c_str(), "ready %d", &pid) != 1 || pid <= 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

std::optional<Fixture> Fixture::start(const std::string& path, const char* count) {
  int to_child[2];
  int from_child[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0) return std::nullopt;
  if (::pipe2(from_child, O_CLOEXEC) != 0) {
    ::close(to_child[0]);
    ::close(to_child[1]);
    return std::nullopt;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(to_child[0], STDIN_FILENO);
    ::dup2(from_child[1], STDOUT_FILENO);
    ::execl(path.c_str(), path.c_str(), count, static_cast<char*>(nullptr));
    std::fprintf(stderr, "memdx_bench_inspect: cannot run %s: %s\n", path.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);
  if (pid < 0) {
    ::close(to_child[1]);
    ::close(from_child[0]);
    return std::nullopt;
  }
  Fixture fixture(pid, to_child[1]);
  std::optional<pid_t> target = read_ready_line(from_child[0]);
  ::close(from_child[0]);
  if (!target) return std::nullopt;  // the destructor reaps it
  fixture.target_ = *target;
  return fixture;
}

std::string executable_dir() {
  char path[4096];
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return ".";
  std::string exe(path, static_cast<size_t>(n));
  size_t slash = exe.rfind('/');
  return slash == std::string::npos ? "." : exe.substr(0, slash);
}

// What the benchmarks read; filled once in main before any benchmark runs.
struct Targets {
  pid_t many_mappings = 0;
  pid_t tree_root = 0;
  std::string smaps_text;  // /proc/PID/smaps of many_mappings, captured once
};
Targets g_targets;

// The work of `memdx inspect --tree ROOT` up to the rendering, as cli/inspect.cpp does it.
InspectReport inspect_tree(const ProcFs& fs, pid_t root) {
  memdx::analyze::ProcessTable table = memdx::analyze::scan_process_table(fs);
  InspectReport report;
  report.tree = true;
  for (pid_t pid : table.subtree(root)) {
    auto snapshot = memdx::analyze::take_process_snapshot(fs, pid, SnapshotOptions{});
    if (!snapshot.ok()) {
      report.exited_during_read.push_back(pid);
      continue;
    }
    snapshot->children = table.children(pid);
    report.processes.push_back(std::move(snapshot).value());
  }
  report.system = memdx::analyze::take_system_snapshot(fs, root);
  report.notes = memdx::analyze::notes_for(report);
  return report;
}

void snapshot_many_mappings(benchmark::State& state, bool read_regions) {
  ProcFs fs;
  SnapshotOptions options;
  options.read_regions = read_regions;
  for (auto _ : state) {
    auto snapshot = memdx::analyze::take_process_snapshot(fs, g_targets.many_mappings, options);
    if (!snapshot.ok()) {
      state.SkipWithError(snapshot.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(snapshot);
  }
}

// (a) `memdx inspect PID` minus the rendering: smaps_rollup, smaps, regions, fds, status.
void BM_SnapshotManyMappings(benchmark::State& state) {
  snapshot_many_mappings(state, true);
}

// (b) The same without the per-region breakdown: only smaps_rollup (what sampling reads).
void BM_SnapshotManyMappingsRollupOnly(benchmark::State& state) {
  snapshot_many_mappings(state, false);
}

// The kernel's share of (a): reading /proc/PID/smaps into a string, nothing parsed.
void BM_ReadSmapsText(benchmark::State& state) {
  ProcFs fs;
  for (auto _ : state) {
    auto text = fs.read_pid_file(g_targets.many_mappings, "smaps");
    if (!text.ok()) {
      state.SkipWithError(text.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(text);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g_targets.smaps_text.size()));
}

// (c) Parsing alone, on the text captured once: no kernel time.
void BM_ParseSmaps(benchmark::State& state) {
  size_t mappings = 0;
  for (auto _ : state) {
    auto parsed = memdx::proc::parse_smaps(g_targets.smaps_text);
    mappings = parsed.size();
    benchmark::DoNotOptimize(parsed);
  }
  state.counters["mappings"] = static_cast<double>(mappings);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g_targets.smaps_text.size()));
}

// (d) `memdx inspect --tree ROOT` minus the rendering: 201 processes (the root and 200 descendants).
void BM_InspectTree(benchmark::State& state) {
  ProcFs fs;
  size_t processes = 0;
  for (auto _ : state) {
    InspectReport report = inspect_tree(fs, g_targets.tree_root);
    processes = report.processes.size();
    benchmark::DoNotOptimize(report);
  }
  state.counters["processes"] = static_cast<double>(processes);
}

// (e) One pass over /proc/*/stat for the parent links: paid once per inspect.
void BM_ScanProcessTable(benchmark::State& state) {
  ProcFs fs;
  size_t pids = 0;
  for (auto _ : state) {
    auto table = memdx::analyze::scan_process_table(fs);
    pids = table.parent_of.size();
    benchmark::DoNotOptimize(table);
  }
  state.counters["pids"] = static_cast<double>(pids);
}

// The rendering of the tree report, text and JSON, on a report taken once.
void BM_RenderTreeText(benchmark::State& state) {
  InspectReport report = inspect_tree(ProcFs{}, g_targets.tree_root);
  for (auto _ : state) benchmark::DoNotOptimize(memdx::report::render_inspect_text(report));
}

void BM_RenderTreeJson(benchmark::State& state) {
  InspectReport report = inspect_tree(ProcFs{}, g_targets.tree_root);
  for (auto _ : state) benchmark::DoNotOptimize(memdx::model::to_json(report).dump(2));
}

// Five repetitions, medians reported: /proc reads are noisy on a busy machine.
void configure(benchmark::internal::Benchmark* b) {
  b->Unit(benchmark::kMillisecond)->Repetitions(5)->ReportAggregatesOnly(true);
}

BENCHMARK(BM_SnapshotManyMappings)->Apply(configure);
BENCHMARK(BM_SnapshotManyMappingsRollupOnly)->Apply(configure);
BENCHMARK(BM_ReadSmapsText)->Apply(configure);
BENCHMARK(BM_ParseSmaps)->Apply(configure);
BENCHMARK(BM_InspectTree)->Apply(configure);
BENCHMARK(BM_ScanProcessTable)->Apply(configure);
BENCHMARK(BM_RenderTreeText)->Apply(configure);
BENCHMARK(BM_RenderTreeJson)->Apply(configure);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;

  const std::string dir = executable_dir();
  std::optional<Fixture> mappings = Fixture::start(dir + "/memdx_fixture_mappings", kMappingCount);
  std::optional<Fixture> tree = Fixture::start(dir + "/memdx_fixture_tree", kTreeCount);
  if (!mappings || !tree) {
    std::fprintf(stderr,
                 "memdx_bench_inspect: the fixtures in %s did not start; build the "
                 "memdx_fixture_mappings and memdx_fixture_tree targets\n",
                 dir.c_str());
    return 1;
  }
  g_targets.many_mappings = mappings->target();
  g_targets.tree_root = tree->target();
  auto smaps = ProcFs{}.read_pid_file(g_targets.many_mappings, "smaps");
  if (!smaps.ok()) {
    std::fprintf(stderr, "memdx_bench_inspect: cannot read smaps: %s\n", smaps.error().message.c_str());
    return 1;
  }
  g_targets.smaps_text = std::move(smaps).value();
  benchmark::AddCustomContext("smaps_bytes", std::to_string(g_targets.smaps_text.size()));

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;  // the fixtures exit when their stdin closes, and are reaped here
}
