// A statically linked program cannot load the tracer: memdx says so in one line, still runs
// it, and exits with its exit code.
#include <gtest/gtest.h>

#include <sstream>

#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

constexpr int kStaticExitCode = 7;  // programs/static_target.cpp

size_t lines_containing(const std::string& text, const std::string& needle) {
  std::istringstream lines(text);
  size_t count = 0;
  for (std::string line; std::getline(lines, line);) count += line.find(needle) != std::string::npos;
  return count;
}

class TraceStaticTest : public TraceTest {
 protected:
  void SetUp() override {
    if (!MEMDX_TRACEE_STATIC) GTEST_SKIP() << "this toolchain cannot link a static program";
    TraceTest::SetUp();
  }
};

TEST_F(TraceStaticTest, TraceSaysStaticallyLinkedAndKeepsTheExitCode) {
  Finished run = trace({tracee_path("static")});
  EXPECT_EQ(run.exit_code, kStaticExitCode) << run.err;
  EXPECT_EQ(run.out, "static target\n");
  EXPECT_EQ(lines_containing(run.err, "is statically linked"), 1u) << run.err;
}

TEST_F(TraceStaticTest, RunSaysStaticallyLinkedAndKeepsTheExitCode) {
  Finished run = run_for({memdx_path(), "run", "--quiet", "--out", path("run.memdx"), "--", tracee_path("static")});
  EXPECT_FALSE(run.timed_out);
  EXPECT_EQ(run.exit_code, kStaticExitCode) << run.err;
  EXPECT_NE(run.out.find("static target\n"), std::string::npos) << run.out;
  EXPECT_EQ(lines_containing(run.out + run.err, "is statically linked"), 1u) << run.out << run.err;
}

}  // namespace
}  // namespace memdx::test
