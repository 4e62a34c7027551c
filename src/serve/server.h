// The HTTP side of memdx serve and of libmemdx's MetricsExporter, on cpp-httplib: /metrics,
// /health and /verdict, read-only, with a bounded thread pool, request size and rate limits, and
// a taken port reported with its reason.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "serve/exposition.h"

namespace memdx::serve {

struct ListenAddress {
  std::string host;  // an IP address, without the brackets of an IPv6 one
  int port = 0;      // 0: any free port
  bool loopback() const { return host.starts_with("127.") || host == "::1"; }
  std::string url_host() const { return host.find(':') != std::string::npos ? "[" + host + "]" : host; }
};

// "127.0.0.1:9464", "[::1]:9464", "0.0.0.0:0". Throws std::invalid_argument with the message.
ListenAddress parse_listen(const std::string& text);

struct ServerOptions {
  ListenAddress address;
  double max_requests_per_second = 500;  // beyond, 429 at once
  size_t threads = 4;
  size_t max_request_body_bytes = 4096;
};

struct Endpoints {
  // The /metrics text; previous_scrape_seconds: how long the last answer took to render. Shared, so
  // that an answer rendered once is sent to every scraper without a copy per request.
  std::function<std::shared_ptr<const std::string>(ExpositionFormat, double previous_scrape_seconds)> metrics;
  std::function<std::string()> health;   // JSON
  std::function<std::string()> verdict;  // JSON; absent: no /verdict
};

class Server {
 public:
  // Binds at once. Throws std::runtime_error with one line ("cannot listen on ...: the port is
  // in use (...)") when it cannot.
  Server(const ServerOptions& options, Endpoints endpoints);
  ~Server();  // stops and joins
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const { return port_; }
  // Serves on the calling thread until stop(). Returns false when serving failed.
  bool run();
  // Serves on a thread of its own.
  void start();
  // Safe from any thread (not from a signal handler), before, during or after run().
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace memdx::serve
