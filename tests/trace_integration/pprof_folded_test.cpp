// memdx report --pprof and --folded on memdx_tracee_pprof_sites: the profile read back with
// protobuf's own decoder and the folded lines parsed, both compared with the verdict's totals
// and with what the program is known to allocate from each function.
#define ZLIB_CONST
#include <zlib.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "proto/profile.pb.h"
#include "trace_integration/programs/pprof_plan.h"
#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

namespace plan = memdx::tracee::pprof;
namespace pb = perftools::profiles;

constexpr uint64_t kKeptTotalBytes = plan::kKeptBlocks * plan::kKeptBytes;
constexpr uint64_t kChurnTotalBytes = plan::kChurnBlocks * plan::kChurnBytes;
constexpr uint64_t kChildTotalBytes = plan::kChildBlocks * plan::kChildBytes;
constexpr uint64_t kGrowTotalBytes = plan::kGrowSteps * plan::kGrowBlocksPerStep * plan::kGrowBytes;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The file inflated, as gzip (15 + 16: gzip only, never a bare zlib stream); "" with a test
// failure when it is not whole gzip.
std::string gunzip(const std::string& compressed) {
  z_stream stream{};
  if (inflateInit2(&stream, 15 + 16) != Z_OK) {
    ADD_FAILURE() << "inflateInit2 failed";
    return "";
  }
  stream.next_in = reinterpret_cast<const Bytef*>(compressed.data());
  stream.avail_in = static_cast<uInt>(compressed.size());
  std::string inflated;
  char buffer[65536];
  int result = Z_OK;
  while (result == Z_OK) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer);
    stream.avail_out = sizeof(buffer);
    result = inflate(&stream, Z_NO_FLUSH);
    inflated.append(buffer, sizeof(buffer) - stream.avail_out);
  }
  inflateEnd(&stream);
  if (result != Z_STREAM_END) {
    ADD_FAILURE() << "not a whole gzip stream (zlib result " << result << ")";
    return "";
  }
  return inflated;
}

pb::Profile read_profile(const std::string& path) {
  pb::Profile profile;
  EXPECT_TRUE(profile.ParseFromString(gunzip(read_file(path)))) << path << " is not a pprof Profile";
  return profile;
}

// The profile's tables, by id, for following a sample to its function names.
struct ProfileIndex {
  explicit ProfileIndex(const pb::Profile& p) : profile(p) {
    for (const pb::Location& location : p.location()) locations[location.id()] = &location;
    for (const pb::Function& function : p.function()) functions[function.id()] = &function;
  }
  const std::string& text(int64_t index) const { return profile.string_table(static_cast<int>(index)); }
  // Every function name of the sample's stack, inlined ones included.
  std::set<std::string> function_names(const pb::Sample& sample) const {
    std::set<std::string> names;
    for (uint64_t location_id : sample.location_id()) {
      for (const pb::Line& line : locations.at(location_id)->line()) {
        names.insert(text(functions.at(line.function_id())->name()));
      }
    }
    return names;
  }

  const pb::Profile& profile;
  std::map<uint64_t, const pb::Location*> locations;
  std::map<uint64_t, const pb::Function*> functions;
};

// The four values summed over the samples whose stack names `function` (all samples when "").
std::vector<uint64_t> value_sums(const ProfileIndex& index, const std::string& function = "") {
  std::vector<uint64_t> sums(4, 0);
  for (const pb::Sample& sample : index.profile.sample()) {
    if (!function.empty() && !index.function_names(sample).count(function)) continue;
    for (int i = 0; i < 4 && i < sample.value_size(); ++i)
      sums[static_cast<size_t>(i)] += static_cast<uint64_t>(sample.value(i));
  }
  return sums;
}

struct FoldedLine {
  std::vector<std::string> frames;  // outermost first
  uint64_t value = 0;
};

