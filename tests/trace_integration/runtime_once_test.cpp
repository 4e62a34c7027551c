// Blocks the runtime allocates once and keeps by design (stdout's buffer, the time zone, the
// C++ exception pool) are listed after the program's own leak, named for what they are, never as
// the program's leak (programs/once.cpp).
#include <gtest/gtest.h>

#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

using RuntimeOnceTest = TraceTest;

TEST_F(RuntimeOnceTest, TheRuntimesBlocksComeAfterTheProgramsLeak) {
  Finished run = trace({tracee_path("once")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.out.rfind("once ", 0), 0u) << run.out;
  json verdict = report();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  const json& sites = verdict["heap"][0]["sites"];
  const json* own = nullptr;
  std::set<std::string> reasons;
  for (const json& site : sites) {
    if (site["function"] == "leak_here") own = &site;
    if (!site["runtime_once"].is_null()) reasons.insert(site["runtime_once"].get<std::string>());
  }
  ASSERT_NE(own, nullptr) << sites.dump(1);
  EXPECT_TRUE((*own)["runtime_once"].is_null());
  EXPECT_EQ((*own)["final_live_bytes"], 1000);
  EXPECT_TRUE(reasons.count("stdio buffer")) << sites.dump(1);

  CommandResult text = run_command({memdx_path(), "report", recording()});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  size_t leaks = text.out.find("heap still live at the end (leaked at exit):");
  size_t runtime = text.out.find("heap of the runtime, allocated once and kept by design");
  ASSERT_NE(leaks, std::string::npos) << text.out;
  ASSERT_NE(runtime, std::string::npos) << text.out;
  EXPECT_LT(leaks, runtime);
  // The leak section names the program's leak, and it alone.
  std::string leak_section = text.out.substr(leaks, runtime - leaks);
  EXPECT_NE(leak_section.find("leak_here"), std::string::npos) << text.out;
  EXPECT_EQ(leak_section.find("libstdc++"), std::string::npos) << text.out;
}

}  // namespace
}  // namespace memdx::test
