// analyze::demangle_symbol on symbols taken from real binaries: Rust built by rustc 1.95 with
// v0 and with legacy mangling (its standard library is v0), C++ built by GCC, and plain C names.
#include "analyze/demangle.h"

#include <gtest/gtest.h>

#include <string>

namespace memdx::analyze {
namespace {

void expect_demangled(const std::string& symbol, const std::string& name, SourceLanguage language) {
  DemangledName demangled = demangle_symbol(symbol);
  EXPECT_EQ(demangled.name, name) << symbol;
  EXPECT_EQ(demangled.language, language) << symbol;
}

TEST(Demangle, RustV0PathsAndTraitImpls) {
  expect_demangled("_RNvNtCslNYArtu3iFV_5alloc5alloc5alloc", "alloc::alloc::alloc", SourceLanguage::kRust);
  expect_demangled("_RNvXs_NtCslNYArtu3iFV_5alloc5allocNtB4_6GlobalNtNtCsgEmfK2I1SDS_4core5alloc9Allocator8allocate",
                   "<alloc::alloc::Global as core::alloc::Allocator>::allocate", SourceLanguage::kRust);
  expect_demangled("_RNvNvNtCslNYArtu3iFV_5alloc3fmt6format12format_inner", "alloc::fmt::format::format_inner",
                   SourceLanguage::kRust);
}

TEST(Demangle, RustV0InherentMethodReadsLikeLegacy) {
  // v0 writes "<main::CallTracer>::record"; legacy mangling of the same method gives the path.
  expect_demangled("_RNvMCs32gj3y4fnmh_4mainNtB2_10CallTracer6record", "main::CallTracer::record",
                   SourceLanguage::kRust);
  expect_demangled("_RNvMsF_NtCslNYArtu3iFV_5alloc3vecINtB5_3VecNtCs32gj3y4fnmh_4main4CallE8push_mutBH_",
                   "alloc::vec::Vec<main::Call>::push_mut", SourceLanguage::kRust);
}

TEST(Demangle, RustV0LosesTheSuffixLlvmAdded) {
  expect_demangled("_RNvMCs32gj3y4fnmh_4mainNtB2_10CallTracer6record.llvm.5312176110796445007",
                   "main::CallTracer::record", SourceLanguage::kRust);
}

TEST(Demangle, RustLegacyLosesItsHash) {
  expect_demangled("_ZN4main10CallTracer6record17h6c6f4647b870063dE", "main::CallTracer::record",
                   SourceLanguage::kRust);
  expect_demangled(
      "_ZN9hashbrown3raw21RawTable$LT$T$C$A$GT$14reserve_rehash17h6a9e7cba1d8498e8E"
      ".llvm.6660127510428923515",
      "hashbrown::raw::RawTable<T,A>::reserve_rehash", SourceLanguage::kRust);
}

TEST(Demangle, RustLegacyEscapesAreDecoded) {
  expect_demangled("_ZN5alloc7raw_vec20RawVecInner$LT$A$GT$15try_allocate_in17hd87dd332ee4f38d9E",
                   "alloc::raw_vec::RawVecInner<A>::try_allocate_in", SourceLanguage::kRust);
  // A leading '_' before '$', "$u20$" for a space, ".." for "::" inside an element.
  expect_demangled("_ZN63_$LT$u8$u20$as$u20$alloc..vec..spec_from_elem..SpecFromElem$GT$9from_elem17h9eca3d5eee1efb20E",
                   "<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem", SourceLanguage::kRust);
  expect_demangled("_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$17hdbee5a3fa7ab6636E",
                   "std::rt::lang_start::{{closure}}", SourceLanguage::kRust);
}

TEST(Demangle, CxxIsDemangledAsTheCxxRuntimeDoes) {
  expect_demangled("_ZN7fixture6Widget4growEm", "fixture::Widget::grow(unsigned long)", SourceLanguage::kCxx);
  expect_demangled("_ZNSt6vectorIiSaIiEE17_M_realloc_insertIJRKiEEEvN9__gnu_cxx17__normal_iteratorIPiS1_EEDpOT_",
                   "void std::vector<int, std::allocator<int> >::_M_realloc_insert<int const&>(__gnu_cxx::"
                   "__normal_iterator<int*, std::vector<int, std::allocator<int> > >, int const&)",
                   SourceLanguage::kCxx);
  // The optimiser's copies of a function are that function.
  expect_demangled("_Z1fi.constprop.0.cold", "f(int)", SourceLanguage::kCxx);
  // An element that merely looks like a Rust hash, but is not one (15 digits), stays C++.
  expect_demangled("_ZN2ns16h123456789abcdefE", "ns::h123456789abcdef", SourceLanguage::kCxx);
}

TEST(Demangle, CNamesAndUnparsableNamesAreUnchanged) {
  for (const char* name :
       {"main", "f", "malloc", "_start", "__libc_start_main", "_Rather_a_c_function", "_Z", "_ZN4main6broken", ""}) {
    expect_demangled(name, name, SourceLanguage::kUnknown);
  }
}

}  // namespace
}  // namespace memdx::analyze
