// The verdict on heap shapes that fool a test of the whole heap alone (programs/noisy.cpp), run by
// `memdx run` as a user would: a slow leak under a heap that swings by megabytes is confirmed on
// its site's own series and named; one step, or one step and a bump, is no leak.
#include <gtest/gtest.h>

#include <fstream>

#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

struct Shape {
  const char* name;
  std::vector<std::string> args;
  bool leak;
};

void PrintTo(const Shape& shape, std::ostream* out) {
  *out << shape.name;
}

class VerdictShapesTest : public TraceTest, public ::testing::WithParamInterface<Shape> {};

TEST_P(VerdictShapesTest, HeapGrowthOnlyWhereASiteKeepsGrowing) {
  const Shape& shape = GetParam();
  std::vector<std::string> command{tracee_path("noisy")};
  command.insert(command.end(), shape.args.begin(), shape.args.end());
  Finished run = this->run(command, 120);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.out, "done\n");
  std::ifstream in(verdict_path());
  ASSERT_TRUE(in) << run.err;
  json verdict = json::parse(in);
  const json* heap_growth = nullptr;
  std::vector<std::string> leaks;
  for (const json& f : verdict["findings"]) {
    if (f["severity"] == "leak")
      leaks.push_back(f["kind"].get<std::string>() + ": " + f["evidence"].get<std::string>());
    if (f["kind"] == "heap_growth") heap_growth = &f;
  }
  if (!shape.leak) {
    EXPECT_TRUE(leaks.empty()) << ::testing::PrintToString(leaks);
    return;
  }
  ASSERT_NE(heap_growth, nullptr) << ::testing::PrintToString(leaks) << verdict["hypotheses"].dump(1);
  ASSERT_FALSE((*heap_growth)["sites"].empty());
  EXPECT_EQ((*heap_growth)["sites"][0]["function"], "keep_record");
  EXPECT_NE((*heap_growth)["evidence"].get<std::string>().find("keep_record"), std::string::npos);
  for (const json& h : verdict["hypotheses"]) {
    if (h["name"] == "heap_growth" && h["pid"] == (*heap_growth)["pid"]) {
      EXPECT_EQ(h["status"], "confirmed");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, VerdictShapesTest,
                         ::testing::Values(Shape{"leak300kb_noise30mb_2s", {"leak", "300", "30", "2", "14"}, true},
                                           Shape{"leak150kb_noise20mb_3s", {"leak", "150", "20", "3", "14"}, true},
                                           Shape{"leak600kb_noise40mb_5s", {"leak", "600", "40", "5", "14"}, true},
                                           Shape{"step", {"step", "12"}, false},
                                           Shape{"step_plus_bump", {"stepbump", "12"}, false}),
                         [](const auto& shape) { return std::string(shape.param.name); });

}  // namespace
}  // namespace memdx::test
