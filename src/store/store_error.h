// The one exception the store throws: a single line a user can act on, naming the recording,
// e.g. "disk full while writing run.memdx". Never a raw errno number or SQLite result code.
#pragma once

#include <stdexcept>
#include <string>

namespace memdx::store {

class StoreError : public std::runtime_error {
 public:
  explicit StoreError(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace memdx::store