// "a;b;c 123" lines; a test failure for any line of another shape.
std::vector<FoldedLine> read_folded(const std::string& path) {
  std::vector<FoldedLine> lines;
  std::istringstream text(read_file(path));
  for (std::string line; std::getline(text, line);) {
    size_t space = line.rfind(' ');
    if (space == std::string::npos || space == 0 ||
        line.find_first_not_of("0123456789", space + 1) != std::string::npos) {
      ADD_FAILURE() << "not a folded line: '" << line << "'";
      continue;
    }
    FoldedLine folded;
    folded.value = std::stoull(line.substr(space + 1));
    std::istringstream frames(line.substr(0, space));
    for (std::string frame; std::getline(frames, frame, ';');) folded.frames.push_back(frame);
    lines.push_back(std::move(folded));
  }
  return lines;
}

uint64_t total_of(const std::vector<FoldedLine>& lines) {
  uint64_t total = 0;
  for (const FoldedLine& line : lines) total += line.value;
  return total;
}

// The values of the lines whose leaf frame is `function`, added up.
uint64_t leaf_total(const std::vector<FoldedLine>& lines, const std::string& function) {
  uint64_t total = 0;
  for (const FoldedLine& line : lines) {
    if (!line.frames.empty() && line.frames.back() == function) total += line.value;
  }
  return total;
}

// A heap field summed over the verdict's process images.
uint64_t heap_total(const json& verdict, const char* field) {
  uint64_t total = 0;
  for (const json& entry : verdict["heap"]) total += entry[field].get<uint64_t>();
  return total;
}

class ReportOutputsTest : public TraceTest {
 protected:
  // Traces the program (with `mode`, "" for none) and checks it ran as planned.
  void trace_program(const std::string& mode) {
    std::vector<std::string> command = {tracee_path("pprof_sites")};
    if (!mode.empty()) command.push_back(mode);
    Finished run = trace(command);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    ASSERT_EQ(run.out, "done\n");
  }

  // memdx report REC --json J plus `arguments`.
  Finished report_with(const std::vector<std::string>& arguments) {
    std::vector<std::string> argv = {memdx_path(), "report", recording(), "--json", path("verdict.json")};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    return run_for(argv);
  }

  json verdict() {
    std::ifstream in(path("verdict.json"));
    return json::parse(in);
  }

  // The folded stacks for one metric.
  std::vector<FoldedLine> folded(const std::string& metric) {
    std::string file = path(metric + ".folded");
    Finished run = report_with({"--folded", file, "--metric", metric});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return read_folded(file);
  }
};

