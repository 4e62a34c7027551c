#include "serve/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>

#include "model/gzip.h"

namespace memdx::serve {
namespace {

// Binds a socket of our own first, so that a taken port is reported with its reason (the HTTP
// library only says that it failed). Closed again before the library binds.
void check_can_listen(const ListenAddress& address) {
  bool v6 = address.host.find(':') != std::string::npos;
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot create a socket: {}", std::strerror(errno)));
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
  if (result == 0) result = ::listen(fd, 1);
  int error = result == 0 ? 0 : errno;
  ::close(fd);
  if (result == 0) return;
  std::string where = fmt::format("{}:{}", address.url_host(), address.port);
  if (error == EADDRINUSE) {
    throw std::runtime_error(fmt::format(
        "cannot listen on {}: the port is in use (another memdx serve or another program holds it; choose another "
        "with --listen)",
        where));
  }
  if (error == EACCES) {
    throw std::runtime_error(fmt::format("cannot listen on {}: permission denied (ports below 1024 need root)", where));
  }
  if (error == EADDRNOTAVAIL) {
    throw std::runtime_error(fmt::format("cannot listen on {}: no interface of this machine has that address", where));
  }
  throw std::runtime_error(fmt::format("cannot listen on {}: {}", where, std::strerror(error)));
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

}  // namespace

ListenAddress parse_listen(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    throw std::invalid_argument(fmt::format("'{}' is not HOST:PORT (e.g. 127.0.0.1:9464 or [::1]:9464)", text));
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
    throw std::invalid_argument(fmt::format("'{}': the port must be a number from 0 to 65535", text));
  }
  address.port = static_cast<int>(value);
  unsigned char probe[sizeof(in6_addr)];
  if (::inet_pton(AF_INET, address.host.c_str(), probe) != 1 &&
      ::inet_pton(AF_INET6, address.host.c_str(), probe) != 1) {
    throw std::invalid_argument(fmt::format("'{}': the host must be an IP address (127.0.0.1, 0.0.0.0, ::1)", text));
  }
  return address;
}

struct Server::Impl {
  httplib::Server http;
  Endpoints endpoints;
  RateLimit rate_limit;
  std::atomic<double> previous_scrape_seconds{0.0};
  std::thread thread;
  std::atomic<bool> run_started{false};
  std::atomic<bool> run_ended{false};
  std::atomic<bool> stop_requested{false};
  Impl(Endpoints given, double rate) : endpoints(std::move(given)), rate_limit(rate) {}

