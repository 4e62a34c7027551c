// memdx and heaptrack on the same workload: the same number of allocation calls and the same
// peak, within 1%. The workload's counts and peak are deterministic (workload.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <regex>

#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

namespace fs = std::filesystem;

constexpr double kTolerance = 0.01;

struct HeaptrackSummary {
  uint64_t allocation_calls = 0;
  double peak_bytes = 0;
};

// heaptrack_print 1.4 prints sizes with 1000-based units and two decimals ("2.26M", "72.70K":
// libstdc++'s 72704-byte pool), so a peak is known to about 0.5% of its last unit.
double parse_heaptrack_bytes(const std::string& number, const std::string& unit) {
  double scale = 1;
  for (char u : std::string("KMGTP")) {
    scale *= 1000;
    if (unit == std::string(1, u)) return std::stod(number) * scale;
  }
  return std::stod(number);  // "B" or none
}

std::optional<HeaptrackSummary> parse_heaptrack_print(const std::string& text) {
  std::smatch calls;
  std::smatch peak;
  if (!std::regex_search(text, calls, std::regex(R"(calls to allocation functions: (\d+))")) ||
      !std::regex_search(text, peak, std::regex(R"(peak heap memory consumption: ([0-9.]+)([BKMGTP]?))"))) {
    return std::nullopt;
  }
  return HeaptrackSummary{std::stoull(calls[1].str()), parse_heaptrack_bytes(peak[1].str(), peak[2].str())};
}

// heaptrack names its output ht.zst, ht.gz or ht.<pid>.zst depending on version and options.
std::string heaptrack_output(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("ht.", 0) == 0 && (name.ends_with(".zst") || name.ends_with(".gz"))) return entry.path().string();
  }
  return "";
}

using TraceHeaptrackTest = TraceTest;

TEST_F(TraceHeaptrackTest, AllocationCallsAndPeakAgreeWithHeaptrack) {
  std::string heaptrack = find_on_path("heaptrack");
  std::string heaptrack_print = find_on_path("heaptrack_print");
  // ./run-tests installs it (tools/bootstrap.sh): a comparison that skipped would prove nothing.
  ASSERT_FALSE(heaptrack.empty() || heaptrack_print.empty())
      << "heaptrack is not installed (Debian package heaptrack; ./run-tests installs it)";

  Finished reference = run_for({heaptrack, "-o", path("ht"), tracee_path("workload")}, 120);
  ASSERT_EQ(reference.exit_code, 0) << reference.out << reference.err;
  std::string data = heaptrack_output(dir_);
  ASSERT_FALSE(data.empty()) << "no heaptrack output in " << dir_ << ":\n" << reference.out;
  Finished printed = run_for({heaptrack_print, "-f", data, "--print-peaks=0", "--print-allocators=0",
                              "--print-temporary=0", "--print-leaks=0"},
                             120);
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  std::optional<HeaptrackSummary> expected = parse_heaptrack_print(printed.out);
  ASSERT_TRUE(expected) << "unexpected heaptrack_print output:\n" << printed.out;

  Finished run = trace({tracee_path("workload")});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(reference.out.find(run.out), std::string::npos) << "the workload printed something else under memdx";
  json verdict = report();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  const json& heap = verdict["heap"][0];
  auto allocations = heap["allocations"].get<double>();
  auto peak = heap["peak_live_bytes"].get<double>();
  auto calls = static_cast<double>(expected->allocation_calls);
  EXPECT_LE(std::abs(allocations - calls), kTolerance * calls)
      << "memdx counted " << allocations << " allocations, heaptrack " << calls;
  EXPECT_LE(std::abs(peak - expected->peak_bytes), kTolerance * expected->peak_bytes)
      << "memdx's peak is " << peak << " bytes, heaptrack's " << expected->peak_bytes;
}

}  // namespace
}  // namespace memdx::test
