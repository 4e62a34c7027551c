// report::render_html on hand-made verdicts and recordings: a self-contained page (CSP, nothing
// fetched), the verdict and hypotheses as static HTML, and a JSON blob that parses back with
// bounded, spike-preserving series and pruned flame graphs, small enough at 1,000 processes x 24 h.
#include "report/html.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <regex>
#include <string>

#include <nlohmann/json.hpp>

#include "report/html_data.h"
#include "report/verdict_text.h"

namespace memdx::report {
namespace {

using nlohmann::json;

constexpr uint64_t kMiB = 1024 * 1024;

// The page as memdx renders it: the timelines are cut from the recording's samples first, then
// drawn.
std::string render_html(const model::Verdict& verdict, const analyze::RecordingData& data,
                        const analyze::HeapTrace& heap, const HtmlOptions& options = {}) {
  analyze::ProcessTimelines timelines = analyze::process_timelines(data, timeline_options(verdict, options));
  return report::render_html({verdict, data.meta, data.processes, heap, timelines}, options);
}

model::ProcessSample sample(pid_t pid, int64_t t_ms, uint64_t rss_bytes) {
  model::ProcessSample s;
  s.pid = pid;
  s.t_ms = t_ms;
  s.rss_bytes = rss_bytes;
  s.rss_anon_bytes = rss_bytes * 3 / 4;
  s.rss_file_bytes = rss_bytes / 4;
  s.vsz_bytes = rss_bytes * 100;
  s.pss_bytes = rss_bytes - kMiB;
  s.fds = 5;
  s.threads = 2;
  return s;
}

model::ProcessRecord record(pid_t pid, pid_t ppid, std::vector<std::string> command) {
  model::ProcessRecord r;
  r.pid = pid;
  r.ppid = ppid;
  r.command = std::move(command);
  return r;
}

model::ProcessSummary summary(const model::ProcessRecord& r) {
  model::ProcessSummary p;
  p.pid = r.pid;
  p.ppid = r.ppid;
  for (const std::string& word : r.command) p.command += (p.command.empty() ? "" : " ") + word;
  p.peak_rss_bytes = 64 * kMiB;
  return p;
}

// A root (pid 100) that leaks its heap and a child (101) that exits; 50 samples at 200 ms.
struct Fixture {
  model::Verdict verdict;
  analyze::RecordingData data;
};

Fixture leaking_recording() {
  Fixture f;
  f.data.meta.command = {"./app", "--serve"};
  f.data.meta.interval_ms = 200;
  f.data.meta.started_at_utc = "2026-01-02T03:04:05Z";
  f.data.processes = {record(100, 1, {"./app", "--serve"}), record(101, 100, {"worker"})};
  f.data.processes[1].exited_ms = 6000;
  f.data.processes[1].exit_code = 0;
  for (int i = 0; i < 50; ++i) {
    f.data.samples[100].push_back(sample(100, i * 200, (32 + static_cast<uint64_t>(i)) * kMiB));
    if (i < 30) f.data.samples[101].push_back(sample(101, i * 200, 8 * kMiB));
  }
  f.data.root_pid = 100;
  for (const auto& r : f.data.processes) f.verdict.processes.push_back(summary(r));
  f.verdict.processes[1].exited_s = 6.0;
  f.verdict.processes[1].exit_code = 0;
  f.verdict.target = {{"./app", "--serve"}, 100, std::nullopt, std::nullopt, 10.0};
  model::Finding leak;
  leak.kind = FindingKind::kHeapGrowth;
  leak.severity = Severity::kLeak;
  leak.pid = 100;
  leak.unit = Unit::kBytes;
  leak.series = Series::kHeapLive;
  leak.rate_per_s = 5.0 * kMiB;
  leak.confidence = 0.9999;
  leak.evidence = "live heap rose from 32 MiB to 81 MiB";
  leak.time_to_limit_s = 1500;
  leak.limit = LimitKind::kCgroupMemoryMax;
  leak.limit_bytes = 8192 * kMiB;
  leak.sites.push_back({"keep_history", "leaker.cpp", 9, 40 * kMiB, 5.0 * kMiB, {"keep_history", "main"}, 0, {}});
  f.verdict.findings.push_back(leak);
  f.verdict.hypotheses = {
      {HypothesisKind::kHeapGrowth, 100, HypothesisStatus::kConfirmed, "the malloc heap grows",
       "live heap +5 MiB/s, p<0.001"},
      {HypothesisKind::kFdGrowth, 100, HypothesisStatus::kEliminated, "open fds keep rising", "5 fds throughout"},
      {HypothesisKind::kGpuGrowth, 100, HypothesisStatus::kNotMeasured, "GPU memory grows", "no GPU probe"},
      {HypothesisKind::kFileGrowth, 101, HypothesisStatus::kInconclusive, "page cache grows", "too few samples"},
  };
  return f;
}

// The JSON blob's text between its script tags.
std::string blob_text(const std::string& page) {
  const std::string open = "<script type=\"application/json\" id=\"memdx-data\">";
  size_t start = page.find(open);
  EXPECT_NE(start, std::string::npos);
  if (start == std::string::npos) return "{}";
  start += open.size();
  return page.substr(start, page.find("</script>", start) - start);
}

json blob(const std::string& page) {
  return json::parse(blob_text(page));
}

const json& process_in(const json& data, pid_t pid) {
  for (const json& p : data["processes"]) {
    if (p["pid"] == pid) return p;
  }
  static const json none;
  ADD_FAILURE() << "no process " << pid << " in the blob";
  return none;
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// The text of an element whose content is plain escaped text, as a browser reads it.
std::string unescaped(std::string text) {
  for (auto [entity, c] : {std::pair{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}}) {
    for (size_t at = text.find(entity); at != std::string::npos; at = text.find(entity, at + 1)) {
      text.replace(at, std::string_view(entity).size(), c);
    }
  }
  return text;
}

std::string lowered(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

TEST(Html, ForbidsEveryFetchAndNamesNothingOutside) {
  Fixture f = leaking_recording();
  std::string page = render_html(f.verdict, f.data, {});
  EXPECT_NE(page.find("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src "
                      "'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">"),
            std::string::npos);
  // The policy comes before any script or style it governs.
  EXPECT_LT(page.find("Content-Security-Policy"), page.find("<style"));
  std::string lower = lowered(page);
  EXPECT_EQ(lower.find("http://"), std::string::npos);
  EXPECT_EQ(lower.find("https://"), std::string::npos);
  EXPECT_EQ(lower.find("//cdn"), std::string::npos);
  EXPECT_FALSE(std::regex_search(lower, std::regex(R"(\s(src|srcset|action|poster)\s*=)")))
      << "an attribute that fetches";
  EXPECT_FALSE(std::regex_search(lower, std::regex(R"(<link\b|@import|url\s*\()")));
  EXPECT_FALSE(std::regex_search(lower, std::regex(R"re(href\s*=\s*"(?!#))re"))) << "only in-page links";
  EXPECT_EQ(count_of(page, "<script"), 2u);
  EXPECT_EQ(count_of(page, "<style>"), 1u);
}

TEST(Html, VerdictSectionCarriesTheHeadlineAndFindings) {
  Fixture f = leaking_recording();
  std::string page = render_html(f.verdict, f.data, {});
  std::string headline = verdict_headline(f.verdict);
  ASSERT_EQ(headline.rfind("LEAK: live heap of pid 100", 0), 0u) << headline;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      page, m,
      std::regex(R"re(<section id="verdict" data-leak="(true|false)"[^>]*>\s*<h2 class="headline">([^<]*)</h2>)re")));
  EXPECT_EQ(m[1], "true");
  EXPECT_EQ(unescaped(m[2]), headline);
  EXPECT_NE(page.find("live heap rose from 32 MiB to 81 MiB"), std::string::npos);
  EXPECT_NE(page.find("reaches cgroup memory.max (8.00 GiB) in 25 min"), std::string::npos);
  EXPECT_NE(page.find("keep_history</code> <span class=\"place\">leaker.cpp:9</span>"), std::string::npos);
}

TEST(Html, NoLeakVerdictIsMarkedSo) {
  Fixture f = leaking_recording();
  f.verdict.findings[0].severity = Severity::kInfo;
  f.verdict.findings[0].kind = FindingKind::kNoGrowth;
  std::string page = render_html(f.verdict, f.data, {});
  EXPECT_NE(page.find("<section id=\"verdict\" data-leak=\"false\""), std::string::npos);
  EXPECT_EQ(verdict_headline(f.verdict).rfind("No leak", 0), 0u);
}

TEST(Html, OneHypothesisRowPerHypothesisWithItsStatus) {
  Fixture f = leaking_recording();
  std::string page = render_html(f.verdict, f.data, {});
  size_t table = page.find("<table id=\"hypotheses\">");
  ASSERT_NE(table, std::string::npos);
  std::string rows = page.substr(table, page.find("</table>", table) - table);
  std::regex row(
      R"re(<tr data-name="([a-z_]+)" data-pid="(\d+)" data-status="([a-z_]+)">.*?<span class="badge ([a-z_ -]+)">)re");
  std::vector<std::string> seen;
  for (auto it = std::sregex_iterator(rows.begin(), rows.end(), row); it != std::sregex_iterator(); ++it) {
    seen.push_back((*it)[1].str() + "/" + (*it)[2].str() + "/" + (*it)[3].str() + "/" + (*it)[4].str());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"heap_growth/100/confirmed/status-confirmed leak",
                                            "fd_growth/100/eliminated/status-eliminated",
                                            "gpu_growth/100/not_measured/status-not_measured",
                                            "file_growth/101/inconclusive/status-inconclusive"}));
  EXPECT_NE(rows.find("the malloc heap grows"), std::string::npos);
  EXPECT_NE(rows.find("no GPU probe"), std::string::npos);
}

// Within a process what was confirmed comes first, then undecided, then ruled out; the next
// steps name the recording; bounded processes other than the root are one counted row.
TEST(Html, HypothesesReadConfirmedFirstAndBoundedWorkersAreCounted) {
  Fixture f = leaking_recording();
  f.verdict.hypotheses.insert(
      f.verdict.hypotheses.begin(),
      {HypothesisKind::kAnonGrowth, 100, HypothesisStatus::kEliminated, "anon grows", "the heap explains it"});
  for (pid_t pid : {101, 102, 103}) {
    model::Finding bounded;
    bounded.kind = FindingKind::kNoGrowth;
    bounded.severity = Severity::kInfo;
    bounded.pid = pid;
    bounded.evidence = fmt::format("RSS of {} stayed bounded", pid);
    f.verdict.findings.push_back(bounded);
  }
  HtmlOptions options;
  options.recording_path = "/tmp/app.memdx";
  std::string page = render_html(f.verdict, f.data, {}, options);
  size_t table = page.find("<table id=\"hypotheses\">");
  ASSERT_NE(table, std::string::npos);
  size_t confirmed = page.find("data-name=\"heap_growth\" data-pid=\"100\"", table);
  size_t eliminated = page.find("data-name=\"anon_growth\" data-pid=\"100\"", table);
  size_t child = page.find("data-name=\"file_growth\" data-pid=\"101\"", table);
  EXPECT_LT(confirmed, eliminated);
  EXPECT_LT(eliminated, child);
  EXPECT_EQ(page.find("RSS of 102 stayed bounded"), std::string::npos);
  EXPECT_NE(page.find("3 more processes stayed bounded"), std::string::npos);
  EXPECT_NE(page.find("<ul id=\"next-steps\">"), std::string::npos);
  EXPECT_NE(page.find("memdx report /tmp/app.memdx --top 20"), std::string::npos);
}

TEST(Html, BlobParsesBackWithEveryTimelineSeries) {
  Fixture f = leaking_recording();
  json data = blob(render_html(f.verdict, f.data, {}));
  EXPECT_EQ(data["schema"], "memdx.html/1");
  EXPECT_EQ(data["meta"]["root_pid"], 100);
  const json& root = process_in(data, 100);
  const json& series = root["timeline"]["series"];
  for (const char* name : {"rss_bytes", "pss_bytes", "rss_anon_bytes", "rss_file_bytes", "rss_shmem_bytes",
                           "swap_bytes", "vsz_bytes", "fds", "threads"}) {
    ASSERT_TRUE(series.contains(name)) << name;
    EXPECT_EQ(series[name]["max"].size(), 50u) << name;  // one bucket per sample when few
  }
  EXPECT_FALSE(series.contains("heap_live_bytes"));  // neither traced nor sampled
  EXPECT_EQ(series["rss_bytes"]["max"].back(), 81 * kMiB);
  const json& child = process_in(data, 101);
  EXPECT_EQ(child["exited_ms"], 6000);
  EXPECT_EQ(child["exit_code"], 0);
  EXPECT_TRUE(data["flame"].is_null());
}

TEST(Html, DownsamplingBoundsTheSeriesAndKeepsASpike) {
  Fixture f = leaking_recording();
  auto& samples = f.data.samples[100];
  samples.clear();
  for (int i = 0; i < 20000; ++i) samples.push_back(sample(100, i * 200, 100 * kMiB));
  samples[12345].rss_bytes = 900 * kMiB;  // one sample, one bucket of ~50
  samples[777].fds = 0;
  HtmlOptions options;
  options.buckets_per_series = 400;
  json data = blob(render_html(f.verdict, f.data, {}, options));
  const json& series = process_in(data, 100)["timeline"]["series"];
  const json& rss = series["rss_bytes"];
  EXPECT_LE(rss["max"].size(), 400u);
  EXPECT_GE(rss["max"].size(), 390u);
  EXPECT_EQ(*std::max_element(rss["max"].begin(), rss["max"].end()), 900 * kMiB);
  EXPECT_EQ(std::count(rss["max"].begin(), rss["max"].end(), json(900 * kMiB)), 1);
  ASSERT_TRUE(rss.contains("min"));
  EXPECT_EQ(*std::max_element(rss["min"].begin(), rss["min"].end()), 100 * kMiB);  // the spike is a max only
  EXPECT_EQ(*std::min_element(series["fds"]["min"].begin(), series["fds"]["min"].end()), 0);
  EXPECT_FALSE(series["vsz_bytes"].contains("min")) << "constant series carry max alone";
}

TEST(Timelines, BucketGridCoversTheSpanWithAtMostTheBuckets) {
  analyze::BucketGrid grid = analyze::bucket_grid(1000, 86'401'000, 86'401, 400);
  EXPECT_EQ(grid.t0_ms, 1000);
  EXPECT_LE(grid.count, 400u);
  EXPECT_EQ(analyze::bucket_of(grid, 86'401'000), grid.count - 1);
  EXPECT_GE(grid.t0_ms + static_cast<int64_t>(grid.count - 1) * grid.step_ms + grid.step_ms / 2, 86'401'000);
  analyze::BucketGrid few = analyze::bucket_grid(0, 1800, 10, 400);
  EXPECT_EQ(few.count, 10u);
  EXPECT_EQ(few.step_ms, 200);
  for (int64_t t : {0, 210, 390, 1700})
    EXPECT_EQ(analyze::bucket_of(few, t), static_cast<size_t>((t + 100) / 200)) << t;
  analyze::BucketGrid one = analyze::bucket_grid(5, 5, 1, 400);
  EXPECT_EQ(one.count, 1u);
  analyze::MinMax m = analyze::downsample({{0, 3}, {1, 7}, {9, 2}}, analyze::bucket_grid(0, 9, 3, 2));
  ASSERT_EQ(m.max.size(), 2u);
  EXPECT_EQ(m.min[0], 3);
  EXPECT_EQ(m.max[0], 7);
  EXPECT_EQ(m.min[1], 2);
}

TEST(Html, TracedLiveHeapIsPutOnTheRecordingsClock) {
  Fixture f = leaking_recording();
  f.data.monotonic_origin_ns = 5'000'000'000;  // t_ms 0 = 5 s monotonic
  f.data.traced[100].heap_live_bytes = {{6.0, 10.0 * kMiB}, {7.0, 20.0 * kMiB}, {8.0, 30.0 * kMiB}};
  json data = blob(render_html(f.verdict, f.data, {}));
  const json& heap = process_in(data, 100)["timeline"]["series"]["heap_live_bytes"]["max"];
  const json& t = process_in(data, 100)["timeline"];
  int64_t step_ms = t["step_ms"];
  int64_t t0_ms = t["t0_ms"];
  auto bucket_of = [&](int64_t t_ms) { return static_cast<size_t>((t_ms - t0_ms + step_ms / 2) / step_ms); };
  ASSERT_GT(heap.size(), bucket_of(3000));
  EXPECT_EQ(heap[bucket_of(1000)], 10 * kMiB);
  EXPECT_EQ(heap[bucket_of(3000)], 30 * kMiB);
  EXPECT_TRUE(heap[bucket_of(9000)].is_null());

  // Without the origin, the series starts when the process was first seen.
  f.data.monotonic_origin_ns.reset();
  f.data.processes[0].first_seen_ms = 400;
  json aligned = blob(render_html(f.verdict, f.data, {}));
  const json& heap2 = process_in(aligned, 100)["timeline"]["series"]["heap_live_bytes"]["max"];
  EXPECT_EQ(heap2[bucket_of(400)], 10 * kMiB);
  EXPECT_EQ(heap2[bucket_of(2400)], 30 * kMiB);
}

TEST(Html, ScriptEndInACommandCannotBreakOutOfTheBlob) {
  Fixture f = leaking_recording();
  const std::string evil = "</script><script>alert(1)</script><!-- &";
  f.data.meta.command = {"./app", evil};
  f.data.processes[0].command = {"./app", evil};
  f.verdict.processes[0].command = "./app " + evil;
  f.verdict.hypotheses[0].evidence = evil;
  std::string page = render_html(f.verdict, f.data, {});
  EXPECT_EQ(count_of(lowered(page), "</script"), 2u);  // the blob's and the script's own ends
  EXPECT_EQ(count_of(page, "<!--"), 0u);
  EXPECT_EQ(count_of(page, "<script"), 2u);
  std::string text = blob_text(page);
  EXPECT_EQ(text.find('<'), std::string::npos);
  json data = json::parse(text);
  EXPECT_EQ(process_in(data, 100)["command"], "./app " + evil);
  EXPECT_EQ(data["meta"]["command"], "./app " + evil);
}

TEST(Html, InvalidUtf8InACommandStillRenders) {
  Fixture f = leaking_recording();
  f.verdict.processes[0].command = "./app\xff\xfe";
  json data = blob(render_html(f.verdict, f.data, {}));
  EXPECT_EQ(process_in(data, 100)["command"], "./app\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Html, ProcessTreeNestsChildrenUnderParents) {
  Fixture f = leaking_recording();
  f.data.processes.push_back(record(102, 101, {"grandchild"}));
  f.data.processes.push_back(record(99, 100, {"younger-pid"}));
  for (size_t i = 2; i < f.data.processes.size(); ++i) f.verdict.processes.push_back(summary(f.data.processes[i]));
  std::string page = render_html(f.verdict, f.data, {});
  size_t table = page.find("<table id=\"process-tree\">");
  ASSERT_NE(table, std::string::npos);
  std::string rows = page.substr(table, page.find("</table>", table) - table);
  std::regex row(R"re(<tr data-pid="(\d+)">.*?padding-left:([0-9.]+)em)re");
  std::vector<std::string> order;
  for (auto it = std::sregex_iterator(rows.begin(), rows.end(), row); it != std::sregex_iterator(); ++it) {
    order.push_back((*it)[1].str() + "@" + (*it)[2].str());
  }
  EXPECT_EQ(order, (std::vector<std::string>{"100@0.6", "99@1.8", "101@1.8", "102@3.0"}));
}

TEST(Html, WithoutAHeapTraceSaysHowToGetOne) {
  Fixture f = leaking_recording();
  std::string page = render_html(f.verdict, f.data, {});
  EXPECT_NE(page.find("no heap trace: record with memdx run without --no-trace"), std::string::npos);
  EXPECT_EQ(page.find("id=\"flame-peak\""), std::string::npos);
}

// A heap trace whose modules cannot be opened: frames are "app+0x..." (see folded_test.cpp).
analyze::HeapTrace small_trace() {
  analyze::HeapTrace trace;
  analyze::ProcessHeapProfile p;
  p.pid = 100;
  p.modules.push_back({0, 0x10000, 0x10000, 0x20000, "/nonexistent/app"});
  p.stacks[1] = {0x10101, 0x10201};
  p.stacks[2] = {0x10301, 0x10201};
  p.heap_by_stack[1].live_at_peak_bytes = 3000;
  p.heap_by_stack[1].allocations = 1;
  p.heap_by_stack[2].live_at_peak_bytes = 1000;
  p.heap_by_stack[2].allocations = 1;
  trace.processes.push_back(p);
  return trace;
}

TEST(Html, HeapTraceShipsFlameTrees) {
  Fixture f = leaking_recording();
  model::HeapSummary heap;
  heap.pid = 100;
  model::HeapSiteSummary site;
  site.function = "keep_history";
  site.file = "leaker.cpp";
  site.line = 9;
  site.allocations = 1234;
  site.growth_bytes_per_s = 2.0 * kMiB;
  site.live_at_peak_bytes = 40 * kMiB;
  site.final_live_bytes = 39 * kMiB;
  heap.sites.push_back(site);
  f.verdict.heap.push_back(heap);
  std::string page = render_html(f.verdict, f.data, small_trace());
  EXPECT_EQ(page.find("no heap trace"), std::string::npos);
  EXPECT_NE(page.find("id=\"flame-peak\""), std::string::npos);
  EXPECT_NE(page.find("id=\"flame-growth\""), std::string::npos);
  json data = blob(page);
  const json& peak = data["flame"]["peak"];
  EXPECT_EQ(peak["total"], 4000);
  EXPECT_EQ(peak["root"]["n"], "all");
  ASSERT_EQ(peak["root"]["c"].size(), 1u);
  EXPECT_EQ(peak["root"]["c"][0]["n"], "app+0x200");
  EXPECT_EQ(peak["root"]["c"][0]["c"][0]["v"], 3000);  // largest callee first
  EXPECT_EQ(data["flame"]["growth"]["total"], 0);
  std::regex site_row(R"(<td>heap</td><td class="function" title="keep_history"><code>keep_history</code></td>)"
                      R"(<td class="place" title="leaker\.cpp:9">leaker\.cpp:9</td><td class="num">2\.00 MiB/s</td>)"
                      R"(<td class="num">40\.0 MiB</td><td class="num">39\.0 MiB</td><td class="num">1234</td>)");
  EXPECT_TRUE(std::regex_search(page, site_row)) << page;
}

TEST(HtmlData, FlameTreePrunesSmallFramesIntoTheirParents) {
  std::vector<FoldedStack> folded = {{{"main", "serve", "cache_put"}, 9000},
                                     {{"main", "serve", "log"}, 5},
                                     {{"main", "init"}, 990},
                                     {{"main", "tiny"}, 4}};
  html::FlameTree tree = html::flame_tree(folded, 0.001, 100);  // under 10 of 9999 is pruned
  EXPECT_EQ(tree.root.value, 9999u);
  EXPECT_EQ(tree.pruned_nodes, 2u);  // log, tiny
  EXPECT_EQ(tree.kept_nodes, 5u);    // all, main, serve, cache_put, init
  ASSERT_EQ(tree.root.children.size(), 1u);
  const html::FlameNode& main = tree.root.children[0];
  EXPECT_EQ(main.value, 9999u);  // still counts what was pruned below it
  ASSERT_EQ(main.children.size(), 2u);
  EXPECT_EQ(main.children[0].name, "serve");
  EXPECT_EQ(main.children[0].value, 9005u);
  EXPECT_EQ(main.children[0].children.size(), 1u);
  EXPECT_EQ(main.children[1].name, "init");
}

TEST(HtmlData, FlameTreeKeepsOnlyTheLargestNodesUnderTheCap) {
  std::vector<FoldedStack> folded;
  for (int i = 0; i < 1000; ++i) {
    folded.push_back({{"pid 7 (app)", "main", "f" + std::to_string(i), "leaf"}, static_cast<uint64_t>(1000 + i)});
  }
  html::FlameTree tree = html::flame_tree(folded, 0, 50);
  EXPECT_EQ(tree.kept_nodes, 50u);
  EXPECT_EQ(tree.pruned_nodes, 3 + 2000 - 50 + 0u);
  EXPECT_EQ(tree.root.children[0].name, "pid 7 (app)");
  const auto& kept = tree.root.children[0].children[0].children;
  ASSERT_FALSE(kept.empty());
  EXPECT_EQ(kept.front().name, "f999");  // the largest
}

TEST(Html, ATimelineGoesToTheRootAndTheLargestOnly) {
  Fixture f = leaking_recording();
  for (pid_t pid = 200; pid < 260; ++pid) {
    f.data.processes.push_back(record(pid, 100, {"w"}));
    for (int i = 0; i < 5; ++i) f.data.samples[pid].push_back(sample(pid, i * 200, static_cast<uint64_t>(pid) * kMiB));
    f.verdict.processes.push_back(summary(f.data.processes.back()));
    f.verdict.processes.back().peak_rss_bytes = static_cast<uint64_t>(pid) * kMiB;
  }
  f.data.samples[100] = {sample(100, 0, 2 * kMiB)};  // the smallest, yet the root
  f.verdict.processes[0].peak_rss_bytes = 2 * kMiB;
  HtmlOptions options;
  options.processes_with_timelines = 10;
  std::set<pid_t> chosen = timeline_options(f.verdict, options).full;
  EXPECT_EQ(chosen, (std::set<pid_t>{100, 251, 252, 253, 254, 255, 256, 257, 258, 259}));
  json data = blob(render_html(f.verdict, f.data, {}, options));
  EXPECT_TRUE(process_in(data, 100).contains("timeline"));
  EXPECT_TRUE(process_in(data, 259).contains("timeline"));
  EXPECT_FALSE(process_in(data, 200).contains("timeline"));
  EXPECT_EQ(process_in(data, 200)["spark"]["rss_bytes"].size(), 5u);
}

// 1,000 processes over 24 hours: the root sampled every second, the others every 2.5 minutes
// (what the adaptive interval leaves of a day), values noisy so that min and max both ship.
TEST(Html, ThousandProcessesOverADayStayUnderFiveMegabytes) {
  analyze::RecordingData data;
  model::Verdict verdict;
  data.meta.command = {"./server"};
  data.root_pid = 1000;
  constexpr int64_t kDayMs = 86'400'000;
  for (pid_t pid = 1000; pid < 2000; ++pid) {
    data.processes.push_back(record(pid, pid == 1000 ? 1 : 1000, {"./server", "--worker", std::to_string(pid)}));
    verdict.processes.push_back(summary(data.processes.back()));
    int samples = pid == 1000 ? 86'400 : 576;
    auto& series = data.samples[pid];
    series.reserve(samples);
    for (int i = 0; i < samples; ++i) {
      uint64_t noise = static_cast<uint64_t>((i * 7919 + pid * 104729) % 4096) * 4096;
      model::ProcessSample s =
          sample(pid, i * (kDayMs / samples), (200 + static_cast<uint64_t>(pid % 300)) * kMiB + noise);
      s.heap_live_bytes = s.rss_bytes / 2 + noise;
      s.fds = static_cast<uint32_t>(10 + i % 7);
      s.threads = static_cast<uint32_t>(4 + i % 3);
      series.push_back(s);
    }
  }
  std::string page = render_html(verdict, data, {});
  RecordProperty("page_bytes", std::to_string(page.size()));
  EXPECT_LT(page.size(), 5u * 1000 * 1000) << page.size() << " bytes";
  json blob_data = blob(page);
  size_t timelines = 0, sparks = 0;
  for (const json& p : blob_data["processes"]) {
    if (p.contains("timeline")) {
      ++timelines;
      EXPECT_LE(p["timeline"]["series"]["rss_bytes"]["max"].size(), 400u);
    }
    if (p.contains("spark")) ++sparks;
  }
  EXPECT_EQ(timelines, 40u);
  EXPECT_EQ(sparks, 960u);
  EXPECT_EQ(count_of(page, "<tr data-pid="), 1000u);
}

}  // namespace
}  // namespace memdx::report
