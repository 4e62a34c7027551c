#include "analyze/symbolize.h"

#include <sys/stat.h>

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <string_view>
#include <system_error>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "analyze/demangle.h"

#if defined(__SANITIZE_ADDRESS__)
// Under AddressSanitizer (the test build): elfutils' libdw keeps a 32-byte allocation it makes
// while reading line information (in dwarf_getsrc_die's neighbourhood) past dwfl_end, seen on
// rustc's DWARF. The leak is libdw's and would fail every memdx run that symbolizes such a
// program; LeakSanitizer still checks everything else.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:libdw.so\n";
}
#endif

namespace memdx::analyze {
namespace {

// libdwfl's default places for separate debug files: next to the module, its .debug/ folder, then
// the system debug tree (by build-id, then by .gnu_debuglink name under the module's path).
constexpr const char* kDefaultDebugPath = ":.debug:/usr/lib/debug";

// The debug directories first, then the defaults, in libdwfl's syntax: one absolute directory per
// element, ':' between. An absolute element is searched by build-id (DIR/.build-id/xx/yyyy.debug),
// then by the .gnu_debuglink name (or "MODULE.debug") under DIR/<the module's directory>, its
// parents, and DIR itself; a file found by name must match the module's build-id, or the
// debuglink's CRC. A directory whose name holds ':' cannot be said in this syntax and is skipped.
std::string debuginfo_path(const std::vector<std::string>& debug_dirs) {
  std::string path;
  for (const std::string& dir : debug_dirs) {
    if (dir.empty() || dir.find(':') != std::string::npos) continue;
    std::error_code error;
    std::filesystem::path absolute = std::filesystem::absolute(dir, error);
    if (!error) path += absolute.lexically_normal().string() + ":";
  }
  return path + kDefaultDebugPath;
}

struct DwflDeleter {
  void operator()(Dwfl* dwfl) const { dwfl_end(dwfl); }
};
using DwflPtr = std::unique_ptr<Dwfl, DwflDeleter>;

// Arrays libdw hands over with malloc.
struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using DieArray = std::unique_ptr<Dwarf_Die[], FreeDeleter>;

// One file at one place, however many times it was mapped there.
struct LoadedModule {
  ModuleMapping mapping;
  std::vector<std::pair<uint64_t, uint64_t>> mapped;  // [from, until) in seq
  size_t last_loaded = 0;                             // the input position of its latest mapping: later is more recent
  size_t layer = 0;
  Dwfl_Module* dwfl_module = nullptr;  // owned by its layer's Dwfl; null until opened, or if it cannot be
  bool open_attempted = false;

  bool mapped_at(uint64_t seq) const {
    return std::any_of(mapped.begin(), mapped.end(),
                       [seq](const auto& range) { return range.first <= seq && seq < range.second; });
  }
};

// Modules that do not overlap, in one Dwfl (libdwfl refuses overlapping modules): almost every
// process needs one; a library loaded where an unloaded one was goes into another.
struct Layer {
  DwflPtr dwfl;
  std::vector<size_t> modules;   // sorted by start
  std::vector<uint64_t> starts;  // their starts, for the binary search
};

constexpr size_t kNoModule = SIZE_MAX;

struct CacheKey {
  uint64_t address = 0;
  size_t module = kNoModule;
  bool is_return_address = false;
  bool operator==(const CacheKey&) const = default;
};

struct CacheKeyHash {
  size_t operator()(const CacheKey& key) const noexcept {
    return std::hash<uint64_t>{}(key.address ^ (key.module * 0xc4ceb9fe1a85ec53ULL)) ^
           (key.is_return_address ? 0x9e3779b97f4a7c15ULL : 0);
  }
};

// The seq from which a mapping counts as mapped: the last unload at or before its load.
uint64_t mapped_from(const std::vector<uint64_t>& unloads, uint64_t loaded_seq) {
  auto after = std::upper_bound(unloads.begin(), unloads.end(), loaded_seq);
  return after == unloads.begin() ? 0 : *std::prev(after);
}

bool overlaps(const std::vector<LoadedModule>& modules, const std::vector<size_t>& layer,
              const ModuleMapping& mapping) {
  return std::any_of(layer.begin(), layer.end(), [&](size_t i) {
    return modules[i].mapping.start < mapping.end && mapping.start < modules[i].mapping.end;
  });
}

DemangledName demangle(const char* name) {
  if (name == nullptr) return {};
  return demangle_symbol(name);
}

// DWARF 5 names the files of the compile directory relative to it; joined, the path can be opened
// from wherever the analysis runs.
std::string source_path(const char* file, Dwarf_Die* cu) {
  if (file[0] == '/' || cu == nullptr) return file;
  Dwarf_Attribute attr;
  const char* directory = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attr));
  if (directory == nullptr || directory[0] == '\0') return file;
  std::string path = directory;
  if (path.back() != '/') path += '/';
  return path + file;
}

