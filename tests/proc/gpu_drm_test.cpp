// DRM fdinfo (Documentation/gpu/drm-usage-stats.rst) as amdgpu, i915 and xe print it, and the
// per-device sums over a process's /dev/dri fds. The fixtures under fixtures/drm/ keep the
// kernel's exact layout: the pos/flags/mnt_id/ino lines first, a tab after each colon, and
// amdgpu's "drm-memory-gtt: \t" with its stray space.
#include "proc/gpu_drm.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fixture.h"

namespace memdx::proc {
namespace {

using memdx::testing::fixture_path;
using memdx::testing::kKiB;
using memdx::testing::kMiB;
using memdx::testing::read_fixture;

DrmClient parse_fixture(const char* name) {
  std::optional<DrmClient> client = parse_drm_fdinfo(read_fixture(name));
  EXPECT_TRUE(client.has_value()) << name;
  return client.value_or(DrmClient{});
}

// A client with one region holding `resident` bytes.
DrmClient make_client(const std::string& driver, const std::string& pdev, std::optional<uint64_t> client_id,
                      const std::string& region, uint64_t resident) {
  DrmClient client;
  client.driver = driver;
  client.pdev = pdev;
  client.client_id = client_id;
  client.regions[region].resident = resident;
  return client;
}

// ---- one fdinfo file per driver ------------------------------------------------------------------

TEST(DrmFdinfo, OldAmdgpuReportsOnlyTheDeprecatedMemoryKeys) {
  DrmClient client = parse_fixture("drm/amdgpu-legacy");
  EXPECT_EQ(client.driver, "amdgpu");
  EXPECT_EQ(client.pdev, "0000:03:00.0");
  EXPECT_EQ(client.client_id, 47u);
  EXPECT_EQ(client.device_id(), "amdgpu 0000:03:00.0");

  ASSERT_EQ(client.regions.size(), 3u);
  const DrmRegionBytes& vram = client.regions.at("vram");
  EXPECT_EQ(vram.legacy, 268435456u);  // 262144 KiB
  EXPECT_FALSE(vram.total.has_value());
  EXPECT_FALSE(vram.resident.has_value());
  EXPECT_FALSE(vram.shared.has_value());
  EXPECT_FALSE(vram.purgeable.has_value());
  EXPECT_FALSE(vram.active.has_value());
  EXPECT_EQ(vram.bytes(), 268435456u);
  // "drm-memory-gtt: \t20484 KiB": the space before the tab is the kernel's, not a typo.
  EXPECT_EQ(client.regions.at("gtt").legacy, 20975616u);  // 20484 KiB
  EXPECT_EQ(client.regions.at("cpu").legacy, 12288u);     // 12 KiB

  // 262144 KiB + 20484 KiB + 12 KiB: the GTT and CPU placements are the process's memory too.
  EXPECT_EQ(client.bytes(), 289423360u);
}

TEST(DrmFdinfo, NewAmdgpuPrefersResidentOverTheDeprecatedAlias) {
  DrmClient client = parse_fixture("drm/amdgpu");
  EXPECT_EQ(client.driver, "amdgpu");
  EXPECT_EQ(client.pdev, "0000:03:00.0");
  EXPECT_EQ(client.client_id, 61u);
  // amd-memory-visible-vram, amd-evicted-vram, amd-requested-*, pasid are not drm- keys.
  ASSERT_EQ(client.regions.size(), 3u);

  const DrmRegionBytes& vram = client.regions.at("vram");
  EXPECT_EQ(vram.total, 301 * kMiB);
  EXPECT_EQ(vram.total, 315621376u);
  EXPECT_EQ(vram.shared, 6291456u);      // 6 MiB
  EXPECT_EQ(vram.active, 47185920u);     // 45 MiB
  EXPECT_EQ(vram.resident, 312381440u);  // 305060 KiB
  EXPECT_EQ(vram.purgeable, 0u);         // "0": zero is printed without a unit
  EXPECT_EQ(vram.legacy, 312381440u);
  EXPECT_EQ(vram.bytes(), 312381440u);  // resident, not total: 3164 KiB are evicted

  const DrmRegionBytes& gtt = client.regions.at("gtt");
  EXPECT_EQ(gtt.total, 17846272u);  // 17428 KiB
  EXPECT_EQ(gtt.shared, 2097152u);  // 2 MiB
  EXPECT_EQ(gtt.active, 0u);
  EXPECT_EQ(gtt.resident, 17846272u);
  EXPECT_EQ(gtt.purgeable, 0u);
  EXPECT_EQ(gtt.legacy, 17846272u);

  const DrmRegionBytes& cpu = client.regions.at("cpu");
  EXPECT_EQ(cpu.total, 4096u);
  EXPECT_EQ(cpu.resident, 4096u);
  EXPECT_EQ(cpu.legacy, 4096u);

  // 305060 KiB + 17428 KiB + 4 KiB
  EXPECT_EQ(client.bytes(), 330231808u);
}

TEST(DrmFdinfo, I915IntegratedGpuCountsSystemAndStolenMemory) {
  DrmClient client = parse_fixture("drm/i915");
  EXPECT_EQ(client.driver, "i915");
  EXPECT_EQ(client.pdev, "0000:00:02.0");
  EXPECT_EQ(client.client_id, 112u);
  EXPECT_EQ(client.device_id(), "i915 0000:00:02.0");
  // drm-engine-render/copy/video/video-enhance and drm-engine-capacity-video are not regions.
  ASSERT_EQ(client.regions.size(), 2u);

  const DrmRegionBytes& system = client.regions.at("system0");
  EXPECT_EQ(system.total, 60387328u);  // 58972 KiB
  EXPECT_EQ(system.shared, 8388608u);  // 8 MiB
  EXPECT_EQ(system.active, 0u);
  EXPECT_EQ(system.resident, 52015104u);  // 50796 KiB
  EXPECT_EQ(system.purgeable, 1265664u);  // 1236 KiB
  EXPECT_FALSE(system.legacy.has_value());

  // The region name itself contains a dash: "drm-total-stolen-system0".
  const DrmRegionBytes& stolen = client.regions.at("stolen-system0");
  EXPECT_EQ(stolen.total, 3145728u);  // 3 MiB
  EXPECT_EQ(stolen.shared, 0u);
  EXPECT_EQ(stolen.resident, 3145728u);
  EXPECT_EQ(stolen.purgeable, 0u);

  // 50796 KiB + 3 MiB: an iGPU's memory is system RAM, and it still counts.
  EXPECT_EQ(client.bytes(), 55160832u);
}

TEST(DrmFdinfo, XeReportsSystemGttAndVramRegions) {
  DrmClient client = parse_fixture("drm/xe");
  EXPECT_EQ(client.driver, "xe");
  EXPECT_EQ(client.pdev, "0000:04:00.0");
  EXPECT_EQ(client.client_id, 9u);

  const DrmRegionBytes& system = client.regions.at("system");
  EXPECT_EQ(system.total, 2727936u);  // 2664 KiB
  EXPECT_EQ(system.resident, 2727936u);
  EXPECT_EQ(system.purgeable, 0u);

  // xe prints drm-purgeable- for the system region only.
  const DrmRegionBytes& gtt = client.regions.at("gtt");
  EXPECT_EQ(gtt.total, 14680064u);  // 14 MiB
  EXPECT_EQ(gtt.resident, 14680064u);
  EXPECT_FALSE(gtt.purgeable.has_value());

  const DrmRegionBytes& vram = client.regions.at("vram0");
  EXPECT_EQ(vram.total, 1216348160u);  // 1160 MiB
  EXPECT_EQ(vram.shared, 25165824u);   // 24 MiB
  EXPECT_EQ(vram.active, 0u);
  EXPECT_EQ(vram.resident, 1205866496u);  // 1177604 KiB
  EXPECT_FALSE(vram.purgeable.has_value());

  // 2664 KiB + 14 MiB + 1177604 KiB
  EXPECT_EQ(client.bytes(), 1223274496u);
}

TEST(DrmFdinfo, XeCycleCountersAreNotRegions) {
  DrmClient client = parse_fixture("drm/xe");
  // drm-total-cycles-rcs shares its prefix with drm-total-<region>; read as memory it would add
  // 7655183225 "bytes" per engine class.
  std::vector<std::string> names;
  for (const auto& [name, region] : client.regions) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"gtt", "system", "vram0"}));
  EXPECT_EQ(client.regions.count("cycles-rcs"), 0u);
}

