// Real programs (a JVM with threads, node, python, perl, sqlite, git, shell pipelines, sort, make,
// gcc) run natively, under `memdx run` and under `memdx trace`: the same stdout, exit code, files
// and stderr (less memdx's own lines and verdict) as without memdx, each run under a deadline so
// that a hang fails in minutes, and a recording that holds the program's allocations.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

namespace fs = std::filesystem;

// A hang under memdx (the JVM once waited on itself forever) fails the case after this long.
constexpr int kDeadlineS = 120;

// A program a case needs, with the Debian package that provides it (tools/bootstrap.sh lists
// them in MEMDX_TEST_PACKAGES, and ./run-tests installs those missing).
struct Tool {
  const char* name;
  const char* package;
};

// What a run left behind besides its output: a file's bytes, a built program's output.
using Products = std::map<std::string, std::string>;

struct RealProgram {
  const char* label;
  // The command; "{shared}" stands for the case's directory (what `prepare` wrote, shared by
  // all runs) and "{work}" for a new empty directory of each run's own. argv[0] is looked up on
  // PATH unless it is a path.
  std::vector<std::string> argv;
  std::vector<Tool> tools;  // argv[0] included, when looked up on PATH
  void (*prepare)(const fs::path& shared) = nullptr;
  Products (*products)(const fs::path& work) = nullptr;
  bool output_changes_over_time = false;  // git log: a commit may land between the runs
};

void PrintTo(const RealProgram& program, std::ostream* out) {
  *out << program.label;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary);
  out << text;
  ASSERT_TRUE(out.good()) << "cannot write " << file;
}

// A built program's output, or a note that it is missing or failed.
std::string output_of(const fs::path& program) {
  if (!fs::exists(program)) return "(missing)";
  Finished run = run_for({program.string()}, 30);
  return run.out + "exit " + std::to_string(run.exit_code);
}

// --- Java: Threads.class, compiled with javac when memdx is built (tests/trace_integration).

void check_threads_class(const fs::path&) {
  ASSERT_TRUE(fs::exists(fs::path(MEMDX_JAVA_CLASSES) / "Threads.class"))
      << "Threads.class is missing: javac was not found when cmake configured memdx (Debian package "
         "default-jdk-headless); install it and configure again";
}

// --- sort: about 50 MB of pseudo-random lines, sorted into a file.

void write_lines(const fs::path& shared) {
  std::ofstream out(shared / "lines.txt", std::ios::binary);
  uint64_t state = 0x9e3779b97f4a7c15u;
  std::string line;
  for (int i = 0; i < 1'600'000; ++i) {
    line.clear();
    for (int c = 0; c < 24; ++c) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      line.push_back(static_cast<char>('a' + state % 26));
    }
    line += ' ' + std::to_string(i) + '\n';
    out << line;
  }
  ASSERT_TRUE(out.good()) << "cannot write the lines to sort";
}

Products sorted_file(const fs::path& work) {
  return {{"sorted.txt", read_file(work / "sorted.txt")}};
}

// --- make: three programs, each built from its own C file by one gcc, with -j2; then all of them
// run, in order.

void write_make_project(const fs::path& shared) {
  write_file(shared / "Makefile",
             "PROGRAMS = one two three\n"
             "all: $(PROGRAMS)\n"
             "\t@for p in $(PROGRAMS); do ./$$p; done\n"
             "$(PROGRAMS): %: $(SRC)/%.c\n"
             "\tgcc -O1 -o $@ $<\n");
  const std::string source =
      "#include <stdio.h>\n"
      "int main(void) {\n"
      "  for (int i = 0; i < TIMES; ++i) printf(\"NAME %d\\n\", i);\n"
      "  return 0;\n"
      "}\n";
  int times = 1;
  for (std::string name : {"one", "two", "three"}) {
    write_file(shared / (name + ".c"),
               replace_all(replace_all(source, "NAME", name), "TIMES", std::to_string(times++)));
  }
}

Products built_programs(const fs::path& work) {
  Products products;
  for (const char* name : {"one", "two", "three"}) products[name] = output_of(work / name);
  return products;
}

// --- gcc: one C file compiled and linked.

