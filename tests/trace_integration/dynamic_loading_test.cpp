// memdx trace on libraries loaded and unloaded at run time (memdx_tracee_dl and its libraries,
// dl_plan.h): what their constructors and destructors allocate and free, a library loaded with
// RTLD_DEEPBIND, a library never unloaded, two libraries loaded at the same address one after the
// other, and a library the program finds through its own RUNPATH.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "analyze/heap_profile.h"
#include "store/recording_reader.h"
#include "trace_integration/programs/dl_plan.h"
#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

namespace plan = memdx::tracee::dl;

std::string library_path(const std::string& name) {
  return std::string(MEMDX_TRACEE_DIR) + "/memdx_tracee_" + name + ".so";
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The sites whose function starts with `prefix`, added up.
SiteSums sites_starting(const json& heap, const std::string& prefix) {
  SiteSums sums;
  for (const json& site : heap["sites"]) {
    if (site["function"].get<std::string>().rfind(prefix, 0) == 0) sums.add(site);
  }
  return sums;
}

class DynamicLoadingTest : public TraceTest {
 protected:
  // memdx trace on memdx_tracee_dl with `args`; its single process's heap entry. The program's
  // output is checked against the same command run without memdx.
  json traced_heap(const std::vector<std::string>& args, const std::string& expected_out) {
    std::vector<std::string> command = {tracee_path("dl")};
    command.insert(command.end(), args.begin(), args.end());
    Finished native = run_for(command);
    EXPECT_EQ(native.exit_code, 0) << native.out << native.err;
    EXPECT_EQ(native.out, expected_out);
    Finished run = trace(command);
    EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
    EXPECT_EQ(run.out, expected_out);
    json verdict = report();
    if (verdict["heap"].size() != 1) {
      ADD_FAILURE() << "one traced process expected: " << verdict.dump(2);
      return json::object();
    }
    return verdict["heap"][0];
  }

  // A site's figures, its file and line checked against the "// site:" marker in `source`.
  static SiteSums named_site(const json& heap, const std::string& function, const std::string& source,
                             const std::string& marker) {
    SiteSums site = site_sums(heap, function);
    EXPECT_EQ(site.sites, 1u) << function << " is not a site of its own: " << heap["sites"].dump(2);
    EXPECT_EQ(site.files, std::set<std::string>{tracee_source(source)}) << function;
    EXPECT_EQ(site.lines, marked_lines(tracee_source(source), marker)) << function;
    return site;
  }
};

// What a library's constructor allocates its destructor frees, when dlclose runs it: nothing of
// it is left live, and each free found its allocation.
TEST_F(DynamicLoadingTest, FreesByDestructorsThatDlcloseRunsAreRecorded) {
  json heap = traced_heap({"dtor", library_path("dl_dtor")}, "closed\n");
  EXPECT_EQ(heap["unmatched_frees"], 0);
  SiteSums load = named_site(heap, "dl_dtor_allocate", "dl_dtor_lib.cpp", "dl_dtor_allocate");
  EXPECT_EQ(load.allocations, 1u);
  EXPECT_EQ(load.allocated_bytes, plan::kLoadBytes);
  EXPECT_EQ(load.final_live_bytes, 0u) << "the destructor's free was not recorded";
  EXPECT_EQ(load.final_live_blocks, 0u);
  SiteSums object = sites_starting(heap, "(anonymous namespace)::StaticHolder::allocate");
  EXPECT_EQ(object.sites, 1u) << heap["sites"].dump(2);
  EXPECT_EQ(object.allocated_bytes, plan::kStaticBytes);
  EXPECT_EQ(object.final_live_bytes, 0u) << "the C++ static destructor's delete[] was not recorded";
}

// A library never unloaded is named by function, file and line: its module was recorded when it
// was loaded, not only when (if ever) it is unloaded.
TEST_F(DynamicLoadingTest, LeakInLibraryNeverUnloadedIsNamed) {
  json heap = traced_heap({"keep", library_path("dl_keep")}, "kept\n");
  SiteSums leak = named_site(heap, "dl_keep_leak", "dl_keep_lib.cpp", "dl_keep_leak");
  EXPECT_EQ(leak.allocations, 1u);
  EXPECT_EQ(leak.final_live_bytes, plan::kKeepBytes);
}

// RTLD_DEEPBIND: the library still prefers its own definitions (dl_preferred), and its malloc,
// which it binds to libc's directly, is traced all the same.
TEST_F(DynamicLoadingTest, DeepBoundLibraryKeepsItsBindingAndItsLeakIsNamed) {
  for (const char* binding : {"now", "lazy"}) {
    SCOPED_TRACE(binding);
    json heap = traced_heap({"deepbind", library_path("dl_deep"), binding}, "library\n");
    SiteSums leak = named_site(heap, "dl_deep_leak", "dl_deep_lib.cpp", "dl_deep_leak");
    EXPECT_EQ(leak.allocations, 1u);
    EXPECT_EQ(leak.final_live_bytes, plan::kDeepBytes);
  }
}

// RTLD_DEEPBIND on a library with an allocator of its own: its calls keep reaching its own malloc
// (the tracer routes only what would otherwise reach libc's past it; stripping the flag, as
// heaptrack does, would send them to the global malloc).
TEST_F(DynamicLoadingTest, DeepBoundLibraryKeepsItsOwnAllocator) {
  traced_heap({"deepown", library_path("dl_own_malloc")}, "own\n");
}

// A library the program opens by bare name, found only through the program's RUNPATH, loads
// under the tracer as it does without it: the dlopen hook must not make itself the caller whose
// search path the loader uses. With RTLD_DEEPBIND too, where the tracer then leaves the call to
// the program (deep_bind.h): the library loads, though its direct malloc calls go unseen.
TEST_F(DynamicLoadingTest, LibraryFoundThroughTheProgramsRunpathStillLoads) {
  json heap = traced_heap({"bare", "memdx_tracee_dl_bare.so"}, "kept\n");
  SiteSums leak = named_site(heap, "dl_keep_leak", "dl_keep_lib.cpp", "dl_keep_leak");
  EXPECT_EQ(leak.final_live_bytes, plan::kKeepBytes);
  traced_heap({"bare", "memdx_tracee_dl_bare.so", "deepbind"}, "kept\n");
}

// Two libraries loaded one after the other at the same address, each leaking from its own
// function through the same return addresses: each leak is named in its own library.
TEST_F(DynamicLoadingTest, LibrariesLoadedAtTheSameAddressAreEachNamed) {
  json heap = traced_heap({"same", library_path("dl_same_a"), library_path("dl_same_b")}, "same address\n");
  // The module records say both were loaded at the same address, the first unloaded before.
  store::RecordingReader recording = store::RecordingReader::open(recording_);
  analyze::HeapTrace trace = analyze::build_heap_trace(recording);
  ASSERT_EQ(trace.processes.size(), 1u);
  const analyze::ProcessHeapProfile& profile = trace.processes[0];
  auto module_named = [&](const std::string& suffix) -> const analyze::TraceModule* {
    auto found = std::find_if(profile.modules.begin(), profile.modules.end(),
                              [&](const analyze::TraceModule& m) { return ends_with(m.path, suffix); });
    return found == profile.modules.end() ? nullptr : &*found;
  };
  const analyze::TraceModule* first = module_named("/memdx_tracee_dl_same_a.so");
  const analyze::TraceModule* second = module_named("/memdx_tracee_dl_same_b.so");
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  ASSERT_EQ(first->start, second->start) << "the two libraries were not loaded at the same address";
  EXPECT_LT(first->unload_seq, second->seq) << "the first library was not recorded unloaded before the second loaded";
  EXPECT_EQ(second->unload_seq, analyze::TraceModule::kNeverUnloaded);

  SiteSums a = named_site(heap, "dl_same_a_leak", "dl_same_lib.cpp", "SAME_LEAK");
  EXPECT_EQ(a.final_live_bytes, plan::kSameABytes);
  EXPECT_EQ(a.final_live_blocks, 1u);
  SiteSums b = named_site(heap, "dl_same_b_leak", "dl_same_lib.cpp", "SAME_LEAK");
  EXPECT_EQ(b.final_live_bytes, plan::kSameBBytes);
  EXPECT_EQ(b.final_live_blocks, 1u);
}

}  // namespace
}  // namespace memdx::test
