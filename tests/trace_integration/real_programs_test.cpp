// Real programs (interpreters, a database, git) under memdx trace: the same output and exit
// code as without it, and a trace with their allocations.
#include <gtest/gtest.h>

#include <functional>

#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

struct RealProgram {
  const char* label;
  const char* program;  // looked up on PATH
  std::vector<std::string> args;
};

void PrintTo(const RealProgram& program, std::ostream* out) { *out << program.label; }

const RealProgram kPrograms[] = {
    {"python", "python3",
     {"-c",
      "import collections, json, sys\n"
      "d = {str(i): list(range(i % 10)) for i in range(20000)}\n"
      "c = collections.Counter(len(v) for v in d.values())\n"
      "print(len(d), sorted(c.items())[:3], json.dumps(d['123']))\n"
      "sys.exit(3)\n"}},
    {"node", "node",
     {"-e",
      "const m = new Map();"
      "for (let i = 0; i < 20000; i++) m.set('k' + i, {v: i, s: 'x'.repeat(i % 50)});"
      "let t = 0; for (const [, v] of m) t += v.s.length;"
      "console.log(m.size, t, JSON.stringify([...m.keys()].slice(0, 3)));"}},
    {"sqlite", "sqlite3",
     {":memory:",
      "create table t(a integer, b text);"
      "with recursive c(x) as (select 1 union all select x + 1 from c where x < 5000)"
      " insert into t select x, printf('row-%d', x) from c;"
      "create index tb on t(b);"
      "select count(*), sum(a), max(b) from t;"}},
    {"git_version", "git", {"--version"}},
    {"git_log", "git", {"-C", MEMDX_SOURCE_ROOT, "log", "--oneline", "-5"}},
};

class TraceRealProgramTest : public TraceTest, public ::testing::WithParamInterface<RealProgram> {};

TEST_P(TraceRealProgramTest, SameOutputAndExitCodeAndATrace) {
  const RealProgram& program = GetParam();
  std::string path = find_on_path(program.program);
  if (path.empty()) GTEST_SKIP() << program.program << " is not installed";
  std::vector<std::string> command = {path};
  command.insert(command.end(), program.args.begin(), program.args.end());

  // A commit landing between the runs would change git log's output: the plain runs before and
  // after must agree for the comparison to mean anything.
  Finished direct, traced, direct_after;
  for (int attempt = 0; attempt < 3; ++attempt) {
    direct = run_for(command);
    traced = trace(command);
    direct_after = run_for(command);
    if (direct.out == direct_after.out) break;
  }
  ASSERT_FALSE(direct.timed_out);
  ASSERT_EQ(direct.out, direct_after.out) << "the program's output is not deterministic";
  EXPECT_EQ(traced.out, direct.out);
  EXPECT_EQ(traced.exit_code, direct.exit_code) << traced.err;
  EXPECT_EQ(traced.signal, 0);

  json verdict = report();
  uint64_t most_allocations = 0;
  for (const json& entry : verdict["heap"]) most_allocations = std::max(most_allocations, entry["allocations"].get<uint64_t>());
  EXPECT_GT(most_allocations, 0u) << verdict["heap"].dump(1);
}

INSTANTIATE_TEST_SUITE_P(Programs, TraceRealProgramTest, ::testing::ValuesIn(kPrograms),
                         [](const auto& program) { return std::string(program.param.label); });

}  // namespace
}  // namespace memdx::test
