// gzip (RFC 1952) in one call, on zlib: pprof files are gzip by their format, and a Prometheus
// scraper asks for its answers so.
#pragma once

#include <string>
#include <string_view>

namespace memdx::model {

enum class GzipLevel {
  kFastest,  // zlib's level 1: a few milliseconds per megabyte, for answers made again and again
  kDefault,  // zlib's level 6: smaller, for files written once
};

// `bytes` compressed, with the gzip header and trailer. Throws std::runtime_error when zlib
// fails (out of memory); under 4 GiB of input.
std::string gzip(std::string_view bytes, GzipLevel level);

}  // namespace memdx::model
