// analyze::Symbolizer on real return addresses: from a fixture library built like release code
// (-O2, no frame pointers, inlining), from stripped and debuglinked copies of it, and from this
// test program itself.
#include "analyze/symbolize.h"

#include <dlfcn.h>
#include <elf.h>
#include <gtest/gtest.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "analyze/symbolize_fixture.h"

namespace memdx::analyze {
namespace {

const std::string kFixtureSource = MEMDX_TEST_DATA_DIR "/symbolize_fixture_lib.cpp";
const std::string kThisSource = MEMDX_TEST_DATA_DIR "/symbolize_test.cpp";

std::string read_link(const char* path) {
  std::string target(4096, '\0');
  ssize_t length = readlink(path, target.data(), target.size());
  target.resize(length > 0 ? static_cast<size_t>(length) : 0);
  return target;
}

struct MappingSearch {
  uint64_t address = 0;
  std::optional<ModuleMapping> found;
};

// What the tracer records for a module: dlpi_addr and the span of its PT_LOAD segments.
int find_mapping(dl_phdr_info* info, size_t /*size*/, void* data) {
  auto* search = static_cast<MappingSearch*>(data);
  uint64_t start = std::numeric_limits<uint64_t>::max(), end = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    if (segment.p_type != PT_LOAD) continue;
    start = std::min<uint64_t>(start, info->dlpi_addr + segment.p_vaddr);
    end = std::max<uint64_t>(end, info->dlpi_addr + segment.p_vaddr + segment.p_memsz);
  }
  if (search->address < start || search->address >= end) return 0;
  std::string path = info->dlpi_name;
  if (path.empty()) path = read_link("/proc/self/exe");  // the main program has no name here
  search->found = ModuleMapping{path, info->dlpi_addr, start, end};
  return 1;
}

std::optional<ModuleMapping> mapping_of(uint64_t address) {
  MappingSearch search{address, std::nullopt};
  dl_iterate_phdr(find_mapping, &search);
  return search.found;
}

using FixtureEntry = void (*)(fixture::Capture*);

// Loaded once each and kept for the process: the addresses they hand out must stay mapped.
void* load_library(const char* path) {
  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) ADD_FAILURE() << "dlopen " << path << ": " << dlerror();
  return handle;
}

void* fixture_library(const char* path) {
  static void* const fixture = load_library(MEMDX_SYMBOLIZE_FIXTURE);
  static void* const offset_fixture = load_library(MEMDX_SYMBOLIZE_FIXTURE_OFFSET);
  return std::string_view(path) == MEMDX_SYMBOLIZE_FIXTURE ? fixture : offset_fixture;
}

struct FixtureCall {
  fixture::Capture capture;
  ModuleMapping mapping;
};

// Runs a fixture entry point and finds the module its return address lies in.
std::optional<FixtureCall> call_fixture(const char* entry_name, const char* library_path = MEMDX_SYMBOLIZE_FIXTURE) {
  void* library = fixture_library(library_path);
  if (library == nullptr) return std::nullopt;
  auto entry = reinterpret_cast<FixtureEntry>(dlsym(library, entry_name));
  if (entry == nullptr) {
    ADD_FAILURE() << "dlsym " << entry_name << ": " << dlerror();
    return std::nullopt;
  }
  FixtureCall call;
  entry(&call.capture);
  std::optional<ModuleMapping> mapping = mapping_of(call.capture.return_address);
  if (!mapping) {
    ADD_FAILURE() << "no module holds the return address " << call.capture.return_address;
    return std::nullopt;
  }
  call.mapping = *mapping;
  return call;
}

ModuleMapping with_path(ModuleMapping mapping, std::string path) {
  mapping.path = std::move(path);
  return mapping;
}

// `addr2line -e MODULE` takes the call instruction's address less the load bias.
uint64_t offset_of_call(const FixtureCall& call) {
  return call.capture.return_address - 1 - call.mapping.load_bias;
}

