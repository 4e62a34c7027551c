#include "cli/serve.h"

#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli/errors.h"
#include "memdx/verdict.h"
#include "memdx/version.h"
#include "model/terminal_text.h"
#include "serve/exposition.h"
#include "serve/monitor.h"
#include "serve/server.h"

namespace memdx::cli {
namespace {

struct ServeOptions {
  std::vector<std::string> targets;
  std::string listen = "127.0.0.1:9464";
  int64_t interval_ms = 5000;
  bool tree = false;
  size_t max_processes = 100;
  double max_requests_per_second = 500;
};

int run_serve(const ServeOptions& options) {
  serve::MonitorOptions monitor_options;
  for (const std::string& target : options.targets) {
    try {
      monitor_options.targets.push_back(serve::parse_target(target));
    } catch (const std::invalid_argument& e) {
      throw UsageError(model::terminal_safe(e.what()));
    }
  }
  monitor_options.tree = options.tree;
  monitor_options.interval = std::chrono::milliseconds(options.interval_ms);
  monitor_options.max_processes = options.max_processes;
  monitor_options.judge_interval = serve::judge_interval_for(monitor_options.interval);
  serve::ListenAddress address;
  try {
    address = serve::parse_listen(options.listen);
  } catch (const std::invalid_argument& e) {
    throw UsageError(model::terminal_safe(std::string("--listen ") + e.what()));
  }

  // SIGINT and SIGTERM are taken by one thread that stops the server: blocked here, before any
  // thread starts, so that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // memdx serve is a process of its own: two malloc arenas (not one per thread) and the freed
  // heap given back after each tick keep its RSS near what it holds.
  ::mallopt(M_ARENA_MAX, 2);
  // A fixed mmap threshold: the megabyte answers and a tick's big vectors are mapped and unmapped
  // whole. With glibc's sliding threshold, one freed answer raised it, and the next ones stayed in
  // an arena's heap until the next tick's trim.
  ::mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  monitor_options.trim_heap_after_tick = true;
  serve::Monitor monitor(monitor_options);
  serve::Endpoints endpoints;
  // A snapshot's text is rendered once per format: the scrapes between two ticks (several
  // Prometheus servers, a dashboard's bursts) copy it instead of rendering it again.
  struct Rendered {
    std::mutex mutex;
    std::array<uint64_t, 2> sequence{};
    std::array<std::shared_ptr<const std::string>, 2> text;
  };
  auto rendered = std::make_shared<Rendered>();
  endpoints.metrics = [&monitor, rendered](serve::ExpositionFormat format, double previous_scrape_seconds) {
    std::shared_ptr<const serve::Snapshot> snapshot = monitor.latest();
    size_t slot = format == serve::ExpositionFormat::kOpenMetrics ? 1 : 0;
    std::lock_guard<std::mutex> lock(rendered->mutex);
    if (rendered->sequence[slot] != snapshot->sequence || !rendered->text[slot]) {
      // The last answer goes (unless a request is still sending it) before the next is written,
      // which reserves its size plus room to grow.
      size_t last = rendered->text[slot] ? rendered->text[slot]->size() : 0;
      rendered->text[slot].reset();
      rendered->text[slot] = std::make_shared<const std::string>(
          serve::render_metrics(*snapshot, format, previous_scrape_seconds, {}, last + last / 8));
      rendered->sequence[slot] = snapshot->sequence;
    }
    return rendered->text[slot];
  };
  endpoints.health = [&monitor, &options] {
    serve::HealthFacts facts;
    facts.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - monitor.started()).count();
    facts.interval_ms = options.interval_ms;
    facts.now_unix_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    facts.version = MEMDX_VERSION_STRING;
    return serve::render_health(*monitor.latest(), facts);
  };
  endpoints.verdict = [&monitor] { return verdict_json(*monitor.latest()->verdict); };
  serve::ServerOptions server_options;
  server_options.address = address;
  server_options.max_requests_per_second = options.max_requests_per_second;
  std::unique_ptr<serve::Server> server;
  try {
    server = std::make_unique<serve::Server>(server_options, endpoints);
  } catch (const std::runtime_error& e) {
    throw RuntimeError(e.what());
  }
  // Bound first, so that a taken port is the one line said; then the first sample, so that the
  // first scrape has data.
  monitor.tick();
  for (const std::string& unmatched : monitor.latest()->unmatched_targets) {
    std::fprintf(stderr, "memdx: no process matches '%s' yet; serving its series when one does\n",
                 model::terminal_safe(unmatched).c_str());
  }
  monitor.start();
  std::fprintf(stderr,
               "memdx: serving http://%s:%d/metrics (also /health, /verdict), sampling every %lld ms; Ctrl-C stops\n",
               address.url_host().c_str(), server->port(), static_cast<long long>(options.interval_ms));
  if (!address.loopback()) {
    std::fprintf(stderr, "memdx: listening beyond loopback: anyone who can reach %s may read these metrics\n",
                 address.url_host().c_str());
  }

  std::atomic<bool> stopping{false};
  std::thread stopper([&server, &stopping, stop_signals] {
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    stopping = true;
    server->stop();
  });
  bool ok = server->run();
  if (!stopping) ::kill(::getpid(), SIGTERM);  // the loop ended by itself: let the stopper end too
  stopper.join();
  if (!ok && !stopping) throw RuntimeError("the HTTP server stopped unexpectedly");
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve processes' memory to Prometheus (/metrics), with leak verdicts, health and the verdict JSON");
  cmd->footer(
      "\nSamples the targets on its own clock (a scrape serves the newest sample), judges each process's\n"
      "recent history by the same rules as 'memdx run', and answers:\n"
      "  GET /metrics   Prometheus text 0.0.4, or OpenMetrics when the scraper asks for it\n"
      "  GET /health    JSON: status, uptime, targets, read errors, age of the last sample\n"
      "  GET /verdict   the current verdict (schema memdx.verdict/1)\n"
      "Read-only: nothing it answers changes anything. Loopback only unless --listen says otherwise.\n\n"
      "TARGET: a PID; a NAME (every process whose name or command line matches, re-matched each tick);\n"
      "cgroup:PATH (its processes, PATH as /proc/PID/cgroup shows it); top:N (the N largest by PSS,\n"
      "re-chosen each tick: shared pages count once, so forked workers of one model are not all 'largest').\n\n"
      "Examples:\n"
      "  memdx serve my-server\n"
      "  memdx serve --interval 15000 top:20 cgroup:/system.slice/ollama.service\n"
      "  memdx serve --listen 0.0.0.0:9464 --tree 4242\n");
  cmd->add_option("target", options->targets, "PID, NAME, cgroup:PATH or top:N (one or more)")->required();
  cmd->add_option("--listen", options->listen, "Address to listen on, HOST:PORT (port 0: any free port)")
      ->capture_default_str();
  cmd->add_option("--interval", options->interval_ms, "Sampling interval in milliseconds")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{100}, int64_t{600000}));
  cmd->add_flag("--tree", options->tree, "Also serve the targets' descendants");
  cmd->add_option("--max-processes", options->max_processes,
                  "Most processes with series of their own (largest by RSS); the rest are summed")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{100000}));
  cmd->callback([options, &exit_code] { exit_code = run_serve(*options); });
}

}  // namespace memdx::cli
