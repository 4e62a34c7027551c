#include "cli/report.h"

#include <sys/stat.h>

#include <memory>

#include <fmt/format.h>

#include "cli/errors.h"
#include "cli/recording_common.h"

namespace memdx::cli {
namespace {

struct ReportOptions {
  std::string recording_path;
  std::string json_path;
};

int run_report(const ReportOptions& options) {
  struct stat st {};
  if (::stat(options.recording_path.c_str(), &st) != 0) {
    throw RuntimeError(fmt::format("{}: no such recording", options.recording_path));
  }
  OutputFile json_out = options.json_path.empty() ? OutputFile() : OutputFile(options.json_path);
  analyze_and_report(options.recording_path, json_out);
  return 0;
}

}  // namespace

void add_report_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ReportOptions>();
  CLI::App* cmd = app.add_subcommand("report", "Analyse a recording again and print (or write) its verdict");
  cmd->footer(
      "\nExamples:\n"
      "  memdx report memdx-server-20261124-101500.memdx\n"
      "  memdx report run.memdx --json verdict.json\n");
  cmd->add_option("recording", options->recording_path, "A recording made by memdx run or memdx watch")->required();
  cmd->add_option("--json", options->json_path, "Write the verdict as JSON (schema memdx.verdict/1) to this file");
  cmd->callback([options, &exit_code] { exit_code = run_report(*options); });
}

}  // namespace memdx::cli