TEST(DrmFdinfo, AnOrdinaryFileIsNotADrmClient) {
  EXPECT_FALSE(parse_drm_fdinfo(read_fixture("drm/not-drm")).has_value());
  EXPECT_FALSE(parse_drm_fdinfo("").has_value());
  // An empty drm-driver names no driver, whatever else the file says.
  EXPECT_FALSE(parse_drm_fdinfo("pos:\t0\ndrm-driver:\t\ndrm-total-vram:\t4 KiB\n").has_value());
}

// ---- values and units ----------------------------------------------------------------------------

TEST(DrmFdinfo, ValuesTakeKiBMiBOrNoUnitForBytes) {
  auto client = parse_drm_fdinfo(
      "drm-driver:\tpanfrost\n"
      "drm-total-a:\t3 MiB\n"
      "drm-total-b:\t1028 KiB\n"
      "drm-total-c:\t4097\n"
      "drm-total-d:\t0\n");
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->regions.at("a").total, 3145728u);
  EXPECT_EQ(client->regions.at("b").total, 1052672u);
  EXPECT_EQ(client->regions.at("c").total, 4097u);
  EXPECT_EQ(client->regions.at("d").total, 0u);
  EXPECT_EQ(client->bytes(), 3145728u + 1052672u + 4097u);
}

