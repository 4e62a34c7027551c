// The verdict's two outputs: the memdx.verdict/1 JSON (field names are a contract with scripts)
// and the terminal text (verdict first, then evidence, next steps, the process table).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <vector>

#include "analyze/diagnose.h"
#include "model/kinds.h"
#include "model/verdict.h"
#include "report/verdict_text.h"
#include "synthetic.h"

namespace memdx {
namespace {

using model::Finding;
using model::Verdict;
using namespace memdx::synthetic;
using Json = nlohmann::ordered_json;

// The kinds' table: one distinct JSON name per kind, and every next step formats with what the
// text gives it (a step naming an argument it does not get would throw when a user needs it).
TEST(Kinds, EveryKindHasItsNameAndItsStepsFormat) {
  std::set<std::string> names;
  for (int i = 0; i <= static_cast<int>(FindingKind::kNoGrowth); ++i) {
    const model::FindingKindRow& row = model::row_of(static_cast<FindingKind>(i));
    EXPECT_EQ(static_cast<int>(row.kind), i);
    EXPECT_TRUE(names.insert(row.json_name).second) << row.json_name;
    EXPECT_EQ(row.what_grows == nullptr, row.kind == FindingKind::kAllocatorRetention ||
                                             row.kind == FindingKind::kReservationOnly ||
                                             row.kind == FindingKind::kNoGrowth)
        << row.json_name;
    if (row.running_step) {
      std::string step = fmt::format(fmt::runtime(row.running_step), fmt::arg("pid", 4242));
      EXPECT_NE(step.find("4242"), std::string::npos) << step;
    }
    if (row.exited_step) {
      std::string step = fmt::format(fmt::runtime(row.exited_step), fmt::arg("recording", "r.memdx"),
                                     fmt::arg("rerun", "memdx run -- ./app"));
      EXPECT_NE(step.find("memdx run -- ./app"), std::string::npos) << step;
    }
  }
  names.clear();
  for (int i = 0; i <= static_cast<int>(HypothesisKind::kLimitApproach); ++i) {
    const model::HypothesisKindRow& row = model::row_of(static_cast<HypothesisKind>(i));
    EXPECT_EQ(static_cast<int>(row.kind), i);
    EXPECT_TRUE(names.insert(row.json_name).second) << row.json_name;
    EXPECT_GT(std::string(row.statement).size(), 10u);
    // A hypothesis confirmed by a finding shares the finding's name.
    if (row.finding) {
      EXPECT_STREQ(row.json_name, to_string(*row.finding));
    }
  }
}

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\"\n  does not contain \"" << part << "\"";
}

std::vector<std::string> keys_of(const Json& object) {
  std::vector<std::string> keys;
  for (auto it = object.begin(); it != object.end(); ++it) keys.push_back(it.key());
  return keys;
}

// The child_leaker scenario of DESIGN.md: a flat parent, a child leaking 2 MiB/s, a 2 GiB cgroup.
// `alive`: the recording ended with both still running (a watch stopped by its duration), rather
// than with their exits (a run).
Verdict child_leaker_verdict(bool alive = false) {
  ProcessSpec parent;
  parent.command = {"./app", "--flag"};
  parent.exits = !alive;
  ProcessSpec child;
  child.exits = !alive;
  child.pid = 4243;
  child.ppid = 4242;
  child.command = {"./child_leaker"};
  child.first_seen_ms = 300;
  child.anon = linear(3 * kMiB, 2 * kMiB);
  child.seed = 7;
  analyze::RecordingData data = recording_of({parent, child});
  data.meta.cgroup_max_bytes = as_bytes(2 * kGiB);
  add_system(data, 10, as_bytes(8 * kGiB), as_bytes(1 * kGiB));
  return analyze::diagnose(data);
}

Verdict flat_verdict() {
  ProcessSpec parent;
  ProcessSpec child;
  child.pid = 4243;
  child.ppid = 4242;
  child.seed = 9;
  return analyze::diagnose(recording_of({parent, child}));
}

// ---- JSON ----------------------------------------------------------------------------------------

TEST(VerdictJson, SchemaFirstThenTheDesignSections) {
  Json j = model::to_json(child_leaker_verdict());
  EXPECT_EQ(keys_of(j), (std::vector<std::string>{"schema", "target", "processes", "heap", "findings", "hypotheses"}));
  EXPECT_EQ(j["schema"], "memdx.verdict/1");
  EXPECT_TRUE(j["hypotheses"].is_array());
  EXPECT_TRUE(j["heap"].is_array());
  EXPECT_TRUE(j["heap"].empty());  // recorded without the heap tracer
}

TEST(VerdictJson, HeapTraceSummaryFields) {
  model::Verdict verdict = child_leaker_verdict();
  model::HeapSummary heap;
  heap.pid = 4243;
  heap.ppid = 4242;
  heap.ended = StreamEnd::kExit;
  heap.allocations = 1000;
  heap.frees = 900;
  heap.allocated_bytes = 64000;
  heap.peak_live_bytes = 12800;
  heap.final_live_bytes = 6400;
  heap.final_live_blocks = 100;
  model::HeapSiteSummary site;
  site.function = "keep_history(int)";
  site.file = "/src/child_leaker.cpp";
  site.line = 9;
  site.allocations = 100;
  site.final_live_bytes = 6400;
  site.stack = {"keep_history(int) (child_leaker.cpp:9)", "main (child_leaker.cpp:30)"};
  heap.sites.push_back(site);
  verdict.heap.push_back(heap);
  Json j = model::to_json(verdict)["heap"][0];
  EXPECT_EQ(j["pid"], 4243);
  EXPECT_EQ(j["ended"], "exit");
  EXPECT_EQ(j["allocations"], 1000);
  EXPECT_EQ(j["final_live_bytes"], 6400);
  EXPECT_EQ(j["sites"][0]["function"], "keep_history(int)");
  EXPECT_EQ(j["sites"][0]["line"], 9);
  EXPECT_EQ(j["sites"][0]["stack"].size(), 2u);
}

TEST(VerdictJson, TargetAndProcessFields) {
  Json j = model::to_json(child_leaker_verdict());
  EXPECT_EQ(keys_of(j["target"]),
            (std::vector<std::string>{"command", "pid", "exit_code", "exit_signal", "duration_s"}));
  EXPECT_EQ(j["target"]["command"], Json::array({"./app", "--flag"}));
  EXPECT_EQ(j["target"]["pid"], 4242);
  EXPECT_EQ(j["target"]["exit_code"], 0);
  EXPECT_TRUE(j["target"]["exit_signal"].is_null());
  ASSERT_EQ(j["processes"].size(), 2u);
  EXPECT_EQ(keys_of(j["processes"][0]),
            (std::vector<std::string>{"pid", "ppid", "command", "peak_rss_bytes", "peak_pss_bytes", "peak_vsz_bytes",
                                      "peak_heap_live_bytes", "final_rss_bytes", "exit_code", "exit_signal",
                                      "first_seen_s", "exited_s"}));
  EXPECT_EQ(j["processes"][1]["command"], "./child_leaker");
  EXPECT_TRUE(j["processes"][1]["peak_heap_live_bytes"].is_null());  // no tracer
}

// Golden: the exact keys of a finding, in order. Scripts read these names.
TEST(VerdictJson, FindingKeysAreExact) {
  Json j = model::to_json(child_leaker_verdict());
  ASSERT_FALSE(j["findings"].empty());
  const Json& f = j["findings"][0];
  EXPECT_EQ(keys_of(f),
            (std::vector<std::string>{"kind", "severity", "pid", "rate_bytes_per_s", "confidence", "evidence", "series",
                                      "unit", "rate_per_s", "start_level", "end_level", "time_to_limit_s", "limit_name",
                                      "limit_bytes", "sites", "devices"}));
  EXPECT_EQ(f["kind"], "anon_growth");
  EXPECT_EQ(f["severity"], "leak");
  EXPECT_EQ(f["pid"], 4243);
  EXPECT_EQ(f["unit"], "bytes");
  EXPECT_EQ(f["rate_bytes_per_s"], f["rate_per_s"]);
  EXPECT_EQ(f["limit_name"], "cgroup memory.max");
  EXPECT_EQ(f["limit_bytes"], as_bytes(2 * kGiB));
  EXPECT_GT(f["time_to_limit_s"].get<double>(), 400);
  EXPECT_TRUE(f["sites"].is_array());
  EXPECT_TRUE(f["sites"].empty());
}

TEST(VerdictJson, CountFindingsHaveNoByteRate) {
  Finding f;
  f.kind = FindingKind::kFdGrowth;
  f.severity = Severity::kLeak;
  f.pid = 77;
  f.unit = Unit::kFds;
  f.series = Series::kFds;
  f.rate_per_s = 40;
  Verdict v;
  v.findings.push_back(f);
  Json j = model::to_json(v)["findings"][0];
  EXPECT_TRUE(j["rate_bytes_per_s"].is_null());
  EXPECT_EQ(j["rate_per_s"], 40.0);
  EXPECT_EQ(j["unit"], "fds");
  EXPECT_TRUE(j["time_to_limit_s"].is_null());
  EXPECT_TRUE(j["limit_name"].is_null());
  EXPECT_TRUE(j["limit_bytes"].is_null());
}

TEST(VerdictJson, SitesAndHypothesesUseTheDesignNames) {
  Finding f;
  f.kind = FindingKind::kHeapGrowth;
  f.severity = Severity::kLeak;
  f.unit = Unit::kBytes;
  f.sites.push_back({"keep_history", "child_leaker.cpp", 9, 1000, 2.5, {"keep_history", "main"}, 0, {}});
  Verdict v;
  v.findings.push_back(f);
  v.hypotheses.push_back(
      {HypothesisKind::kHeapGrowth, 42, HypothesisStatus::kInconclusive, "the malloc heap grows", "no eviction seen"});
  Json j = model::to_json(v);
  EXPECT_EQ(keys_of(j["findings"][0]["sites"][0]),
            (std::vector<std::string>{"function", "file", "line", "live_bytes", "growth_bytes_per_s",
                                      "live_at_peak_bytes", "stack"}));
  EXPECT_EQ(j["findings"][0]["sites"][0]["stack"], Json::array({"keep_history", "main"}));
  EXPECT_EQ(keys_of(j["hypotheses"][0]), (std::vector<std::string>{"name", "pid", "status", "statement", "evidence"}));
}

TEST(VerdictJson, HasLeak) {
  EXPECT_TRUE(model::has_leak(child_leaker_verdict()));
  EXPECT_FALSE(model::has_leak(flat_verdict()));
  EXPECT_FALSE(model::has_leak(Verdict{}));
}

// ---- text ----------------------------------------------------------------------------------------

TEST(VerdictText, LeakFirstLineNamesKindProcessAndRate) {
  std::string text = report::render_verdict_text(child_leaker_verdict());
  EXPECT_EQ(text.rfind("LEAK: anon memory of pid 4243 (./child_leaker) grows ", 0), 0u) << text;
  std::string first_line = text.substr(0, text.find('\n'));
  EXPECT_TRUE(contains(first_line, " MiB/s (confidence >99.9%)")) << first_line;  // ~2 MiB/s
  // The differential diagnosis: the leak first with its evidence, then what follows from it.
  EXPECT_TRUE(contains(text, "\nConfirmed:\n  [leak] anon_growth pid 4243: anonymous memory outside malloc grows"))
      << text;
  EXPECT_TRUE(contains(text, "\n      anon RSS rose from 7.79 MiB to 22.2 MiB")) << text;
  EXPECT_TRUE(contains(text, "  [leak] child_growth pid 4242: a child process, not the root, holds the growth"))
      << text;
  EXPECT_TRUE(contains(text, "(anon_growth of pid 4243) cgroup memory.max (2.00 GiB) is reached in ")) << text;
  // One limit for both processes: said once.
  EXPECT_EQ(text.find("limit_approach"), text.rfind("limit_approach")) << text;
  EXPECT_TRUE(contains(text, "\nEliminated:\n  pid 4242: anon_growth, ")) << text;
  EXPECT_TRUE(contains(text, "\nNot measured:\n  pid 4242: heap_growth, allocator_retention, gpu_growth\n")) << text;
  // Both have exited: the next step names no pid, it runs the command again.
  EXPECT_TRUE(contains(text,
                       "\nNext:\n  pid 4243 anon_growth: it has exited; its timeline: "
                       "memdx report RECORDING --html report.html; "))
      << text;
  EXPECT_TRUE(contains(text, "run it again and memdx inspect its new pid while it runs: memdx run -- ./app --flag\n"))
      << text;
  EXPECT_FALSE(contains(text, "memdx inspect 4243"));
  EXPECT_FALSE(contains(text, "memdx watch"));
}

TEST(VerdictText, LeakOfALiveProcessIsLookedAtWhileItRuns) {
  std::string text = report::render_verdict_text(child_leaker_verdict(true));
  EXPECT_TRUE(contains(text, "\nNext:\n  pid 4243 anon_growth: see which mappings hold it")) << text;
  EXPECT_TRUE(contains(text, "memdx inspect 4243"));
  EXPECT_TRUE(contains(text, "memdx watch 4243 --duration 300"));
  EXPECT_FALSE(contains(text, "memdx run --"));
}

TEST(VerdictText, EvidenceComesBeforeNextStepsAndTheTable) {
  std::string text = report::render_verdict_text(child_leaker_verdict());
  auto evidence = text.find("Confirmed:");
  auto next = text.find("Next:");
  auto table = text.find("peak RSS");
  ASSERT_NE(evidence, std::string::npos);
  ASSERT_NE(next, std::string::npos);
  ASSERT_NE(table, std::string::npos);
  EXPECT_LT(evidence, next);
  EXPECT_LT(next, table);
  EXPECT_TRUE(contains(text, "peak PSS"));
  EXPECT_TRUE(contains(text, "final RSS"));
  EXPECT_TRUE(contains(text, "./child_leaker\n"));
}

TEST(VerdictText, UnmatchedFreesAreSaid) {
  model::Verdict verdict = child_leaker_verdict();
  model::HeapSummary heap;
  heap.pid = 4243;
  heap.ended = StreamEnd::kExit;
  heap.allocations = 10;
  heap.frees = 9;
  heap.unmatched_frees = 3;
  verdict.heap.push_back(heap);
  std::string text = report::render_verdict_text(verdict);
  EXPECT_NE(text.find("3 frees of blocks allocated before tracing began (unmatched)"), std::string::npos) << text;
  verdict.heap.back().unmatched_frees = 0;
  EXPECT_EQ(report::render_verdict_text(verdict).find("unmatched"), std::string::npos);
}

TEST(VerdictText, NoLeakSaysSo) {
  std::string text = report::render_verdict_text(flat_verdict());
  EXPECT_EQ(text.rfind("No leak: memory stayed bounded in 2 processes over 10.1 s", 0), 0u) << text;
  EXPECT_FALSE(contains(text, "LEAK"));
  EXPECT_FALSE(contains(text, "Next:"));
}

// A wide bounded tree: one sentence for the root, a count for the rest, and the largest rows of
// the process table; the terminal is not flooded with a thousand lines.
TEST(VerdictText, AWideBoundedTreeIsSummarised) {
  Verdict v;
  v.target.pid = 1000;
  for (pid_t pid = 1000; pid < 1050; ++pid) {
    model::ProcessSummary p;
    p.pid = pid;
    p.ppid = pid == 1000 ? 1 : 1000;
    p.command = pid == 1000 ? "./pool" : "./worker";
    p.peak_rss_bytes = (pid == 1049 ? 900u : 10u + static_cast<uint64_t>(pid % 7)) << 20;
    v.processes.push_back(p);
    Finding f;
    f.kind = FindingKind::kNoGrowth;
    f.severity = Severity::kInfo;
    f.pid = pid;
    f.unit = Unit::kBytes;
    f.confidence = 0.99;
    f.evidence = fmt::format("RSS of {} stayed bounded", pid);
    v.findings.push_back(f);
  }
  // Without hypotheses (a verdict made before them) the evidence list is condensed the same way.
  std::string text = report::render_verdict_text(v);
  EXPECT_TRUE(contains(text,
                       "\nEvidence:\n  [info] no_growth pid 1000: RSS of 1000 stayed bounded\n"
                       "  ... and 49 more processes bounded\n"))
      << text;
  EXPECT_FALSE(contains(text, "RSS of 1001 stayed")) << text;
  v.hypotheses.push_back({HypothesisKind::kFdGrowth, 1000, HypothesisStatus::kEliminated, "file descriptors leak",
                          "open fds stayed at 5"});
  text = report::render_verdict_text(v);
  EXPECT_TRUE(contains(text,
                       "\nNothing confirmed:\n  no_growth pid 1000: RSS of 1000 stayed bounded\n"
                       "  ... and 49 more processes bounded\nEliminated:\n  pid 1000: fd_growth\n"))
      << text;
  EXPECT_FALSE(contains(text, "RSS of 1001 stayed")) << text;
  // The root first, then the largest: the 900 MiB worker is the second row.
  size_t table = text.find("  pid        peak RSS");
  ASSERT_NE(table, std::string::npos) << text;
  std::string rows = text.substr(table);
  EXPECT_EQ(rows.find("\n  1000 "), rows.find('\n')) << rows;
  EXPECT_LT(rows.find("\n  1049 "), rows.find("\n  10", rows.find("\n  1049 ") + 1)) << rows;
  EXPECT_TRUE(contains(rows, "  ... 30 more with smaller peaks (all of them in --json and --html)\n")) << rows;
}

// `memdx run` ends when its command exits: watching that pid for longer is no advice, running the
// command again for longer is.
TEST(VerdictText, TooShortRunSaysSoAndWhatToDo) {
  ProcessSpec spec;
  spec.command = {"./app", "--input", "two words", "it's"};
  spec.duration_s = 1.5;
  std::string text = report::render_verdict_text(analyze::diagnose(recording_of({spec})));
  EXPECT_EQ(text.rfind("No leak found: the run was too short to judge", 0), 0u) << text;
  EXPECT_TRUE(contains(text, "needs 6.0 s of samples"));
  EXPECT_TRUE(contains(text,
                       "\nNext:\n  it has exited; run it again with a workload that lasts longer than the "
                       "verdict needs (above): memdx run -- ./app --input 'two words' 'it'\\''s'\n"))
      << text;
  EXPECT_FALSE(contains(text, "memdx watch")) << text;
}

// A watch stopped by its duration: the process still runs, so watching it longer is the advice.
TEST(VerdictText, TooShortWatchOfALiveProcessAdvisesAWatch) {
  ProcessSpec spec;
  spec.duration_s = 1.5;
  spec.exits = false;
  analyze::RecordingData data = recording_of({spec});
  data.meta.kind = "watch";
  std::string text = report::render_verdict_text(analyze::diagnose(data));
  EXPECT_TRUE(contains(text, "memdx watch 4242 --duration 60")) << text;
  EXPECT_FALSE(contains(text, "memdx run --")) << text;
}

// A process that still ran when the recording ended but is gone by the time of the report (the
// CLI clears still_running) is advised like an exited one.
TEST(VerdictText, AProcessGoneSinceIsNotWatched) {
  ProcessSpec spec;
  spec.duration_s = 1.5;
  spec.exits = false;
  Verdict v = analyze::diagnose(recording_of({spec}));
  ASSERT_TRUE(v.processes[0].still_running);
  v.processes[0].still_running = false;
  std::string text = report::render_verdict_text(v);
  EXPECT_FALSE(contains(text, "memdx watch")) << text;
  EXPECT_TRUE(contains(text, "memdx run -- ./app")) << text;
}

// A capture without a root process (pid 0): no command may name pid 0.
TEST(VerdictText, NoStepNamesPidZero) {
  analyze::RecordingData data;
  data.meta.kind = "trace";
  data.meta.command = {"./app"};
  Verdict v = analyze::diagnose(data);
  ASSERT_EQ(v.target.pid, 0);
  Finding anon;
  anon.kind = FindingKind::kAnonGrowth;
  anon.severity = Severity::kLeak;
  anon.unit = Unit::kBytes;
  anon.rate_per_s = 1 << 20;
  Verdict anon_leak = v;
  anon_leak.findings = {anon};
  for (const Verdict* verdict : {&v, &anon_leak}) {
    std::string text = report::render_verdict_text(*verdict);
    EXPECT_TRUE(contains(text, "memdx run -- ./app")) << text;
    EXPECT_FALSE(contains(text, "memdx watch")) << text;
    EXPECT_FALSE(contains(text, "watch 0")) << text;
    EXPECT_FALSE(contains(text, "inspect 0")) << text;
    EXPECT_FALSE(contains(text, "/proc/0/")) << text;
  }
}

TEST(VerdictText, CountLeaksGetTheirOwnNextStep) {
  Verdict v;
  v.processes.push_back({});
  v.processes[0].pid = 77;
  v.processes[0].command = "./server";
  v.processes[0].still_running = true;
  Finding fds;
  fds.kind = FindingKind::kFdGrowth;
  fds.severity = Severity::kLeak;
  fds.pid = 77;
  fds.unit = Unit::kFds;
  fds.rate_per_s = 40;
  fds.confidence = 0.995;
  fds.evidence = "open fds rose";
  Finding threads = fds;
  threads.kind = FindingKind::kThreadGrowth;
  threads.unit = Unit::kThreads;
  threads.rate_per_s = 8;
  v.findings = {fds, threads};
  std::string text = report::render_verdict_text(v);
  EXPECT_EQ(text.rfind("LEAK: the open fd count of pid 77 (./server) grows 40 fds/s (confidence 99.5%); "
                       "1 more leak finding below\n",
                       0),
            0u)
      << text;
  EXPECT_TRUE(contains(text, "ls -l /proc/77/fd"));
  EXPECT_TRUE(contains(text, "ps -T -p 77"));
  // Once it has exited, no step names its pid.
  v.processes[0].still_running = false;
  v.target.command = {"./server"};
  text = report::render_verdict_text(v);
  EXPECT_FALSE(contains(text, "77/")) << text;
  EXPECT_FALSE(contains(text, "-p 77")) << text;
  EXPECT_TRUE(contains(text, "fd_growth: it has exited; run it again and list its fds while it runs")) << text;
  EXPECT_TRUE(contains(text, "thread_growth: it has exited; run it again and list its threads")) << text;
  EXPECT_TRUE(contains(text, "memdx run -- ./server")) << text;
}

// Commands, function and file names, stack frames and evidence come from the target: on the
// terminal their escape sequences show instead of acting.
TEST(VerdictText, EscapeSequencesFromTheTargetAreShownNotSent) {
  Verdict v = child_leaker_verdict();
  v.target.command = {"./app\x1b[31m", "--flag"};
  for (model::ProcessSummary& p : v.processes) p.command = "\x1b]0;pwned\x07\x1b[2J" + p.command;
  Finding& leak = v.findings.front();
  ASSERT_EQ(leak.severity, Severity::kLeak);
  leak.evidence += "; fastest-growing site: grow\x1b[31m";
  for (model::Hypothesis& h : v.hypotheses) {
    if (h.status == HypothesisStatus::kConfirmed) h.evidence += "; site grow\x1b[31m";
  }
  leak.sites.push_back(
      {"grow\x1b[31m", "/src/\x1b[2Jleak.cpp", 9, 4 << 20, 1 << 20, {"grow\x1b[31m", "main\x1b[0m"}, 0, {}});
  model::HeapSummary heap;
  heap.pid = 4243;
  heap.ended = StreamEnd::kExit;
  model::HeapSiteSummary site;
  site.function = "keep\x1b[31m";
  site.file = "/src/k\x1b[2J.cpp";
  site.line = 3;
  site.final_live_bytes = 1 << 20;
  site.stack = {"keep\x1b[31m", "caller\x1b[0m", "main"};
  heap.sites = {site};
  v.heap = {heap};
  for (const std::string& text : {report::render_verdict_text(v), report::verdict_headline(v)}) {
    EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
    EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
  }
  std::string text = report::render_verdict_text(v);
  EXPECT_TRUE(contains(text, "(\\x1b]0;pwned\\x07\\x1b[2J./child_leaker)")) << text;  // the headline
  EXPECT_TRUE(contains(text, "look at `grow\\x1b[31m` (\\x1b[2Jleak.cpp:9)")) << text;
  EXPECT_TRUE(contains(text, "; site grow\\x1b[31m")) << text;
  EXPECT_TRUE(contains(text, "keep\\x1b[31m (k\\x1b[2J.cpp:3)")) << text;
  EXPECT_TRUE(contains(text, "caller\\x1b[0m")) << text;
  // Without hypotheses the findings' evidence is listed instead.
  v.hypotheses.clear();
  text = report::render_verdict_text(v);
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_TRUE(contains(text, "fastest-growing site: grow\\x1b[31m")) << text;
  // The JSON keeps the exact bytes (its encoder escapes them its own way).
  EXPECT_EQ(model::to_json(v)["findings"][0]["sites"][0]["function"], "grow\x1b[31m");
}

// A heap trace of one image whose sites' frames lie in a stripped program and in libstdc++.
Verdict stripped_trace_verdict() {
  Verdict v;
  model::HeapSummary heap;
  heap.pid = 42;
  heap.ended = StreamEnd::kExit;
  model::HeapSiteSummary runtime;  // every frame the runtime's: shown as the site
  runtime.function = "libstdc++.so.6+0xa57b9";
  runtime.final_live_bytes = 2 << 20;
  runtime.stack = {"libstdc++.so.6+0xa57b9", "call_init"};
  runtime.unnamed_frames = {{0, "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", 0xa57b9}};
  model::HeapSiteSummary own;
  own.function = "server+0x12d1";
  own.final_live_bytes = 1 << 20;
  own.stack = {"server+0x12d1", "server+0x1138", "__libc_start_main"};
  own.unnamed_frames = {{0, "/srv/app/server", 0x12d1}, {1, "/srv/app/server", 0x1138}};
  heap.sites = {runtime, own};
  v.heap = {heap};
  return v;
}

TEST(VerdictText, FramesWithoutNamesEndTheTextWithOneHint) {
  report::TextOptions options;
  options.recording_path = "run.memdx";
  std::string text = report::render_verdict_text(stripped_trace_verdict(), options);
  EXPECT_TRUE(contains(text, "server+0x12d1")) << text;
  size_t hint = text.find("Frames shown as module+0xOFFSET have no symbols (libstdc++.so.6, server:");
  ASSERT_NE(hint, std::string::npos) << text;
  EXPECT_EQ(text.find("have no symbols", hint + 1), text.rfind("have no symbols")) << "said once: " << text;
  // Its example is the program's own frame, not the runtime's, though the runtime's shows first.
  EXPECT_TRUE(contains(text.substr(hint), "addr2line -f -C -e /srv/app/server 0x12d1")) << text;
  EXPECT_TRUE(contains(text.substr(hint), "memdx report run.memdx --debug-dir DIR")) << text;
  EXPECT_EQ(text.back(), '\n');
}

TEST(VerdictText, NoHintForFramesTheTextDoesNotShow) {
  Verdict v = stripped_trace_verdict();
  // Unnamed frames only deep in the stacks, past the frames the text shows.
  for (model::HeapSiteSummary& site : v.heap[0].sites) {
    site.function = "named";
    site.stack = {"named", "a", "b", "c", "d", "e", "f", "server+0x1138"};
    site.unnamed_frames = {{7, "/srv/app/server", 0x1138}};
  }
  std::string text = report::render_verdict_text(v);
  EXPECT_EQ(text.find("have no symbols"), std::string::npos) << text;
  report::TextOptions deep;
  deep.stack_frames = 8;
  EXPECT_TRUE(contains(report::render_verdict_text(v, deep), "have no symbols"));
}

TEST(VerdictText, MemAvailableProjection) {
  Verdict v;
  Finding f;
  f.kind = FindingKind::kShmemGrowth;
  f.severity = Severity::kLeak;
  f.pid = 5;
  f.unit = Unit::kBytes;
  f.rate_per_s = 1 << 20;
  f.time_to_limit_s = 7200;
  f.limit = LimitKind::kMemAvailable;
  f.limit_bytes = uint64_t{12} << 30;
  v.findings.push_back(f);
  std::string text = report::render_verdict_text(v);
  EXPECT_TRUE(contains(text, "at this rate MemAvailable (12.0 GiB) is used up in 2.0 h")) << text;
  EXPECT_TRUE(contains(text, "shm_open/memfd"));
}

TEST(VerdictText, FormatDuration) {
  EXPECT_EQ(report::format_duration(42), "42 s");
  EXPECT_EQ(report::format_duration(25 * 60), "25 min");
  EXPECT_EQ(report::format_duration(3.5 * 3600), "3.5 h");
  EXPECT_EQ(report::format_duration(3 * 86400), "3.0 days");
}

}  // namespace
}  // namespace memdx