TEST(Symbolize, NoinlineFunctionGivesDemangledNameFileAndCallLine) {
  auto call = call_fixture("memdx_fixture_grow");
  ASSERT_TRUE(call);
  Symbolizer symbolizer({call->mapping});
  const auto& frames = symbolizer.resolve(call->capture.return_address);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "fixture::Widget::grow(unsigned long)");
  EXPECT_EQ(frames[0].file, kFixtureSource);
  EXPECT_EQ(frames[0].line, static_cast<uint32_t>(call->capture.call_line));
  EXPECT_EQ(frames[0].module, MEMDX_SYMBOLIZE_FIXTURE);
  EXPECT_EQ(frames[0].module_offset, offset_of_call(*call));
  EXPECT_FALSE(frames[0].inlined);
}

TEST(Symbolize, InlinedCallGivesInlinedFrameThenOuterFunctionAtCallSite) {
  auto call = call_fixture("memdx_fixture_inlined");
  ASSERT_TRUE(call);
  Symbolizer symbolizer({call->mapping});
  const auto& frames = symbolizer.resolve(call->capture.return_address);
  ASSERT_EQ(frames.size(), 2u);
  // GCC gives static functions no linkage name: the name is qualified from the DWARF scopes.
  EXPECT_EQ(frames[0].function, "fixture::inner_step");
  EXPECT_EQ(frames[0].file, kFixtureSource);
  EXPECT_EQ(frames[0].line, static_cast<uint32_t>(call->capture.call_line));
  EXPECT_TRUE(frames[0].inlined);
  EXPECT_EQ(frames[1].function, "fixture::outer_run(unsigned long, fixture::Capture*)");
  EXPECT_EQ(frames[1].file, kFixtureSource);
  EXPECT_EQ(frames[1].line, static_cast<uint32_t>(call->capture.inline_call_line));
  EXPECT_FALSE(frames[1].inlined);
  for (const SourceFrame& frame : frames) EXPECT_EQ(frame.module_offset, offset_of_call(*call));
}

TEST(Symbolize, ModuleLinkedAwayFromZeroIsPlacedByItsLoadBias) {
  auto call = call_fixture("memdx_fixture_grow", MEMDX_SYMBOLIZE_FIXTURE_OFFSET);
  ASSERT_TRUE(call);
  ASSERT_NE(call->mapping.start, call->mapping.load_bias);  // the case under test
  Symbolizer symbolizer({call->mapping});
  const auto& frames = symbolizer.resolve(call->capture.return_address);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "fixture::Widget::grow(unsigned long)");
  EXPECT_EQ(frames[0].file, kFixtureSource);
  EXPECT_EQ(frames[0].line, static_cast<uint32_t>(call->capture.call_line));
  EXPECT_EQ(frames[0].module_offset, offset_of_call(*call));
}

TEST(Symbolize, StrippedModuleGivesExportedNameFromDynsymAndNoSource) {
  auto call = call_fixture("memdx_fixture_inlined");
  ASSERT_TRUE(call);
  // strip --strip-all keeps the segment layout, so the loaded copy's addresses apply to it.
  Symbolizer symbolizer({with_path(call->mapping, MEMDX_SYMBOLIZE_FIXTURE_STRIPPED)});
  const auto& frames = symbolizer.resolve(call->capture.return_address);
  ASSERT_EQ(frames.size(), 1u);  // without DWARF the inlined frame is invisible
  EXPECT_EQ(frames[0].function, "fixture::outer_run(unsigned long, fixture::Capture*)");
  EXPECT_EQ(frames[0].file, "");
  EXPECT_EQ(frames[0].line, 0u);
  EXPECT_EQ(frames[0].module, MEMDX_SYMBOLIZE_FIXTURE_STRIPPED);
  EXPECT_EQ(frames[0].module_offset, offset_of_call(*call));
}

