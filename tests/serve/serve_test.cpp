// `memdx serve` on real processes whose memory behaviour is known (tests/helpers/behave.cpp):
// what /metrics, /health and /verdict say of them, checked against the kernel and the behaviour.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/harness.h"
#include "pressure/test_cgroup.h"
#include "serve/served.h"

namespace memdx::test {
namespace {

using namespace std::chrono_literals;

// Polls /metrics every 250 ms until `done` holds for it, or `limit` passes; the last text.
std::string metrics_until(const Served& served, const std::function<bool(const std::string&)>& done,
                          std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::string text;
  while (std::chrono::steady_clock::now() < deadline) {
    text = served.metrics();
    if (done(text)) break;
    std::this_thread::sleep_for(250ms);
  }
  return text;
}

// promtool (Prometheus's own linter) on a /metrics text: its exit code and what it said.
std::pair<int, std::string> promtool_check(const std::string& metrics) {
  char path[] = "/tmp/memdx-metrics-XXXXXX";
  int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, metrics.data(), metrics.size()), static_cast<ssize_t>(metrics.size()));
  ::close(fd);
  std::string command = std::string("promtool check metrics < ") + path + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string said;
  char buffer[1024];
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) said.append(buffer, got);
  int status = ::pclose(pipe);
  ::unlink(path);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, said};
}

TEST(ServeTest, ALeakingProcessIsALeakAndABoundedOneIsNot) {
  Behaving heap("heap", 90);  // +2 MiB/s of malloc'd blocks kept
  Behaving flat("flat", 90);
  Served served({"--interval", "200", std::to_string(heap.pid()), std::to_string(flat.pid())});
  ASSERT_GT(served.port(), 0) << served.err();
  auto started = std::chrono::steady_clock::now();
  std::string text = metrics_until(
      served, [&](const std::string& m) { return sample_of(m, "memdx_leak", heap.pid()).value_or(0) == 1; }, 30s);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("memdx_leak 1 after %.1f s\n", seconds);
  ASSERT_EQ(sample_of(text, "memdx_leak", heap.pid()), 1.0) << text;
  EXPECT_EQ(sample_of(text, "memdx_leak", flat.pid()), 0.0) << text;
  double growth = sample_of(text, "memdx_process_growth_bytes_per_second", heap.pid()).value_or(0);
  EXPECT_GT(growth, 1.0 * (1 << 20)) << "2 MiB/s expected";
  EXPECT_LT(growth, 3.5 * (1 << 20)) << "2 MiB/s expected";
  EXPECT_GT(sample_of(text, "memdx_leak_confidence", heap.pid()).value_or(0), 0.9);
  EXPECT_LT(std::fabs(sample_of(text, "memdx_process_growth_bytes_per_second", flat.pid()).value_or(1e9)), 64 * 1024.0);

  // The numbers are the kernel's: RSS as /proc/PID/status has it now (it grows 2 MiB/s, and the
  // sample is at most one interval old).
  std::string now = served.metrics();
  double rss = sample_of(now, "memdx_process_rss_bytes", flat.pid()).value_or(0);
  double kernel = vm_rss_bytes(flat.pid());
  EXPECT_NEAR(rss, kernel, kernel * 0.1 + (1 << 20));
  EXPECT_TRUE(sample_of(now, "memdx_process_pss_bytes", flat.pid()).has_value()) << now;
  EXPECT_TRUE(sample_of(now, "memdx_process_uss_bytes", flat.pid()).has_value()) << now;
  EXPECT_GE(sample_of(now, "memdx_process_threads", heap.pid()).value_or(0), 1);
  EXPECT_NE(now.find("memdx_system_memory_available_bytes "), std::string::npos);
  EXPECT_NE(now.find("memdx_scrape_duration_seconds "), std::string::npos);

  // Prometheus's own linter accepts it; OpenMetrics when asked for, ending as that format must.
  auto [code, said] = promtool_check(now);
  EXPECT_EQ(code, 0) << said;
  Served::Answer open_metrics =
      served.request("GET", "/metrics", {{"Accept", "application/openmetrics-text; version=1.0.0"}});
  EXPECT_EQ(open_metrics.content_type.rfind("application/openmetrics-text", 0), 0u) << open_metrics.content_type;
  ASSERT_GE(open_metrics.body.size(), 6u);
  EXPECT_EQ(open_metrics.body.substr(open_metrics.body.size() - 6), "# EOF\n");
  EXPECT_NE(open_metrics.body.find("\nmemdx_samples_total "), std::string::npos);
  EXPECT_EQ(open_metrics.body.find("# TYPE memdx_samples_total"), std::string::npos) << "family named without _total";

  nlohmann::json health = nlohmann::json::parse(served.request("GET", "/health").body);
  EXPECT_EQ(health["schema"], "memdx.serve.health/1");
  EXPECT_EQ(health["status"], "ok") << health.dump();
  EXPECT_EQ(health["targets"].size(), 2u);
  EXPECT_LT(health["last_sample_age_seconds"].get<double>(), 5.0);

  nlohmann::json verdict = nlohmann::json::parse(served.request("GET", "/verdict").body);
  EXPECT_EQ(verdict["schema"], "memdx.verdict/1");
  bool leak_for_heap = false;
  for (const auto& finding : verdict["findings"]) {
    leak_for_heap = leak_for_heap || (finding["pid"] == heap.pid() && finding["severity"] == "leak");
  }
  EXPECT_TRUE(leak_for_heap) << verdict.dump();
  EXPECT_EQ(served.stop(), 0) << served.err();
}

