// model::format_bytes and report::wrap: the small formatting helpers every report line uses.
#include "model/format.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "report/inspect_text.h"

namespace memdx {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;
constexpr uint64_t kTiB = 1024 * kGiB;

using model::format_bytes;

TEST(ReportFormatBytes, BytesBelowOneThousand) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1), "1 B");
  EXPECT_EQ(format_bytes(999), "999 B");
}

TEST(ReportFormatBytes, SwitchesUnitAtOneThousand) {
  EXPECT_EQ(format_bytes(1000), "0.98 KiB");
  EXPECT_EQ(format_bytes(1023), "1.00 KiB");
  EXPECT_EQ(format_bytes(1000 * kKiB), "0.98 MiB");
  EXPECT_EQ(format_bytes(1000 * kMiB), "0.98 GiB");
}

TEST(ReportFormatBytes, ThreeSignificantDigits) {
  EXPECT_EQ(format_bytes(1 * kKiB), "1.00 KiB");
  EXPECT_EQ(format_bytes(1536), "1.50 KiB");
  EXPECT_EQ(format_bytes(10 * kKiB), "10.0 KiB");
  EXPECT_EQ(format_bytes(640 * kKiB), "640 KiB");
  EXPECT_EQ(format_bytes(999 * kKiB), "999 KiB");
  EXPECT_EQ(format_bytes(64 * kMiB), "64.0 MiB");
  EXPECT_EQ(format_bytes(96 * kMiB), "96.0 MiB");
  EXPECT_EQ(format_bytes(100 * kMiB), "100 MiB");
  EXPECT_EQ(format_bytes(8 * kGiB), "8.00 GiB");
  EXPECT_EQ(format_bytes(3 * kGiB / 2), "1.50 GiB");
  EXPECT_EQ(format_bytes(128 * kGiB), "128 GiB");
  EXPECT_EQ(format_bytes(400 * kGiB), "400 GiB");
  EXPECT_EQ(format_bytes(1 * kTiB), "1.00 TiB");
  EXPECT_EQ(format_bytes(1024 * kTiB), "1.00 PiB");
  EXPECT_EQ(format_bytes(1024 * 1024 * kTiB), "1.00 EiB");
}

TEST(ReportFormatBytes, LargestValueDoesNotCrash) {
  EXPECT_EQ(format_bytes(std::numeric_limits<uint64_t>::max()), "16.0 EiB");
}

TEST(ReportFormatBytes, RoundingNeverNeedsFourDigits) {
  EXPECT_EQ(format_bytes(1023999), "0.98 MiB");
  EXPECT_EQ(format_bytes(10239), "10.0 KiB");
  EXPECT_EQ(format_bytes(102399), "100 KiB");
}

// ---- wrap --------------------------------------------------------------------------------------

using report::wrap;

TEST(ReportWrap, ShortTextIsUnchanged) {
  EXPECT_EQ(wrap("fits on one line", 80, "    "), "fits on one line");
  EXPECT_EQ(wrap("", 80, "    "), "");
}

TEST(ReportWrap, BreaksBetweenWordsAndIndentsContinuations) {
  EXPECT_EQ(wrap("aaa bbb ccc", 7, "  "), "aaa bbb\n  ccc");
  EXPECT_EQ(wrap("aaa bbb ccc ddd", 9, "> "), "aaa bbb\n> ccc ddd");
  EXPECT_EQ(wrap("aaa bbb ccc ddd", 8, "> "), "aaa bbb\n> ccc\n> ddd");  // the indent counts
}

TEST(ReportWrap, EveryLineFitsTheWidth) {
  std::string text =
      "VSZ 8.00 GiB is 128x RSS 64.0 MiB: 7.94 GiB is address space reserved but not resident. "
      "Reserving address space costs no memory until pages are touched.";
  std::string wrapped = wrap(text, 40, "    ");
  size_t start = 0;
  int lines = 0;
  while (start <= wrapped.size()) {
    size_t end = wrapped.find('\n', start);
    if (end == std::string::npos) end = wrapped.size();
    EXPECT_LE(end - start, 40u) << wrapped.substr(start, end - start);
    if (lines > 0) {
      EXPECT_EQ(wrapped.substr(start, 4), "    ");
    }
    ++lines;
    start = end + 1;
  }
  EXPECT_GE(lines, 4);
  // Nothing is lost: removing the breaks gives the text back.
  std::string joined;
  for (size_t i = 0; i < wrapped.size(); ++i) {
    if (wrapped[i] == '\n') {
      joined += ' ';
      i += 4;
    } else {
      joined += wrapped[i];
    }
  }
  EXPECT_EQ(joined, text);
}

TEST(ReportWrap, LongWordStaysWhole) {
  EXPECT_EQ(wrap("a /a/very/long/path/that/cannot/break b", 10, "  "), "a\n  /a/very/long/path/that/cannot/break\n  b");
}

}  // namespace
}  // namespace memdx
