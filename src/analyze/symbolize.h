// Turning the return addresses of a recorded stack into functions, source files and lines,
// inlined frames included, through elfutils' libdwfl (DWARF in the module itself, or a separate
// debug file found by build-id or by .gnu_debuglink: in the debug directories given, next to the
// module, under /usr/lib/debug).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "analyze/demangle.h"

namespace memdx::analyze {

// One loaded ELF object of the traced process, as the tracer saw it.
struct ModuleMapping {
  std::string path;             // a readable path to the ELF (for the main program: /proc/PID/exe's target)
  uint64_t load_bias = 0;       // dlpi_addr: run-time address minus the ELF's p_vaddr
  uint64_t start = 0, end = 0;  // [start, end) covering the PT_LOAD segments, absolute addresses
  // Function names from the symbol table only, no DWARF (no inlined frames, no file:line): for
  // the C and C++ runtime, whose debug information (libc6-dbg) costs tens of MiB to load and
  // whose frames only say how memory was allocated, not who wanted it.
  bool names_only = false;
  // When it was mapped, in the tracer's seq: its module record and its unmodule record. It counts
  // as mapped from the last unload at or before loaded_seq (a library may run, its constructors
  // for one, before its record; nothing is unloaded meanwhile, so nothing else was there).
  uint64_t loaded_seq = 0;
  uint64_t unloaded_seq = UINT64_MAX;  // never unloaded
};

// One frame of source code; an address inside inlined code gives several for one address.
struct SourceFrame {
  std::string function;        // demangled; "" if unknown
  std::string file;            // source file path as DWARF names it; "" if unknown
  uint32_t line = 0;           // 0 if unknown
  std::string module;          // the ELF's path; "" when the address is in no known module
  uint64_t module_offset = 0;  // looked-up address - load_bias (what `addr2line -e MODULE` takes);
                               // the address itself when it is in no known module
  bool inlined = false;        // true for frames that were inlined into the next (outer) one
  // From the symbol's mangling, else from the compile unit's DWARF; kUnknown without either.
  SourceLanguage language = SourceLanguage::kUnknown;
};

// Resolves addresses of one traced process. The modules must be the files that were mapped at
// recording time (analysis runs on the recording machine). A module that cannot be opened or has
// no symbols is not an error: its addresses resolve to module + offset with an empty function.
// Modules are opened lazily, on the first address that falls into them. Modules mapped at the
// same addresses at different times (dlclose, then dlopen of another library there) are each
// opened once; an address is resolved in the one mapped at the time asked for.
// Not thread-safe: resolve() fills a cache; use one Symbolizer per thread.
//
// The DWARF of a stripped module is looked for in separate debug files: first in each of
// `debug_dirs` (DIR/.build-id/xx/yyyy.debug by build-id; by the name .gnu_debuglink gives, or
// MODULE.debug, in DIR itself or in DIR/<the module's directory>), then beside the module (and its
// .debug/ folder), then under /usr/lib/debug the same ways. A file found by name is used only
// when its build-id is the module's (or, without one, its CRC the one .gnu_debuglink records).
// Relative directories are taken from the current directory; one whose name holds ':' is skipped.
class Symbolizer {
 public:
  explicit Symbolizer(std::vector<ModuleMapping> modules, const std::vector<std::string>& debug_dirs = {});
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;
  Symbolizer(Symbolizer&&) noexcept;
  Symbolizer& operator=(Symbolizer&&) noexcept;

  // Frames for one address, innermost (most deeply inlined) first, the containing real function
  // last; never empty. `is_return_address` looks up address - 1, the call instruction, as every
  // frame of an unwound stack needs except a sampled instruction pointer. The reference stays
  // valid, and the same for the same arguments, for the Symbolizer's lifetime.
  const std::vector<SourceFrame>& resolve(uint64_t address, bool is_return_address = true) {
    return resolve_at(address, kLatest, is_return_address);
  }
  // The same in the module that held the address at `seq` (the tracer's clock, e.g. when the
  // stack was recorded); when none did then, in the one mapped there last.
  const std::vector<SourceFrame>& resolve_at(uint64_t address, uint64_t seq, bool is_return_address = true);
  // The module resolve_at looks `address` up in; null when it is in none.
  const ModuleMapping* module_at(uint64_t address, uint64_t seq, bool is_return_address = true) const;

  // A module mapped after the others (a dlopen met while the trace is read), and the unload of
  // one given before (its unloaded_seq was not known then): resolve_at knows both from now on.
  // Modules come in the order they were loaded, as the constructor takes them.
  void add_module(ModuleMapping module);
  void set_unloaded(const ModuleMapping& module, uint64_t unloaded_seq);

  // As of the end of the process: the modules still mapped then, else the last mapped.
  static constexpr uint64_t kLatest = UINT64_MAX;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace memdx::analyze
