// NVML through the stand-in libnvidia-ml.so.1 (tests/gpu/nvml_standin.c): the figures the test
// writes come back per device and per process, older drivers' process lists are used where the
// newest is missing, and a missing library or symbol means "not measured", never an error.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "proc/gpu.h"

namespace memdx::proc {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

std::string standin(const char* variant) {
  return std::string(MEMDX_NVML_STANDIN_DIR) + "/nvml-" + variant + "/libnvidia-ml.so.1";
}

// The stand-in's state file, named in the environment the library reads it from.
class NvmlStandin : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() / ("memdx-nvml-" + std::to_string(::getpid()));
    ::setenv("MEMDX_NVML_STANDIN_STATE", path_.c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("MEMDX_NVML_STANDIN_STATE");
    std::filesystem::remove(path_);
  }
  void write(const std::string& text) { std::ofstream(path_) << text; }

  std::filesystem::path path_;
  ProcFs fs_;
};

NvidiaCandidate candidate(pid_t pid, std::optional<bool> holds_nvidia = std::nullopt) {
  return NvidiaCandidate{pid, {pid}, holds_nvidia};
}

TEST_F(NvmlStandin, DevicesAndProcessesComeBackAsTheDriverGivesThem) {
  write(
      "device 0 150754820096 NVIDIA H200\n"
      "device 1 85899345920 NVIDIA A100-SXM4-80GB\n"
      "process 0 4242 1073741824 0\n"
      "process 1 4242 536870912 0 graphics\n"
      "process 1 5151 268435456 0\n");
  GpuProbe probe(fs_, standin("full"));
  ASSERT_TRUE(probe.nvml_available()) << probe.nvml_note();
  probe.refresh({candidate(4242), candidate(5151)});
  std::vector<GpuDeviceReading> devices = probe.devices();
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0].id, "nvidia0");
  EXPECT_EQ(devices[0].name, "NVIDIA H200");
  EXPECT_EQ(devices[0].total_bytes, 150754820096u);
  EXPECT_EQ(devices[1].name, "NVIDIA A100-SXM4-80GB");
  EXPECT_EQ(devices[1].total_bytes, 85899345920u);
  EXPECT_EQ(devices[1].used_bytes, 536870912u + 268435456u);

  std::optional<std::vector<ProcessGpuReading>> usage = probe.usage(4242, nullptr);
  ASSERT_TRUE(usage.has_value());
  ASSERT_EQ(usage->size(), 2u) << "a graphics context counts like a compute one";
  EXPECT_EQ((*usage)[0].device_id, "nvidia0");
  EXPECT_EQ((*usage)[0].bytes, 1024 * kMiB);
  EXPECT_EQ((*usage)[1].device_id, "nvidia1");
  EXPECT_EQ((*usage)[1].bytes, 512 * kMiB);

  std::optional<std::vector<ProcessGpuReading>> none = probe.usage(6000, nullptr);
  ASSERT_TRUE(none.has_value()) << "NVML answered: a process it does not list has no GPU memory";
  EXPECT_TRUE(none->empty());
}

TEST_F(NvmlStandin, GrowingMemoryGrowsBetweenRefreshes) {
  write("device 0 85899345920 NVIDIA A100\nprocess 0 4242 104857600 209715200\n");  // 100 MiB + 200 MiB/s
  GpuProbe probe(fs_, standin("full"));
  ASSERT_TRUE(probe.nvml_available()) << probe.nvml_note();
  probe.refresh({candidate(4242)});
  uint64_t first = probe.usage(4242, nullptr).value().at(0).bytes;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  probe.refresh({candidate(4242)});
  uint64_t second = probe.usage(4242, nullptr).value().at(0).bytes;
  EXPECT_GE(first, 100 * kMiB);
  EXPECT_GE(second, first + 40 * kMiB) << "300 ms at 200 MiB/s";
}

TEST_F(NvmlStandin, AnOlderDriverWithoutTheV3ListsIsReadThroughV2) {
  write("device 0 85899345920 NVIDIA A100\nprocess 0 4242 1073741824 0\n");
  GpuProbe probe(fs_, standin("v2"));
  ASSERT_TRUE(probe.nvml_available()) << probe.nvml_note();
  EXPECT_EQ(probe.nvml_process_list_version(), 2);
  probe.refresh({candidate(4242)});
  EXPECT_EQ(probe.usage(4242, nullptr).value().at(0).bytes, 1024 * kMiB);
}

TEST_F(NvmlStandin, ALibraryWithoutProcessListsMeasuresNothingAndSaysWhy) {
  write("device 0 85899345920 NVIDIA A100\nprocess 0 4242 1073741824 0\n");
  GpuProbe probe(fs_, standin("nolists"));
  EXPECT_FALSE(probe.nvml_available());
  EXPECT_NE(probe.nvml_note().find("lacks nvmlDeviceGetComputeRunningProcesses"), std::string::npos)
      << probe.nvml_note();
  probe.refresh({candidate(4242)});
  EXPECT_FALSE(probe.usage(4242, nullptr).has_value()) << "not measured, not zero";
  EXPECT_TRUE(probe.devices().empty());
}

TEST_F(NvmlStandin, NoLibraryMeansNotMeasured) {
  GpuProbe probe(fs_, std::string(MEMDX_NVML_STANDIN_DIR) + "/nowhere/libnvidia-ml.so.1");
  EXPECT_FALSE(probe.nvml_available());
  EXPECT_NE(probe.nvml_note().find("not found"), std::string::npos) << probe.nvml_note();
  probe.refresh({candidate(4242)});
  EXPECT_FALSE(probe.usage(4242, nullptr).has_value());
}

