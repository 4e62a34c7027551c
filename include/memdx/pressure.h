// Memory pressure levels (placeholder until the monitor lands).
#pragma once

#include "memdx/export.h"

namespace memdx {

enum class PressureLevel { kNone, kModerate, kCritical };
MEMDX_API const char* to_string(PressureLevel level);

}  // namespace memdx
