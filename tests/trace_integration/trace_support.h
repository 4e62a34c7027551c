// Support for the tracer's integration tests: running programs under `memdx trace` with a
// deadline, reading the report's JSON, and adding up the sites of a named function.
#pragma once

#include <sys/types.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "integration/harness.h"

namespace memdx::test {

using nlohmann::json;

std::string tracee_path(const std::string& name);    // e.g. "counts" -> .../memdx_tracee_counts
std::string tracee_source(const std::string& file);  // e.g. "counts.cpp", full path

// The figures of every site of one function, added up: a function with several allocating
// lines has one site per line.
struct SiteSums {
  size_t sites = 0;
  uint64_t allocations = 0;
  uint64_t allocated_bytes = 0;
  uint64_t peak_live_bytes = 0;  // sum of the sites' peaks: exact for a single site
  uint64_t final_live_bytes = 0;
  uint64_t final_live_blocks = 0;
  std::set<std::string> files;
  std::set<int> lines;
  void add(const json& site);
};
SiteSums site_sums(const json& heap_entry, std::string_view function);

// Lines of a program's source marked "// site: FUNCTION" (the lines the report must name).
std::set<int> marked_lines(const std::string& source_file, std::string_view function);

// "<label> <pid> <ppid>" lines a tracee printed, by label.
struct PrintedPid {
  pid_t pid = 0;
  pid_t ppid = 0;
};
std::map<std::string, std::vector<PrintedPid>> printed_pids(const std::string& out);

// The heap entries of one pid (a pid that exec'd has one per image, in order).
std::vector<json> heap_entries_of(const json& verdict, pid_t pid);

// A fresh directory per test for recordings and reports, removed at the end.
class TraceTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // memdx trace -o R -- command, with R a new recording in the test's directory.
  Finished trace(const std::vector<std::string>& command, int limit_s = 60);
  // memdx run --quiet --out R --json J -- command, with R a new recording and J its verdict
  // (verdict_path()).
  Finished run(const std::vector<std::string>& command, int limit_s = 60);
  // The verdict of the latest recording (memdx report --json, then `options`); an empty object,
  // with a test failure, when memdx report fails.
  json report(const std::vector<std::string>& options = {});
  const std::string& recording() const { return recording_; }
  std::string verdict_path() const { return recording_ + ".verdict.json"; }

  std::filesystem::path dir_;
  std::string recording_;
  int recordings_ = 0;
};

}  // namespace memdx::test