void write_c_file(const fs::path& shared) {
  write_file(shared / "hello.c",
             "#include <stdio.h>\n"
             "#include <stdlib.h>\n"
             "#include <string.h>\n"
             "static int compare(const void* a, const void* b) { return strcmp(*(char**)a, *(char**)b); }\n"
             "int main(void) {\n"
             "  char* words[] = {\"pear\", \"apple\", \"fig\", \"plum\", \"kiwi\"};\n"
             "  qsort(words, 5, sizeof(words[0]), compare);\n"
             "  for (int i = 0; i < 5; ++i) printf(\"%s\\n\", words[i]);\n"
             "  return 0;\n"
             "}\n");
}

Products compiled_program(const fs::path& work) {
  return {{"hello", read_file(work / "hello")}, {"hello's output", output_of(work / "hello")}};
}

const Tool kBash{"bash", "bash"};
const Tool kCoreutils{"sort", "coreutils"};
const Tool kGit{"git", "git"};
const Tool kGcc{"gcc", "gcc"};
const Tool kJava{"java", "default-jdk-headless"};

const RealProgram kPrograms[] = {
    {.label = "Java",
     .argv = {"java", "-cp", MEMDX_JAVA_CLASSES, "Threads"},
     .tools = {kJava},
     .prepare = check_threads_class},
    {.label = "JavaVersion", .argv = {"java", "-version"}, .tools = {kJava}},
    {.label = "Getattr", .argv = {tracee_path("getattr")}, .tools = {}},
    {.label = "Node",
     .argv = {"node", "-e",
              "const m = new Map();"
              "for (let i = 0; i < 20000; i++) m.set('k' + i, {v: i, s: 'x'.repeat(i % 50)});"
              "let t = 0; for (const [, v] of m) t += v.s.length;"
              "console.log(m.size, t, JSON.stringify([...m.keys()].slice(0, 3)));"
              "console.error('node done');"},
     .tools = {{"node", "nodejs"}}},
    {.label = "Python",
     .argv = {"python3", "-c",
              "import collections, json, sys\n"
              "d = {str(i): list(range(i % 10)) for i in range(20000)}\n"
              "c = collections.Counter(len(v) for v in d.values())\n"
              "print(len(d), sorted(c.items())[:3], json.dumps(d['123']))\n"
              "print('python done', file=sys.stderr)\n"
              "sys.exit(3)\n"},
     .tools = {{"python3", "python3"}}},
    {.label = "Perl",
     .argv = {"perl", "-e",
              "my %h; for my $i (1 .. 50000) { push @{$h{$i % 97}}, 'w' . ($i * 7919 % 10007); }"
              "my @keys = sort { scalar(@{$h{$b}}) <=> scalar(@{$h{$a}}) || $a <=> $b } keys %h;"
              "my @words = sort map { @$_ } values %h;"
              "print scalar(@keys), ' ', join(',', @keys[0 .. 4]), ' ', scalar(@words), ' ', $words[0], ' ', "
              "$words[-1], \"\\n\";"
              "warn \"perl done\\n\"; exit 4;"},
     .tools = {{"perl", "perl"}}},
    {.label = "Sqlite",
     .argv = {"sqlite3", ":memory:",
              "create table t(a integer, b text);"
              "with recursive c(x) as (select 1 union all select x + 1 from c where x < 5000)"
              " insert into t select x, printf('row-%d', x) from c;"
              "create index tb on t(b);"
              "select count(*), sum(a), max(b) from t;"},
     .tools = {{"sqlite3", "sqlite3"}}},
    {.label = "GitVersion", .argv = {"git", "--version"}, .tools = {kGit}},
    {.label = "GitLog",
     .argv = {"git", "-C", MEMDX_SOURCE_ROOT, "log", "--oneline", "-5"},
     .tools = {kGit},
     .output_changes_over_time = true},
    {.label = "BashSortUniq",
     .argv = {"bash", "-c", "seq 1 200000 | sort -r | uniq | wc -l"},
     .tools = {kBash, kCoreutils}},
    {.label = "BashAwkTr",
     .argv = {"bash", "-c",
              "seq 1 50000 | awk '{ print $1 % 7, $1 % 3 }' | sort | uniq -c | tr -s ' ' | tr 0-9 a-j;"
              " echo pipeline done >&2; exit 7"},
     .tools = {kBash, kCoreutils, {"awk", "mawk"}}},
    {.label = "Sort",
     .argv = {"sort", "-o", "{work}/sorted.txt", "{shared}/lines.txt"},
     .tools = {kCoreutils},
     .prepare = write_lines,
     .products = sorted_file},
    {.label = "Make",
     .argv = {"make", "-s", "-j2", "--no-print-directory", "-C", "{work}", "-f", "{shared}/Makefile", "SRC={shared}"},
     .tools = {{"make", "make"}, kGcc},
     .prepare = write_make_project,
     .products = built_programs},
    {.label = "Gcc",
     .argv = {"gcc", "-O2", "-o", "{work}/hello", "{shared}/hello.c"},
     .tools = {kGcc},
     .prepare = write_c_file,
     .products = compiled_program},
};

