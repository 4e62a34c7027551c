#include "model/gzip.h"

// next_in of a const input.
#define ZLIB_CONST
#include <zlib.h>

#include <stdexcept>

namespace memdx::model {

std::string gzip(std::string_view bytes, GzipLevel level) {
  z_stream stream{};
  int zlib_level = level == GzipLevel::kFastest ? Z_BEST_SPEED : Z_DEFAULT_COMPRESSION;
  // 15 + 16: the largest window, with a gzip header and trailer instead of zlib's.
  if (deflateInit2(&stream, zlib_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("zlib cannot start compressing");
  }
  std::string compressed(deflateBound(&stream, static_cast<uLong>(bytes.size())), '\0');
  stream.next_in = reinterpret_cast<const Bytef*>(bytes.data());
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = reinterpret_cast<Bytef*>(compressed.data());
  stream.avail_out = static_cast<uInt>(compressed.size());
  int result = deflate(&stream, Z_FINISH);
  deflateEnd(&stream);
  if (result != Z_STREAM_END) throw std::runtime_error("zlib could not compress");
  compressed.resize(stream.total_out);
  return compressed;
}

}  // namespace memdx::model