  // The gzip of the last answer of each format, and which answer it is of; nullptr when zlib
  // fails (the answer then goes uncompressed).
  std::shared_ptr<const std::string> gzip_of(ExpositionFormat format, const std::shared_ptr<const std::string>& text) {
    size_t slot = format == ExpositionFormat::kOpenMetrics ? 1 : 0;
    std::lock_guard<std::mutex> lock(gzip_mutex);
    // Compared by identity: an endpoint hands out one string per answer until the next sample.
    if (gzip_source[slot].lock() != text || !gzip_text[slot]) {
      gzip_text[slot].reset();
      try {
        gzip_text[slot] = std::make_shared<const std::string>(model::gzip(*text, model::GzipLevel::kFastest));
      } catch (const std::runtime_error&) {
        return nullptr;
      }
      gzip_source[slot] = text;
    }
    return gzip_text[slot];
  }
  std::mutex gzip_mutex;
  std::array<std::weak_ptr<const std::string>, 2> gzip_source;
  std::array<std::shared_ptr<const std::string>, 2> gzip_text;
};

Server::Server(const ServerOptions& options, Endpoints endpoints)
    : impl_(std::make_unique<Impl>(std::move(endpoints), options.max_requests_per_second)) {
  check_can_listen(options.address);
  httplib::Server& http = impl_->http;
  size_t threads = std::max<size_t>(1, options.threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(options.max_request_body_bytes);
  http.set_read_timeout(5, 0);
  http.set_write_timeout(5, 0);
  http.set_keep_alive_timeout(5);
  http.set_keep_alive_max_count(1000);
  // An answer goes out as headers, then body: with Nagle's algorithm the body of a small answer
  // waits for the ACK of the headers, which the scraper delays by 40 ms. (Accepted sockets
  // inherit the option from the listening one.)
  http.set_tcp_nodelay(true);
  Impl* impl = impl_.get();
  http.set_pre_routing_handler([impl](const httplib::Request& request, httplib::Response& response) {
    if (request.method != "GET" && request.method != "HEAD") {
      response.status = 405;
      response.set_header("Allow", "GET, HEAD");
      response.set_content("read-only: GET /metrics, /health or /verdict\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!impl->rate_limit.take()) {
      response.status = 429;
      response.set_header("Retry-After", "1");
      response.set_content("too many requests\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.Get("/metrics", [impl](const httplib::Request& request, httplib::Response& response) {
    auto started = std::chrono::steady_clock::now();
    ExpositionFormat format = negotiate(request.get_header_value("Accept"));
    std::shared_ptr<const std::string> text = impl->endpoints.metrics(format, impl->previous_scrape_seconds.load());
    // Written from the shared answer, without a copy: a copy per request in flight was most of
    // serve's RSS peaks. A scraper that asks for gzip (Prometheus does) gets the answer's gzip,
    // made once per answer and shared as well: compressing it for every scrape cost a tenth of
    // the idle CPU at a thousand processes, and all of it under load.
    std::shared_ptr<const std::string> body = text;
    if (request.get_header_value("Accept-Encoding").find("gzip") != std::string::npos) {
      if (std::shared_ptr<const std::string> compressed = impl->gzip_of(format, text)) {
        body = std::move(compressed);
        response.set_header("Content-Encoding", "gzip");
      }
    }
    response.set_header("Vary", "Accept-Encoding");
    // A content provider of a known length is sent as it is (httplib compresses only chunked
    // ones): the bytes go from the shared string to the socket.
    response.set_content_provider(body->size(), content_type(format),
                                  [body](size_t offset, size_t length, httplib::DataSink& sink) {
                                    return sink.write(body->data() + offset, length);
                                  });
    impl->previous_scrape_seconds.store(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  });
  if (impl->endpoints.health) {
    http.Get("/health", [impl](const httplib::Request&, httplib::Response& response) {
      response.set_content(impl->endpoints.health(), "application/json");
    });
  }
  if (impl->endpoints.verdict) {
    http.Get("/verdict", [impl](const httplib::Request&, httplib::Response& response) {
      response.set_content(impl->endpoints.verdict(), "application/json");
    });
  }
  http.Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("memdx: /metrics (Prometheus), /health (JSON), /verdict (memdx.verdict/1 JSON)\n",
                         "text/plain");
  });
  http.set_error_handler([](const httplib::Request&, httplib::Response& response) {
    if (response.status == 404) {
      response.set_content("not found: memdx answers /metrics, /health and /verdict\n", "text/plain");
    }
  });
  const ListenAddress& address = options.address;
  port_ = address.port;
  bool bound = address.port == 0 ? (port_ = http.bind_to_any_port(address.host)) > 0
                                 : http.bind_to_port(address.host, address.port);
  if (!bound) throw std::runtime_error(fmt::format("cannot listen on {}:{}", address.url_host(), address.port));
}

Server::~Server() {
  stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

bool Server::run() {
  impl_->run_started = true;
  bool ok = impl_->stop_requested ? true : impl_->http.listen_after_bind();
  impl_->run_ended = true;
  return ok;
}

void Server::start() {
  impl_->run_started = true;  // stop() from now on waits for the loop to run
  impl_->thread = std::thread([this] { run(); });
}

void Server::stop() {
  impl_->stop_requested = true;
  // cpp-httplib's stop() acts only on a server whose loop runs: a stop that comes between run()'s
  // start and the loop's would be lost, and the loop would run for ever. Wait for the loop first.
  if (impl_->run_started) {
    while (!impl_->http.is_running() && !impl_->run_ended) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  impl_->http.stop();
}

}  // namespace memdx::serve
