#include "memdx/pressure.h"

namespace memdx {

const char* to_string(PressureLevel level) {
  switch (level) {
    case PressureLevel::kNone:
      return "none";
    case PressureLevel::kModerate:
      return "moderate";
    case PressureLevel::kCritical:
      return "critical";
  }
  return "unknown";
}

}  // namespace memdx
