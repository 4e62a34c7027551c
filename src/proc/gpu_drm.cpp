#include "proc/gpu_drm.h"

#include <set>
#include <tuple>
#include <utility>

#include "proc/kv.h"

namespace memdx::proc {
namespace {

// "1024 KiB", "3 MiB", "4096" (bytes): the units drm-usage-stats.rst allows for memory keys.
std::optional<uint64_t> parse_drm_bytes(std::string_view value) {
  value = trim(value);
  size_t digits = 0;
  while (digits < value.size() && value[digits] >= '0' && value[digits] <= '9') ++digits;
  std::optional<uint64_t> number = parse_u64(value.substr(0, digits));
  if (!number) return std::nullopt;
  std::string_view unit = trim(value.substr(digits));
  if (unit.empty()) return number;
  if (unit == "KiB") return saturating_mul(*number, uint64_t{1} << 10);
  if (unit == "MiB") return saturating_mul(*number, uint64_t{1} << 20);
  if (unit == "GiB") return saturating_mul(*number, uint64_t{1} << 30);
  return std::nullopt;
}

}  // namespace

uint64_t DrmRegionBytes::bytes() const {
  if (resident) return *resident;
  if (legacy) return *legacy;
  return total.value_or(0);
}

uint64_t DrmClient::bytes() const {
  uint64_t sum = 0;
  for (const auto& [name, region] : regions) sum = saturating_add(sum, region.bytes());
  return sum;
}

std::string DrmClient::device_id() const {
  return pdev.empty() ? driver : driver + " " + pdev;
}

std::optional<DrmClient> parse_drm_fdinfo(std::string_view text) {
  DrmClient client;
  bool is_drm = false;
  // The memory keys; what follows the prefix names the region.
  static constexpr std::pair<std::string_view, std::optional<uint64_t> DrmRegionBytes::*> kRegionKeys[] = {
      {"drm-total-", &DrmRegionBytes::total},   {"drm-resident-", &DrmRegionBytes::resident},
      {"drm-shared-", &DrmRegionBytes::shared}, {"drm-purgeable-", &DrmRegionBytes::purgeable},
      {"drm-active-", &DrmRegionBytes::active}, {"drm-memory-", &DrmRegionBytes::legacy},
  };
  for (std::string_view line : split_lines(text)) {
    std::optional<KeyValue> kv = split_key_value(line);
    if (!kv || !kv->key.starts_with("drm-")) continue;
    if (kv->key == "drm-driver") {
      client.driver = std::string(kv->value);
      is_drm = !client.driver.empty();
      continue;
    }
    if (kv->key == "drm-pdev") {
      client.pdev = std::string(kv->value);
      continue;
    }
    if (kv->key == "drm-client-id") {
      client.client_id = parse_u64(kv->value);
      continue;
    }
    for (const auto& [prefix, member] : kRegionKeys) {
      if (!kv->key.starts_with(prefix) || kv->key.size() == prefix.size()) continue;
      // drm-total-cycles-<engine> (xe) is a counter of GPU cycles, not a memory region.
      if (prefix == "drm-total-" && kv->key.starts_with("drm-total-cycles-")) break;
      if (std::optional<uint64_t> bytes = parse_drm_bytes(kv->value)) {
        client.regions[std::string(kv->key.substr(prefix.size()))].*member = *bytes;
      }
      break;
    }
  }
  if (!is_drm) return std::nullopt;
  return client;
}

std::vector<DrmDeviceUsage> sum_drm_clients(const std::vector<DrmClient>& clients) {
  std::map<std::string, DrmDeviceUsage> by_device;
  // A client (one open() of the device node) is reached by every fd dup()ed or inherited from it,
  // and each of those fds shows the same figures: count it once.
  std::set<std::tuple<std::string, uint64_t>> counted;
  for (const DrmClient& client : clients) {
    std::string device = client.device_id();
    if (client.client_id && !counted.emplace(device, *client.client_id).second) continue;
    DrmDeviceUsage& usage = by_device[device];
    usage.device_id = device;
    usage.driver = client.driver;
    usage.pdev = client.pdev;
    ++usage.clients;
    for (const auto& [name, region] : client.regions) {
      usage.region_bytes[name] = saturating_add(usage.region_bytes[name], region.bytes());
    }
    usage.bytes = saturating_add(usage.bytes, client.bytes());
  }
  std::vector<DrmDeviceUsage> out;
  out.reserve(by_device.size());
  for (auto& [device, usage] : by_device) out.push_back(std::move(usage));
  return out;
}

std::vector<DrmDeviceUsage> read_drm_usage(const ProcFs& fs, pid_t pid, const std::vector<int>& drm_fds) {
  std::vector<DrmClient> clients;
  for (int fd : drm_fds) {
    auto text = fs.read_pid_file(pid, "fdinfo/" + std::to_string(fd));
    if (!text.ok()) continue;
    if (std::optional<DrmClient> client = parse_drm_fdinfo(*text)) clients.push_back(std::move(*client));
  }
  return sum_drm_clients(clients);
}

}  // namespace memdx::proc