// The DIE that carries DW_AT_name for `die`, reached through DW_AT_abstract_origin (inlined and
// out-of-line instances) and DW_AT_specification (definitions of declared members).
bool find_named_die(Dwarf_Die* die, Dwarf_Die* named) {
  *named = *die;
  for (int hop = 0; hop < 8; ++hop) {  // a bound in case of a malformed reference cycle
    if (dwarf_hasattr(named, DW_AT_name)) return true;
    Dwarf_Attribute attr;
    Dwarf_Attribute* reference = dwarf_attr(named, DW_AT_abstract_origin, &attr);
    if (reference == nullptr) reference = dwarf_attr(named, DW_AT_specification, &attr);
    if (reference == nullptr || dwarf_formref_die(reference, named) == nullptr) return false;
  }
  return false;
}

bool is_naming_scope(int tag) {
  return tag == DW_TAG_namespace || tag == DW_TAG_class_type || tag == DW_TAG_structure_type ||
         tag == DW_TAG_union_type;
}

// "ns::Class::name" from the enclosing scopes, for functions without a linkage name: GCC omits
// it for static functions, and DW_AT_name alone would say "step" for fixture::step.
std::string qualified_name(Dwarf_Die* die) {
  Dwarf_Die named;
  const char* base_name = find_named_die(die, &named) ? dwarf_diename(&named) : nullptr;
  if (base_name == nullptr) return {};
  std::string name = base_name;
  Dwarf_Die* raw = nullptr;
  int count = dwarf_getscopes_die(&named, &raw);
  DieArray scopes(raw);
  for (int i = 1; i < count; ++i) {  // [0] is the function itself, then outwards
    int tag = dwarf_tag(&scopes[i]);
    if (!is_naming_scope(tag)) continue;
    const char* scope = dwarf_diename(&scopes[i]);
    name.insert(0, "::").insert(0, scope ? scope : tag == DW_TAG_namespace ? "(anonymous namespace)" : "(anonymous)");
  }
  return name;
}

// The linkage name demangles to the qualified name with parameter types; the _integrate lookup
// follows abstract origins and specifications to the declaration that holds it.
DemangledName linkage_name(Dwarf_Die* die) {
  Dwarf_Attribute attr;
  for (int name_attribute : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name}) {
    if (const char* name = dwarf_formstring(dwarf_attr_integrate(die, name_attribute, &attr))) return demangle(name);
  }
  return {};
}

bool is_function_scope(Dwarf_Die* die) {
  int tag = dwarf_tag(die);
  return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine || tag == DW_TAG_entry_point;
}

// The function scopes around `pc`, innermost first: every inlined instance, then the subprogram
// they were inlined into. Empty without DWARF for `pc`.
std::vector<Dwarf_Die> function_scopes(Dwfl_Module* module, uint64_t pc) {
  Dwarf_Addr bias = 0;
  Dwarf_Die* cu = dwfl_module_addrdie(module, pc, &bias);
  if (cu == nullptr) return {};
  Dwarf_Die* raw = nullptr;
  int count = dwarf_getscopes(cu, pc - bias, &raw);
  DieArray pc_scopes(raw);
  if (count <= 0) return {};
  // Above an inlined instance dwarf_getscopes continues with the scopes of its abstract
  // definition (for variable lookup); the callers are the innermost DIE's concrete parents.
  raw = nullptr;
  count = dwarf_getscopes_die(&pc_scopes[0], &raw);
  DieArray parents(raw);
  std::vector<Dwarf_Die> functions;
  for (int i = 0; i < count; ++i) {
    if (!is_function_scope(&parents[i])) continue;  // lexical blocks
    functions.push_back(parents[i]);
    if (dwarf_tag(&parents[i]) != DW_TAG_inlined_subroutine) break;  // the real function
  }
  return functions;
}

