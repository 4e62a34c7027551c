// libmemdx's MetricsExporter as a program uses it (memdx::memdx, <memdx/...> only): its own
// memory, its gauges and counters, a cache's and a governor's, served on loopback and checked by
// promtool.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>
#include <memdx/cache.h>
#include <memdx/error.h>
#include <memdx/governor.h>
#include <memdx/metrics_exporter.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;

std::string get_metrics(int port, const std::string& accept = "") {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(10, 0);
  httplib::Headers headers;
  if (!accept.empty()) headers.emplace("Accept", accept);
  httplib::Result result = client.Get("/metrics", headers);
  return result && result->status == 200 ? result->body : "";
}

// The value of the line that starts with `prefix` (a metric and its labels).
std::optional<double> value_of(const std::string& metrics, const std::string& prefix) {
  std::istringstream lines(metrics);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(prefix + " ", 0) == 0) return std::stod(line.substr(prefix.size() + 1));
  }
  return std::nullopt;
}

double vm_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) * 1024;
  }
  return 0;
}

int promtool_check(const std::string& metrics) {
  char path[] = "/tmp/memdx-exporter-XXXXXX";
  int fd = ::mkstemp(path);
  EXPECT_EQ(::write(fd, metrics.data(), metrics.size()), static_cast<ssize_t>(metrics.size()));
  ::close(fd);
  int status = std::system((std::string("promtool check metrics < ") + path + " >&2").c_str());
  ::unlink(path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The kind of the memdx::Error `action` throws; nullopt when it throws none.
std::optional<memdx::ErrorKind> kind_thrown(const std::function<void()>& action) {
  try {
    action();
  } catch (const memdx::Error& e) {
    return e.kind();
  }
  return std::nullopt;
}

TEST(MetricsExporter, ServesItsOwnMemoryAndTheProgramsMetrics) {
  memdx::MetricsExporterOptions options;
  options.listen = "127.0.0.1:0";
  options.interval = 200ms;
  memdx::MetricsExporter exporter(options);
  ASSERT_GT(exporter.port(), 0);

  memdx::ByteBudgetCache<int, std::string> cache(1 << 20);
  for (int i = 0; i < 10; ++i) cache.put(i, std::string(100, 'x'), 100);
  for (int i = 0; i < 15; ++i) (void)cache.get_copy(i);  // 10 hits, 5 misses
  exporter.watch_cache("docs", cache);
  memdx::Governor governor;
  memdx::ResourceId session = governor.add({"session", 4096, 0, [] { return uint64_t{4096}; }, 50ms});
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (governor.loaded(session) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  exporter.watch_governor(governor);
  exporter.set_gauge("myapp_queue_items", 3, {{"queue", "in"}}, "Items waiting.");
  exporter.add_to_counter("myapp_requests_total", 2, {{"route", "/generate"}});
  exporter.add_to_counter("myapp_requests_total", 3, {{"route", "/generate"}});
  int scrapes = 0;
  exporter.on_scrape([&scrapes](memdx::MetricsExporter& self) { self.set_gauge("myapp_scrapes", ++scrapes); });

  std::string text = get_metrics(exporter.port());
  std::string self = "{pid=\"" + std::to_string(::getpid()) + "\"";
  std::optional<double> rss;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("memdx_process_rss_bytes" + self, 0) == 0) rss = std::stod(line.substr(line.rfind(' ') + 1));
  }
  ASSERT_TRUE(rss.has_value()) << text;
  EXPECT_NEAR(*rss, vm_rss_bytes(), vm_rss_bytes() * 0.2);
  EXPECT_EQ(value_of(text, "myapp_queue_items{queue=\"in\"}"), 3.0) << text;
  EXPECT_EQ(value_of(text, "myapp_requests_total{route=\"/generate\"}"), 5.0) << text;
  EXPECT_EQ(value_of(text, "myapp_scrapes"), 1.0) << text;
  EXPECT_EQ(value_of(text, "memdx_cache_hits_total{cache=\"docs\"}"), 10.0) << text;
  EXPECT_EQ(value_of(text, "memdx_cache_misses_total{cache=\"docs\"}"), 5.0) << text;
  EXPECT_EQ(value_of(text, "memdx_cache_size_bytes{cache=\"docs\"}"), 1000.0) << text;
  EXPECT_EQ(value_of(text, "memdx_cache_budget_bytes{cache=\"docs\"}"), 1048576.0) << text;
  EXPECT_EQ(value_of(text, "memdx_governor_unloads_total{reason=\"idle\"}"), 1.0) << text;
  EXPECT_EQ(value_of(text, "memdx_governor_freed_bytes_total"), 4096.0) << text;
  EXPECT_EQ(value_of(text, "memdx_governor_resources{state=\"unloaded\"}"), 1.0) << text;
  EXPECT_NE(text.find("# HELP myapp_queue_items Items waiting.\n"), std::string::npos) << text;
  EXPECT_EQ(promtool_check(text), 0) << text;

  // OpenMetrics: counters' families without _total, and the end marker after the program's.
  std::string open = get_metrics(exporter.port(), "application/openmetrics-text; version=1.0.0");
  EXPECT_NE(open.find("# TYPE myapp_requests counter\n"), std::string::npos) << open;
  EXPECT_EQ(open.substr(open.size() - 6), "# EOF\n");
  EXPECT_EQ(open.find("# EOF"), open.size() - 6) << "one end marker";
}

TEST(MetricsExporter, RefusesWhatPrometheusWouldRefuse) {
  memdx::MetricsExporterOptions options;
  options.listen = "";  // render() only
  memdx::MetricsExporter exporter(options);
  EXPECT_EQ(exporter.port(), 0);
  using memdx::ErrorKind;
  EXPECT_EQ(kind_thrown([&] { exporter.set_gauge("1abc", 1); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_thrown([&] { exporter.set_gauge("my-app", 1); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_thrown([&] { exporter.set_gauge("memdx_mine", 1); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_thrown([&] { exporter.set_gauge("ok", 1, {{"bad-label", "x"}}); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_thrown([&] { exporter.add_to_counter("requests", 1); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_thrown([&] { exporter.add_to_counter("requests_total", -1); }), ErrorKind::kInvalidArgument);
  exporter.set_gauge("both_total", 1);
  EXPECT_EQ(kind_thrown([&] { exporter.add_to_counter("both_total", 1); }), ErrorKind::kInvalidArgument);
  EXPECT_NE(exporter.render().find("both_total 1\n"), std::string::npos);

  memdx::MetricsExporterOptions bad;
  bad.listen = "localhost:80";
  EXPECT_EQ(kind_thrown([&] { memdx::MetricsExporter nope(bad); }), ErrorKind::kInvalidArgument);
}

TEST(MetricsExporter, ATakenPortIsASystemErrorThatSaysSo) {
  memdx::MetricsExporterOptions options;
  options.listen = "127.0.0.1:0";
  memdx::MetricsExporter first(options);
  memdx::MetricsExporterOptions same;
  same.listen = "127.0.0.1:" + std::to_string(first.port());
  try {
    memdx::MetricsExporter second(same);
    FAIL() << "a second exporter listened on a taken port";
  } catch (const memdx::Error& e) {
    EXPECT_EQ(e.kind(), memdx::ErrorKind::kSystem);
    EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(get_metrics(first.port()).empty());  // the first one is untouched
}

}  // namespace