TEST(Symbolize, SeparateDebugFileIsFoundThroughDebuglink) {
  auto call = call_fixture("memdx_fixture_inlined");
  ASSERT_TRUE(call);
  Symbolizer symbolizer({with_path(call->mapping, MEMDX_SYMBOLIZE_FIXTURE_DEBUGLINK)});
  const auto& frames = symbolizer.resolve(call->capture.return_address);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].function, "fixture::inner_step");
  EXPECT_EQ(frames[0].line, static_cast<uint32_t>(call->capture.call_line));
  EXPECT_EQ(frames[1].function, "fixture::outer_run(unsigned long, fixture::Capture*)");
  EXPECT_EQ(frames[1].file, kFixtureSource);
  EXPECT_EQ(frames[1].line, static_cast<uint32_t>(call->capture.inline_call_line));
  EXPECT_EQ(frames[1].module, MEMDX_SYMBOLIZE_FIXTURE_DEBUGLINK);
}

volatile int g_sink = 0;

__attribute__((noipa)) uint64_t address_after_call() {
  return reinterpret_cast<uint64_t>(__builtin_return_address(0));
}

// The store after the call keeps it from becoming a tail jump.
__attribute__((noinline)) uint64_t function_in_test_program(int* call_line) {
  uint64_t address = address_after_call();
  *call_line = __LINE__ - 1;
  g_sink = *call_line;
  return address;
}

TEST(Symbolize, MainProgramFunctionResolvesThroughProcSelfExe) {
  int call_line = 0;
  uint64_t address = function_in_test_program(&call_line);
  std::optional<ModuleMapping> mapping = mapping_of(address);
  ASSERT_TRUE(mapping);
  ASSERT_EQ(mapping->path, read_link("/proc/self/exe"));
  Symbolizer symbolizer({*mapping});
  const auto& frames = symbolizer.resolve(address);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().function, "memdx::analyze::(anonymous namespace)::function_in_test_program(int*)");
  EXPECT_EQ(frames.back().file, kThisSource);
  EXPECT_EQ(frames.back().line, static_cast<uint32_t>(call_line));
  EXPECT_EQ(frames.back().module, mapping->path);
}

TEST(Symbolize, UnopenableModulesGiveModuleAndOffset) {
  ModuleMapping missing{"/nonexistent/libgone.so", 0x10000, 0x10000, 0x20000};
  ModuleMapping not_elf{kThisSource, 0x30000, 0x30000, 0x40000};
  Symbolizer symbolizer({missing, not_elf});
  for (const ModuleMapping& module : {missing, not_elf}) {
    const auto& frames = symbolizer.resolve(module.start + 0x234, /*is_return_address=*/false);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].function, "");
    EXPECT_EQ(frames[0].file, "");
    EXPECT_EQ(frames[0].module, module.path);
    EXPECT_EQ(frames[0].module_offset, 0x234u);
  }
}

TEST(Symbolize, AddressOutsideEveryModuleGivesOnlyTheAddress) {
  Symbolizer symbolizer({{"/nonexistent/libgone.so", 0x10000, 0x10000, 0x20000}});
  for (uint64_t address : {0x500ull, 0x20000ull, 0xffffffffffffffffull}) {
    const auto& frames = symbolizer.resolve(address, /*is_return_address=*/false);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].module, "");
    EXPECT_EQ(frames[0].module_offset, address);
    EXPECT_EQ(frames[0].function, "");
  }
}

TEST(Symbolize, ReturnAddressLooksUpThePrecedingInstruction) {
  ModuleMapping missing{"/nonexistent/libgone.so", 0x10000, 0x10000, 0x20000};
  Symbolizer symbolizer({missing});
  EXPECT_EQ(symbolizer.resolve(0x10100, true).front().module_offset, 0xffu);
  EXPECT_EQ(symbolizer.resolve(0x10100, false).front().module_offset, 0x100u);
  // The first byte of a module is no call's return address: its call lies before the module.
  EXPECT_EQ(symbolizer.resolve(0x10000, true).front().module, "");
}

