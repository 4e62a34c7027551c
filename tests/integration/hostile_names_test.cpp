// A process named with terminal escape sequences (tests/helpers/hostile_name): memdx shows the
// sequences escaped on stdout and stderr, never sends them to the terminal, and keeps the exact
// bytes in its JSON.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "integration/harness.h"

namespace memdx::test {
namespace {

using nlohmann::json;

// The helper's command line as the terminal text shows it.
constexpr const char* kShownCommand = "\\x1b]0;pwned\\x07\\x1b[2Jevil --named \\x1b[31mred";

::testing::AssertionResult no_raw_controls(const CommandResult& r) {
  for (const std::string* text : {&r.out, &r.err}) {
    for (char c : {'\x1b', '\x07'}) {
      if (text->find(c) != std::string::npos) {
        return ::testing::AssertionFailure() << "raw control byte " << int(c) << " in:\n" << *text;
      }
    }
  }
  return ::testing::AssertionSuccess();
}

TEST(HostileNames, InspectShowsTheEscapedCommand) {
  Helper helper("hostile_name");
  CommandResult r = run_memdx({"inspect", std::to_string(helper.pid())});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(no_raw_controls(r));
  EXPECT_NE(r.out.find(kShownCommand), std::string::npos) << r.out;
}

TEST(HostileNames, InspectTreeShowsTheEscapedCommand) {
  Helper helper("hostile_name");
  CommandResult r = run_memdx({"inspect", "--tree", std::to_string(helper.pid())});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(no_raw_controls(r));
  EXPECT_NE(r.out.find(kShownCommand), std::string::npos) << r.out;
}

// The list of matches for an ambiguous name is built from the processes' own command lines.
TEST(HostileNames, AmbiguousNameListsEscapedCommands) {
  std::random_device random;
  std::string token = "memdx-hostile-" + std::to_string(random());
  Helper first("hostile_name", {token});
  Helper second("hostile_name", {token});
  CommandResult r = run_memdx({"inspect", token});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(no_raw_controls(r));
  std::string shown = std::string(kShownCommand) + " " + token;
  size_t at = r.err.find(shown);
  ASSERT_NE(at, std::string::npos) << r.err;
  EXPECT_NE(r.err.find(shown, at + 1), std::string::npos) << r.err;
}

// JSON carries the exact bytes; its encoder escapes control characters itself.
TEST(HostileNames, JsonKeepsTheExactBytes) {
  Helper helper("hostile_name");
  CommandResult r = run_memdx({"inspect", "--json", std::to_string(helper.pid())});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(no_raw_controls(r));
  json p = json::parse(r.out)["processes"][0];
  EXPECT_EQ(p["argv"][0], "\x1b]0;pwned\x07\x1b[2Jevil");
  EXPECT_EQ(p["comm"], "\x1b[2Jcomm");
}

}  // namespace
}  // namespace memdx::test
