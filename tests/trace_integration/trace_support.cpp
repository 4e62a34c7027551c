#include "trace_integration/trace_support.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace memdx::test {

namespace fs = std::filesystem;

std::string tracee_path(const std::string& name) {
  return std::string(MEMDX_TRACEE_DIR) + "/memdx_tracee_" + name;
}
std::string tracee_source(const std::string& file) {
  return std::string(MEMDX_TRACEE_SOURCE_DIR) + "/" + file;
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

Finished TraceTest::run(const std::vector<std::string>& command, int limit_s) {
  recording_ = path("r" + std::to_string(++recordings_) + ".memdx");
  std::vector<std::string> argv = {memdx_path(), "run", "--quiet", "--out", recording_, "--json", verdict_path(), "--"};
  argv.insert(argv.end(), command.begin(), command.end());
  Finished run = run_for(argv, limit_s);
  EXPECT_FALSE(run.timed_out) << "memdx run ran past " << limit_s << " s";
  return run;
}

json TraceTest::report(const std::vector<std::string>& options) {
  std::string json_path = recording_ + ".json";
  std::vector<std::string> argv = {memdx_path(), "report", recording_, "--json", json_path};
  argv.insert(argv.end(), options.begin(), options.end());
  Finished run = run_for(argv);
  EXPECT_EQ(run.exit_code, 0) << "memdx report failed: " << run.err;
  if (run.exit_code != 0) return json::object();
  std::ifstream in(json_path);
  return json::parse(in);
}

}  // namespace memdx::test