// One library unloaded and another loaded at its addresses (here the fixture, then its stripped
// copy): an address is resolved in the file mapped there at the time asked for. Both files are
// opened, though libdwfl takes no two modules at overlapping addresses in one session.
TEST(Symbolize, ModulesMappedAtOneAddressAreEachResolvedInTheirTime) {
  auto call = call_fixture("memdx_fixture_inlined");
  ASSERT_TRUE(call);
  ModuleMapping first = call->mapping;
  first.loaded_seq = 100;
  first.unloaded_seq = 200;
  ModuleMapping second = with_path(call->mapping, MEMDX_SYMBOLIZE_FIXTURE_STRIPPED);
  second.loaded_seq = 300;
  Symbolizer symbolizer({first, second});
  const uint64_t address = call->capture.return_address;
  for (uint64_t seq : {uint64_t{0}, uint64_t{150}, uint64_t{199}}) {
    SCOPED_TRACE(seq);
    const auto& frames = symbolizer.resolve_at(address, seq);
    ASSERT_EQ(frames.size(), 2u);  // inner_step inlined into outer_run, from the DWARF of the first
    EXPECT_EQ(frames[0].module, first.path);
    EXPECT_EQ(frames[0].file, kFixtureSource);
    ASSERT_NE(symbolizer.module_at(address, seq), nullptr);
    EXPECT_EQ(symbolizer.module_at(address, seq)->path, first.path);
  }
  // From the unload on (the second may run before its record: nothing else is there meanwhile),
  // and at the end.
  for (uint64_t seq : {uint64_t{200}, uint64_t{250}, uint64_t{300}, Symbolizer::kLatest}) {
    SCOPED_TRACE(seq);
    const auto& frames = symbolizer.resolve_at(address, seq);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].module, MEMDX_SYMBOLIZE_FIXTURE_STRIPPED);
    EXPECT_EQ(frames[0].function, "fixture::outer_run(unsigned long, fixture::Capture*)");
    EXPECT_EQ(frames[0].file, "");
  }
  EXPECT_EQ(symbolizer.resolve(address).front().module, MEMDX_SYMBOLIZE_FIXTURE_STRIPPED);
}

// The same file mapped at the same place twice, with another file there between: one module
// with two ranges of time.
TEST(Symbolize, ALibraryLoadedAgainWhereItWasIsResolvedInEachOfItsTimes) {
  ModuleMapping a{"/nonexistent/liba.so", 0x10000, 0x10000, 0x20000, false, 10, 20};
  ModuleMapping b{"/nonexistent/libb.so", 0x10000, 0x10000, 0x20000, false, 30, 40};
  ModuleMapping a_again{"/nonexistent/liba.so", 0x10000, 0x10000, 0x20000, false, 50, 60};
  Symbolizer symbolizer({a, b, a_again});
  EXPECT_EQ(symbolizer.resolve_at(0x10100, 15).front().module, a.path);
  EXPECT_EQ(symbolizer.resolve_at(0x10100, 35).front().module, b.path);
  EXPECT_EQ(symbolizer.resolve_at(0x10100, 55).front().module, a.path);
  EXPECT_EQ(symbolizer.resolve_at(0x10100, 15).front().module_offset, 0xffu);
  // After the last unload nothing is mapped there: the last one mapped.
  EXPECT_EQ(symbolizer.resolve_at(0x10100, 70).front().module, a.path);
  EXPECT_EQ(symbolizer.module_at(0x30000, 15), nullptr);
}

TEST(Symbolize, RepeatedLookupsAreServedFromTheCache) {
  auto call = call_fixture("memdx_fixture_grow");
  ASSERT_TRUE(call);
  Symbolizer symbolizer({call->mapping});
  const std::vector<SourceFrame>* first = &symbolizer.resolve(call->capture.return_address);
  symbolizer.resolve(0x10, /*is_return_address=*/false);  // another entry must not change the first
  EXPECT_EQ(&symbolizer.resolve(call->capture.return_address), first);
  Symbolizer moved = std::move(symbolizer);
  EXPECT_EQ(&moved.resolve(call->capture.return_address), first);
  EXPECT_EQ(first->front().function, "fixture::Widget::grow(unsigned long)");
}

}  // namespace
}  // namespace memdx::analyze