TEST_F(NvmlStandin, AContainerProcessIsPairedWithItsHostPid) {
  // NVML names host pid 98765; memdx, in the container, sees the process as pid 12.
  write("device 0 85899345920 NVIDIA A100\nprocess 0 98765 2147483648 0\n");
  GpuProbe probe(fs_, standin("full"), /*host_pid_namespace=*/false);
  ASSERT_TRUE(probe.nvml_available()) << probe.nvml_note();
  probe.refresh({candidate(1, false), candidate(12, true)});
  EXPECT_TRUE(probe.unmatched().empty());
  EXPECT_EQ(probe.usage(12, nullptr).value().at(0).bytes, 2048 * kMiB);

  // Two processes hold the device: which one is host pid 98765 cannot be told, so neither gets it.
  probe.refresh({candidate(12, true), candidate(13, true)});
  EXPECT_TRUE(probe.usage(12, nullptr).value().empty());
  EXPECT_TRUE(probe.usage(13, nullptr).value().empty());
  ASSERT_EQ(probe.unmatched().size(), 1u);
  EXPECT_EQ(probe.unmatched()[0].host_pid, 98765u);
}

TEST_F(NvmlStandin, InAContainerAPidThatHoldsNoNvidiaDeviceIsNotTheHostProcessOfTheSameNumber) {
  write("device 0 85899345920 NVIDIA A100\nprocess 0 12 2147483648 0\n");
  GpuProbe probe(fs_, standin("full"), /*host_pid_namespace=*/false);
  ASSERT_TRUE(probe.nvml_available()) << probe.nvml_note();
  probe.refresh({candidate(12, false)});
  EXPECT_TRUE(probe.usage(12, nullptr).value().empty());
  probe.refresh({candidate(12, std::nullopt)});  // its fds unknown: the pid is trusted
  EXPECT_EQ(probe.usage(12, nullptr).value().at(0).bytes, 2048 * kMiB);
}

// A process of the DRM fixtures (tests/proc/fixtures/drm/procroot: two fds of one amdgpu client,
// a second amdgpu client, an i915 client), with amdgpu's sysfs totals beside it, and no NVML.
TEST(DrmProbe, AProcessOnTwoDrmDevicesGetsEachDevicesMemoryAndTheDevicesTheirTotals) {
  ProcFs fs(std::string(MEMDX_TEST_DATA_DIR) + "/../proc/fixtures/drm/procroot",
            std::string(MEMDX_TEST_DATA_DIR) + "/fixtures/sys");
  GpuProbe probe(fs, "/nonexistent/libnvidia-ml.so.1");
  probe.refresh({});
  FdCounts fds;
  fds.drm_fds = {3, 4, 5, 6};
  std::optional<std::vector<ProcessGpuReading>> usage = probe.usage(4242, &fds);
  ASSERT_TRUE(usage.has_value()) << "a DRM client measures the process without NVML";
  ASSERT_EQ(usage->size(), 2u);
  EXPECT_EQ((*usage)[0].device_id, "amdgpu 0000:03:00.0");
  EXPECT_EQ((*usage)[0].bytes, 399437824u) << "fds 3 and 4 are one client: counted once";
  EXPECT_EQ((*usage)[1].device_id, "i915 0000:00:02.0");
  EXPECT_EQ((*usage)[1].bytes, 55160832u);

  std::vector<GpuDeviceReading> devices = probe.devices();
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0].source, GpuSource::kDrmFdinfo);
  EXPECT_EQ(devices[0].total_bytes, 17163091968u) << "amdgpu's mem_info_vram_total";
  EXPECT_EQ(devices[0].used_bytes, 1342177280u);
  EXPECT_FALSE(devices[1].total_bytes.has_value()) << "i915 has no such file: not reported, not 0";

  FdCounts none;
  EXPECT_FALSE(probe.usage(4242, &none).has_value()) << "no DRM fd and no NVML: not measured";
}

TEST(HostPids, TheOutermostNamespacePidIsTheHostPid) {
  // memdx sees the host's processes: process 4567 is pid 12 inside its container.
  std::vector<NvidiaCandidate> candidates = {{4567, {4567, 12}, true}, {4600, {4600}, true}};
  auto matched = match_host_pids({4567, 4600}, candidates, /*host_namespace=*/true);
  ASSERT_EQ(matched.size(), 2u);
  EXPECT_EQ(matched[0], (std::pair<uint32_t, pid_t>{4567, 4567}));
  EXPECT_EQ(matched[1], (std::pair<uint32_t, pid_t>{4600, 4600}));
}

TEST(HostPids, InTheHostNamespaceThePidIsNvmlsWhateverItsFdsSay) {
  // Its fds may have been read a moment before it opened the device.
  auto matched = match_host_pids({4600}, {{4600, {4600}, false}}, /*host_namespace=*/true);
  ASSERT_EQ(matched.size(), 1u);
  EXPECT_EQ(matched[0].second, 4600);
}

TEST(HostPids, ThisMachineSaysWhetherItsProcIsTheHostNamespace) {
  // Whichever it is here, /proc answers; a tree without self/ns/pid cannot say.
  EXPECT_TRUE(in_host_pid_namespace("/proc").has_value());
  EXPECT_FALSE(in_host_pid_namespace("/nonexistent").has_value());
}

}  // namespace
}  // namespace memdx::proc
