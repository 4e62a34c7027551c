// What every recording starts with: when, where, which memdx, how often, and the limits memory
// grows towards.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/recording.h"
#include "proc/procfs.h"

namespace memdx::record {

// The metadata of a recording of `kind` ("run", "watch", "trace") of `command` rooted at `root`
// (whose memory cgroup's memory.max is the limit): time, host, kernel, version, interval, MemTotal.
model::RecordingMeta make_meta(const proc::ProcFs& fs, const std::string& kind, const std::vector<std::string>& command,
                               int64_t interval_ms, pid_t root);

}  // namespace memdx::record
