#include "memdx/preflight.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

#include "memdx/error.h"
#include "model/format.h"
#include "proc/procfs.h"

namespace memdx {
namespace {

using model::format_bytes;

// What fits under `limit` once the cgroup's usage is charged; inactive page cache is left out of
// the usage because the kernel drops it before it refuses a charge.
uint64_t room_under(uint64_t limit, const MemoryLimits& limits) {
  uint64_t usage = limits.cgroup_usage_bytes.value_or(0);
  usage -= std::min(usage, limits.cgroup_reclaimable_bytes.value_or(0));
  return limit > usage ? limit - usage : 0;
}

// needed + min_free, saturating: a request of "everything" must not wrap to a small number.
uint64_t required_of(const PreflightRequest& request) {
  uint64_t free_bytes = request.min_free_bytes.value_or(0);
  return request.needed_bytes > UINT64_MAX - free_bytes ? UINT64_MAX : request.needed_bytes + free_bytes;
}

uint64_t in_use(const MemoryLimits& limits) {
  return limits.cgroup_usage_bytes.value_or(0);
}

struct Room {
  PreflightBinding binding;
  uint64_t bytes;
};

// The rooms in the order that breaks ties: the system first, then the hard limit.
std::vector<Room> rooms_of(const MemoryLimits& limits) {
  std::vector<Room> rooms = {{PreflightBinding::kMemAvailable, limits.available_bytes}};
  if (limits.cgroup_max_bytes)
    rooms.push_back({PreflightBinding::kCgroupMax, room_under(*limits.cgroup_max_bytes, limits)});
  if (limits.cgroup_high_bytes) {
    rooms.push_back({PreflightBinding::kCgroupHigh, room_under(*limits.cgroup_high_bytes, limits)});
  }
  return rooms;
}

const char* limit_file(const MemoryLimits& limits) {
  return limits.cgroup_version == 1 ? "memory.limit_in_bytes" : "memory.max";
}

// "the 4.00 GiB needed" or "the 4.00 GiB needed plus 1.00 GiB kept free".
std::string what_is_needed(const PreflightRequest& request) {
  if (request.min_free_bytes.value_or(0) == 0) return fmt::format("the {} needed", format_bytes(request.needed_bytes));
  return fmt::format("the {} needed plus {} kept free", format_bytes(request.needed_bytes),
                     format_bytes(*request.min_free_bytes));
}

// The total this process could ever have: the machine's RAM, or its cgroup's hard limit when lower.
Room total_room(const MemoryLimits& limits) {
  if (limits.cgroup_max_bytes && *limits.cgroup_max_bytes < limits.total_bytes) {
    return {PreflightBinding::kCgroupMax, *limits.cgroup_max_bytes};
  }
  return {PreflightBinding::kMemTotal, limits.total_bytes};
}

std::string total_guidance(const Room& total, uint64_t short_bytes, const std::string& needed,
                           const MemoryLimits& limits) {
  if (total.binding == PreflightBinding::kMemTotal) {
    return fmt::format(
        "This machine has {} of RAM in all, {} short of {}: pick a smaller model or run it on a machine "
        "with more memory.",
        format_bytes(total.bytes), format_bytes(short_bytes), needed);
  }
  return fmt::format(
      "The {} of cgroup {} is {}, {} short of {}: raise it by at least {} (MemoryMax= for a systemd "
      "unit) or pick a smaller model.",
      limit_file(limits), limits.cgroup_path, format_bytes(total.bytes), format_bytes(short_bytes), needed,
      format_bytes(short_bytes));
}

std::string room_guidance(const Room& room, uint64_t short_bytes, const std::string& needed,
                          const MemoryLimits& limits) {
  std::string short_text = format_bytes(short_bytes);
  switch (room.binding) {
    case PreflightBinding::kCgroupMax:
      return fmt::format(
          "Cgroup {} has {} left under its {} ({} of {} in use), {} short of {}: free {} in that cgroup "
          "or raise its {} by {}.",
          limits.cgroup_path, format_bytes(room.bytes), limit_file(limits), format_bytes(in_use(limits)),
          format_bytes(limits.cgroup_max_bytes.value_or(0)), short_text, needed, short_text, limit_file(limits),
          short_text);
    case PreflightBinding::kCgroupHigh:
      return fmt::format(
          "Cgroup {} has {} left under its memory.high ({} of {} in use), {} short of {}: free {} in "
          "that cgroup or raise its memory.high by {} (MemoryHigh= for a systemd unit).",
          limits.cgroup_path, format_bytes(room.bytes), format_bytes(in_use(limits)),
          format_bytes(limits.cgroup_high_bytes.value_or(0)), short_text, needed, short_text, short_text);
    case PreflightBinding::kMemAvailable:
    case PreflightBinding::kMemTotal:
      break;
  }
  return fmt::format(
      "Only {} of memory is available, {} short of {}: free {} (close programs, unload models) or pick "
      "a smaller model.",
      format_bytes(room.bytes), short_text, needed, short_text);
}

void add_warnings(const PreflightRequest& request, const std::vector<Room>& rooms, const Room& total,
                  PreflightResult& result) {
  const MemoryLimits& limits = result.limits;
  uint64_t required = required_of(request);
  if (request.recommended_total_bytes && total.bytes < *request.recommended_total_bytes) {
    result.warnings.push_back({PreflightWarningKind::kBelowRecommendedTotal,
                               fmt::format("{} is {} in all, under the {} recommended",
                                           total.binding == PreflightBinding::kMemTotal ? "the machine" : "the cgroup",
                                           format_bytes(total.bytes), format_bytes(*request.recommended_total_bytes))});
  }
  if (!result.can_proceed && result.binding == PreflightBinding::kMemAvailable && limits.swap_free_bytes > 0 &&
      required <= result.usable_bytes + limits.swap_free_bytes) {
    result.warnings.push_back(
        {PreflightWarningKind::kFitsOnlyWithSwap,
         fmt::format("it would fit only by paging {} to swap ({} of swap free)", format_bytes(result.shortfall_bytes),
                     format_bytes(limits.swap_free_bytes))});
  }
  if (result.binding == PreflightBinding::kCgroupHigh && !result.can_proceed) {
    uint64_t other_room = UINT64_MAX;
    for (const Room& room : rooms) {
      if (room.binding != PreflightBinding::kCgroupHigh) other_room = std::min(other_room, room.bytes);
    }
    if (required <= other_room) {
      result.warnings.push_back({PreflightWarningKind::kCrossesMemoryHigh,
                                 fmt::format("it would cross memory.high ({}) of cgroup {}: the kernel would throttle "
                                             "the cgroup and reclaim its memory",
                                             format_bytes(limits.cgroup_high_bytes.value_or(0)), limits.cgroup_path)});
    }
  }
  if (result.can_proceed && result.usable_bytes - required < total.bytes / 20) {
    result.warnings.push_back({PreflightWarningKind::kLittleRoomLeft,
                               fmt::format("it leaves only {} of {} ({})", format_bytes(result.usable_bytes - required),
                                           format_bytes(total.bytes), to_string(result.binding))});
  }
}

}  // namespace

const char* to_string(PreflightBinding binding) {
  switch (binding) {
    case PreflightBinding::kMemAvailable:
      return "MemAvailable";
    case PreflightBinding::kCgroupMax:
      return "memory.max";
    case PreflightBinding::kCgroupHigh:
      return "memory.high";
    case PreflightBinding::kMemTotal:
      return "MemTotal";
  }
  return "?";
}

MemoryLimits read_memory_limits() {
  proc::ProcFs procfs;
  auto meminfo = procfs.meminfo();
  if (!meminfo.ok()) {
    throw Error(ErrorKind::kSystem, "cannot read " + meminfo.error().path + ": " + meminfo.error().message);
  }
  MemoryLimits limits;
  limits.total_bytes = meminfo->mem_total_bytes;
  limits.available_bytes = meminfo->mem_available_bytes.value_or(meminfo->mem_free_bytes);
  limits.swap_total_bytes = meminfo->swap_total_bytes;
  limits.swap_free_bytes = meminfo->swap_free_bytes;
  if (std::optional<proc::CgroupMemory> own = procfs.memory_cgroup(::getpid())) {
    // The own cgroup, or the ancestor that leaves the least room: a service's own cgroup often has
    // no limit while its slice has one.
    std::vector<proc::CgroupMemory> ancestors = procfs.memory_cgroup_ancestors(*own);
    const proc::CgroupMemory* binding = &*own;
    for (const proc::CgroupMemory& ancestor : ancestors) {
      if (ancestor.room_bytes().value_or(UINT64_MAX) < binding->room_bytes().value_or(UINT64_MAX)) {
        binding = &ancestor;
      }
    }
    limits.cgroup_version = binding->version;
    limits.cgroup_max_bytes = binding->max_bytes;
    limits.cgroup_high_bytes = binding->high_bytes;
    limits.cgroup_usage_bytes = binding->current_bytes;
    limits.cgroup_reclaimable_bytes = binding->stat_inactive_file_bytes;
    limits.cgroup_path = binding->path;
  }
  return limits;
}

PreflightResult preflight(const PreflightRequest& request) {
  return preflight(request, read_memory_limits());
}

PreflightResult preflight(const PreflightRequest& request, const MemoryLimits& limits) {
  PreflightResult result;
  result.limits = limits;
  std::vector<Room> rooms = rooms_of(limits);
  Room smallest =
      *std::min_element(rooms.begin(), rooms.end(), [](const Room& a, const Room& b) { return a.bytes < b.bytes; });
  result.usable_bytes = smallest.bytes;
  result.binding = smallest.binding;
  Room total = total_room(limits);
  uint64_t required = required_of(request);
  std::string needed = what_is_needed(request);
  if (request.min_total_bytes && total.bytes < *request.min_total_bytes) {
    // Freeing memory cannot help: the total itself is under the stated minimum.
    result.binding = total.binding;
    result.shortfall_bytes = *request.min_total_bytes - total.bytes;
    result.guidance =
        total_guidance(total, result.shortfall_bytes,
                       fmt::format("the {} required in all", format_bytes(*request.min_total_bytes)), limits);
  } else if (required > total.bytes) {
    result.binding = total.binding;
    result.shortfall_bytes = required - total.bytes;
    result.guidance = total_guidance(total, result.shortfall_bytes, needed, limits);
  } else if (required > smallest.bytes) {
    result.shortfall_bytes = required - smallest.bytes;
    result.guidance = room_guidance(smallest, result.shortfall_bytes, needed, limits);
  } else {
    result.can_proceed = true;
    result.guidance =
        fmt::format("It fits: {} of {} usable ({}), {} left after.", needed.substr(4), format_bytes(smallest.bytes),
                    to_string(smallest.binding), format_bytes(smallest.bytes - required));
  }
  add_warnings(request, rooms, total, result);
  return result;
}

}  // namespace memdx
