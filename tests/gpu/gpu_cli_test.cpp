// `memdx inspect` with GPU memory, through the stand-in libnvidia-ml.so.1 named by
// $MEMDX_NVML_LIBRARY (as a driver installed off the library search path would be): the bytes the
// stand-in gives a real process come back in the JSON and the text, and without the library the
// GPU is "not measured", never zero.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "integration/harness.h"
#include "serve/served.h"

namespace memdx::test {
namespace {

using nlohmann::json;

std::string standin(const char* variant) {
  return std::string(MEMDX_NVML_STANDIN_DIR) + "/nvml-" + variant + "/libnvidia-ml.so.1";
}

// A process that only sleeps: the GPU memory the stand-in gives it is the only GPU memory it has.
class Sleeper {
 public:
  Sleeper() {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::pause();
      ::_exit(0);
    }
  }
  ~Sleeper() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  Sleeper(const Sleeper&) = delete;
  Sleeper& operator=(const Sleeper&) = delete;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

class GpuInspect : public ::testing::Test {
 protected:
  void SetUp() override {
    state_ = std::filesystem::temp_directory_path() / ("memdx-nvml-cli-" + std::to_string(::getpid()));
    ::setenv("MEMDX_NVML_STANDIN_STATE", state_.c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("MEMDX_NVML_STANDIN_STATE");
    ::unsetenv("MEMDX_NVML_LIBRARY");
    std::filesystem::remove(state_);
  }
  std::filesystem::path state_;
};

TEST_F(GpuInspect, ShowsTheGpuMemoryTheDriverCountsForTheProcess) {
  Sleeper sleeper;
  std::ofstream(state_) << "device 0 150754820096 NVIDIA H200\n"
                        << "process 0 " << sleeper.pid() << " 3221225472 0\n"  // 3 GiB
                        << "process 0 999999 1073741824 0\n";                  // another user's job
  ::setenv("MEMDX_NVML_LIBRARY", standin("full").c_str(), 1);

  CommandResult r = run_memdx({"inspect", "--json", std::to_string(sleeper.pid())});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json report = json::parse(r.out);
  const json& p = report["processes"][0];
  EXPECT_EQ(p["gpu_bytes"], 3221225472u);
  ASSERT_EQ(p["gpu"].size(), 1u);
  EXPECT_EQ(p["gpu"][0]["device"], "nvidia0");
  EXPECT_EQ(report["totals"]["gpu_bytes"], 3221225472u);
  ASSERT_EQ(report["gpu"]["devices"].size(), 1u);
  const json& device = report["gpu"]["devices"][0];
  EXPECT_EQ(device["name"], "NVIDIA H200");
  EXPECT_EQ(device["source"], "nvml");
  EXPECT_EQ(device["total_bytes"], 150754820096u);
  EXPECT_EQ(device["used_bytes"], uint64_t{3221225472} + uint64_t{1073741824})
      << "the device's use counts every process";
  EXPECT_EQ(report["gpu"]["nvml"], "measured");

  CommandResult text = run_memdx({"inspect", std::to_string(sleeper.pid())});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("GPU     3.00 GiB    on nvidia0 3.00 GiB"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("nvidia0 (NVIDIA H200): 4.00 GiB used of 140 GiB by every process (nvml)"), std::string::npos)
      << text.out;
}

TEST_F(GpuInspect, AProcessNvmlDoesNotListHasNoneAndNoLibraryMeansNotMeasured) {
  Sleeper sleeper;
  std::ofstream(state_) << "device 0 150754820096 NVIDIA H200\nprocess 0 999999 1073741824 0\n";
  ::setenv("MEMDX_NVML_LIBRARY", standin("full").c_str(), 1);
  json measured = json::parse(run_memdx({"inspect", "--json", std::to_string(sleeper.pid())}).out);
  EXPECT_EQ(measured["processes"][0]["gpu_bytes"], 0u) << "NVML answered: none on the GPU";

  ::setenv("MEMDX_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1);
  CommandResult r = run_memdx({"inspect", "--json", std::to_string(sleeper.pid())});
  ASSERT_EQ(r.exit_code, 0) << r.err << " (a missing library is not an error)";
  json missing = json::parse(r.out);
  EXPECT_TRUE(missing["processes"][0]["gpu_bytes"].is_null()) << "not measured is null, never 0";
  EXPECT_TRUE(missing["processes"][0]["gpu"].is_null());
  EXPECT_NE(missing["gpu"]["nvml"].get<std::string>().find("not found"), std::string::npos);
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST_F(GpuInspect, ALibraryMissingAProcessListSaysSoAndMeasuresNothing) {
  Sleeper sleeper;
  std::ofstream(state_) << "device 0 150754820096 NVIDIA H200\nprocess 0 " << sleeper.pid() << " 1073741824 0\n";
  ::setenv("MEMDX_NVML_LIBRARY", standin("nolists").c_str(), 1);
  CommandResult r = run_memdx({"inspect", std::to_string(sleeper.pid())});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("GPU      not measured: " + standin("nolists") + " lacks nvmlDeviceGetComputeRunningProcesses"),
            std::string::npos)
      << r.out;
}

TEST_F(GpuInspect, ServeExportsEachProcesssGpuMemoryByDevice) {
  Sleeper sleeper;
  std::ofstream(state_) << "device 0 150754820096 NVIDIA H200\n"
                        << "process 0 " << sleeper.pid() << " 3221225472 0\n";
  ::setenv("MEMDX_NVML_LIBRARY", standin("full").c_str(), 1);
  Served served({"--interval", "200", std::to_string(sleeper.pid())});
  ASSERT_NE(served.port(), 0);
  std::string metrics;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    metrics = served.metrics();
    if (metrics.find("memdx_process_gpu_bytes{") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string expected = "memdx_process_gpu_bytes{pid=\"" + std::to_string(sleeper.pid()) + "\"";
  size_t at = metrics.find(expected);
  ASSERT_NE(at, std::string::npos) << metrics;
  std::string line = metrics.substr(at, metrics.find('\n', at) - at);
  EXPECT_NE(line.find("device=\"nvidia0\"} 3221225472"), std::string::npos) << line;
  EXPECT_NE(metrics.find("memdx_gpu_memory_total_bytes{device=\"nvidia0\",name=\"NVIDIA H200\"} 150754820096"),
            std::string::npos)
      << metrics;
}

TEST_F(GpuInspect, ServeSeesAGrowingGpuAllocatorAsALeak) {
  Sleeper sleeper;
  std::ofstream(state_) << "device 0 150754820096 NVIDIA H200\n"
                        << "process 0 " << sleeper.pid() << " 1073741824 20971520\n";  // +20 MiB/s
  ::setenv("MEMDX_NVML_LIBRARY", standin("full").c_str(), 1);
  Served served({"--interval", "200", std::to_string(sleeper.pid())});
  ASSERT_NE(served.port(), 0);
  std::optional<double> leak;
  std::string metrics;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    metrics = served.metrics();
    leak = sample_of(metrics, "memdx_leak", sleeper.pid());
    if (leak == 1.0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_EQ(leak, 1.0) << metrics;
  std::optional<double> rate = sample_of(metrics, "memdx_process_growth_bytes_per_second", sleeper.pid());
  ASSERT_TRUE(rate.has_value());
  EXPECT_NEAR(*rate / 1048576.0, 20.0, 4.0) << "the GPU series is the one that grows";
}

// `memdx watch` of a process whose GPU memory the stand-in makes grow (or not): the same trend
// rules as every other series decide, and the verdict file keeps it for `memdx report`.
class GpuWatch : public GpuInspect {
 protected:
  json watch(pid_t pid, std::string& headline) {
    std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("memdx-gpu-watch-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::string recording = (dir / "gpu.memdx").string();
    std::string verdict = (dir / "verdict.json").string();
    Finished r = run_for({memdx_path(), "watch", "--quiet", "--interval", "100", "--duration", "10", "--out", recording,
                          "--json", verdict, std::to_string(pid)},
                         60);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    headline = r.out;
    std::ifstream in(verdict);
    json out = json::parse(in, nullptr, /*allow_exceptions=*/false);
    // The recording keeps the series: reading it again gives the same judgement.
    std::string again = (dir / "again.json").string();
    CommandResult report = run_memdx({"report", recording, "--json", again});
    EXPECT_EQ(report.exit_code, 0) << report.err;
    std::ifstream again_in(again);
    json reread = json::parse(again_in, nullptr, /*allow_exceptions=*/false);
    EXPECT_EQ(reread["hypotheses"], out["hypotheses"]) << "the recording lost the GPU series";
    std::filesystem::remove_all(dir);
    return out;
  }
};

const json* hypothesis(const json& verdict, const std::string& name, pid_t pid) {
  for (const json& h : verdict["hypotheses"]) {
    if (h["name"] == name && h["pid"] == pid) return &h;
  }
  return nullptr;
}

TEST_F(GpuWatch, GrowingGpuMemoryIsALeakOnItsDeviceWhileTheHostSideIsFlat) {
  Sleeper sleeper;
  std::ofstream(state_) << "device 0 150754820096 NVIDIA H200\n"
                        << "process 0 " << sleeper.pid() << " 1073741824 20971520\n";  // 1 GiB + 20 MiB/s
  ::setenv("MEMDX_NVML_LIBRARY", standin("full").c_str(), 1);
  std::string out;
  json verdict = watch(sleeper.pid(), out);
  const json* gpu = hypothesis(verdict, "gpu_growth", sleeper.pid());
  ASSERT_NE(gpu, nullptr) << verdict.dump(2);
  EXPECT_EQ((*gpu)["status"], "confirmed") << (*gpu)["evidence"];
  bool found = false;
  for (const json& f : verdict["findings"]) {
    if (f["kind"] != "gpu_growth") continue;
    found = true;
    EXPECT_EQ(f["severity"], "leak");
    EXPECT_EQ(f["series"], "gpu_bytes");
    EXPECT_NEAR(f["rate_per_s"].get<double>() / 1048576.0, 20.0, 4.0);
    EXPECT_EQ(f["devices"], json::array({"nvidia0 (NVIDIA H200)"}));
  }
  EXPECT_TRUE(found) << verdict["findings"].dump(2);
  std::string expected = "LEAK: GPU memory of pid " + std::to_string(sleeper.pid());
  EXPECT_NE(out.find(expected), std::string::npos) << out;
  // watch traces no heap: the anonymous memory it measures holds the malloc heap.
  EXPECT_NE(out.find("on nvidia0 (NVIDIA H200); anonymous memory (the malloc heap included) is flat"),
            std::string::npos)
      << out;
}

TEST_F(GpuWatch, FlatGpuMemoryIsEliminated) {
  Sleeper sleeper;
  std::ofstream(state_) << "device 0 150754820096 NVIDIA H200\n"
                        << "process 0 " << sleeper.pid() << " 1073741824 0\n";
  ::setenv("MEMDX_NVML_LIBRARY", standin("full").c_str(), 1);
  std::string out;
  json verdict = watch(sleeper.pid(), out);
  const json* gpu = hypothesis(verdict, "gpu_growth", sleeper.pid());
  ASSERT_NE(gpu, nullptr) << verdict.dump(2);
  EXPECT_EQ((*gpu)["status"], "eliminated") << (*gpu)["evidence"];
  EXPECT_NE((*gpu)["evidence"].get<std::string>().find("GPU memory"), std::string::npos) << (*gpu)["evidence"];
}

TEST_F(GpuWatch, WithoutASourceGpuMemoryIsNotMeasured) {
  Sleeper sleeper;
  ::setenv("MEMDX_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1);
  std::string out;
  json verdict = watch(sleeper.pid(), out);
  const json* gpu = hypothesis(verdict, "gpu_growth", sleeper.pid());
  ASSERT_NE(gpu, nullptr) << verdict.dump(2);
  EXPECT_EQ((*gpu)["status"], "not_measured") << (*gpu)["evidence"];
}

}  // namespace
}  // namespace memdx::test
