// model::terminal_safe and model::shorten: what target-provided text looks like on a terminal.
#include "model/terminal_text.h"

#include <gtest/gtest.h>

#include <string>

namespace memdx::model {
namespace {

using namespace std::string_literals;

TEST(TerminalSafe, PlainTextIsUnchanged) {
  EXPECT_EQ(terminal_safe(""), "");
  EXPECT_EQ(terminal_safe("/usr/bin/app --port 8080"), "/usr/bin/app --port 8080");
  EXPECT_EQ(terminal_safe("grep 'a\\.b' ~/x"), "grep 'a\\.b' ~/x");  // a backslash stays one
}

TEST(TerminalSafe, PrintableUtf8IsUnchanged) {
  for (const char* text :
       {"café", "naïve façade", "服务器", "サーバー", "données/日本語.txt", "🚀 launch", "\u00a0nbsp"}) {
    EXPECT_EQ(terminal_safe(text), text);
  }
}

TEST(TerminalSafe, C0ControlsBecomeVisible) {
  EXPECT_EQ(terminal_safe("a\nb\tc\rd"), "a\\nb\\tc\\rd");
  EXPECT_EQ(terminal_safe("\x1b[2J"), "\\x1b[2J");
  EXPECT_EQ(terminal_safe("\x1b]0;pwned\x07\x1b[2Jevil"), "\\x1b]0;pwned\\x07\\x1b[2Jevil");
  EXPECT_EQ(terminal_safe("\x01\x1f"), "\\x01\\x1f");
  EXPECT_EQ(terminal_safe("nul\0here"s), "nul\\x00here");
}

TEST(TerminalSafe, DelBecomesVisible) {
  EXPECT_EQ(terminal_safe("a\x7f"), "a\\x7f");
}

TEST(TerminalSafe, C1ControlsInUtf8BecomeVisible) {
  EXPECT_EQ(terminal_safe("\xc2\x9b"
                          "2J"),
            "\\u009b2J");  // CSI
  EXPECT_EQ(terminal_safe("\xc2\x80\xc2\x9f"), "\\u0080\\u009f");
  EXPECT_EQ(terminal_safe("\xc2\xa0"), "\xc2\xa0");  // U+00A0, the first printable after C1
}

TEST(TerminalSafe, BidiAndSeparatorsBecomeVisible) {
  EXPECT_EQ(terminal_safe("evil\u202etxt.exe"), "evil\\u202etxt.exe");
  EXPECT_EQ(terminal_safe("a\u2028b\u2029c"), "a\\u2028b\\u2029c");
  EXPECT_EQ(terminal_safe("\u2066x\u2069"), "\\u2066x\\u2069");
  EXPECT_EQ(terminal_safe("\u200e\u200f\u061c"), "\\u200e\\u200f\\u061c");
}

TEST(TerminalSafe, InvalidUtf8BytesBecomeHex) {
  EXPECT_EQ(terminal_safe("\x9b"
                          "2J"),
            "\\x9b2J");  // an 8-bit CSI on its own
  EXPECT_EQ(terminal_safe("a\xff"
                          "b"),
            "a\\xffb");
  EXPECT_EQ(terminal_safe("\xc0\xaf"), "\\xc0\\xaf");                    // overlong '/'
  EXPECT_EQ(terminal_safe("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");           // overlong, three bytes
  EXPECT_EQ(terminal_safe("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // a surrogate
  EXPECT_EQ(terminal_safe("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // past U+10FFFF
  EXPECT_EQ(terminal_safe("caf\xc3"), "caf\\xc3");                       // cut at the end
  EXPECT_EQ(terminal_safe("\xc3"
                          "é"),
            "\\xc3é");  // cut, then a valid character
}

TEST(TerminalSafe, OutputHasNoRawControls) {
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte += static_cast<char>(b);
  std::string out = terminal_safe(every_byte);
  for (char c : out) {
    auto byte = static_cast<unsigned char>(c);
    EXPECT_TRUE(byte >= 0x20 && byte < 0x7f) << "byte " << int(byte);
  }
}

TEST(Shorten, KeepsShortTextAndMarksTheCut) {
  EXPECT_EQ(shorten("short", 10), "short");
  EXPECT_EQ(shorten("0123456789", 10), "0123456789");
  EXPECT_EQ(shorten("0123456789abc", 10), "0123456...");
}

TEST(Shorten, NeverSplitsACharacter) {
  // "é" is two bytes: 8 bytes leave room for 5 before "...", which would end inside the third.
  EXPECT_EQ(shorten("ééééééé", 8), "éé...");
  EXPECT_EQ(shorten("ééééééé", 9), "ééé...");
  EXPECT_EQ(shorten("服务器服务器", 8), "服...");
}

}  // namespace
}  // namespace memdx::model
