// `memdx serve` scraped by a real Prometheus (Debian's prometheus package): the series arrive in
// its database, and a leaking process shows memdx_leak 1 there within 30 s.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "integration/harness.h"
#include "serve/served.h"

namespace memdx::test {
namespace {

using namespace std::chrono_literals;

const std::string kDeploy = std::string(MEMDX_TEST_DATA_DIR) + "/../../deploy";
const std::string kRules = kDeploy + "/prometheus/memdx-rules.yml";
const std::string kDashboard = kDeploy + "/grafana/memdx-dashboard.json";

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The memdx_... metric names a text mentions (a counter's without "_total").
std::set<std::string> metric_names_in(const std::string& text) {
  std::set<std::string> names;
  std::regex name(R"(memdx_[a-z_]+)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), name); it != std::sregex_iterator(); ++it) {
    names.insert(it->str());
  }
  return names;
}

// Prometheus's answer to an instant query: the value of its first series, or nullopt.
std::optional<std::string> query(int port, const std::string& promql) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(5, 0);
  httplib::Result result = client.Get("/api/v1/query", httplib::Params{{"query", promql}}, httplib::Headers{});
  if (!result || result->status != 200) return std::nullopt;
  nlohmann::json answer = nlohmann::json::parse(result->body, nullptr, false);
  if (answer.is_discarded() || answer["status"] != "success") return std::nullopt;
  const nlohmann::json& series = answer["data"]["result"];
  if (!series.is_array() || series.empty()) return std::nullopt;
  return series[0]["value"][1].get<std::string>();
}

TEST(PrometheusTest, ScrapesTheSeriesAndSeesTheLeakWithin30Seconds) {
  std::string prometheus = find_on_path("prometheus");
  ASSERT_FALSE(prometheus.empty()) << "prometheus is not installed (the bootstrap installs Debian's package)";
  Behaving heap("heap", 120);  // +2 MiB/s, kept
  Behaving flat("flat", 120);
  auto started = std::chrono::steady_clock::now();
  Served served({"--interval", "500", std::to_string(heap.pid()), std::to_string(flat.pid())});
  ASSERT_GT(served.port(), 0) << served.err();

  TempDir dir;
  int prometheus_port = free_port();
  {
    std::ofstream config(dir.path() + "/prometheus.yml");
    config << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
           << "rule_files: ['" << kRules << "']\n"
           << "scrape_configs:\n  - job_name: memdx\n    static_configs:\n      - targets: ['127.0.0.1:"
           << served.port() << "']\n";
  }
  pid_t server = ::fork();
  if (server == 0) {
    ::setpgid(0, 0);
    std::string log = dir.path() + "/prometheus.log";
    int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    std::string config_flag = "--config.file=" + dir.path() + "/prometheus.yml";
    std::string storage_flag = "--storage.tsdb.path=" + dir.path() + "/data";
    std::string listen_flag = "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port);
    ::execl(prometheus.c_str(), prometheus.c_str(), config_flag.c_str(), storage_flag.c_str(), listen_flag.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  } reaper{server};

  // The series reach Prometheus's database: `up` and the process's RSS.
  std::optional<std::string> rss;
  std::optional<std::string> leak;
  std::string pid_label = "{pid=\"" + std::to_string(heap.pid()) + "\"}";
  while (std::chrono::steady_clock::now() - started < 60s) {
    if (!rss) rss = query(prometheus_port, "memdx_process_rss_bytes" + pid_label);
    leak = query(prometheus_port, "memdx_leak" + pid_label);
    if (leak == "1") break;
    std::this_thread::sleep_for(500ms);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("memdx_leak 1 in Prometheus after %.1f s from memdx serve's start\n", seconds);
  std::ifstream log(dir.path() + "/prometheus.log");
  std::string log_text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(rss.has_value()) << "no memdx series in Prometheus; its log:\n" << log_text;
  EXPECT_GT(std::stod(*rss), 1 << 20);
  ASSERT_EQ(leak, "1") << "memdx_leak of the leaking process in Prometheus: " << leak.value_or("absent");
  EXPECT_LT(seconds, 30.0);
  EXPECT_EQ(query(prometheus_port, "up{job=\"memdx\"}"), "1");
  EXPECT_EQ(query(prometheus_port, "memdx_leak{pid=\"" + std::to_string(flat.pid()) + "\"}"), "0");
  // Prometheus asks for OpenMetrics first: its scrapes parsed what memdx answered in that format.
  EXPECT_EQ(query(prometheus_port, "scrape_samples_post_metric_relabeling{job=\"memdx\"} > 20").has_value(), true);

  // The shipped rules are loaded and evaluated on these series: the leak alert is pending (it
  // fires after its 5 minutes).
  std::optional<std::string> alert;
  auto alert_deadline = std::chrono::steady_clock::now() + 15s;
  while (!alert && std::chrono::steady_clock::now() < alert_deadline) {
    alert = query(prometheus_port, "ALERTS{alertname=\"MemdxProcessLeaking\",alertstate=\"pending\",pid=\"" +
                                       std::to_string(heap.pid()) + "\"}");
    std::this_thread::sleep_for(500ms);
  }
  EXPECT_EQ(alert, "1") << "the MemdxProcessLeaking alert of deploy/prometheus/memdx-rules.yml is not pending";

  // Every metric the rules and the dashboard use is one memdx serves.
  std::set<std::string> served_names = metric_names_in(served.metrics());
  for (const std::string& path : {kRules, kDashboard}) {
    std::set<std::string> used = metric_names_in(read_text(path));
    EXPECT_FALSE(used.empty()) << path;
    for (const std::string& metric : used) EXPECT_EQ(served_names.count(metric), 1u) << path << " uses " << metric;
  }
}

TEST(PrometheusTest, PromtoolAcceptsTheRulesAndTheDashboardIsJson) {
  Finished check = run_for({find_on_path("promtool"), "check", "rules", kRules}, 60);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("SUCCESS: 3 rules found"), std::string::npos) << check.out;
  nlohmann::json dashboard = nlohmann::json::parse(read_text(kDashboard), nullptr, false);
  ASSERT_FALSE(dashboard.is_discarded()) << kDashboard << " is not JSON";
  EXPECT_GE(dashboard["panels"].size(), 6u);
}

}  // namespace
}  // namespace memdx::test
