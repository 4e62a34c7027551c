#include "memdx/cache.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "memdx/error.h"
#include "memdx/preflight.h"

namespace memdx {

uint64_t share_of_available_memory(double share) {
  // Written so that NaN fails too.
  if (!(share > 0.0 && share <= 1.0)) {
    throw Error(ErrorKind::kInvalidArgument, "share " + std::to_string(share) + " is not in (0, 1]");
  }
  // The room preflight finds for nothing more: MemAvailable, or the cgroup (own or ancestor) whose
  // limit leaves less once its reclaimable page cache is counted as room.
  uint64_t room = preflight(PreflightRequest{}).usable_bytes;
  return static_cast<uint64_t>(std::floor(static_cast<double>(room) * share));
}

}  // namespace memdx