TEST_F(ReportOutputsTest, PprofTotalsAreTheVerdictsAndTheTextReportStillPrints) {
  ASSERT_NO_FATAL_FAILURE(trace_program(""));
  Finished plain = report_with({});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  Finished run = report_with({"--pprof", path("heap.pb.gz"), "--folded", path("heap.folded")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, plain.out) << "the text report must not change with --pprof and --folded";
  EXPECT_FALSE(run.out.empty());

  pb::Profile profile = read_profile(path("heap.pb.gz"));
  ProfileIndex index(profile);
  ASSERT_GT(profile.string_table_size(), 0);
  EXPECT_EQ(profile.string_table(0), "");
  std::vector<std::pair<std::string, std::string>> types;
  for (const pb::ValueType& type : profile.sample_type())
    types.emplace_back(index.text(type.type()), index.text(type.unit()));
  std::vector<std::pair<std::string, std::string>> expected_types = {
      {"alloc_objects", "count"}, {"alloc_space", "bytes"}, {"inuse_objects", "count"}, {"inuse_space", "bytes"}};
  ASSERT_EQ(types, expected_types);
  EXPECT_EQ(index.text(profile.default_sample_type()), "inuse_space");
  EXPECT_GT(profile.time_nanos(), 0);
  EXPECT_GT(profile.duration_nanos(), 0);

  json verdict = this->verdict();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  std::vector<uint64_t> totals = value_sums(index);
  EXPECT_EQ(totals[0], heap_total(verdict, "allocations"));
  EXPECT_EQ(totals[1], heap_total(verdict, "allocated_bytes"));
  EXPECT_EQ(totals[2], heap_total(verdict, "final_live_blocks"));
  EXPECT_EQ(totals[3], heap_total(verdict, "final_live_bytes"));
  for (const pb::Sample& sample : profile.sample()) {
    ASSERT_EQ(sample.value_size(), 4);
    ASSERT_EQ(sample.label_size(), 1);
    EXPECT_EQ(index.text(sample.label(0).key()), "pid");
    EXPECT_EQ(sample.label(0).num(), verdict["heap"][0]["pid"].get<int64_t>());
  }

  std::vector<uint64_t> kept = value_sums(index, "keep_one");
  std::vector<uint64_t> expected_kept = {plan::kKeptBlocks, kKeptTotalBytes, plan::kKeptBlocks, kKeptTotalBytes};
  EXPECT_EQ(kept, expected_kept);
  std::vector<uint64_t> churned = value_sums(index, "churn_pages");
  std::vector<uint64_t> expected_churned = {plan::kChurnBlocks, kChurnTotalBytes, 0, 0};
  EXPECT_EQ(churned, expected_churned);

  // pprof keeps the runtime's frames: below fill_vector lie std::vector's and operator new.
  int vector_samples = 0;
  for (const pb::Sample& sample : profile.sample()) {
    if (!index.function_names(sample).count("fill_vector")) continue;
    ++vector_samples;
    ASSERT_GT(sample.location_id_size(), 0);
    for (const pb::Line& line : index.locations.at(sample.location_id(0))->line()) {
      EXPECT_NE(index.text(index.functions.at(line.function_id())->name()), "fill_vector");
    }
  }
  EXPECT_GT(vector_samples, 0);
}

// pprof symbolizes a location itself when it has no line (or when told to): its address must
// lie in the call instruction, whose line is the call's, not at the return address after it
// (memdx_tracee_lines puts the closing brace of keep_history there).
TEST_F(ReportOutputsTest, PprofLocationAddressesAreTheCallsTheirLinesName) {
  Finished traced = trace({tracee_path("lines")});
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  Finished run = report_with({"--pprof", path("heap.pb.gz")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  pb::Profile profile = read_profile(path("heap.pb.gz"));
  ProfileIndex index(profile);
  const std::string program = tracee_path("lines");
  int checked = 0;
  for (const pb::Location& location : profile.location()) {
    if (location.line_size() == 0 || location.mapping_id() == 0) continue;
    const pb::Mapping& mapping = profile.mapping(static_cast<int>(location.mapping_id() - 1));
    if (index.text(mapping.filename()) != program) continue;
    // The first line is the innermost function, inlined or not, and the line in it.
    const pb::Function& function = *index.functions.at(location.line(0).function_id());
    if (index.text(function.filename()).empty()) continue;  // _start: a symbol, no line table
    // A position-independent program: its first segment is at 0, the address less the mapping's
    // start is what addr2line takes. It prints the innermost function, then its file:line.
    Finished named = run_for(
        {find_on_path("addr2line"), "-e", program, fmt::format("0x{:x}", location.address() - mapping.memory_start())});
    std::string place = named.out.substr(0, named.out.find_first_of(" \n"));  // less " (discriminator N)"
    EXPECT_EQ(place, fmt::format("{}:{}", index.text(function.filename()), location.line(0).line()))
        << index.text(function.name()) << " at 0x" << std::hex << location.address();
    if (index.text(function.filename()) == tracee_source("lines.cpp")) ++checked;
  }
  EXPECT_GE(checked, 3) << "keep_history, make_record in keep_record, and main";
}

TEST_F(ReportOutputsTest, PprofNamesFunctionsWithTheirFilesAndInlinedFramesInnermostFirst) {
  ASSERT_NO_FATAL_FAILURE(trace_program(""));
  Finished run = report_with({"--pprof", path("heap.pb.gz")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  pb::Profile profile = read_profile(path("heap.pb.gz"));
  ProfileIndex index(profile);

  std::map<std::string, std::set<std::string>> files_by_function;
  for (const pb::Function& function : profile.function()) {
    files_by_function[index.text(function.name())].insert(index.text(function.filename()));
  }
  for (const char* function : {"keep_one", "keep_blocks", "churn_pages", "main"}) {
    EXPECT_EQ(files_by_function[function], std::set<std::string>{tracee_source("pprof_sites.cpp")}) << function;
  }

  // keep_one was inlined into keep_blocks: one location, keep_one's line first.
  int inlined_locations = 0;
  std::set<uint64_t> mapping_ids;
  for (const pb::Mapping& mapping : profile.mapping()) mapping_ids.insert(mapping.id());
  for (const pb::Location& location : profile.location()) {
    ASSERT_TRUE(location.mapping_id() == 0 || mapping_ids.count(location.mapping_id())) << location.id();
    std::vector<std::string> names;
    for (const pb::Line& line : location.line())
      names.push_back(index.text(index.functions.at(line.function_id())->name()));
    if (std::find(names.begin(), names.end(), "keep_one") == names.end()) continue;
    ++inlined_locations;
    EXPECT_EQ(names, (std::vector<std::string>{"keep_one", "keep_blocks"}));
    const pb::Mapping& mapping = profile.mapping(static_cast<int>(location.mapping_id() - 1));
    EXPECT_EQ(mapping.id(), location.mapping_id());
    EXPECT_EQ(index.text(mapping.filename()), tracee_path("pprof_sites"));
    EXPECT_GE(location.address(), mapping.memory_start());
    EXPECT_LE(location.address(), mapping.memory_limit());
    EXPECT_TRUE(mapping.has_functions());
  }
  EXPECT_EQ(inlined_locations, 1);
}

TEST_F(ReportOutputsTest, FoldedOfOneImageHasProgramLeavesAndTheVerdictsTotals) {
  ASSERT_NO_FATAL_FAILURE(trace_program(""));
  std::vector<FoldedLine> allocated = folded("allocated");
  json verdict = this->verdict();
  EXPECT_EQ(total_of(allocated), heap_total(verdict, "allocated_bytes"));
  EXPECT_EQ(leaf_total(allocated, "keep_one"), kKeptTotalBytes);
  EXPECT_EQ(leaf_total(allocated, "churn_pages"), kChurnTotalBytes);
  // std::vector's templates and operator new below fill_vector are the runtime's: not leaves.
  EXPECT_GT(leaf_total(allocated, "fill_vector"), plan::kVectorItems * sizeof(uint64_t));
  for (const FoldedLine& line : allocated) {
    ASSERT_FALSE(line.frames.empty());
    EXPECT_NE(line.frames.front().rfind("pid ", 0), 0u) << "one image: no process frame";
    bool through_fill_vector = std::find(line.frames.begin(), line.frames.end(), "fill_vector") != line.frames.end();
    if (through_fill_vector) {
      EXPECT_EQ(line.frames.back(), "fill_vector");
    }
    if (line.frames.back() != "keep_one") continue;
    ASSERT_GE(line.frames.size(), 3u);
    EXPECT_EQ(line.frames[line.frames.size() - 2], "keep_blocks");
    EXPECT_EQ(line.frames[line.frames.size() - 3], "main");
  }

  std::vector<FoldedLine> leaked = folded("leaked");
  EXPECT_EQ(total_of(leaked), heap_total(verdict, "final_live_bytes"));
  EXPECT_EQ(leaf_total(leaked, "keep_one"), kKeptTotalBytes);
  EXPECT_EQ(leaf_total(leaked, "churn_pages"), 0u) << "freed stacks have no line";
  for (const FoldedLine& line : leaked) EXPECT_GT(line.value, 0u);

  std::vector<FoldedLine> peak = folded("peak");
  EXPECT_EQ(total_of(peak), heap_total(verdict, "peak_live_bytes"));
  EXPECT_EQ(leaf_total(peak, "keep_one"), kKeptTotalBytes);
  EXPECT_EQ(leaf_total(peak, "churn_pages"), kChurnTotalBytes);
}

TEST_F(ReportOutputsTest, FoldedOfTwoProcessesStartsEachLineWithItsProcess) {
  ASSERT_NO_FATAL_FAILURE(trace_program("fork"));
  std::vector<FoldedLine> leaked = folded("leaked");
  std::vector<FoldedLine> peak = folded("peak");
  std::vector<FoldedLine> allocated = folded("allocated");
  json verdict = this->verdict();
  ASSERT_EQ(verdict["heap"].size(), 2u);
  EXPECT_EQ(total_of(leaked), heap_total(verdict, "final_live_bytes"));
  EXPECT_EQ(total_of(peak), heap_total(verdict, "peak_live_bytes"));
  EXPECT_EQ(total_of(allocated), heap_total(verdict, "allocated_bytes"));

  pid_t parent = verdict["heap"][0]["pid"].get<pid_t>();
  pid_t child = verdict["heap"][1]["pid"].get<pid_t>();
  ASSERT_EQ(verdict["heap"][1]["ppid"].get<pid_t>(), parent);
  std::string parent_frame = "pid " + std::to_string(parent) + " (memdx_tracee_pprof_sites)";
  std::string child_frame = "pid " + std::to_string(child) + " (memdx_tracee_pprof_sites)";
  std::map<std::string, uint64_t> leaked_by_process;
  for (const FoldedLine& line : leaked) {
    ASSERT_FALSE(line.frames.empty());
    EXPECT_TRUE(line.frames.front() == parent_frame || line.frames.front() == child_frame) << line.frames.front();
    leaked_by_process[line.frames.front()] += line.value;
    if (line.frames.back() == "child_blocks") {
      EXPECT_EQ(line.frames.front(), child_frame);
    }
    if (line.frames.back() == "keep_one") {
      EXPECT_EQ(line.frames.front(), parent_frame);
    }
  }
  EXPECT_EQ(leaked_by_process[parent_frame], verdict["heap"][0]["final_live_bytes"].get<uint64_t>());
  EXPECT_EQ(leaked_by_process[child_frame], verdict["heap"][1]["final_live_bytes"].get<uint64_t>());
  EXPECT_EQ(leaf_total(leaked, "child_blocks"), kChildTotalBytes);
  // The child's trace starts at the fork: the blocks it inherited are the parent's alone.
  EXPECT_EQ(leaf_total(leaked, "keep_one"), kKeptTotalBytes);
}

TEST_F(ReportOutputsTest, FoldedGrowthNamesTheSteadilyGrowingFunction) {
  ASSERT_NO_FATAL_FAILURE(trace_program("grow"));
  std::vector<FoldedLine> growth = folded("growth");
  uint64_t grown = leaf_total(growth, "grow_steadily");
  // A Theil-Sen slope times the series' span: close to what was kept, not exactly it.
  EXPECT_GT(grown, kGrowTotalBytes / 2);
  EXPECT_LT(grown, kGrowTotalBytes * 3 / 2);
  EXPECT_EQ(leaf_total(growth, "churn_pages"), 0u) << "what was freed again did not grow";
  for (const FoldedLine& line : growth) EXPECT_GT(line.value, 0u);
}

TEST_F(ReportOutputsTest, AnUnknownMetricIsOneLineNamingTheChoices) {
  ASSERT_NO_FATAL_FAILURE(trace_program(""));
  Finished run = report_with({"--folded", path("heap.folded"), "--metric", "nonsense"});
  EXPECT_EQ(run.exit_code, 2) << "a usage error";
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  EXPECT_NE(run.err.find("'nonsense'"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("peak, growth, leaked or allocated"), std::string::npos) << run.err;
  EXPECT_TRUE(run.out.empty());
  EXPECT_FALSE(std::filesystem::exists(path("heap.folded")));
}

TEST_F(ReportOutputsTest, MetricWithoutFoldedIsAUsageError) {
  ASSERT_NO_FATAL_FAILURE(trace_program(""));
  Finished run = report_with({"--metric", "leaked"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  EXPECT_NE(run.err.find("--folded"), std::string::npos) << run.err;
}

TEST_F(ReportOutputsTest, AnUnwritableProfileIsOneLineAndNoFile) {
  ASSERT_NO_FATAL_FAILURE(trace_program(""));
  std::string profile = path("missing-dir/heap.pb.gz");
  Finished run = report_with({"--pprof", profile});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.err, "memdx: cannot write " + profile + ": No such file or directory\n");
  EXPECT_TRUE(run.out.empty()) << "a bad output path fails before the analysis";
}

}  // namespace
}  // namespace memdx::test
