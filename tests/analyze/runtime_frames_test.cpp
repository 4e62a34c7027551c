// analyze::is_runtime_frame and is_runtime_module: which frames say how memory was allocated
// (the runtimes, compiled-in standard libraries) and which are the program's own, sites.
#include <gtest/gtest.h>

#include <string>

#include "analyze/heap_sites.h"

namespace memdx::analyze {
namespace {

SourceFrame frame(std::string function, std::string file = "", SourceLanguage language = SourceLanguage::kUnknown,
                  std::string module = "/srv/app/bin/server") {
  SourceFrame f;
  f.function = std::move(function);
  f.file = std::move(file);
  f.line = f.file.empty() ? 0 : 12;
  f.module = std::move(module);
  f.language = language;
  return f;
}

TEST(RuntimeFrames, RustStandardLibraryCompiledIntoTheProgramIsRuntime) {
  // By source file, whatever the name: rustc's own build of std, and std's dependencies.
  EXPECT_TRUE(is_runtime_frame(frame("alloc::raw_vec::finish_grow",
                                     "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/alloc/src/raw_vec/mod.rs",
                                     SourceLanguage::kRust)));
  EXPECT_TRUE(is_runtime_frame(frame("hashbrown::raw::RawTable<T,A>::reserve_rehash",
                                     "/rust/deps/hashbrown-0.16.1/src/raw/mod.rs", SourceLanguage::kRust)));
  // By name, without a file (a stripped binary's symbol table), also as a trait impl's self type.
  for (const char* name :
       {"alloc::fmt::format::format_inner", "core::ops::function::FnOnce::call_once", "std::rt::lang_start_internal",
        "<alloc::alloc::Global as core::alloc::Allocator>::allocate", "hashbrown::map::HashMap<K,V,S,A>::insert"}) {
    EXPECT_TRUE(is_runtime_frame(frame(name, "", SourceLanguage::kRust))) << name;
  }
  // The allocator shims rustc generates.
  for (const char* name : {"__rust_alloc", "__rust_realloc", "__rdl_alloc", "__rg_alloc", "__rustc::__rust_alloc"}) {
    EXPECT_TRUE(is_runtime_frame(frame(name))) << name;
  }
}

TEST(RuntimeFrames, TheProgramsOwnRustCodeIsASite) {
  EXPECT_FALSE(
      is_runtime_frame(frame("call_tracer::CallTracer::record", "/src/app/src/main.rs", SourceLanguage::kRust)));
  // A program's type implementing a standard trait is the program's code.
  EXPECT_FALSE(is_runtime_frame(frame("<app::Config as core::clone::Clone>::clone", "", SourceLanguage::kRust)));
}

// Debian 12's rustc (1.63) builds its standard library from /usr/src/rustc-<version>/library/,
// names a standard trait's impl for a type parameter "<&mut W as core::fmt::Write>::write_char",
// and places the program's own frame at a library macro's line when the call was inlined from it.
TEST(RuntimeFrames, DebiansRustToolchainToo) {
  EXPECT_TRUE(is_runtime_frame(frame("alloc::raw_vec::finish_grow",
                                     "/usr/src/rustc-1.63.0/library/alloc/src/raw_vec.rs", SourceLanguage::kRust)));
  EXPECT_TRUE(is_runtime_frame(frame("<&mut W as core::fmt::Write>::write_char",
                                     "/usr/src/rustc-1.63.0/library/core/src/fmt/mod.rs", SourceLanguage::kRust)));
  EXPECT_TRUE(is_runtime_frame(frame("<u64 as core::fmt::Display>::fmt", "", SourceLanguage::kRust)));
  EXPECT_FALSE(is_runtime_frame(frame("call_tracer::CallTracer::record",
                                      "/usr/src/rustc-1.63.0/library/alloc/src/fmt.rs", SourceLanguage::kRust)));
  // A program's type is still the program's, and a program's file under /usr/src is not a library.
  EXPECT_FALSE(is_runtime_frame(frame("<app::Config as core::fmt::Write>::write_str", "", SourceLanguage::kRust)));
  EXPECT_FALSE(is_runtime_frame(frame("tool::main", "/usr/src/tool/src/main.rs", SourceLanguage::kRust)));
}

TEST(RuntimeFrames, RustCratePathsMeanNothingInCxx) {
  // A C++ program's own namespace named core or alloc is the program's.
  EXPECT_FALSE(is_runtime_frame(frame("core::Engine::load(int)", "/src/engine.cpp", SourceLanguage::kCxx)));
  EXPECT_FALSE(is_runtime_frame(frame("alloc::Pool::grow()", "", SourceLanguage::kUnknown)));
  // std:: is the standard library in either language.
  EXPECT_TRUE(is_runtime_frame(frame("std::vector<int, std::allocator<int> >::push_back(int const&)",
                                     "/usr/include/c++/12/bits/stl_vector.h", SourceLanguage::kCxx)));
}

TEST(RuntimeFrames, RuntimeModules) {
  for (const char* path :
       {"/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6", "/lib64/ld-linux-x86-64.so.2", "/usr/bin/python3.11", "/usr/bin/python3",
        "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", "/usr/bin/node", "/usr/lib/x86_64-linux-gnu/libnode.so.108",
        "/home/u/.rustup/toolchains/stable/lib/libstd-3c5e2b7a4f1d9e08.so"}) {
    EXPECT_TRUE(is_runtime_module(path)) << path;
  }
  for (const char* path : {"/srv/app/bin/server", "/usr/local/bin/python_tool", "/opt/nodes/bin/node_exporter",
                           "/usr/lib/x86_64-linux-gnu/libcurl.so.4"}) {
    EXPECT_FALSE(is_runtime_module(path)) << path;
  }
  EXPECT_TRUE(is_runtime_frame(frame("PyList_Append", "", SourceLanguage::kUnknown, "/usr/bin/python3.11")));
}

}  // namespace
}  // namespace memdx::analyze
