// The unwinder's CFI parser on bytes it did not expect, in every build (ASan and UBSan catch any
// read outside the object): the committed seeds (cfi_corpus/, images of the fixture modules) and
// thousands of deterministic mutations of each, run through the input of the libFuzzer target.
// First, that the harness is faithful: an image copied out of a loaded module gives, at every
// address of its code, the rule the unwinder computes from the module itself.
#include <dlfcn.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/cfi_fuzz_input.h"
#include "trace/preload/unwind_dwarf.h"

namespace memdx::fuzz {
namespace {
namespace fs = std::filesystem;
namespace unwind = trace::unwind_detail;
using Bytes = std::vector<uint8_t>;

struct Seed {
  std::string name;
  Bytes bytes;
};

std::vector<Seed> seeds() {
  std::vector<Seed> out;
  for (const auto& entry : fs::directory_iterator(fs::path(MEMDX_TEST_DATA_DIR) / "cfi_corpus")) {
    std::ifstream in(entry.path(), std::ios::binary);
    out.push_back({entry.path().filename().string(), Bytes(std::istreambuf_iterator<char>(in), {})});
  }
  std::sort(out.begin(), out.end(), [](const Seed& a, const Seed& b) { return a.name < b.name; });
  return out;
}

uint32_t field(const Bytes& input, size_t at) {
  uint32_t value = 0;
  std::memcpy(&value, input.data() + at, sizeof(value));
  return value;
}

Bytes with_field(Bytes input, size_t at, uint32_t value) {
  std::memcpy(input.data() + at, &value, sizeof(value));
  return input;
}

// Deterministic mutations of one input (8 bytes of offsets, then the image): the code address
// at every 2 bytes of the image; the header's offset moved around; every 3rd byte of the tables
// flipped; bytes inserted into and cut from them; the image cut short.
void mutate(const Bytes& input, const std::function<void(const Bytes&)>& visit) {
  const size_t image_bytes = input.size() - 8;
  const size_t header = field(input, 0);
  for (uint32_t pc = 0; pc < image_bytes; pc += 2) visit(with_field(input, 4, pc));
  for (int delta = -16; delta <= 16; ++delta) visit(with_field(input, 0, static_cast<uint32_t>(header + delta)));
  visit(with_field(input, 0, 0xffffffffu));
  const size_t tables = 8 + header;
  for (size_t at = tables; at < input.size(); at += 3) {
    Bytes flipped = input;
    flipped[at] ^= static_cast<uint8_t>(1u << (at * 5 % 8));
    visit(flipped);
    flipped[at] = 0xff;
    visit(flipped);
  }
  for (size_t at = tables; at < input.size(); at += 13) {
    Bytes longer = input;
    longer.insert(longer.begin() + static_cast<std::ptrdiff_t>(at), static_cast<uint8_t>(at % 2 ? 0x00 : 0x80));
    visit(longer);
    Bytes shorter = input;
    shorter.erase(shorter.begin() + static_cast<std::ptrdiff_t>(at));
    visit(shorter);
  }
  for (size_t cut = tables; cut < input.size(); cut += 7) visit(Bytes(input.begin(), input.begin() + cut));
}

TEST(CfiFuzzInput, AnImageOfALoadedModuleGivesTheRulesOfTheModule) {
  for (const char* path : {MEMDX_UNWIND_DSO_A, MEMDX_UNWIND_DSO_B}) {
    void* module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(module, nullptr) << dlerror();
    auto chain = reinterpret_cast<uintptr_t>(dlsym(module, "unwind_fixture_dso_chain"));
    ASSERT_NE(chain, 0u);
    auto input = cfi_input_of_loaded_object(chain);
    ASSERT_TRUE(input) << path;
    const uintptr_t real_base = chain - input->pc_offset;
    const auto copy_base = reinterpret_cast<uintptr_t>(input->image.data());
    const unwind::ObjectRange copy{copy_base, copy_base + input->image.size()};
    size_t unwindable = 0;
    for (uintptr_t pc = chain - 512; pc < chain + 512; ++pc) {
      unwind::FrameRule real = unwind::compute_frame_rule(pc);
      unwind::FrameRule copied =
          unwind::frame_rule_from_tables(copy_base + input->header_offset, copy, copy_base + (pc - real_base));
      ASSERT_EQ(unwind::pack_rule(real), unwind::pack_rule(copied)) << path << " at +" << pc - real_base;
      unwindable += real.can_unwind ? 1 : 0;
    }
    EXPECT_GT(unwindable, 100u) << path << ": the code around the chain has CFI";
    dlclose(module);
  }
}

TEST(CfiFuzzInput, EverySeedUnwindsAtItsAddress) {
  std::vector<Seed> all = seeds();
  ASSERT_GE(all.size(), 6u);
  for (const Seed& seed : all) {
    std::vector<unwind::FrameRule> rules = run_cfi_input(seed.bytes.data(), seed.bytes.size());
    ASSERT_FALSE(rules.empty()) << seed.name;
    EXPECT_TRUE(rules[0].can_unwind) << seed.name;
  }
}

// The sanitizers are the assertion: a read outside the image, an overflow or an endless loop is a
// failure. The count makes sure the mutations ran.
TEST(CfiFuzzInput, MutatedTablesAreReadInsideTheirImage) {
  size_t runs = 0, unwindable = 0;
  for (const Seed& seed : seeds()) {
    mutate(seed.bytes, [&](const Bytes& input) {
      for (const unwind::FrameRule& rule : run_cfi_input(input.data(), input.size())) unwindable += rule.can_unwind;
      ++runs;
    });
  }
  EXPECT_GT(runs, 10000u);
  EXPECT_GT(unwindable, 1000u) << "the mutations still reach the CFA programs";
}

}  // namespace
}  // namespace memdx::fuzz
