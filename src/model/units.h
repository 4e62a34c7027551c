// Human-readable sizes in binary units, three significant digits: "1.50 GiB", "640 KiB".
#pragma once

#include <cstdint>
#include <string>

namespace memdx::model {

std::string format_bytes(uint64_t bytes);

}  // namespace memdx::model
