// The site analysis on programs with known memory behaviour (programs/sites.cpp, lines.cpp and
// the Rust call_tracer.rs), run by `memdx run` as a user would: which call sites hold growing
// memory, what leaked at exit, what was temporary, the findings that name those sites, and the
// lines they name.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

class SitesTest : public TraceTest {
 protected:
  // memdx run --json on `command`; the verdict.
  json run_program(const std::vector<std::string>& command, const std::string& name) {
    std::string json_path = path(name + ".json");
    recording_ = path(name + ".memdx");
    std::vector<std::string> argv = {memdx_path(), "run", "--json", json_path, "--out", recording_, "--"};
    argv.insert(argv.end(), command.begin(), command.end());
    Finished run = run_for(argv, 120);
    EXPECT_FALSE(run.timed_out);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    std::ifstream in(json_path);
    if (!in) {
      ADD_FAILURE() << "no verdict JSON: " << run.err;
      return json::object();
    }
    return json::parse(in);
  }

  // memdx run --json on the sites program in `mode`; the verdict.
  json run_sites(const std::string& mode, const std::string& tracee = "sites") {
    return run_program({tracee_path(tracee), mode, "7"}, mode);
  }
};

std::vector<json> findings_of(const json& verdict, const std::string& kind) {
  std::vector<json> found;
  for (const json& f : verdict["findings"]) {
    if (f["kind"] == kind) found.push_back(f);
  }
  return found;
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

const json* site_named(const json& sites, const std::string& function) {
  for (const json& site : sites) {
    if (starts_with(site["function"].get<std::string>(), function)) return &site;
  }
  return nullptr;
}

TEST_F(SitesTest, UnboundedContainerFreedAtExitIsTheTopGrowthSite) {
  json verdict = run_sites("growth");
  std::vector<json> growth = findings_of(verdict, "heap_growth");
  ASSERT_EQ(growth.size(), 1u) << verdict["findings"].dump(2);
  EXPECT_EQ(growth[0]["severity"], "leak");
  const json& sites = growth[0]["sites"];
  ASSERT_FALSE(sites.empty());
  const json& top = sites[0];
  EXPECT_TRUE(starts_with(top["function"].get<std::string>(), "(anonymous namespace)::remember_request"))
      << top.dump(2);
  EXPECT_EQ(top["file"], tracee_source("sites.cpp"));
  EXPECT_EQ(std::set<int>{top["line"].get<int>()}, marked_lines(tracee_source("sites.cpp"), "remember_request"));
  // 16 KiB every ~10 ms: about 1.5 MiB/s (sleeps overshoot; never faster than planned).
  double rate = top["growth_bytes_per_s"].get<double>();
  EXPECT_GT(rate, 0.8e6);
  EXPECT_LT(rate, 1.7e6);
  // Freed at exit: a classic leak checker reports nothing here. What it held at the peak is what
  // the finding says.
  EXPECT_EQ(top["live_bytes"], 0);
  EXPECT_GT(top["live_at_peak_bytes"].get<uint64_t>(), 1u << 20) << top.dump(2);
  // The bounded cache and the temporaries are not growth sites.
  EXPECT_EQ(site_named(sites, "(anonymous namespace)::cache_response"), nullptr) << sites.dump(2);
  EXPECT_EQ(site_named(sites, "(anonymous namespace)::format_line"), nullptr) << sites.dump(2);
  // The finding's evidence names the site.
  EXPECT_NE(growth[0]["evidence"].get<std::string>().find("remember_request"), std::string::npos);

  ASSERT_EQ(verdict["heap"].size(), 1u);
  const json& heap_sites = verdict["heap"][0]["sites"];
  const json* cache = site_named(heap_sites, "(anonymous namespace)::cache_response");
  ASSERT_NE(cache, nullptr);
  EXPECT_FALSE((*cache)["growing"].get<bool>()) << cache->dump(2);
  // 64 entries of 16 KiB (plus the map's nodes) live at the peak, not hundreds.
  EXPECT_GE((*cache)["live_at_peak_bytes"].get<uint64_t>(), 64u * 16384);
  EXPECT_LT((*cache)["live_at_peak_bytes"].get<uint64_t>(), 80u * 16384);
  const json* history = site_named(heap_sites, "(anonymous namespace)::remember_request");
  ASSERT_NE(history, nullptr);
  EXPECT_TRUE((*history)["growing"].get<bool>());
  EXPECT_EQ((*history)["final_live_bytes"], 0);
  EXPECT_EQ((*history)["live_at_peak_bytes"].get<uint64_t>(), (*history)["allocated_bytes"].get<uint64_t>());
}

TEST_F(SitesTest, ClassicLeakIsLeakedAtExitAndTemporariesAreCounted) {
  json verdict = run_sites("growth");
  ASSERT_EQ(verdict["heap"].size(), 1u);
  const json& heap = verdict["heap"][0];
  const json* lost = site_named(heap["sites"], "(anonymous namespace)::lose_config");
  ASSERT_NE(lost, nullptr) << heap["sites"].dump(2);
  EXPECT_EQ((*lost)["final_live_blocks"], 100);
  EXPECT_EQ((*lost)["final_live_bytes"], 100000);
  EXPECT_EQ((*lost)["temporary_allocations"], 0);
  // Every format_line block is freed right after it is allocated, nothing else between.
  const json* scratch = site_named(heap["sites"], "(anonymous namespace)::format_line");
  ASSERT_NE(scratch, nullptr);
  EXPECT_GT((*scratch)["allocations"].get<uint64_t>(), 1000u);
  EXPECT_EQ((*scratch)["temporary_allocations"], (*scratch)["allocations"]);
  EXPECT_EQ((*scratch)["final_live_bytes"], 0);

  // The text report lists it under leaks at exit, with its stack below.
  Finished text = run_for({memdx_path(), "report", recording_, "--top", "5"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  size_t leaked = text.out.find("still live at the end (leaked at exit)");
  ASSERT_NE(leaked, std::string::npos) << text.out;
  size_t named = text.out.find("lose_config", leaked);
  ASSERT_NE(named, std::string::npos) << text.out;
  EXPECT_NE(text.out.find("main (sites.cpp:", named), std::string::npos) << text.out;
  size_t growth = text.out.find("heap growth: live bytes rising");
  ASSERT_NE(growth, std::string::npos) << text.out;
  EXPECT_LT(text.out.find("remember_request", growth), leaked) << text.out;
}

TEST_F(SitesTest, MmapArenaIsAnAnonGrowthSite) {
  json verdict = run_sites("mmap");
  std::vector<json> anon = findings_of(verdict, "anon_growth");
  ASSERT_EQ(anon.size(), 1u) << verdict["findings"].dump(2);
  EXPECT_EQ(anon[0]["severity"], "leak");
  ASSERT_FALSE(anon[0]["sites"].empty());
  const json& top = anon[0]["sites"][0];
  EXPECT_TRUE(starts_with(top["function"].get<std::string>(), "(anonymous namespace)::map_chunk")) << top.dump(2);
  EXPECT_EQ(std::set<int>{top["line"].get<int>()}, marked_lines(tracee_source("sites.cpp"), "map_chunk"));
  // Never unmapped: all of it is live at the end.
  EXPECT_GT(top["live_bytes"].get<uint64_t>(), 100u * (256 << 10));
  EXPECT_TRUE(findings_of(verdict, "heap_growth").empty());
}

// Whether its live bytes count as growth or as steps that level off, the vector's resident
// pages rise steadily: the anon finding names it.
TEST_F(SitesTest, DoublingVectorIsNamedByTheAnonFinding) {
  json verdict = run_sites("vector");
  std::vector<json> leaks;
  for (const char* kind : {"heap_growth", "anon_growth"}) {
    for (const json& f : findings_of(verdict, kind)) leaks.push_back(f);
  }
  ASSERT_FALSE(leaks.empty()) << verdict["findings"].dump(2);
  for (const json& leak : leaks) {
    ASSERT_FALSE(leak["sites"].empty()) << leak.dump(2);
    EXPECT_TRUE(starts_with(leak["sites"][0]["function"].get<std::string>(), "(anonymous namespace)::log_events"))
        << leak["sites"].dump(2);
    EXPECT_EQ(std::set<int>{leak["sites"][0]["line"].get<int>()},
              marked_lines(tracee_source("sites.cpp"), "log_events"));
  }
}

TEST_F(SitesTest, InlinedSiteWithoutFramePointersKeepsItsFileAndLine) {
  json verdict = run_sites("inlined", "sites_inlined");
  std::vector<json> growth = findings_of(verdict, "heap_growth");
  ASSERT_EQ(growth.size(), 1u) << verdict["findings"].dump(2);
  ASSERT_FALSE(growth[0]["sites"].empty());
  const json& top = growth[0]["sites"][0];
  EXPECT_TRUE(starts_with(top["function"].get<std::string>(), "(anonymous namespace)::add_posting")) << top.dump(2);
  EXPECT_EQ(top["file"], tracee_source("sites.cpp"));
  EXPECT_EQ(std::set<int>{top["line"].get<int>()}, marked_lines(tracee_source("sites.cpp"), "add_posting"));
  // The caller it was inlined into is the next frame of the stack.
  ASSERT_GE(top["stack"].size(), 2u);
  EXPECT_NE(top["stack"][1].get<std::string>().find("index_document"), std::string::npos) << top["stack"].dump(2);
}

// The Rust program's path as rustc built it with `mangling` ("v0" or "legacy"); "" with a test
// failure when it was not built, or when rustc gave it another mangling than the test is about.
std::string rust_tracee(const std::string& mangling) {
  std::string program = tracee_path("rust_" + mangling);
  if (!std::filesystem::exists(program)) {
    ADD_FAILURE() << program << " was not built: rustc was not found when the build was configured (Debian "
                  << "package rustc; tools/bootstrap.sh installs it)";
    return "";
  }
  Finished symbols = run_for({find_on_path("nm"), program});
  std::istringstream lines(symbols.out);
  std::string record_symbol;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("CallTracer6record") != std::string::npos) record_symbol = line.substr(line.rfind(' ') + 1);
  }
  bool v0 = starts_with(record_symbol, "_R");
  bool legacy = starts_with(record_symbol, "_ZN") && record_symbol.find("17h") != std::string::npos;
  if (mangling == "v0" ? !v0 : !legacy) {
    ADD_FAILURE() << program << ": CallTracer::record is '" << record_symbol << "', not " << mangling << "-mangled";
    return "";
  }
  return program;
}

// What demangling leaves in no name: Rust's mangled prefixes, legacy hashes and $-escapes.
void expect_demangled(const std::string& name) {
  static const std::regex kMangled(R"(^_R|^_ZN|::h[0-9a-f]{16}\b|\$(LT|GT|u20|C|RF)\$)");
  EXPECT_FALSE(std::regex_search(name, kMangled)) << name;
}

// A Vec pushed by a method of the program and never trimmed, its Strings made by std's
// format_inner and its buffer grown by alloc::raw_vec: the growth is the method's, on its line.
void expect_rust_sites(const json& verdict) {
  const std::string source = tracee_source("call_tracer.rs");
  std::vector<json> growth = findings_of(verdict, "heap_growth");
  ASSERT_EQ(growth.size(), 1u) << verdict["findings"].dump(2);
  EXPECT_EQ(growth[0]["severity"], "leak");
  const json& sites = growth[0]["sites"];
  ASSERT_FALSE(sites.empty());
  const json& top = sites[0];
  EXPECT_EQ(top["function"], "call_tracer::CallTracer::record") << top.dump(2);
  EXPECT_EQ(top["file"], source);
  EXPECT_EQ(std::set<int>{top["line"].get<int>()}, marked_lines(source, "record")) << top.dump(2);
  ASSERT_GE(top["stack"].size(), 2u);
  EXPECT_TRUE(starts_with(top["stack"][1].get<std::string>(), "call_tracer::main (call_tracer.rs:"))
      << top["stack"].dump(2);
  // The bounded cache holds 64 entries whatever the run's length: no growth.
  EXPECT_EQ(site_named(sites, "call_tracer::ResponseCache::store"), nullptr) << sites.dump(2);
  ASSERT_EQ(verdict["heap"].size(), 1u);
  const json& heap_sites = verdict["heap"][0]["sites"];
  const json* cache = site_named(heap_sites, "call_tracer::ResponseCache::store");
  ASSERT_NE(cache, nullptr) << heap_sites.dump(2);
  EXPECT_FALSE((*cache)["growing"].get<bool>()) << cache->dump(2);
  for (const json& site : heap_sites) {
    expect_demangled(site["function"]);
    for (const json& frame : site["stack"]) expect_demangled(frame);
  }
}

TEST_F(SitesTest, RustVecGrowthIsTheUserMethodWithV0Mangling) {
  std::string program = rust_tracee("v0");
  if (program.empty()) return;
  expect_rust_sites(run_program({program, "7"}, "rust_v0"));
}

TEST_F(SitesTest, RustVecGrowthIsTheUserMethodWithLegacyMangling) {
  std::string program = rust_tracee("legacy");
  if (program.empty()) return;
  expect_rust_sites(run_program({program, "7"}, "rust_legacy"));
}

// The reports name the line of the allocating call, never the line after it where the return
// address lies: here the closing brace (a destructor runs there) and, in an inlined helper, the
// next statement.
TEST_F(SitesTest, SiteLineIsTheCallNotWhereTheReturnAddressFalls) {
  const std::string source = tracee_source("lines.cpp");
  Finished traced = trace({tracee_path("lines")});
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  json verdict = report();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  const json& sites = verdict["heap"][0]["sites"];
  const json* history = site_named(sites, "(anonymous namespace)::keep_history");
  ASSERT_NE(history, nullptr) << sites.dump(2);
  EXPECT_EQ((*history)["file"], source);
  EXPECT_EQ(std::set<int>{(*history)["line"].get<int>()}, marked_lines(source, "keep_history")) << history->dump(2);
  EXPECT_EQ((*history)["final_live_bytes"], 200 * (16 << 10));

  const json* record = site_named(sites, "(anonymous namespace)::make_record");
  ASSERT_NE(record, nullptr) << sites.dump(2);
  EXPECT_EQ(std::set<int>{(*record)["line"].get<int>()}, marked_lines(source, "make_record")) << record->dump(2);
  ASSERT_GE((*record)["stack"].size(), 2u);
  // The function it was inlined into, at the line that called it.
  std::string caller = (*record)["stack"][1];
  EXPECT_TRUE(starts_with(caller, "(anonymous namespace)::keep_record(long) (lines.cpp:")) << caller;
  EXPECT_EQ(caller.substr(caller.rfind(':') + 1), std::to_string(*marked_lines(source, "keep_record").begin()) + ")");
}

}  // namespace
}  // namespace memdx::test
