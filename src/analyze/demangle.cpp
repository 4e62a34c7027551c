#include "analyze/demangle.h"

#include <cxxabi.h>
#include <llvm/Demangle/Demangle.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <vector>

namespace memdx::analyze {
namespace {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

bool is_hex_digit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

// "f(int) [clone .constprop.0] [clone .cold]" -> "f(int)": the optimiser's copies of a function
// (constant-propagated, hot/cold split) are one function in the source, and must count as one.
std::string without_clone_suffixes(std::string name) {
  size_t clone = name.find(" [clone .");
  if (clone != std::string::npos && name.back() == ']') name.resize(clone);
  return name;
}

std::optional<std::string> demangle_cxx(const std::string& symbol) {
  int status = 0;
  std::unique_ptr<char, FreeDeleter> demangled(abi::__cxa_demangle(symbol.c_str(), nullptr, nullptr, &status));
  if (status != 0 || !demangled) return std::nullopt;
  return without_clone_suffixes(demangled.get());
}

// LLVM's entry point for every mangling but Microsoft's; its signature takes a const char* in
// LLVM 14 and a string_view from LLVM 17 on, and a C string converts to either.
std::optional<std::string> demangle_with_llvm(const std::string& symbol) {
  std::string result;
  if (!llvm::nonMicrosoftDemangle(symbol.c_str(), result)) return std::nullopt;
  return result;
}

// Where a legacy Rust symbol's mangled part ends: "_ZN" ... "17h" + 16 hex digits + "E", then
// nothing or a ".suffix" LLVM added (".llvm.1234"). npos for anything else: the hash element is
// what tells Rust from C++, as in rustc-demangle.
size_t rust_legacy_end(std::string_view symbol) {
  if (symbol.substr(0, 3) != "_ZN") return std::string_view::npos;
  size_t hash = symbol.rfind("17h");
  constexpr size_t kHashDigits = 16;
  if (hash == std::string_view::npos || hash + 3 + kHashDigits >= symbol.size()) return std::string_view::npos;
  for (size_t i = hash + 3; i < hash + 3 + kHashDigits; ++i) {
    if (!is_hex_digit(symbol[i])) return std::string_view::npos;
  }
  size_t end = hash + 3 + kHashDigits;
  if (symbol[end] != 'E' || (end + 1 < symbol.size() && symbol[end + 1] != '.')) return std::string_view::npos;
  return end + 1;
}

// The character a legacy escape stands for ("LT" -> '<', "u20" -> ' '); nullopt if unknown.
std::optional<char> legacy_escape(std::string_view code) {
  static constexpr std::pair<std::string_view, char> kNamed[] = {{"SP", '@'}, {"BP", '*'}, {"RF", '&'}, {"LT", '<'},
                                                                 {"GT", '>'}, {"LP", '('}, {"RP", ')'}, {"C", ','}};
  for (const auto& [name, c] : kNamed) {
    if (code == name) return c;
  }
  if (code.size() < 2 || code.size() > 3 || code[0] != 'u') return std::nullopt;
  unsigned value = 0;
  for (char digit : code.substr(1)) {
    if (!is_hex_digit(digit)) return std::nullopt;
    value = value * 16 + static_cast<unsigned>(digit <= '9' ? digit - '0' : digit - 'a' + 10);
  }
  if (value < 0x20 || value > 0x7e) return std::nullopt;
  return static_cast<char>(value);
}

// One path element of a legacy symbol: "_$LT$u8$u20$as$u20$alloc..vec..Foo$GT$" -> "<u8 as
// alloc::vec::Foo>". nullopt when it holds an escape rustc never writes.
std::optional<std::string> decode_legacy_element(std::string_view element) {
  if (element.substr(0, 2) == "_$") element.remove_prefix(1);  // '_' keeps an identifier from starting with '$'
  std::string out;
  while (!element.empty()) {
    if (element.substr(0, 2) == "..") {
      out += "::";
      element.remove_prefix(2);
    } else if (element[0] == '$') {
      size_t close = element.find('$', 1);
      if (close == std::string_view::npos) return std::nullopt;
      std::optional<char> c = legacy_escape(element.substr(1, close - 1));
      if (!c) return std::nullopt;
      out += *c;
      element.remove_prefix(close + 1);
    } else {
      out += element[0];
      element.remove_prefix(1);
    }
  }
  return out;
}

std::vector<std::string_view> split_path(std::string_view name) {
  std::vector<std::string_view> elements;
  for (size_t start = 0;;) {
    size_t separator = name.find("::", start);
    elements.push_back(name.substr(start, separator - start));
    if (separator == std::string_view::npos) return elements;
    start = separator + 2;
  }
}

// Itanium gives "main::Tracer::record::h0123456789abcdef" with each element still escaped: the
// hash goes (it tells builds apart, not functions) and every element is decoded.
std::optional<std::string> demangle_rust_legacy(std::string_view symbol, size_t mangled_end) {
  std::optional<std::string> itanium = demangle_with_llvm(std::string(symbol.substr(0, mangled_end)));
  if (!itanium) return std::nullopt;
  std::vector<std::string_view> elements = split_path(*itanium);
  elements.pop_back();  // "h0123456789abcdef"
  std::string name;
  for (std::string_view element : elements) {
    std::optional<std::string> decoded = decode_legacy_element(element);
    if (!decoded) return std::nullopt;
    if (!name.empty()) name += "::";
    name += *decoded;
  }
  return name;
}

// The end of the bracketed prefix "<...>" that `name` starts with, brackets nested; npos if none.
size_t closing_bracket(std::string_view name) {
  int depth = 0;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '<') ++depth;
    if (name[i] == '>' && --depth == 0) return i;
  }
  return std::string_view::npos;
}

