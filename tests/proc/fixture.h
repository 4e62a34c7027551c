// Locating and reading the fixture files of the /proc parser tests.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace memdx::testing {

// tests/proc/fixtures/<relative>; MEMDX_TEST_DATA_DIR is tests/proc.
inline std::string fixture_path(std::string_view relative) {
  return std::string(MEMDX_TEST_DATA_DIR) + "/fixtures/" + std::string(relative);
}

// The whole file, byte for byte; an empty string (and a test failure) when it is missing.
inline std::string read_fixture(std::string_view relative) {
  std::ifstream in(fixture_path(relative), std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "missing fixture " << fixture_path(relative);
    return {};
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

}  // namespace memdx::testing
