// memdx: what a process's memory really is, whether it leaks, and which code holds the growth.
// main only dispatches: each command lives in its own file.
#include <csignal>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/errors.h"
#include "cli/inspect.h"
#include "cli/report.h"
#include "cli/run.h"
#include "cli/serve.h"
#include "cli/trace.h"
#include "cli/watch.h"
#include "memdx/version.h"
#include "model/terminal_text.h"

namespace {

// CLI11 messages can span lines; the user gets one.
std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

int run(int argc, char** argv) {
  CLI::App app{"memdx: what a process's memory really is, whether it is leaking, and which code holds it"};
  app.name("memdx");
  app.set_version_flag("--version", std::string("memdx ") + MEMDX_VERSION_STRING);
  app.require_subcommand(1, 1);
  app.footer("\nRun 'memdx COMMAND --help' for a command's options and examples.");
  int exit_code = 0;
  memdx::cli::add_inspect_command(app, exit_code);
  memdx::cli::add_run_command(app, exit_code);
  memdx::cli::add_trace_command(app, exit_code);
  memdx::cli::add_watch_command(app, exit_code);
  memdx::cli::add_report_command(app, exit_code);
  memdx::cli::add_serve_command(app, exit_code);

  // CLI11 would answer "memdx UNKNOWN --help" with the top-level help and exit 0.
  auto named = [&](CLI::App* cmd) { return cmd->get_name() == argv[1]; };
  if (argc > 1 && argv[1][0] != '-' && app.get_subcommands(named).empty()) {
    std::fprintf(stderr, "memdx: unknown command '%s' (see 'memdx --help')\n",
                 memdx::model::terminal_safe(argv[1]).c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "memdx: %s (see 'memdx --help')\n", first_line(e.what()).c_str());
    return 2;
  } catch (const memdx::cli::UsageError& e) {
    std::fprintf(stderr, "memdx: %s\n", e.what());
    return 2;
  } catch (const memdx::cli::RuntimeError& e) {
    std::fprintf(stderr, "memdx: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "memdx: internal error: %s\n", e.what());
    return 1;
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  // A reader that closes its end of a pipe (`memdx report R | head -1`) is an EPIPE to report,
  // not a signal that kills memdx before it writes its files. The commands memdx starts get the
  // default disposition back (cli/launch.cpp).
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return run(argc, argv);
  } catch (...) {
    std::fputs("memdx: internal error while setting up the command line\n", stderr);
    return 1;
  }
}
