// serve's pure parts: TARGET parsing, the command template label, label escaping, the format
// negotiation, and a constructed snapshot rendered as Prometheus and OpenMetrics text.
#include <gtest/gtest.h>

#include <stdexcept>

#include "serve/exposition.h"
#include "serve/monitor.h"
#include "serve/server.h"

namespace memdx::serve {
namespace {

TEST(ServeTargets, ParsesEachKind) {
  EXPECT_EQ(parse_target("4242").kind, TargetKind::kPid);
  EXPECT_EQ(parse_target("4242").pid, 4242);
  EXPECT_EQ(parse_target("node").kind, TargetKind::kName);
  EXPECT_EQ(parse_target("node").name, "node");
  TargetSpec cgroup = parse_target("cgroup:/system.slice/ollama.service/");
  EXPECT_EQ(cgroup.kind, TargetKind::kCgroup);
  EXPECT_EQ(cgroup.cgroup_path, "/system.slice/ollama.service");
  EXPECT_EQ(parse_target("top:20").top_count, 20u);
  for (const char* bad :
       {"", "0", "-3", "12abc", "99999999", "top:", "top:0", "top:-1", "top:100001", "cgroup:", "cgroup:x/y"}) {
    EXPECT_THROW(parse_target(bad), std::invalid_argument) << bad;
  }
}

TEST(ServeListen, TakesAnIpv4OrBracketedIpv6AddressAndAPort) {
  ListenAddress v4 = parse_listen("127.0.0.1:9464");
  EXPECT_EQ(v4.host, "127.0.0.1");
  EXPECT_EQ(v4.port, 9464);
  EXPECT_TRUE(v4.loopback());
  ListenAddress v6 = parse_listen("[::1]:0");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 0);
  EXPECT_TRUE(v6.loopback());
  EXPECT_EQ(v6.url_host(), "[::1]");
  EXPECT_FALSE(parse_listen("0.0.0.0:9464").loopback());
  EXPECT_FALSE(parse_listen("[::]:9464").loopback());
  for (const char* bad : {"", "127.0.0.1", ":9464", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:x",
                          "localhost:9464", "[::1:9464", "999.0.0.1:9464"}) {
    EXPECT_THROW(parse_listen(bad), std::invalid_argument) << bad;
  }
}

TEST(ServeLabels, TheCommandTemplateFoldsNumbersAndPaths) {
  EXPECT_EQ(command_template({"/usr/bin/python3.11", "worker.py", "--id", "17"}), "pythonN.N worker.py --id N");
  EXPECT_EQ(command_template({"/usr/bin/python3.11", "worker.py", "--id", "18"}),
            command_template({"python3.11", "worker.py", "--id", "2049"}));
  EXPECT_EQ(command_template({"a\nb"}), "a b");
  std::string long_arg(300, 'x');
  EXPECT_LE(command_template({"prog", long_arg}).size(), 80u);
}

TEST(ServeLabels, ValuesAreEscapedAndValidUtf8) {
  EXPECT_EQ(escape_label_value(R"(a"b\c)"), R"(a\"b\\c)");
  EXPECT_EQ(escape_label_value("a\nb"), "a\\nb");
  EXPECT_EQ(escape_label_value("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(escape_label_value("bad\xFF"), "bad\xEF\xBF\xBD");
  EXPECT_EQ(escape_label_value("\xC3"), "\xEF\xBF\xBD");                                  // cut sequence
  EXPECT_EQ(escape_label_value("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
}

TEST(ServeFormats, OpenMetricsOnlyWhenAskedFor) {
  EXPECT_EQ(negotiate(""), ExpositionFormat::kPrometheusText);
  EXPECT_EQ(negotiate("text/plain;version=0.0.4"), ExpositionFormat::kPrometheusText);
  EXPECT_EQ(negotiate("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
            ExpositionFormat::kOpenMetrics);
}

Snapshot two_processes() {
  Snapshot snapshot;
  snapshot.sequence = 3;
  snapshot.t_unix_ms = 1'796'000'000'000;
  ProcessState leaking;
  leaking.pid = 10;
  leaking.pid_label = true;
  leaking.name = "srv \"x\"";
  leaking.command = "srv --port N";
  leaking.cgroup = "/system.slice/srv.service";
  leaking.sample.rss_bytes = 100 << 20;
  leaking.pss_bytes = 90 << 20;
  leaking.leak = true;
  leaking.confidence = 0.999;
  leaking.growth_bytes_per_second = 3 << 20;
  leaking.seconds_to_limit = 2400;
  proc::FdCounts fds;
  fds.add(proc::FdType::kSocket);
  fds.add(proc::FdType::kSocket);
  fds.add(proc::FdType::kRegular);
  leaking.fds = fds;
  ProcessState steady;
  steady.pid = 11;
  steady.name = "bad\xFF";
  steady.command = "worker --id N";
  steady.replica = 1;
  steady.sample.rss_bytes = 5 << 20;
  snapshot.processes = {leaking, steady};
  CgroupState cgroup;
  cgroup.path = "/system.slice/srv.service";
  cgroup.usage_bytes = 120 << 20;
  cgroup.limit_bytes = 512 << 20;
  cgroup.psi_some_avg10 = 0.25;
  snapshot.cgroups = {cgroup};
  snapshot.mem_total_bytes = 8ull << 30;
  snapshot.mem_available_bytes = 4ull << 30;
  snapshot.psi_some_avg10 = 1.5;
  snapshot.samples_taken = 6;
  snapshot.errors.push_back({"/proc/PID/smaps_rollup", "permission denied", 2});
  return snapshot;
}

TEST(ServeFormats, EveryProcessValueIsASampleWithItsLabels) {
  std::string text = render_metrics(two_processes(), ExpositionFormat::kPrometheusText, 0.002);
  EXPECT_NE(text.find("memdx_process_rss_bytes{pid=\"10\",name=\"srv \\\"x\\\"\",command=\"srv --port N\","
                      "cgroup=\"/system.slice/srv.service\"} 104857600\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("memdx_leak{pid=\"10\""), std::string::npos);
  EXPECT_NE(text.find("memdx_process_seconds_to_memory_limit{pid=\"10\""), std::string::npos);
  EXPECT_EQ(text.find("memdx_process_seconds_to_memory_limit{pid=\"11\""), std::string::npos) << "no limit, no sample";
  EXPECT_EQ(text.find("memdx_process_pss_bytes{pid=\"11\""), std::string::npos) << "not read: absent, not 0";
  EXPECT_NE(text.find(",type=\"socket\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("memdx_system_memory_pressure_avg10_ratio{kind=\"some\"} 0.015\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE memdx_samples_total counter\nmemdx_samples_total 6\n"), std::string::npos);
  // Matched by name: no pid label, a replica number instead.
  EXPECT_NE(text.find("memdx_process_rss_bytes{name=\"bad\xEF\xBF\xBD\",command=\"worker --id N\",cgroup=\"\","
                      "replica=\"1\"} 5242880\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("memdx_cgroup_memory_limit_bytes{cgroup=\"/system.slice/srv.service\"} 536870912\n"),
            std::string::npos);
  EXPECT_NE(text.find("memdx_cgroup_memory_pressure_avg10_ratio{cgroup=\"/system.slice/srv.service\",kind=\"some\"} "
                      "0.0025\n"),
            std::string::npos);
  EXPECT_EQ(text.find("memdx_cgroup_memory_high_bytes{"), std::string::npos) << "no memory.high, no sample";
  EXPECT_EQ(text.find("# EOF"), std::string::npos);

  std::string open = render_metrics(two_processes(), ExpositionFormat::kOpenMetrics, 0.002);
  EXPECT_NE(open.find("# TYPE memdx_samples counter\nmemdx_samples_total 6\n"), std::string::npos) << open;
  EXPECT_EQ(open.substr(open.size() - 6), "# EOF\n");
}

TEST(ServeHealth, SaysStartingOkOrDegradedAndWhy) {
  HealthFacts facts;
  facts.now_unix_ms = 1'796'000'001'000;
  EXPECT_NE(render_health(Snapshot{}, facts).find("\"status\": \"starting\""), std::string::npos);
  Snapshot snapshot = two_processes();
  std::string degraded = render_health(snapshot, facts);
  EXPECT_NE(degraded.find("\"status\": \"degraded\""), std::string::npos) << degraded;
  EXPECT_NE(degraded.find("permission denied"), std::string::npos);
  EXPECT_NE(degraded.find("\"last_sample_age_seconds\": 1.0"), std::string::npos) << degraded;
  snapshot.errors.clear();
  EXPECT_NE(render_health(snapshot, facts).find("\"status\": \"ok\""), std::string::npos);
}

}  // namespace
}  // namespace memdx::serve