// From .symtab, or .dynsym alone in a stripped module (exported functions only).
DemangledName symbol_name(Dwfl_Module* module, uint64_t pc) {
  GElf_Off offset = 0;
  GElf_Sym symbol;
  return demangle(dwfl_module_addrinfo(module, pc, &offset, &symbol, nullptr, nullptr, nullptr));
}

DemangledName function_name(Dwfl_Module* module, uint64_t pc, Dwarf_Die* scope, bool outermost) {
  if (DemangledName name = linkage_name(scope); !name.name.empty()) return name;
  // Where DWARF has no linkage name, the symbol table still has the parameter types, but it only
  // knows the real function, not what was inlined into it.
  if (DemangledName name = outermost ? symbol_name(module, pc) : DemangledName{}; !name.name.empty()) return name;
  return {qualified_name(scope), SourceLanguage::kUnknown};
}

// The language of the compile unit holding `die`, where DWARF says it.
SourceLanguage unit_language(Dwarf_Die* die) {
  Dwarf_Die cu;
  if (dwarf_diecu(die, &cu, nullptr, nullptr) == nullptr) return SourceLanguage::kUnknown;
  switch (dwarf_srclang(&cu)) {
    case DW_LANG_Rust:
      return SourceLanguage::kRust;
    case DW_LANG_C_plus_plus:
    case DW_LANG_C_plus_plus_03:
    case DW_LANG_C_plus_plus_11:
    case DW_LANG_C_plus_plus_14:
      return SourceLanguage::kCxx;
    case DW_LANG_C89:
    case DW_LANG_C:
    case DW_LANG_C99:
    case DW_LANG_C11:
      return SourceLanguage::kC;
    default:
      return SourceLanguage::kUnknown;
  }
}

// Where an inlined instance was called from, in the function it was inlined into.
void set_call_site(Dwarf_Die* inlined, SourceFrame& caller) {
  Dwarf_Attribute attr;
  Dwarf_Word value = 0;
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &attr), &value) == 0) {
    caller.line = static_cast<uint32_t>(value);
  }
  Dwarf_Die cu;
  Dwarf_Files* files = nullptr;
  size_t file_count = 0;
  if (dwarf_diecu(inlined, &cu, nullptr, nullptr) == nullptr) return;
  if (dwarf_getsrcfiles(&cu, &files, &file_count) != 0) return;
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &attr), &value) != 0 || value >= file_count) return;
  if (const char* file = dwarf_filesrc(files, value, nullptr, nullptr)) caller.file = source_path(file, &cu);
}

// One frame per function scope; the line table gives the innermost location, each inlined
// instance's call site the location in the frame after it.
std::vector<SourceFrame> inline_frames(Dwfl_Module* module, uint64_t pc, const SourceFrame& base) {
  std::vector<Dwarf_Die> scopes = function_scopes(module, pc);
  std::vector<SourceFrame> frames(scopes.size(), base);
  for (size_t i = 0; i < scopes.size(); ++i) {
    DemangledName name = function_name(module, pc, &scopes[i], i + 1 == scopes.size());
    frames[i].function = std::move(name.name);
    // The mangling says it where there is one (an inlined Rust generic in a C++ unit is Rust).
    frames[i].language = name.language != SourceLanguage::kUnknown ? name.language : unit_language(&scopes[i]);
    frames[i].inlined = dwarf_tag(&scopes[i]) == DW_TAG_inlined_subroutine;
    if (i > 0) set_call_site(&scopes[i - 1], frames[i]);
  }
  return frames;
}

void set_line_table_location(Dwfl_Module* module, uint64_t pc, SourceFrame& frame) {
  Dwfl_Line* line = dwfl_module_getsrc(module, pc);
  if (line == nullptr) return;
  int line_number = 0;
  if (const char* file = dwfl_lineinfo(line, nullptr, &line_number, nullptr, nullptr, nullptr)) {
    frame.file = source_path(file, dwfl_linecu(line));
    frame.line = static_cast<uint32_t>(std::max(line_number, 0));
  }
}

}  // namespace