TEST(ServeTest, AnExitedProcessLosesItsSeriesAtTheNextSample) {
  Behaving brief("flat", 1.5);
  Served served({"--interval", "200", std::to_string(brief.pid())});
  ASSERT_GT(served.port(), 0) << served.err();
  EXPECT_TRUE(sample_of(served.metrics(), "memdx_process_rss_bytes", brief.pid()).has_value());
  brief.wait();
  std::string text = metrics_until(
      served, [&](const std::string& m) { return !sample_of(m, "memdx_process_rss_bytes", brief.pid()); }, 5s);
  EXPECT_FALSE(sample_of(text, "memdx_process_rss_bytes", brief.pid())) << text;
  EXPECT_EQ(text.find("pid=\"" + std::to_string(brief.pid()) + "\""), std::string::npos) << text;
  nlohmann::json health = nlohmann::json::parse(served.request("GET", "/health").body);
  EXPECT_EQ(health["status"], "degraded");
  EXPECT_EQ(health["unmatched_targets"], nlohmann::json::array({std::to_string(brief.pid())}));
}

TEST(ServeTest, ItIsReadOnlyAndRefusesWhatItDoesNotServe) {
  Behaving flat("flat", 30);
  Served served({std::to_string(flat.pid())});
  ASSERT_GT(served.port(), 0) << served.err();
  Served::Answer post = served.request("POST", "/metrics", {}, "x");
  EXPECT_EQ(post.status, 405);
  Served::Answer big = served.request("POST", "/metrics", {}, std::string(64 * 1024, 'x'));
  EXPECT_TRUE(big.status == 405 || big.status == 413) << big.status;
  EXPECT_EQ(served.request("GET", "/admin").status, 404);
  EXPECT_EQ(served.request("GET", "/metrics").status, 200);  // and it still serves
}