TEST(DrmFdinfo, GarbageValuesAreIgnored) {
  auto client = parse_drm_fdinfo(
      "drm-driver:\tamdgpu\n"
      "drm-client-id:\tmany\n"
      "drm-total-vram:\t8 MiB\n"
      "drm-resident-vram:\t12x KiB\n"
      "drm-resident-gtt:\t5 PiB\n"
      "drm-resident-cpu:\t-4 KiB\n"
      "drm-resident-oa:\t\n");
  ASSERT_TRUE(client.has_value());
  EXPECT_FALSE(client->client_id.has_value());
  // Only vram has a valid value; the bad resident leaves its total to count.
  ASSERT_EQ(client->regions.size(), 1u);
  EXPECT_FALSE(client->regions.at("vram").resident.has_value());
  EXPECT_EQ(client->bytes(), 8 * kMiB);
}

TEST(DrmFdinfo, RegionBytesAreResidentElseDeprecatedElseTotal) {
  auto client = parse_drm_fdinfo(
      "drm-driver:\tamdgpu\n"
      "drm-total-vram:\t300 MiB\n"
      "drm-resident-vram:\t200 MiB\n"
      "drm-memory-vram:\t100 KiB\n"
      "drm-total-gtt:\t40 MiB\n"
      "drm-memory-gtt: \t30 KiB\n"
      "drm-total-cpu:\t7 KiB\n"
      "drm-shared-cpu:\t7 KiB\n");
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->regions.at("vram").bytes(), 200 * kMiB);
  EXPECT_EQ(client->regions.at("gtt").bytes(), 30 * kKiB);
  EXPECT_EQ(client->regions.at("cpu").bytes(), 7 * kKiB);
  EXPECT_EQ(client->bytes(), 209753088u);  // 200 MiB + 30 KiB + 7 KiB
}

TEST(DrmFdinfo, DeviceIsTheDriverAloneWithoutAPciAddress) {
  // Platform GPUs (panfrost, msm, v3d) print no drm-pdev.
  auto client = parse_drm_fdinfo("drm-driver:\tpanfrost\ndrm-client-id:\t3\ndrm-total-memory:\t16 MiB\n");
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->pdev, "");
  EXPECT_EQ(client->device_id(), "panfrost");
}

// ---- sums over a process's clients ---------------------------------------------------------------

TEST(DrmFdinfo, SeveralFdsOfOneClientCountOnce) {
  // dup(), fork() and SCM_RIGHTS give one open() several fds, each with the same fdinfo.
  DrmClient client = parse_fixture("drm/amdgpu");
  std::vector<DrmDeviceUsage> usage = sum_drm_clients({client, client, client});
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].device_id, "amdgpu 0000:03:00.0");
  EXPECT_EQ(usage[0].driver, "amdgpu");
  EXPECT_EQ(usage[0].pdev, "0000:03:00.0");
  EXPECT_EQ(usage[0].clients, 1u);
  EXPECT_EQ(usage[0].bytes, 330231808u);
}

TEST(DrmFdinfo, TwoClientsOfOneDeviceAddUp) {
  std::vector<DrmDeviceUsage> usage =
      sum_drm_clients({parse_fixture("drm/amdgpu"), parse_fixture("drm/amdgpu-legacy")});
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].clients, 2u);
  EXPECT_EQ(usage[0].bytes, 619655168u);  // 330231808 + 289423360
  ASSERT_EQ(usage[0].region_bytes.size(), 3u);
  EXPECT_EQ(usage[0].region_bytes.at("vram"), 580816896u);  // 305060 KiB + 262144 KiB
  EXPECT_EQ(usage[0].region_bytes.at("gtt"), 38821888u);    // 17428 KiB + 20484 KiB
  EXPECT_EQ(usage[0].region_bytes.at("cpu"), 16384u);       // 4 KiB + 12 KiB
}