struct Symbolizer::Impl {
  // What every layer's Dwfl points into, declared before the layers so that it outlives them.
  std::string debug_path;
  char* debug_path_pointer = nullptr;
  Dwfl_Callbacks callbacks{};
  std::vector<LoadedModule> modules;
  std::vector<Layer> layers;
  std::unordered_map<CacheKey, std::vector<SourceFrame>, CacheKeyHash> cache;
  // Identical mappings (a library unloaded and loaded again at the same place) are one module.
  using Identity = std::tuple<std::string, uint64_t, uint64_t, uint64_t, bool>;
  std::map<Identity, size_t> by_identity;
  std::vector<uint64_t> unloads;  // every unload seq so far, sorted
  size_t mappings_added = 0;

  static Identity identity(const ModuleMapping& m) { return {m.path, m.load_bias, m.start, m.end, m.names_only}; }
  void add_module(ModuleMapping mapping);
  void set_unloaded(const ModuleMapping& mapping, uint64_t unloaded_seq);
  void add_to_layer(size_t module);
  size_t find_module(uint64_t pc, uint64_t seq) const;
  Dwfl_Module* open(LoadedModule& module);
  std::vector<SourceFrame> symbolize(uint64_t address, size_t module, bool is_return_address);
};

// Identical mappings become one module with several ranges of time; each module goes into the
// first layer where it overlaps nothing. Mappings come in the order they were loaded, each
// unload known by the time anything is loaded after it.
void Symbolizer::Impl::add_module(ModuleMapping mapping) {
  std::pair<uint64_t, uint64_t> range{mapped_from(unloads, mapping.loaded_seq), mapping.unloaded_seq};
  if (mapping.unloaded_seq != UINT64_MAX) {
    unloads.insert(std::upper_bound(unloads.begin(), unloads.end(), mapping.unloaded_seq), mapping.unloaded_seq);
  }
  auto [known, added] = by_identity.try_emplace(identity(mapping), modules.size());
  if (added) {
    modules.emplace_back();
    modules.back().mapping = std::move(mapping);
    add_to_layer(known->second);
  }
  LoadedModule& module = modules[known->second];
  module.mapped.push_back(range);
  module.last_loaded = mappings_added++;
}

void Symbolizer::Impl::set_unloaded(const ModuleMapping& mapping, uint64_t unloaded_seq) {
  auto known = by_identity.find(identity(mapping));
  if (known == by_identity.end()) return;
  for (auto range = modules[known->second].mapped.rbegin(); range != modules[known->second].mapped.rend(); ++range) {
    if (range->second != UINT64_MAX) continue;
    range->second = unloaded_seq;
    unloads.insert(std::upper_bound(unloads.begin(), unloads.end(), unloaded_seq), unloaded_seq);
    return;
  }
}

void Symbolizer::Impl::add_to_layer(size_t module) {
  const ModuleMapping& mapping = modules[module].mapping;
  size_t layer = 0;
  while (layer < layers.size() && overlaps(modules, layers[layer].modules, mapping)) ++layer;
  if (layer == layers.size()) {
    layers.emplace_back();
    layers.back().dwfl.reset(dwfl_begin(&callbacks));  // null only when out of memory: all unresolved
  }
  Layer& into = layers[layer];
  auto at = std::upper_bound(into.starts.begin(), into.starts.end(), mapping.start);
  into.modules.insert(into.modules.begin() + (at - into.starts.begin()), module);
  into.starts.insert(at, mapping.start);
  modules[module].layer = layer;
}

// The module containing pc that was mapped at seq, else the one mapped there last; kNoModule
// when none contains it.
size_t Symbolizer::Impl::find_module(uint64_t pc, uint64_t seq) const {
  size_t at_seq = kNoModule, latest = kNoModule;
  auto later = [&](size_t candidate, size_t than) {
    return than == kNoModule || modules[candidate].last_loaded > modules[than].last_loaded;
  };
  for (const Layer& layer : layers) {
    auto after = std::upper_bound(layer.starts.begin(), layer.starts.end(), pc);
    if (after == layer.starts.begin()) continue;
    size_t candidate = layer.modules[static_cast<size_t>(std::prev(after) - layer.starts.begin())];
    if (pc >= modules[candidate].mapping.end) continue;
    if (modules[candidate].mapped_at(seq) && later(candidate, at_seq)) at_seq = candidate;
    if (later(candidate, latest)) latest = candidate;
  }
  return at_seq != kNoModule ? at_seq : latest;
}

