// report::render_pprof on synthetic heap traces, read back with protobuf's own decoder.
#define ZLIB_CONST
#include <zlib.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/profile.pb.h"
#include "report/pprof.h"

namespace memdx::report {
namespace {

namespace pb = perftools::profiles;
using analyze::AllocationStats;
using analyze::HeapTrace;
using analyze::ProcessHeapProfile;

std::string gunzip(const std::string& compressed) {
  z_stream stream{};
  EXPECT_EQ(inflateInit2(&stream, 15 + 16), Z_OK);  // gzip, not a bare zlib stream
  stream.next_in = reinterpret_cast<const Bytef*>(compressed.data());
  stream.avail_in = static_cast<uInt>(compressed.size());
  std::string inflated(1 << 20, '\0');
  stream.next_out = reinterpret_cast<Bytef*>(inflated.data());
  stream.avail_out = static_cast<uInt>(inflated.size());
  EXPECT_EQ(inflate(&stream, Z_FINISH), Z_STREAM_END);
  inflated.resize(stream.total_out);
  inflateEnd(&stream);
  return inflated;
}

pb::Profile decode(const HeapTrace& trace, int64_t start_unix_ns = 0) {
  pb::Profile profile;
  EXPECT_TRUE(profile.ParseFromString(gunzip(render_pprof(trace, start_unix_ns))));
  return profile;
}

// A process with the program mapped at [0x10000, 0x20000) from a file that does not exist.
ProcessHeapProfile process(pid_t pid) {
  ProcessHeapProfile profile;
  profile.pid = pid;
  profile.modules.push_back({0, 0x10000, 0x10000, 0x20000, "/nonexistent/app"});
  return profile;
}

AllocationStats stats(uint64_t allocations, uint64_t allocated_bytes, uint64_t live_blocks, uint64_t live_bytes) {
  AllocationStats s;
  s.allocations = allocations;
  s.allocated_bytes = allocated_bytes;
  s.live_blocks = live_blocks;
  s.live_bytes = live_bytes;
  return s;
}

const std::string& text(const pb::Profile& profile, int64_t index) {
  return profile.string_table(static_cast<int>(index));
}

TEST(Pprof, HeaderNamesTheFourSampleTypesAndTheDefault) {
  HeapTrace trace;
  trace.processes.push_back(process(42));
  trace.processes.back().start_monotonic_ns = 1'000'000'000;
  trace.processes.back().timeline.push_back({3'500'000'000, 0, 0, 0, 0});
  pb::Profile profile = decode(trace, 1'700'000'000'000'000'000);
  ASSERT_GT(profile.string_table_size(), 0);
  EXPECT_EQ(profile.string_table(0), "");
  std::vector<std::string> types;
  for (const pb::ValueType& type : profile.sample_type()) {
    types.push_back(text(profile, type.type()) + "/" + text(profile, type.unit()));
  }
  EXPECT_EQ(types, (std::vector<std::string>{"alloc_objects/count", "alloc_space/bytes", "inuse_objects/count",
                                             "inuse_space/bytes"}));
  EXPECT_EQ(text(profile, profile.default_sample_type()), "inuse_space");
  EXPECT_EQ(profile.time_nanos(), 1'700'000'000'000'000'000);
  EXPECT_EQ(profile.duration_nanos(), 2'500'000'000);
}

TEST(Pprof, OneSamplePerStackWithItsValuesAndPid) {
  HeapTrace trace;
  trace.processes.push_back(process(42));
  ProcessHeapProfile& p = trace.processes.back();
  p.stacks[1] = {0x10101, 0x10201};
  p.stacks[2] = {0x10301, 0x10201};
  p.heap_by_stack[1] = stats(3, 300, 1, 100);
  p.heap_by_stack[2] = stats(5, 50, 0, 0);
  pb::Profile profile = decode(trace);
  ASSERT_EQ(profile.sample_size(), 2);
  EXPECT_EQ(std::vector<int64_t>(profile.sample(0).value().begin(), profile.sample(0).value().end()),
            (std::vector<int64_t>{3, 300, 1, 100}));
  EXPECT_EQ(std::vector<int64_t>(profile.sample(1).value().begin(), profile.sample(1).value().end()),
            (std::vector<int64_t>{5, 50, 0, 0}));
  for (const pb::Sample& sample : profile.sample()) {
    ASSERT_EQ(sample.label_size(), 1);
    EXPECT_EQ(text(profile, sample.label(0).key()), "pid");
    EXPECT_EQ(sample.label(0).num(), 42);
    ASSERT_EQ(sample.location_id_size(), 2);
  }
  // The shared outer frame is one location; the leaf comes first.
  EXPECT_EQ(profile.location_size(), 3);
  EXPECT_EQ(profile.sample(0).location_id(1), profile.sample(1).location_id(1));
  const pb::Location& leaf = profile.location(static_cast<int>(profile.sample(0).location_id(0) - 1));
  // The call instruction, not the return address after it: pprof would name the next line.
  EXPECT_EQ(leaf.address(), 0x10100u);
  EXPECT_EQ(leaf.mapping_id(), 1u);
  EXPECT_EQ(leaf.line_size(), 0) << "no symbols: left for pprof to symbolize";
  ASSERT_EQ(profile.mapping_size(), 1);
  EXPECT_EQ(profile.mapping(0).memory_start(), 0x10000u);
  EXPECT_EQ(profile.mapping(0).memory_limit(), 0x20000u);
  EXPECT_EQ(text(profile, profile.mapping(0).filename()), "/nonexistent/app");
  EXPECT_FALSE(profile.mapping(0).has_functions());
}

TEST(Pprof, AForkedChildSharesMappingsAndLocationsButNotUnmappedAddresses) {
  HeapTrace trace;
  for (pid_t pid : {42, 43}) {
    trace.processes.push_back(process(pid));
    trace.processes.back().stacks[1] = {0x10101, 0x90001};  // 0x90001 is in no module
    trace.processes.back().heap_by_stack[1] = stats(1, 10, 1, 10);
  }
  pb::Profile profile = decode(trace);
  ASSERT_EQ(profile.sample_size(), 2);
  EXPECT_EQ(profile.sample(0).label(0).num(), 42);
  EXPECT_EQ(profile.sample(1).label(0).num(), 43);
  EXPECT_EQ(profile.mapping_size(), 1);
  EXPECT_EQ(profile.sample(0).location_id(0), profile.sample(1).location_id(0));
  EXPECT_NE(profile.sample(0).location_id(1), profile.sample(1).location_id(1));
  EXPECT_EQ(profile.location_size(), 3);
  for (int i = 0; i < profile.location_size(); ++i) {
    const pb::Location& location = profile.location(i);
    EXPECT_EQ(location.id(), static_cast<uint64_t>(i) + 1) << "ids are 1, 2, ...";
    EXPECT_EQ(location.mapping_id(), location.address() == 0x90000 ? 0u : 1u);
  }
}

// A library unloaded and another loaded at its addresses: the same address is two locations, each
// in the mapping of the library mapped when its stack was recorded.
TEST(Pprof, TheSameAddressInLibrariesMappedOneAfterTheOtherIsTwoLocations) {
  HeapTrace trace;
  trace.processes.push_back(process(42));
  ProcessHeapProfile& p = trace.processes.back();
  analyze::TraceModule first{100, 0x50000, 0x50000, 0x60000, "/nonexistent/liba.so"};
  first.unload_seq = 200;
  p.modules.push_back(first);
  p.modules.push_back({300, 0x50000, 0x50000, 0x60000, "/nonexistent/libb.so"});
  p.stacks[1] = {0x50101};
  p.stacks[2] = {0x50101};
  p.stack_seqs[1] = 150;
  p.stack_seqs[2] = 350;
  p.heap_by_stack[1] = stats(1, 7, 1, 7);
  p.heap_by_stack[2] = stats(1, 9, 1, 9);
  pb::Profile profile = decode(trace);
  ASSERT_EQ(profile.sample_size(), 2);
  ASSERT_NE(profile.sample(0).location_id(0), profile.sample(1).location_id(0));
  std::vector<std::string> files;
  for (const pb::Sample& sample : profile.sample()) {
    const pb::Location& location = profile.location(static_cast<int>(sample.location_id(0) - 1));
    EXPECT_EQ(location.address(), 0x50100u);  // the call: the return address 0x50101 - 1
    files.push_back(text(profile, profile.mapping(static_cast<int>(location.mapping_id() - 1)).filename()));
  }
  EXPECT_EQ(files, (std::vector<std::string>{"/nonexistent/liba.so", "/nonexistent/libb.so"}));
}

TEST(Pprof, AnEmptyTraceIsAValidEmptyProfile) {
  pb::Profile profile = decode(HeapTrace{});
  EXPECT_EQ(profile.sample_size(), 0);
  EXPECT_EQ(profile.sample_type_size(), 4);
  EXPECT_EQ(profile.duration_nanos(), 0);
}

}  // namespace
}  // namespace memdx::report