bool starts_with(const std::string& line, const char* prefix) {
  return line.rfind(prefix, 0) == 0;
}

// The stderr text without memdx's own lines; with `cut_at_verdict`, also without everything from
// the verdict's headline on. nullopt when the verdict was asked for and is not there.
std::optional<std::string> program_stderr(const std::string& err, bool cut_at_verdict) {
  std::string kept;
  std::istringstream lines(err);
  for (std::string line; std::getline(lines, line);) {
    if (cut_at_verdict && (starts_with(line, "LEAK") || starts_with(line, "No leak"))) return kept;
    if (starts_with(line, "memdx: ")) continue;
    kept += line;
    if (!lines.eof()) kept += '\n';
  }
  if (cut_at_verdict) return std::nullopt;
  return kept;
}

// Files compared by size and first differing byte: they may be 50 MB.
void expect_same_products(const Products& under, const Products& native, const std::string& how) {
  for (const auto& [name, expected] : native) {
    auto found = under.find(name);
    ASSERT_NE(found, under.end()) << how << ": no " << name;
    const std::string& got = found->second;
    if (got == expected) continue;
    size_t at = 0;
    while (at < got.size() && at < expected.size() && got[at] == expected[at]) ++at;
    ADD_FAILURE() << how << ": " << name << " differs from the native run's (" << got.size() << " bytes against "
                  << expected.size() << ", first difference at byte " << at << ")";
  }
}

class RealProgramTest : public TraceTest, public ::testing::WithParamInterface<RealProgram> {
 protected:
  struct Outcome {
    Finished result;
    Products products;
  };

  // Fails, naming the Debian package, when a tool is missing: the suite must never skip.
  void require_tools() {
    for (const Tool& tool : GetParam().tools) {
      ASSERT_FALSE(find_on_path(tool.name).empty())
          << tool.name << " is not installed: install the Debian package " << tool.package
          << " (./run-tests installs what tools/bootstrap.sh lists)";
    }
  }

  std::vector<std::string> command_in(const fs::path& work) const {
    std::vector<std::string> command;
    for (const std::string& arg : GetParam().argv) {
      command.push_back(replace_all(replace_all(arg, "{shared}", shared_.string()), "{work}", work.string()));
    }
    if (command[0].find('/') == std::string::npos) command[0] = find_on_path(command[0]);
    return command;
  }

  // One run: `how` is "native", "trace" or "run"; each has a new work directory.
  Outcome observe(const std::string& how) {
    fs::path work = dir_ / ("work-" + how + "-" + std::to_string(++runs_));
    fs::create_directories(work);
    std::vector<std::string> command = command_in(work);
    Outcome outcome;
    if (how == "native") outcome.result = run_for(command, kDeadlineS);
    if (how == "trace") outcome.result = trace(command, kDeadlineS);
    if (how == "run") outcome.result = run(command, kDeadlineS);
    EXPECT_FALSE(outcome.result.timed_out) << how << ": still running after " << kDeadlineS
                                           << " s (a hang?), killed with its process group; stderr until then:\n"
                                           << outcome.result.err;
    if (GetParam().products) outcome.products = GetParam().products(work);
    return outcome;
  }

  void expect_as_native(const Outcome& under, const std::string& how, const Outcome& native) {
    const Finished& r = under.result;
    EXPECT_EQ(r.out, native.result.out) << how << ": stdout differs";
    // run and trace exit with the command's code, 128+N when signal N killed it.
    int native_code = native.result.signal ? 128 + native.result.signal : native.result.exit_code;
    EXPECT_EQ(r.exit_code, native_code) << how << ": stderr:\n" << r.err;
    std::optional<std::string> err = program_stderr(r.err, how == "run");
    ASSERT_TRUE(err.has_value()) << how << ": no verdict headline (LEAK... or No leak...) on stderr:\n" << r.err;
    EXPECT_EQ(*err, native.result.err) << how << ": stderr differs once memdx's own lines are removed; all of it:\n"
                                       << r.err;
    expect_same_products(under.products, native.products, how);
  }