// Prometheus asks for gzip: the answer, sent from the one rendered text without a copy per
// request, is compressed when asked and the same text when not.
TEST(ServeTest, AScraperThatAsksForGzipGetsTheSameAnswerCompressed) {
  Served served({"--interval", "200", std::to_string(::getpid())});
  ASSERT_NE(served.port(), 0);
  std::string plain;
  for (int i = 0; i < 50 && plain.find("memdx_process_rss_bytes{") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    plain = served.metrics();
  }
  ASSERT_NE(plain.find("memdx_process_rss_bytes{"), std::string::npos) << plain;
  httplib::Client client("127.0.0.1", served.port());
  client.set_decompress(false);
  auto raw = client.Get("/metrics", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 200);
  EXPECT_EQ(raw->get_header_value("Content-Encoding"), "gzip");
  ASSERT_GE(raw->body.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(raw->body[0]), 0x1f);  // the gzip magic
  EXPECT_EQ(static_cast<unsigned char>(raw->body[1]), 0x8b);
  EXPECT_LT(raw->body.size(), plain.size() / 2);
  httplib::Client decoding("127.0.0.1", served.port());
  auto decoded = decoding.Get("/metrics", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(decoded);
  EXPECT_NE(decoded->body.find("memdx_process_rss_bytes{"), std::string::npos);
  EXPECT_EQ(decoded->body.substr(decoded->body.size() - 1), "\n");
}

TEST(ServeTest, ItServesOnIpv6LoopbackToo) {
  int probe = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 loopback{};
  loopback.sin6_family = AF_INET6;
  loopback.sin6_addr = in6addr_loopback;
  bool has_ipv6 = probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&loopback), sizeof(loopback)) == 0;
  if (probe >= 0) ::close(probe);
  if (!has_ipv6) GTEST_SKIP() << "this kernel has no IPv6 loopback";
  Behaving flat("flat", 30);
  Served served({"--interval", "200", std::to_string(flat.pid())}, {}, "[::1]:0");
  ASSERT_GT(served.port(), 0) << served.err();
  EXPECT_EQ(served.err().find("beyond loopback"), std::string::npos) << served.err();
  double rss = sample_of(served.metrics(), "memdx_process_rss_bytes", flat.pid()).value_or(0);
  double kernel = vm_rss_bytes(flat.pid());
  EXPECT_NEAR(rss, kernel, kernel * 0.1 + (1 << 20));
  EXPECT_EQ(nlohmann::json::parse(served.request("GET", "/health").body)["status"], "ok");
  EXPECT_EQ(served.stop(), 0) << served.err();
}

TEST(ServeTest, ASecondInstanceOnTheSamePortFailsWithOneLine) {
  Behaving flat("flat", 30);
  Served served({std::to_string(flat.pid())});
  ASSERT_GT(served.port(), 0) << served.err();
  Finished second = run_for(
      {memdx_path(), "serve", "--listen", "127.0.0.1:" + std::to_string(served.port()), std::to_string(flat.pid())},
      20);
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_EQ(line_count(second.err), 1u) << second.err;
  EXPECT_NE(second.err.find("in use"), std::string::npos) << second.err;
  EXPECT_EQ(served.request("GET", "/metrics").status, 200);  // the first one is untouched
}

TEST(ServeTest, BadArgumentsAreOneLineUsageErrors) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"top:0"},
                                             {"top:x"},
                                             {"cgroup:relative/path"},
                                             {"0"},
                                             {"--listen", "localhost", "1"},
                                             {"--listen", "127.0.0.1:70000", "1"},
                                             {"--listen", "my-host:9464", "1"},
                                             {"--interval", "5", "1"},
                                             {}}) {
    std::vector<std::string> argv = {memdx_path(), "serve"};
    argv.insert(argv.end(), args.begin(), args.end());
    Finished result = run_for(argv, 20);
    EXPECT_EQ(result.exit_code, 2) << argv.back() << ": " << result.err;
    EXPECT_EQ(line_count(result.err), 1u) << result.err;
    EXPECT_EQ(result.err.rfind("memdx: ", 0), 0u) << result.err;
  }
}

// The first child of `pid` (from /proc/PID/task/PID/children), within 5 s; 0 when none came.
pid_t first_child(pid_t pid) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream children("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
    pid_t child = 0;
    if (children >> child) return child;
    std::this_thread::sleep_for(20ms);
  }
  return 0;
}

TEST(ServeTest, TreeAddsTheDescendants) {
  Behaving parent("child", 30);  // a flat parent whose forked child grows
  pid_t child = first_child(parent.pid());
  ASSERT_GT(child, 0);
  {
    Served served({std::to_string(parent.pid())});
    ASSERT_GT(served.port(), 0) << served.err();
    EXPECT_EQ(served_pids(served), std::set<pid_t>({parent.pid()}));
  }
  Served served({"--tree", std::to_string(parent.pid())});
  ASSERT_GT(served.port(), 0) << served.err();
  EXPECT_EQ(served_pids(served), std::set<pid_t>({parent.pid(), child}));
  std::string text = served.metrics();
  EXPECT_TRUE(sample_of(text, "memdx_process_rss_bytes", parent.pid())) << "named by its pid: " << text;
  // The child came with --tree: labelled by what it is, not by its pid.
  EXPECT_EQ(samples_named(text, "memdx_process_rss_bytes").size(), 2u) << text;
  EXPECT_NE(text.find("replica=\"0\"}"), std::string::npos) << text;
}

