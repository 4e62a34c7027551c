#include "cli/serve.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pthread.h>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <httplib.h>

#include "cli/errors.h"
#include "memdx/verdict.h"
#include "memdx/version.h"
#include "model/terminal_text.h"
#include "serve/exposition.h"
#include "serve/monitor.h"

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

struct ListenAddress {
  std::string host;  // as given, without the brackets of an IPv6 address
  int port = 0;
};

ListenAddress parse_listen(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    throw UsageError(
        fmt::format("--listen '{}' is not HOST:PORT (e.g. 127.0.0.1:9464 or [::1]:9464)", model::terminal_safe(text)));
  }
  ListenAddress address;
  address.host = text.substr(0, colon);
  if (address.host.size() > 2 && address.host.front() == '[' && address.host.back() == ']') {
    address.host = address.host.substr(1, address.host.size() - 2);
  }
  std::string port = text.substr(colon + 1);
  char* end = nullptr;
  errno = 0;
  long value = std::strtol(port.c_str(), &end, 10);
  if (errno != 0 || end == port.c_str() || *end != '\0' || value < 0 || value > 65535) {
    throw UsageError(
        fmt::format("--listen '{}': the port must be a number from 0 to 65535", model::terminal_safe(text)));
  }
  address.port = static_cast<int>(value);
  unsigned char probe[sizeof(in6_addr)];
  if (::inet_pton(AF_INET, address.host.c_str(), probe) != 1 &&
      ::inet_pton(AF_INET6, address.host.c_str(), probe) != 1) {
    throw UsageError(fmt::format("--listen '{}': the host must be an IP address (127.0.0.1, 0.0.0.0, ::1)",
                                 model::terminal_safe(text)));
  }
  return address;
}

bool is_loopback(const std::string& host) {
  return host.starts_with("127.") || host == "::1";
}

// Binds a socket of our own first, so that a taken port is reported with its reason (the HTTP
// library only says that it failed). Closed again before the library binds.
void check_can_listen(const ListenAddress& address) {
  bool v6 = address.host.find(':') != std::string::npos;
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw RuntimeError(fmt::format("cannot create a socket: {}", std::strerror(errno)));
  int yes = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  int result = 0;
  if (v6) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(static_cast<uint16_t>(address.port));
    ::inet_pton(AF_INET6, address.host.c_str(), &sa.sin6_addr);
    result = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(address.port));
    ::inet_pton(AF_INET, address.host.c_str(), &sa.sin_addr);
    result = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  }
  int error = errno;
  if (result == 0) result = ::listen(fd, 1);
  if (result != 0 && error == 0) error = errno;
  ::close(fd);
  if (result == 0) return;
  std::string where = fmt::format("{}:{}", address.host, address.port);
  if (error == EADDRINUSE) {
    throw RuntimeError(
        fmt::format("cannot listen on {}: the port is in use (another memdx serve or another program holds it; "
                    "choose another with --listen)",
                    where));
  }
  if (error == EACCES) {
    throw RuntimeError(fmt::format("cannot listen on {}: permission denied (ports below 1024 need root)", where));
  }
  if (error == EADDRNOTAVAIL) {
    throw RuntimeError(fmt::format("cannot listen on {}: no interface of this machine has that address", where));
  }
  throw RuntimeError(fmt::format("cannot listen on {}: {}", where, std::strerror(error)));
}