  // The recording holds a heap trace with allocations.
  void expect_allocations(const std::string& how) {
    json verdict = report();
    uint64_t most_allocations = 0;
    for (const json& entry : verdict["heap"]) {
      most_allocations = std::max(most_allocations, entry["allocations"].get<uint64_t>());
    }
    EXPECT_GT(most_allocations, 0u) << how << ": no allocations in the trace: " << verdict["heap"].dump(1);
  }

  fs::path shared_;
  int runs_ = 0;
};

TEST_P(RealProgramTest, SameAsNativeUnderRunAndTrace) {
  const RealProgram& program = GetParam();
  require_tools();
  if (HasFatalFailure()) return;
  shared_ = dir_ / "shared";
  fs::create_directories(shared_);
  if (program.prepare) program.prepare(shared_);
  if (HasFatalFailure()) return;

  // A commit landing between the runs would change git log's output: the native runs before and
  // after must agree for the comparison to mean anything.
  Outcome native, traced, recorded;
  for (int attempt = 0; attempt < 3; ++attempt) {
    native = observe("native");
    ASSERT_FALSE(native.result.timed_out);
    // A hang fails the case at its first deadline, not once for each way of running it.
    traced = observe("trace");
    if (traced.result.timed_out) return;
    expect_allocations("trace");
    recorded = observe("run");
    if (recorded.result.timed_out) return;
    expect_allocations("run");
    if (!program.output_changes_over_time || observe("native").result.out == native.result.out) break;
  }
  expect_as_native(traced, "trace", native);
  expect_as_native(recorded, "run", native);

  std::ifstream verdict_file(verdict_path());
  ASSERT_TRUE(verdict_file.good()) << "memdx run wrote no JSON verdict";
  json verdict = json::parse(verdict_file, nullptr, false);
  ASSERT_FALSE(verdict.is_discarded()) << "the JSON verdict does not parse";
  EXPECT_EQ(verdict["schema"], "memdx.verdict/1");
  EXPECT_EQ(verdict["target"]["exit_code"], native.result.exit_code);
}

INSTANTIATE_TEST_SUITE_P(RealProgram, RealProgramTest, ::testing::ValuesIn(kPrograms),
                         [](const auto& program) { return std::string(program.param.label); });

// A healthy JVM without the tracer (programs/Healthy.java): its working set is bounded, but it
// doubles once at 40 % of the run and the JVM expands its heap by a hundred MiB or more in one
// step. Reported once as "anon grows 172 KiB/s, confidence >99.9 %" one run in three; it must be
// "no leak" every time, the step named for what it is.
using HealthyJvmTest = TraceTest;

TEST_F(HealthyJvmTest, AHeapExpansionIsOneStepNotALeak) {
  if (!fs::exists(fs::path(MEMDX_JAVA_CLASSES) / "Healthy.class")) {
    FAIL() << "Healthy.class is missing: javac was not found when cmake configured memdx (Debian package "
              "default-jdk-headless)";
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string json_path = path("healthy" + std::to_string(attempt) + ".json");
    Finished run = run_for({memdx_path(), "run", "--quiet", "--no-trace", "--json", json_path, "--out",
                            path("healthy" + std::to_string(attempt) + ".memdx"), "--", "java", "-Xmx256m", "-cp",
                            MEMDX_JAVA_CLASSES, "Healthy", "12", "0.4"},
                           90);
    ASSERT_FALSE(run.timed_out);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    std::ifstream in(json_path);
    json verdict = json::parse(in, nullptr, false);
    ASSERT_FALSE(verdict.is_discarded()) << run.err;
    for (const json& finding : verdict["findings"]) {
      EXPECT_NE(finding["severity"], "leak") << "run " << attempt << ": " << finding.dump();
    }
    for (const json& hypothesis : verdict["hypotheses"]) {
      if (hypothesis["name"] != "anon_growth") continue;
      EXPECT_EQ(hypothesis["status"], "eliminated") << "run " << attempt << ": " << hypothesis.dump();
    }
  }
}

}  // namespace
}  // namespace memdx::test