// Replicas of the series of processes matched by name, as `metrics` shows them.
std::set<std::string> replicas(const std::string& metrics) {
  std::set<std::string> found;
  for (const std::string& line : samples_named(metrics, "memdx_process_rss_bytes")) {
    if (line.find("name=\"memdx_helper_be\"") == std::string::npos) continue;
    size_t at = line.find("replica=\"");
    if (at != std::string::npos) found.insert(line.substr(at + 9, line.find('"', at + 9) - at - 9));
  }
  return found;
}

TEST(ServeTest, NameAndTopTargetsFollowTheProcessesTheyMatch) {
  // A tag of this test's own in the command lines: other tests run the same helper meanwhile.
  std::string tag = "serve-name-test-" + std::to_string(::getpid());
  auto first = std::make_unique<Behaving>("flat", 30, tag);
  Behaving second("flat", 30, tag);
  {
    // A NAME: every process whose command line matches; memdx itself never (its own command line
    // holds the name too).
    Served served({"--interval", "200", tag});
    ASSERT_GT(served.port(), 0) << served.err();
    std::set<pid_t> pids = served_pids(served);
    EXPECT_EQ(pids.count(first->pid()), 1u);
    EXPECT_EQ(pids.count(second.pid()), 1u);
    EXPECT_EQ(pids.count(served.pid()), 0u);
    // The two share name, command and cgroup: replicas 0 and 1, no pid label.
    std::string text = served.metrics();
    EXPECT_EQ(replicas(text), std::set<std::string>({"0", "1"})) << text;
    EXPECT_EQ(text.find("pid=\"" + std::to_string(first->pid()) + "\""), std::string::npos) << text;
    // A restart: the first ends and a third starts. It is served from the next tick on, and it
    // takes over a replica instead of adding a series.
    first.reset();
    Behaving third("flat", 30, tag);
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (served_pids(served).count(third.pid()) == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(served_pids(served).count(third.pid()), 1u);
    EXPECT_EQ(replicas(served.metrics()), std::set<std::string>({"0", "1"}));
  }
  {
    // top:N: exactly N processes.
    // Three candidates at least, whatever else runs (memdx's own ancestors never count). The
    // largest processes may be short-lived ones of other tests, gone between their choice and
    // their sample: the tick after has three again.
    Behaving fourth("flat", 30);
    Behaving fifth("flat", 30);
    Served served({"--interval", "200", "top:3"});
    ASSERT_GT(served.port(), 0) << served.err();
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (served_pids(served).size() != 3 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(served_pids(served).size(), 3u);
    EXPECT_LE(samples_named(served.metrics(), "memdx_process_rss_bytes").size(), 3u);
  }
}

// The value of the samples of `metric` whose name label is `name`.
std::vector<double> values_named(const std::string& metrics, const std::string& metric, const std::string& name) {
  std::vector<double> values;
  for (const std::string& line : samples_named(metrics, metric)) {
    if (line.find("name=\"" + name + "\"") != std::string::npos)
      values.push_back(std::stod(line.substr(line.rfind(' ') + 1)));
  }
  return values;
}

TEST(ServeTest, TopChoosesByPssSoWorkersThatShareTheirMemoryAreNotTheLargest) {
  // Eight forked workers share 160 MiB (each: RSS over 160 MiB, PSS about 20 MiB) beside one
  // process of 64 MiB of its own. By RSS a worker is the largest; by PSS, what each costs, the
  // other one is. memdx serve runs with them in a PID namespace of their own, whose /proc shows
  // nothing else of the machine to compete for top:1; the workers are also named, to compare.
  // The single one takes its memory 2 s in, after memdx has read its PSS while it was small.
  if (::geteuid() != 0) GTEST_SKIP() << "a PID namespace of its own needs root";
  TempDir dir;
  std::string fixture = dir.path() + "/sharing.py";
  ASSERT_TRUE(memdx_test::write_text(fixture, R"(
import mmap, os, sys, time
MiB = 1 << 20
if sys.argv[1] == 'shared':
    region = mmap.mmap(-1, 160 * MiB, flags=mmap.MAP_SHARED)
    for i in range(0, len(region), 4096):
        region[i] = 1
    for _ in range(7):
        if os.fork() == 0:
            total = sum(region[i] for i in range(0, len(region), 4096))
            break
    name = 'shared-worker'
else:
    time.sleep(2)  # small at memdx's first ticks, when top:1 reads its PSS first
    block = bytearray(64 * MiB)
    for i in range(0, len(block), 4096):
        block[i] = 1
    name = 'private-one'
with open('/proc/self/comm', 'w') as comm:
    comm.write(name)
time.sleep(300)
)"));
  std::vector<std::string> in_namespace = {"/usr/bin/unshare",
                                           "--pid",
                                           "--fork",
                                           "--mount-proc",
                                           "--kill-child=SIGKILL",
                                           "/bin/sh",
                                           "-c",
                                           "python3 \"$0\" shared & python3 \"$0\" private & sleep 1; exec \"$@\"",
                                           fixture};
  Served served({"--interval", "200", "top:1", "shared-worker"}, in_namespace);
  ASSERT_GT(served.port(), 0) << served.err();
  std::string text = metrics_until(
      served,
      [](const std::string& m) {
        std::vector<double> single = values_named(m, "memdx_process_pss_bytes", "private-one");
        return values_named(m, "memdx_process_pss_bytes", "shared-worker").size() == 8 && single.size() == 1 &&
               single[0] > 64.0 * (1 << 20);  // and done taking its memory
      },
      30s);
  std::vector<double> private_pss = values_named(text, "memdx_process_pss_bytes", "private-one");
  std::vector<double> private_rss = values_named(text, "memdx_process_rss_bytes", "private-one");
  std::vector<double> worker_pss = values_named(text, "memdx_process_pss_bytes", "shared-worker");
  std::vector<double> worker_rss = values_named(text, "memdx_process_rss_bytes", "shared-worker");
  ASSERT_EQ(private_pss.size(), 1u) << "top:1 is the process with the most PSS\n" << text;
  ASSERT_EQ(private_rss.size(), 1u) << text;
  ASSERT_EQ(worker_pss.size(), 8u) << text;
  ASSERT_EQ(worker_rss.size(), 8u) << text;
  // What makes the choice matter: every worker has more RSS and less PSS than the chosen one.
  EXPECT_GT(private_pss[0], 64.0 * (1 << 20));
  for (size_t i = 0; i < worker_rss.size(); ++i) {
    EXPECT_GT(worker_rss[i], private_rss[0]) << text;
    EXPECT_LT(worker_pss[i], private_pss[0] / 2) << text;
  }
}

TEST(ServeTest, ACgroupTargetServesItsProcessesOnly) {
  memdx_test::TestCgroup cgroup(1ull << 30);
  std::string dir = cgroup.v2_dir().empty() ? cgroup.v1_dir() : cgroup.v2_dir();
  if (dir.empty()) GTEST_SKIP() << "no cgroup this test may create (needs root)";
  Behaving inside("flat", 30);
  Behaving outside("flat", 30);
  for (const std::string& each : {cgroup.v1_dir(), cgroup.v2_dir()}) {
    if (!each.empty()) {
      ASSERT_TRUE(memdx_test::write_text(each + "/cgroup.procs", std::to_string(inside.pid())));
    }
  }
  // The path as /proc/PID/cgroup shows it: the unified hierarchy's where there is one.
  std::string path = memdx_test::own_cgroup(cgroup.v2_dir().empty() ? "memory" : "");
  if (path.back() != '/') path += '/';
  path += dir.substr(dir.rfind('/') + 1);
  Served served({"cgroup:" + path});
  ASSERT_GT(served.port(), 0) << served.err();
  EXPECT_EQ(served_pids(served), std::set<pid_t>({inside.pid()}));
  std::string text = served.metrics();
  EXPECT_NE(text.find("cgroup=\"" + path + "\""), std::string::npos) << text;
  // The cgroup's own series: its limit as the test set it, its usage, its PSI.
  EXPECT_NE(text.find("memdx_cgroup_memory_limit_bytes{cgroup=\"" + path + "\"} 1073741824\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("memdx_cgroup_memory_usage_bytes{cgroup=\"" + path + "\"} "), std::string::npos) << text;
  EXPECT_NE(text.find("memdx_cgroup_memory_pressure_avg10_ratio{cgroup=\"" + path + "\",kind=\"some\"} "),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace memdx::test
