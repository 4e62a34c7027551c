// report::render_inspect_text: the terminal output of `memdx inspect`, single process and tree.
#include "report/inspect_text.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "sample_reports.h"

namespace memdx::report {
namespace {

using memdx::testing::kGiB;
using memdx::testing::kMiB;
using model::InspectReport;

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "output does not contain \"" << part << "\":\n" << text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The first line containing `needle`, or "" if none does.
std::string line_with(const std::string& text, const std::string& needle) {
  for (const std::string& line : lines_of(text)) {
    if (line.find(needle) != std::string::npos) return line;
  }
  return {};
}

// ---- one process -------------------------------------------------------------------------------

TEST(ReportInspectText, SingleProcessHeadingAndMemory) {
  std::string out = render_inspect_text(memdx::testing::single_process_report());
  std::vector<std::string> lines = lines_of(out);
  ASSERT_GE(lines.size(), 6u);
  EXPECT_EQ(lines[0], "pid 4242  /usr/bin/app --port 8080");
  EXPECT_EQ(lines[1], "  ppid 1, uid 1000, state S, 4 threads, fds 6: regular 3, pipe 2, socket 1, no children");
  EXPECT_EQ(lines[2], "  RSS     64.0 MiB  = anon 40.0 MiB + file 20.0 MiB + shmem 4.00 MiB");
  EXPECT_EQ(lines[3],
            "  PSS     48.0 MiB    USS 24.0 MiB   (PSS shares shared pages out; USS is private to this process)");
  EXPECT_EQ(lines[4], "  swap    2.00 MiB    SwapPss 1.00 MiB");
  EXPECT_EQ(lines[5], "  VSZ     8.00 GiB    peak RSS 80.0 MiB   locked 0 B");
}

TEST(ReportInspectText, SingleProcessRegionsAndModules) {
  std::string out = render_inspect_text(memdx::testing::single_process_report());
  EXPECT_TRUE(contains(out, "by region"));
  std::string heap = line_with(out, "malloc heap (brk)");
  EXPECT_TRUE(contains(heap, "4.00 MiB"));
  EXPECT_TRUE(contains(heap, "2.00 MiB"));
  std::string gpu = line_with(out, "GPU driver");
  EXPECT_TRUE(contains(gpu, "4.00 GiB"));
  std::string reserved = line_with(out, "reserved only");
  EXPECT_TRUE(contains(reserved, "7.00 GiB"));
  EXPECT_TRUE(contains(reserved, " 5 "));

  EXPECT_TRUE(contains(out, "top regions by RSS"));
  std::string top = line_with(out, "rw-p [anon]");
  EXPECT_TRUE(contains(top, "30.0 MiB"));
  EXPECT_TRUE(contains(top, "32.0 MiB"));
  EXPECT_TRUE(contains(out, "file-backed by module"));
  std::string libc = line_with(out, "/usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_TRUE(contains(libc, "1.17 MiB"));
  EXPECT_TRUE(contains(libc, "312 KiB"));
}

TEST(ReportInspectText, TopListsAreCutByOptions) {
  InspectTextOptions options;
  options.top_regions = 1;
  options.top_modules = 0;
  std::string out = render_inspect_text(memdx::testing::single_process_report(), options);
  EXPECT_TRUE(contains(out, "rw-p [anon]"));
  EXPECT_EQ(line_with(out, "rw-p [heap]"), "");
  EXPECT_EQ(line_with(out, "file-backed by module"), "");
}

TEST(ReportInspectText, NotesAndSystem) {
  std::string out = render_inspect_text(memdx::testing::single_process_report());
  EXPECT_TRUE(contains(out, "\nnotes\n  [reservation_only] VSZ 8.00 GiB is 128x RSS 64.0 MiB.\n"));
  EXPECT_TRUE(contains(out, "\nsystem\n"));
  EXPECT_TRUE(contains(out, "  memory   total 16.0 GiB, available 8.00 GiB (50%), swap none\n"));
  EXPECT_TRUE(contains(out, "  PSI      some 0.12% / 0.05%, full n/a / n/a (avg10 / avg60)\n"));
  EXPECT_TRUE(contains(out, "  cgroup   v2 /user.slice/app.service\n"));
  EXPECT_TRUE(contains(out, "current 500 MiB, max 1.00 GiB, high unlimited\n"));
  EXPECT_TRUE(contains(out, "anon 300 MiB, file 100 MiB, oom events 2, oom kills 1\n"));
  EXPECT_TRUE(contains(out, "           PSI not available\n"));
}

TEST(ReportInspectText, UnmeasuredValuesReadNotAvailable) {
  InspectReport report = memdx::testing::single_process_report();
  auto& p = report.processes[0];
  p.memory.pss_bytes.reset();
  p.memory.uss_bytes.reset();
  p.memory.swap_pss_bytes.reset();
  p.regions_measured = false;
  p.fds.reset();
  report.system.cgroup.reset();
  report.system.psi.reset();
  report.system.mem_available_bytes.reset();
  report.system.swap_total_bytes = 2 * kGiB;
  report.system.swap_free_bytes = 1536 * kMiB;
  std::string out = render_inspect_text(report);
  EXPECT_TRUE(contains(out, "  PSS          n/a    USS n/a"));
  EXPECT_TRUE(contains(out, "SwapPss n/a"));
  EXPECT_TRUE(contains(out, "fds not readable"));
  EXPECT_EQ(line_with(out, "by region"), "");
  EXPECT_TRUE(contains(out, "available n/a, swap 512 MiB used of 2.00 GiB"));
  EXPECT_TRUE(contains(out, "  PSI      not available\n"));
  EXPECT_TRUE(contains(out, "  cgroup   no memory controller found\n"));
}

TEST(ReportInspectText, KernelThreadAndZombieShowNoMemory) {
  InspectReport report = memdx::testing::single_process_report();
  report.notes.clear();
  auto& k = report.processes[0];
  k.pid = 2;
  k.comm = "kthreadd";
  k.command.clear();
  k.is_kernel_thread = true;
  std::string out = render_inspect_text(report);
  EXPECT_EQ(lines_of(out)[0], "pid 2  [kthreadd] [kernel thread: no user memory]");
  EXPECT_EQ(line_with(out, "  RSS "), "");

  k.is_kernel_thread = false;
  k.is_zombie = true;
  k.comm = "defunct";
  out = render_inspect_text(report);
  EXPECT_EQ(lines_of(out)[0], "pid 2  [defunct] [zombie: exited, not yet reaped by its parent]");
  EXPECT_EQ(line_with(out, "  RSS "), "");
}

TEST(ReportInspectText, NewlinesInNamesDoNotBreakLines) {
  InspectReport report = memdx::testing::single_process_report();
  report.processes[0].command = {"evil\nname", "--x"};
  std::string out = render_inspect_text(report);
  EXPECT_EQ(lines_of(out)[0], "pid 4242  evil\\nname --x");
}

// Everything the target names (its command line, its mappings' paths, its cgroup) shows its
// escape sequences instead of sending them to the terminal.
TEST(ReportInspectText, EscapeSequencesFromTheTargetAreShownNotSent) {
  InspectReport report = memdx::testing::single_process_report();
  model::ProcessSnapshot& p = report.processes[0];
  p.command = {"\x1b]0;pwned\x07\x1b[2Jevil", "\x1b[31m"};
  p.top_regions[0].label = "/memfd:\x1b[2J (deleted)";
  p.modules[0].path = "/tmp/\x1b[31mlib.so";
  report.system.cgroup->path = "/user.slice/\x1b[2J.service";
  report.notes[0].text = "The cgroup /\x1b[2J uses a lot.";
  for (bool tree : {false, true}) {
    report.tree = tree;
    std::string out = render_inspect_text(report);
    EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
    EXPECT_EQ(out.find('\x07'), std::string::npos) << out;
    EXPECT_TRUE(contains(out, "\\x1b]0;pwned\\x07\\x1b[2Jevil \\x1b[31m"));
    EXPECT_TRUE(contains(out, "/user.slice/\\x1b[2J.service"));
    EXPECT_TRUE(contains(out, "The cgroup /\\x1b[2J uses a lot."));
    if (!tree) {  // the tree shows no regions of its own
      EXPECT_TRUE(contains(out, "/memfd:\\x1b[2J (deleted)"));
      EXPECT_TRUE(contains(out, "/tmp/\\x1b[31mlib.so"));
    }
  }
}

TEST(ReportInspectText, PrintableUtf8NamesAreUnchanged) {
  InspectReport report = memdx::testing::single_process_report();
  report.processes[0].command = {"/opt/données/服务器", "--café"};
  std::string out = render_inspect_text(report);
  EXPECT_EQ(lines_of(out)[0], "pid 4242  /opt/données/服务器 --café");
}

TEST(ReportInspectText, LongNotesAreWrapped) {
  InspectReport report = memdx::testing::single_process_report();
  report.notes = {{NoteKind::kSwapInUse, 4242,
                   "2.00 MiB of this process is swapped out: RSS 64.0 MiB understates its memory by that much."}};
  InspectTextOptions options;
  options.width = 40;
  std::string out = render_inspect_text(report, options);
  EXPECT_TRUE(contains(out, "  [swap_in_use] 2.00 MiB of this process\n    is swapped out:"));
}

TEST(ReportInspectText, EmptyReportPrintsNothing) {
  EXPECT_EQ(render_inspect_text(InspectReport{}), "");
}

// ---- a process tree ----------------------------------------------------------------------------

// The row of `pid` in the tree table (rows start with the right-aligned pid), or "".
std::string row_of(const std::string& text, pid_t pid) {
  std::regex start("^ +" + std::to_string(pid) + " ");
  for (const std::string& line : lines_of(text)) {
    if (std::regex_search(line, start)) return line;
  }
  return {};
}

std::vector<std::string> words_of(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line);
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

TEST(ReportInspectTree, OneRowPerProcessIndentedByDepth) {
  std::string out = render_inspect_text(memdx::testing::tree_report());
  std::vector<std::string> lines = lines_of(out);
  ASSERT_GE(lines.size(), 7u);
  EXPECT_EQ(lines[0], "process tree of pid 100: 4 processes");
  EXPECT_EQ(words_of(lines[1]),
            (std::vector<std::string>{"PID", "PPID", "RSS", "PSS", "USS", "SWAP", "VSZ", "THR", "FDS", "COMMAND"}));
  EXPECT_EQ(words_of(row_of(out, 100)),
            (std::vector<std::string>{"100", "1", "100", "MiB", "30.0", "MiB", "15.0", "MiB", "0", "B", "8.00", "GiB",
                                      "4", "6", "/usr/bin/app", "--port", "8080"}));
  EXPECT_EQ(words_of(row_of(out, 101)),
            (std::vector<std::string>{"101", "100", "60.0", "MiB", "20.0", "MiB", "10.0", "MiB", "0", "B", "8.00",
                                      "GiB", "4", "6", "worker", "--id=1"}));
  // Children are indented two columns per level under their parent's command.
  std::string root = row_of(out, 100);
  size_t column = root.find("/usr/bin/app");
  ASSERT_NE(column, std::string::npos);
  EXPECT_EQ(row_of(out, 101).find("worker --id=1"), column + 2);
  EXPECT_EQ(row_of(out, 102).find("helper"), column + 4);
  EXPECT_EQ(row_of(out, 103).find("worker --id=2"), column + 2);
  std::vector<std::string> second = words_of(row_of(out, 103));
  ASSERT_EQ(second.size(), 16u);
  EXPECT_EQ(second[13], "?");  // fds not readable
}

TEST(ReportInspectTree, TotalIsByPssAndRssIsNeverSummed) {
  std::string out = render_inspect_text(memdx::testing::tree_report());
  std::string total = line_with(out, "total (by PSS)");
  ASSERT_NE(total, "");
  // RSS and VSZ columns read "-"; PSS, USS, swap, threads and fds are sums.
  EXPECT_EQ(words_of(total), (std::vector<std::string>{"-", "60.0", "MiB", "30.0", "MiB", "0", "B", "-", "16", "18",
                                                       "total", "(by", "PSS)"}));
  // 100 + 60 + 20 + 10 MiB of RSS: shared pages counted once per process. Never printed.
  EXPECT_FALSE(contains(out, "190 MiB"));
  EXPECT_FALSE(contains(out, "32.0 GiB"));  // nor 4 x 8 GiB of VSZ
  EXPECT_TRUE(contains(out, "RSS and VSZ are not summed"));
  EXPECT_FALSE(contains(out, "lower bound"));
}

TEST(ReportInspectTree, MissingPssMakesTheTotalALowerBound) {
  InspectReport report = memdx::testing::tree_report();
  report.processes[3].memory.pss_bytes.reset();
  report.processes[3].memory.uss_bytes.reset();
  std::string out = render_inspect_text(report);
  std::vector<std::string> row = words_of(row_of(out, 103));
  ASSERT_GE(row.size(), 6u);
  EXPECT_EQ(row[2], "10.0");
  EXPECT_EQ(row[4], "?");  // PSS
  EXPECT_EQ(row[5], "?");  // USS
  EXPECT_TRUE(contains(line_with(out, "total (by PSS)"), "56.0 MiB"));
  EXPECT_TRUE(contains(out, "(total is a lower bound: some processes' PSS could not be read)"));
}

TEST(ReportInspectTree, ExitedProcessesAreCounted) {
  InspectReport report = memdx::testing::tree_report();
  report.exited_during_read = {105, 106};
  EXPECT_TRUE(contains(render_inspect_text(report),
                       "  2 process(es) exited while the tree was being read and are not shown.\n"));
}

TEST(ReportInspectTree, NotesNameTheirPid) {
  std::string out = render_inspect_text(memdx::testing::tree_report());
  EXPECT_TRUE(contains(out, "  [shared_heavy] pid 100: RSS 100 MiB includes 70.0 MiB of pages shared.\n"));
}

TEST(ReportInspectTree, WholeTreeRegionsAddPss) {
  InspectReport report = memdx::testing::tree_report();
  report.processes[0].regions = {{model::RegionCategory::kHeap, 1, 4 * kMiB, 3 * kMiB, 2 * kMiB, 0}};
  report.processes[1].regions = {{model::RegionCategory::kHeap, 1, 4 * kMiB, 3 * kMiB, 1 * kMiB, 0},
                                 {model::RegionCategory::kShmem, 2, 8 * kMiB, 8 * kMiB, 4 * kMiB, 0}};
  std::string out = render_inspect_text(report);
  EXPECT_TRUE(contains(out, "whole tree by region"));
  std::string heap = line_with(out, "malloc heap (brk)");
  EXPECT_TRUE(std::regex_search(heap, std::regex(R"( 2 +3\.00 MiB$)"))) << heap;
  std::string shmem = line_with(out, "shared memory");
  EXPECT_TRUE(std::regex_search(shmem, std::regex(R"( 2 +4\.00 MiB$)"))) << shmem;
}

}  // namespace
}  // namespace memdx::report
