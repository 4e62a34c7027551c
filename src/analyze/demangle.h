// Function names as the source spells them, from the symbol names compilers emit: C++ (Itanium,
// "_Z..."), Rust's v0 mangling ("_R...") and Rust's legacy mangling (Itanium with a trailing
// "17h<16 hex digits>E" hash element and "$LT$"-style escapes). LLVM's demangler does the Rust
// work; C++ goes through the C++ runtime's own __cxa_demangle, which names types as GCC does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace memdx::analyze {

// The language a symbol (or its compile unit) says a function is written in, where that tells
// runtime code apart: Rust's standard library paths (core::, alloc::) mean nothing in C++.
enum class SourceLanguage : uint8_t { kUnknown, kC, kCxx, kRust };

struct DemangledName {
  std::string name;
  SourceLanguage language = SourceLanguage::kUnknown;  // from the mangling; kUnknown for a plain name
};

// The readable name of a symbol. C++ loses its " [clone .cold]"-style suffixes (copies the
// optimiser made of one function); Rust loses its hash and escapes, and a v0 inherent method
// reads like a legacy one ("<main::Tracer>::record" -> "main::Tracer::record"), so that one
// function has one name whichever mangling built it. A plain C name, or one that fails to
// demangle, comes back unchanged with kUnknown.
DemangledName demangle_symbol(std::string_view symbol);

}  // namespace memdx::analyze