// A token bucket over all clients: beyond the rate, requests get 429 at once, so that a
// misbehaving scraper cannot make memdx spend a core rendering.
class RateLimit {
 public:
  explicit RateLimit(double per_second) : per_second_(per_second), tokens_(per_second) {}
  bool take() {
    std::lock_guard<std::mutex> lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(per_second_, tokens_ + elapsed * per_second_);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

 private:
  std::mutex mutex_;
  double per_second_;
  double tokens_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
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
  monitor_options.judge_interval =
      std::max(std::chrono::milliseconds(options.interval_ms),
               std::chrono::milliseconds(std::min<int64_t>(10000, 4 * options.interval_ms)));
  ListenAddress address = parse_listen(options.listen);
  check_can_listen(address);

  // SIGINT and SIGTERM are taken by one thread that stops the server: blocked here, before any
  // thread starts, so that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  serve::Monitor monitor(monitor_options);
  monitor.tick();  // the first scrape has data
  {
    std::shared_ptr<const serve::Snapshot> first = monitor.latest();
    for (const std::string& unmatched : first->unmatched_targets) {
      std::fprintf(stderr, "memdx: no process matches '%s' yet; serving its series when one does\n",
                   model::terminal_safe(unmatched).c_str());
    }
  }
  monitor.start();

  httplib::Server server;
  server.new_task_queue = [] { return new httplib::ThreadPool(4); };
  server.set_payload_max_length(4096);
  server.set_read_timeout(5, 0);
  server.set_write_timeout(5, 0);
  server.set_keep_alive_timeout(5);
  server.set_keep_alive_max_count(1000);
  auto rate_limit = std::make_shared<RateLimit>(options.max_requests_per_second);
  server.set_pre_routing_handler([rate_limit](const httplib::Request& request, httplib::Response& response) {
    if (request.method != "GET" && request.method != "HEAD") {
      response.status = 405;
      response.set_header("Allow", "GET, HEAD");
      response.set_content("memdx serve is read-only: GET /metrics, /health or /verdict\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!rate_limit->take()) {
      response.status = 429;
      response.set_header("Retry-After", "1");
      response.set_content("too many requests\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  auto previous_scrape_seconds = std::make_shared<std::atomic<double>>(0.0);
  server.Get("/metrics", [&monitor, previous_scrape_seconds](const httplib::Request& request,
                                                             httplib::Response& response) {
    auto started = std::chrono::steady_clock::now();
    std::shared_ptr<const serve::Snapshot> snapshot = monitor.latest();
    serve::ExpositionFormat format = serve::negotiate(request.get_header_value("Accept"));
    response.set_content(serve::render_metrics(*snapshot, format, previous_scrape_seconds->load()),
                         serve::content_type(format));
    previous_scrape_seconds->store(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  });
  server.Get("/health", [&monitor, &options](const httplib::Request&, httplib::Response& response) {
    std::shared_ptr<const serve::Snapshot> snapshot = monitor.latest();
    serve::HealthFacts facts;
    facts.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - monitor.started()).count();
    facts.interval_ms = options.interval_ms;
    facts.now_unix_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    facts.version = MEMDX_VERSION_STRING;
    response.set_content(serve::render_health(*snapshot, facts), "application/json");
  });
  server.Get("/verdict", [&monitor](const httplib::Request&, httplib::Response& response) {
    response.set_content(verdict_json(monitor.latest()->verdict), "application/json");
  });
  server.Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("memdx serve: /metrics (Prometheus), /health (JSON), /verdict (memdx.verdict/1 JSON)\n",
                         "text/plain");
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& response) {
    if (response.status == 404) {
      response.set_content("not found: memdx serve answers /metrics, /health and /verdict\n", "text/plain");
    }
  });

  int port = address.port;
  bool bound = port == 0 ? (port = server.bind_to_any_port(address.host)) > 0 : server.bind_to_port(address.host, port);
  if (!bound) throw RuntimeError(fmt::format("cannot listen on {}:{}", address.host, address.port));
  std::string shown_host = address.host.find(':') != std::string::npos ? "[" + address.host + "]" : address.host;
  std::fprintf(stderr,
               "memdx: serving http://%s:%d/metrics (also /health, /verdict), sampling every %lld ms; "
               "Ctrl-C stops\n",
               shown_host.c_str(), port, static_cast<long long>(options.interval_ms));
  if (!is_loopback(address.host)) {
    std::fprintf(stderr, "memdx: listening beyond loopback: anyone who can reach %s may read these metrics\n",
                 shown_host.c_str());
  }

  std::thread stopper([&server, stop_signals] {
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    server.stop();
  });
  bool ok = server.listen_after_bind();
  if (stopper.joinable()) {
    // listen_after_bind returned without a signal (an error): wake the stopper so it can end.
    if (server.is_running() || !ok) ::kill(::getpid(), SIGTERM);
    stopper.join();
  }
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
      "cgroup:PATH (its processes, PATH as /proc/PID/cgroup shows it); top:N (the N largest by RSS).\n\n"
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