TEST(DrmFdinfo, ClientsOfTwoDevicesGiveTwoEntries) {
  // Two GPUs of one driver; the same client id on both must not merge them.
  std::vector<DrmDeviceUsage> usage = sum_drm_clients({
      make_client("amdgpu", "0000:03:00.0", 5, "vram", 96 * kMiB),
      make_client("amdgpu", "0000:0a:00.0", 5, "vram", 40 * kMiB),
      make_client("amdgpu", "0000:03:00.0", 8, "gtt", 6 * kMiB),
  });
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage[0].device_id, "amdgpu 0000:03:00.0");
  EXPECT_EQ(usage[0].clients, 2u);
  EXPECT_EQ(usage[0].bytes, 106954752u);  // 96 MiB + 6 MiB
  EXPECT_EQ(usage[0].region_bytes.at("vram"), 100663296u);
  EXPECT_EQ(usage[0].region_bytes.at("gtt"), 6291456u);
  EXPECT_EQ(usage[1].device_id, "amdgpu 0000:0a:00.0");
  EXPECT_EQ(usage[1].pdev, "0000:0a:00.0");
  EXPECT_EQ(usage[1].clients, 1u);
  EXPECT_EQ(usage[1].bytes, 41943040u);  // 40 MiB
  EXPECT_EQ(usage[1].region_bytes.count("gtt"), 0u);
}

TEST(DrmFdinfo, ClientsWithoutAnIdCountPerFd) {
  // Without drm-client-id two fds cannot be told to be one client: count each.
  DrmClient client = make_client("v3d", "", std::nullopt, "memory", 3 * kMiB);
  std::vector<DrmDeviceUsage> usage = sum_drm_clients({client, client});
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].device_id, "v3d");
  EXPECT_EQ(usage[0].clients, 2u);
  EXPECT_EQ(usage[0].bytes, 6291456u);
  EXPECT_EQ(usage[0].region_bytes.at("memory"), 6291456u);
}

TEST(DrmFdinfo, NoClientsGiveNoDevices) {
  EXPECT_TRUE(sum_drm_clients({}).empty());
}

// ---- read_drm_usage over a proc tree -------------------------------------------------------------

TEST(DrmFdinfo, ReadsEachFdinfoOfAProcessAndSumsPerDevice) {
  // fds 3 and 4: one amdgpu client (id 61); 5: a second amdgpu client (id 62) on the same GPU;
  // 6: an i915 client; 99 was closed before its fdinfo was read.
  std::vector<DrmDeviceUsage> usage = read_drm_usage(ProcFs(fixture_path("drm/procroot")), 4242, {3, 4, 5, 6, 99});
  ASSERT_EQ(usage.size(), 2u);

  EXPECT_EQ(usage[0].device_id, "amdgpu 0000:03:00.0");
  EXPECT_EQ(usage[0].clients, 2u);
  EXPECT_EQ(usage[0].bytes, 399437824u);                    // 330231808 + 64 MiB + 2 MiB
  EXPECT_EQ(usage[0].region_bytes.at("vram"), 379490304u);  // 305060 KiB + 64 MiB
  EXPECT_EQ(usage[0].region_bytes.at("gtt"), 19943424u);    // 17428 KiB + 2 MiB
  EXPECT_EQ(usage[0].region_bytes.at("cpu"), 4096u);

  EXPECT_EQ(usage[1].device_id, "i915 0000:00:02.0");
  EXPECT_EQ(usage[1].clients, 1u);
  EXPECT_EQ(usage[1].bytes, 55160832u);
  EXPECT_EQ(usage[1].region_bytes.at("system0"), 52015104u);
  EXPECT_EQ(usage[1].region_bytes.at("stolen-system0"), 3145728u);
}

TEST(DrmFdinfo, AProcessWithoutTheFdsGivesNoDevices) {
  EXPECT_TRUE(read_drm_usage(ProcFs(fixture_path("drm/procroot")), 4242, {99}).empty());
  EXPECT_TRUE(read_drm_usage(ProcFs(fixture_path("drm/procroot")), 4343, {3}).empty());
}

}  // namespace
}  // namespace memdx::proc
