// Stacks the user has already judged (a library's cache that lives to the end, a pool of a
// framework), hidden from the site rankings by `--suppress FILE`. The file takes what users
// already have:
//   - valgrind's suppression blocks, as `--gen-suppressions` writes them: `{ name, Kind, frames }`
//     whose `fun:`, `obj:`, `src:` and `...` lines match the stack from its innermost frame down
//     (the allocator's own frames at the top of the block, `fun:malloc`, may be left in or out);
//     blocks of other Memcheck kinds than Leak are not about memory kept and are passed over;
//   - LeakSanitizer's lines, `leak:PATTERN`: a function, source file or module anywhere in the
//     stack holding PATTERN (`^` and `$` anchor it);
//   - memdx's own one-line patterns, `fun:PATTERN`, `obj:PATTERN`, `src:PATTERN[:LINE]`: any frame
//     of the stack matching it.
// Patterns are valgrind's: `*` any run of characters, `?` any one. Function names are matched as
// demangled ("Cache::insert(int)"); a pattern written mangled without wildcards ("_ZN5Cache6insertEi")
// is demangled first. `#` starts a comment line.
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "analyze/symbolize.h"

namespace memdx::analyze {

// A suppression file that cannot be used; the message is one line naming the file and the line.
class SuppressionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Suppressions {
 public:
  // Parses `text`; `origin` names it in errors ("FILE:LINE: ..."). Throws SuppressionError.
  static Suppressions parse(std::string_view text, const std::string& origin);
  // Reads and parses one file. Throws SuppressionError (unreadable, not a regular file, malformed).
  static Suppressions read_file(const std::string& path);

  // Adds another file's suppressions to these.
  void merge(Suppressions other);
  bool empty() const { return rules_.empty(); }
  size_t size() const { return rules_.size(); }

  // Whether a stack (its frames resolved, innermost first, inlined frames flattened) is hidden.
  bool matches(const std::vector<SourceFrame>& frames) const;
  // The same for a recorded stack, resolved through the symbolizer at `seq`.
  bool matches(std::span<const uint64_t> stack, uint64_t seq, Symbolizer& symbolizer) const;

 private:
  enum class FrameField : uint8_t { kFunction, kModule, kSource, kAnyFrames, kFunctionSourceOrModule };
  struct FramePattern {
    FrameField field = FrameField::kFunction;
    std::string glob;
    uint32_t line = 0;  // src:FILE:LINE; 0 for any line
  };
  struct Rule {
    // Anchored: the patterns match the stack from its innermost frame, in order ("..." any
    // number of frames). Otherwise the one pattern matches any frame.
    bool anchored = false;
    std::vector<FramePattern> frames;
  };

  static bool frame_matches(const FramePattern& pattern, const SourceFrame& frame);
  static bool anchored_match(const std::vector<FramePattern>& patterns, size_t p,
                             const std::vector<SourceFrame>& frames, size_t f);

  std::vector<Rule> rules_;
};

// Valgrind's wildcards: `*` any run of characters (none too), `?` exactly one; nothing else is special.
bool glob_matches(std::string_view glob, std::string_view text);

}  // namespace memdx::analyze