// Opened on first use: a process maps hundreds of libraries, a stack touches few, and libdwfl
// keeps a file descriptor per opened module.
Dwfl_Module* Symbolizer::Impl::open(LoadedModule& module) {
  Dwfl* dwfl = layers[module.layer].dwfl.get();
  if (module.open_attempted || dwfl == nullptr) return module.dwfl_module;
  module.open_attempted = true;
  const std::string& path = module.mapping.path;
  // Only a regular file can be an ELF: a path that names a FIFO or a device now (the trace is
  // from another time, or damaged) would block the open or read forever.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return nullptr;
  dwfl_report_begin_add(dwfl);
  // add_p_vaddr = true: load_bias is dlpi_addr, added to every p_vaddr; `false` would take it as
  // the address of the first segment, which differs for objects whose first p_vaddr is not 0.
  module.dwfl_module = dwfl_report_elf(dwfl, path.c_str(), path.c_str(), -1, module.mapping.load_bias, true);
  dwfl_report_end(dwfl, nullptr, nullptr);
  return module.dwfl_module;
}

std::vector<SourceFrame> Symbolizer::Impl::symbolize(uint64_t address, size_t module_index, bool is_return_address) {
  // A return address points after the call, possibly at the next line or function.
  uint64_t pc = is_return_address && address > 0 ? address - 1 : address;
  SourceFrame base;
  if (module_index == kNoModule) {
    base.module_offset = address;
    return {base};
  }
  LoadedModule& module = modules[module_index];
  base.module = module.mapping.path;
  base.module_offset = pc - module.mapping.load_bias;
  Dwfl_Module* dwfl_module = open(module);
  if (dwfl_module == nullptr) return {base};  // deleted, unreadable, not an ELF
  std::vector<SourceFrame> frames;
  if (!module.mapping.names_only) frames = inline_frames(dwfl_module, pc, base);
  if (frames.empty()) {  // no DWARF for pc (stripped, or code without debug information), or not wanted
    DemangledName name = symbol_name(dwfl_module, pc);
    frames.push_back(base);
    frames.back().function = std::move(name.name);
    frames.back().language = name.language;
    if (module.mapping.names_only) return frames;
  }
  set_line_table_location(dwfl_module, pc, frames.front());
  return frames;
}

Symbolizer::Symbolizer(std::vector<ModuleMapping> modules, const std::vector<std::string>& debug_dirs)
    : impl_(std::make_unique<Impl>()) {
  impl_->debug_path = debuginfo_path(debug_dirs);
  impl_->debug_path_pointer = impl_->debug_path.data();
  impl_->callbacks = {
      .find_elf = dwfl_build_id_find_elf,
      .find_debuginfo = dwfl_standard_find_debuginfo,
      .section_address = nullptr,  // only relocatable (.o) files need it
      .debuginfo_path = &impl_->debug_path_pointer,
  };
  for (ModuleMapping& module : modules) impl_->add_module(std::move(module));
}

void Symbolizer::add_module(ModuleMapping module) {
  impl_->add_module(std::move(module));
}

void Symbolizer::set_unloaded(const ModuleMapping& module, uint64_t unloaded_seq) {
  impl_->set_unloaded(module, unloaded_seq);
}

Symbolizer::~Symbolizer() = default;
Symbolizer::Symbolizer(Symbolizer&&) noexcept = default;
Symbolizer& Symbolizer::operator=(Symbolizer&&) noexcept = default;

const std::vector<SourceFrame>& Symbolizer::resolve_at(uint64_t address, uint64_t seq, bool is_return_address) {
  uint64_t pc = is_return_address && address > 0 ? address - 1 : address;
  CacheKey key{address, impl_->find_module(pc, seq), is_return_address};
  if (auto it = impl_->cache.find(key); it != impl_->cache.end()) return it->second;
  // Computed before inserting, so that a failed lookup (bad_alloc) leaves no empty entry behind.
  std::vector<SourceFrame> frames = impl_->symbolize(address, key.module, is_return_address);
  return impl_->cache.emplace(key, std::move(frames)).first->second;
}

const ModuleMapping* Symbolizer::module_at(uint64_t address, uint64_t seq, bool is_return_address) const {
  uint64_t pc = is_return_address && address > 0 ? address - 1 : address;
  size_t module = impl_->find_module(pc, seq);
  return module == kNoModule ? nullptr : &impl_->modules[module].mapping;
}

}  // namespace memdx::analyze
