#include "cli/report.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/errors.h"
#include "cli/output_paths.h"
#include "cli/recording_common.h"
#include "report/folded.h"
#include "store/file_type.h"

namespace memdx::cli {
namespace {

struct ReportOptions {
  std::string recording_path;
  std::string json_path;
  std::string html_path;
  std::string pprof_path;
  std::string folded_path;
  std::string folded_metric = "peak";
  size_t top_sites = 0;  // 0: the default summary
  SiteChoices sites;
};

int run_report(ReportOptions& options) {
  struct stat st {};
  if (::stat(options.recording_path.c_str(), &st) != 0) {
    throw RuntimeError(fmt::format("{}: no such recording", options.recording_path));
  }
  // SQLite would wait forever on a FIFO, and a device or a directory is no recording either.
  if (!S_ISREG(st.st_mode)) {
    throw RuntimeError(
        fmt::format("{} is {}, not a recording", options.recording_path, store::file_type_name(st.st_mode)));
  }
  check_distinct_outputs({{"--json", options.json_path},
                          {"--html", options.html_path},
                          {"--pprof", options.pprof_path},
                          {"--folded", options.folded_path}},
                         options.recording_path);
  options.sites.load();
  VerdictOutputs outputs{OutputFile(options.json_path), OutputFile(options.html_path), OutputFile(options.pprof_path),
                         OutputFile(options.folded_path), *report::folded_metric_named(options.folded_metric)};
  Analysis analysis =
      analyze_recording(options.recording_path, std::max(kHeapSitesInJson, options.top_sites), options.sites);
  report::TextOptions text_options;
  text_options.recording_path = options.recording_path;
  options.sites.apply_to(text_options);
  if (options.top_sites) {
    text_options.sites_per_section = options.top_sites;
    text_options.stack_frames = 8;
    text_options.processes_with_sites = SIZE_MAX;
  }
  write_verdict_outputs(analysis, options.recording_path, text_options, options.sites, outputs, stdout);
  return 0;
}

std::string check_folded_metric(const std::string& name) {
  if (report::folded_metric_named(name)) return "";
  return fmt::format("unknown metric '{}': choose {}", name, report::kFoldedMetricNames);
}

}  // namespace

void add_report_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ReportOptions>();
  CLI::App* cmd = app.add_subcommand("report", "Analyse a recording again and print (or write) its verdict");
  cmd->footer(
      "\nExamples:\n"
      "  memdx report memdx-server-20261124-101500.memdx\n"
      "  memdx report run.memdx --json verdict.json\n"
      "  memdx report run.memdx --html report.html                 # open it in any browser, offline\n"
      "  memdx report run.memdx --top 10                           # which code holds the growth\n"
      "  memdx report run.memdx --pprof heap.pb.gz                 # then: pprof -http=: heap.pb.gz\n"
      "  memdx report run.memdx --folded heap.txt --metric growth  # then: flamegraph.pl heap.txt > heap.svg\n"
      "  memdx report run.memdx --debug-dir ./symbols             # stripped build: its debug files are there\n"
      "  memdx report run.memdx --top 5 --paths                   # every stack that reaches each site\n"
      "  memdx report run.memdx --suppress known.supp             # hide what valgrind/LSan files name\n");
  cmd->add_option("recording", options->recording_path, "A recording made by memdx run, memdx trace or memdx watch")
      ->required();
  cmd->add_option("--json", options->json_path, "Write the verdict as JSON (schema memdx.verdict/1) to this file");
  cmd->add_option("--html", options->html_path,
                  "Write the report as one self-contained HTML page to this file: the verdict, the hypotheses, "
                  "timelines of every process, flame graphs of the heap at its peak and of its growth, top sites, "
                  "the process tree; opens offline");
  cmd->add_option("--top", options->top_sites,
                  "Show N call sites in each ranking of the heap trace (growth, live at the peak, live at the end, "
                  "temporary), with their stacks, for every traced process")
      ->type_name("N")
      ->check(CLI::Range(size_t{1}, size_t{100000}).description(""));
  cmd->add_option("--pprof", options->pprof_path,
                  "Write the heap trace as a gzipped pprof profile to this file (alloc_objects, alloc_space, "
                  "inuse_objects, inuse_space; in use = live when the trace ended)");
  CLI::Option* folded = cmd->add_option("--folded", options->folded_path,
                                        "Write the heap trace as folded stacks, for flame graphs, to this file");
  cmd->add_option("--metric", options->folded_metric,
                  "What --folded counts, in bytes: peak (live at the heap's peak; the default), growth (over the "
                  "run), leaked (live at the end) or allocated (in total)")
      ->check(check_folded_metric)
      ->needs(folded);
  add_site_options(*cmd, options->sites);
  cmd->callback([options, &exit_code] { exit_code = run_report(*options); });
}

}  // namespace memdx::cli
