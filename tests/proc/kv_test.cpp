// The small text helpers every /proc parser is built on.
#include "proc/kv.h"

#include <gtest/gtest.h>

#include <limits>

namespace memdx::proc {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

TEST(ProcKv, SplitLinesDropsOnlyTheTrailingNewline) {
  EXPECT_EQ(split_lines("a\nb\n"), (std::vector<std::string_view>{"a", "b"}));
  EXPECT_EQ(split_lines("a\nb"), (std::vector<std::string_view>{"a", "b"}));
  EXPECT_EQ(split_lines("a\n\nb\n"), (std::vector<std::string_view>{"a", "", "b"}));
  EXPECT_EQ(split_lines("\n"), (std::vector<std::string_view>{""}));
  EXPECT_TRUE(split_lines("").empty());
}

TEST(ProcKv, SplitLinesReturnsViewsIntoTheInput) {
  std::string_view text = "first\nsecond\n";
  auto lines = split_lines(text);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1].data(), text.data() + 6);
}

TEST(ProcKv, TrimRemovesSpacesTabsAndLineEnds) {
  EXPECT_EQ(trim("  \t 12 kB\r\n"), "12 kB");
  EXPECT_EQ(trim("   "), "");
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(trim("x"), "x");
}

TEST(ProcKv, ParseU64AcceptsDecimalWithSurroundingSpace) {
  EXPECT_EQ(parse_u64("0"), 0u);
  EXPECT_EQ(parse_u64(" 4242\n"), 4242u);
  EXPECT_EQ(parse_u64("18446744073709551615"), kMax);
}

TEST(ProcKv, ParseU64RejectsJunkNegativeAndOverflow) {
  EXPECT_FALSE(parse_u64(""));
  EXPECT_FALSE(parse_u64("   "));
  EXPECT_FALSE(parse_u64("-1"));
  EXPECT_FALSE(parse_u64("+1"));
  EXPECT_FALSE(parse_u64("12abc"));
  EXPECT_FALSE(parse_u64("1 2"));
  EXPECT_FALSE(parse_u64("0x10"));
  EXPECT_FALSE(parse_u64("18446744073709551616"));
}

TEST(ProcKv, ParseHexU64) {
  EXPECT_EQ(parse_hex_u64("7ffd1c11fdc8"), 0x7ffd1c11fdc8u);
  EXPECT_EQ(parse_hex_u64("FFFFFFFFFF600000"), 0xffffffffff600000u);
  EXPECT_EQ(parse_hex_u64("ffffffffffffffff"), kMax);
  EXPECT_FALSE(parse_hex_u64("10000000000000000"));
  EXPECT_FALSE(parse_hex_u64("xyz"));
  EXPECT_FALSE(parse_hex_u64(""));
}

TEST(ProcKv, ParseKbValueConvertsKibibytesToBytes) {
  EXPECT_EQ(parse_kb_value("8 kB"), 8192u);
  EXPECT_EQ(parse_kb_value("      1756 kB"), 1756u * 1024);
  EXPECT_EQ(parse_kb_value("0 kB"), 0u);
  EXPECT_EQ(parse_kb_value("3 KB"), 3072u);
  EXPECT_EQ(parse_kb_value("12kB"), 12288u);
}

TEST(ProcKv, ParseKbValueTakesABareNumberAsBytes) {
  EXPECT_EQ(parse_kb_value("4096"), 4096u);
  EXPECT_EQ(parse_kb_value(" 7 "), 7u);
}

TEST(ProcKv, ParseKbValueSaturatesInsteadOfWrapping) {
  // 2^64-1 kB: the multiplication by 1024 overflows and must saturate.
  EXPECT_EQ(parse_kb_value("18446744073709551615 kB"), kMax);
  // 2^54 kB is exactly 2^64 bytes: one past the end.
  EXPECT_EQ(parse_kb_value("18014398509481984 kB"), kMax);
  // 2^54 - 1 kB still fits: 2^64 - 1024 bytes.
  EXPECT_EQ(parse_kb_value("18014398509481983 kB"), kMax - 1023);
  // Wider than 64 bits before the multiplication.
  EXPECT_EQ(parse_kb_value("18446744073709551616 kB"), kMax);
  EXPECT_EQ(parse_kb_value("99999999999999999999999999 kB"), kMax);
  EXPECT_EQ(parse_kb_value("99999999999999999999999999"), kMax);
}

TEST(ProcKv, ParseKbValueRejectsJunk) {
  EXPECT_FALSE(parse_kb_value(""));
  EXPECT_FALSE(parse_kb_value("kB"));
  EXPECT_FALSE(parse_kb_value(" kB"));
  EXPECT_FALSE(parse_kb_value("12 MB"));
  EXPECT_FALSE(parse_kb_value("-5 kB"));
  EXPECT_FALSE(parse_kb_value("1.5 kB"));
}

TEST(ProcKv, SplitKeyValueTrimsBothSides) {
  auto kv = split_key_value("VmRSS:\t    1756 kB");
  ASSERT_TRUE(kv);
  EXPECT_EQ(kv->key, "VmRSS");
  EXPECT_EQ(kv->value, "1756 kB");

  auto first_colon = split_key_value("Name:\ta:b");
  ASSERT_TRUE(first_colon);
  EXPECT_EQ(first_colon->key, "Name");
  EXPECT_EQ(first_colon->value, "a:b");

  auto empty_value = split_key_value("Groups:\t ");
  ASSERT_TRUE(empty_value);
  EXPECT_EQ(empty_value->value, "");

  EXPECT_FALSE(split_key_value("no colon here"));
}

TEST(ProcKv, SaturatingArithmetic) {
  EXPECT_EQ(saturating_mul(0, kMax), 0u);
  EXPECT_EQ(saturating_mul(kMax, 0), 0u);
  EXPECT_EQ(saturating_mul(1024, 4), 4096u);
  EXPECT_EQ(saturating_mul(kMax / 2 + 1, 2), kMax);
  EXPECT_EQ(saturating_mul(kMax / 2, 2), kMax - 1);
  EXPECT_EQ(saturating_add(kMax, 1), kMax);
  EXPECT_EQ(saturating_add(kMax - 1, 1), kMax);
  EXPECT_EQ(saturating_add(2, 3), 5u);
}

}  // namespace
}  // namespace memdx::proc
