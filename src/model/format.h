// How memdx writes sizes, lists and code places in its text: one home for each.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace memdx::model {

// Human-readable sizes in binary units, three significant digits: "1.50 GiB", "640 KiB".
std::string format_bytes(uint64_t bytes);

// The words with `separator` between them: an argv as one command line.
std::string joined(const std::vector<std::string>& words, std::string_view separator = " ");

// Where a site's code is, as a reader scans it: "telemetry.cpp:42" (the file's base name), or ""
// without debug information.
std::string source_place(const std::string& file, int line);

// A call site as the text names it: "remember (server.cpp:42)", or the function alone without
// debug information.
std::string site_label(const std::string& function, const std::string& file, int line);

}  // namespace memdx::model