// "<main::Tracer>::record" -> "main::Tracer::record": v0 brackets the type of an inherent impl,
// where legacy mangling wrote the plain path. A trait impl ("<main::Tracer as core::fmt::Debug>")
// keeps its brackets: there they say which trait.
std::string without_inherent_impl_brackets(std::string_view name) {
  if (name.empty() || name[0] != '<') return std::string(name);
  size_t close = closing_bracket(name);
  if (close == std::string_view::npos || name.substr(close + 1, 2) != "::") return std::string(name);
  if (name.substr(0, close).find(" as ") != std::string_view::npos) return std::string(name);
  return std::string(name.substr(1, close - 1)).append(name.substr(close + 1));
}

std::optional<std::string> demangle_rust_v0(std::string_view symbol) {
  // v0 names never hold a '.': what follows one is a suffix LLVM added (".llvm.1234", ".cold").
  std::optional<std::string> name = demangle_with_llvm(std::string(symbol.substr(0, symbol.find('.'))));
  if (!name) return std::nullopt;
  return without_inherent_impl_brackets(*name);
}

}  // namespace

DemangledName demangle_symbol(std::string_view symbol) {
  if (symbol.substr(0, 2) == "_R") {
    if (std::optional<std::string> name = demangle_rust_v0(symbol)) return {std::move(*name), SourceLanguage::kRust};
  }
  if (size_t end = rust_legacy_end(symbol); end != std::string_view::npos) {
    if (std::optional<std::string> name = demangle_rust_legacy(symbol, end)) {
      return {std::move(*name), SourceLanguage::kRust};
    }
  }
  // Only "_Z" names are mangled C++: __cxa_demangle would turn a C symbol such as "f" into "float".
  if (symbol.substr(0, 2) == "_Z") {
    if (std::optional<std::string> name = demangle_cxx(std::string(symbol))) {
      return {std::move(*name), SourceLanguage::kCxx};
    }
  }
  return {std::string(symbol), SourceLanguage::kUnknown};
}

}  // namespace memdx::analyze
