#include "analyze/suppressions.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <utility>

#include "analyze/demangle.h"
#include "analyze/heap_sites.h"

namespace memdx::analyze {

bool glob_matches(std::string_view glob, std::string_view text) {
  // Greedy with one backtrack point, the last '*': linear enough for names and paths.
  size_t g = 0, t = 0, star = std::string_view::npos, star_text = 0;
  while (t < text.size()) {
    if (g < glob.size() && (glob[g] == '?' || glob[g] == text[t])) {
      ++g, ++t;
    } else if (g < glob.size() && glob[g] == '*') {
      star = g++;
      star_text = t;
    } else if (star != std::string_view::npos) {
      g = star + 1;
      t = ++star_text;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

namespace {

std::string_view trimmed(std::string_view line) {
  const char* kSpace = " \t\r";
  size_t first = line.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return line.substr(first, line.find_last_not_of(kSpace) - first + 1);
}

bool has_wildcard(std::string_view glob) {
  return glob.find_first_of("*?") != std::string_view::npos;
}

// A name written as the symbol table spells it is matched as the reports spell it.
std::string function_glob(std::string_view pattern) {
  if (!has_wildcard(pattern) && (pattern.rfind("_Z", 0) == 0 || pattern.rfind("_R", 0) == 0)) {
    return demangle_symbol(pattern).name;
  }
  return std::string(pattern);
}

// Valgrind's stacks start in the allocator (fun:malloc, fun:_Znwm); memdx's at the tracer's
// caller. Either side's allocator frames at the top are passed over.
bool names_allocator(const std::string& glob) {
  return !has_wildcard(glob) && is_allocation_function(glob);
}

bool is_allocator_frame(const SourceFrame& frame) {
  std::string_view module = frame.module;
  module.remove_prefix(module.rfind('/') == std::string_view::npos ? 0 : module.rfind('/') + 1);
  return module == "libmemdx_trace.so" || is_allocation_function(frame.function);
}

std::string_view basename_of(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// LeakSanitizer's pattern: a substring unless anchored by '^' or '$'.
std::string lsan_glob(std::string_view pattern) {
  std::string glob;
  if (!pattern.empty() && pattern.front() == '^') {
    pattern.remove_prefix(1);
  } else {
    glob += '*';
  }
  bool anchored_end = !pattern.empty() && pattern.back() == '$';
  if (anchored_end) pattern.remove_suffix(1);
  glob += pattern;
  if (!anchored_end) glob += '*';
  return glob;
}

}  // namespace

Suppressions Suppressions::parse(std::string_view text, const std::string& origin) {
  auto fail = [&origin](size_t line, const std::string& what) {
    throw SuppressionError(fmt::format("{}:{}: {}", origin, line, what));
  };
  Suppressions out;
  enum class Stage { kOutside, kName, kKind, kFrames } stage = Stage::kOutside;
  Rule block;
  std::string block_name;
  bool block_kept = true;
  size_t block_line = 0, number = 0;
  auto frame_pattern = [&](std::string_view line, bool in_block) -> std::optional<FramePattern> {
    FramePattern pattern;
    if (in_block && line == "...") {
      pattern.field = FrameField::kAnyFrames;
      return pattern;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::string_view field = line.substr(0, colon), value = trimmed(line.substr(colon + 1));
    if (value.empty()) fail(number, fmt::format("'{}' has no pattern after the colon", line));
    if (field == "fun") {
      pattern.glob = function_glob(value);
    } else if (field == "obj") {
      pattern.field = FrameField::kModule;
      pattern.glob = std::string(value);
    } else if (field == "src") {
      pattern.field = FrameField::kSource;
      size_t last = value.rfind(':');
      if (last != std::string_view::npos && last + 1 < value.size() &&
          value.find_first_not_of("0123456789", last + 1) == std::string_view::npos) {
        pattern.line = static_cast<uint32_t>(std::stoul(std::string(value.substr(last + 1))));
        value = value.substr(0, last);
      }
      pattern.glob = std::string(value);
    } else if (field == "leak" && !in_block) {
      pattern.field = FrameField::kFunctionSourceOrModule;
      pattern.glob = lsan_glob(value);
    } else {
      return std::nullopt;
    }
    return pattern;
  };

  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = trimmed(text.substr(start, end - start));
    start = end + 1;
    ++number;
    if (line.empty() || line.front() == '#') continue;
    switch (stage) {
      case Stage::kOutside:
        if (line == "{") {
          stage = Stage::kName;
          block = Rule{true, {}};
          block_line = number;
        } else if (auto pattern = frame_pattern(line, false)) {
          out.rules_.push_back(Rule{false, {std::move(*pattern)}});
        } else {
          fail(number, fmt::format("expected a valgrind block '{{', or leak:, fun:, obj: or src: and a "
                                   "pattern; found '{}'",
                                   line));
        }
        break;
      case Stage::kName:
        if (line == "}" || line == "{") fail(number, "a suppression block needs a name line and a kind line");
        block_name = std::string(line);
        stage = Stage::kKind;
        break;
      case Stage::kKind: {
        size_t colon = line.find(':');
        std::string_view tool = line.substr(0, colon);
        // "Memcheck:Leak": a tool's name, never a frame line (a block whose kind line was left out).
        if (colon == std::string_view::npos || tool.empty() || tool == "fun" || tool == "obj" || tool == "src" ||
            tool.find_first_of(" *?.") != std::string_view::npos) {
          fail(number, fmt::format("block '{}' needs a kind line such as Memcheck:Leak; found '{}'", block_name, line));
        }
        // Memcheck's other kinds (Cond, Addr8, Param, ...) are about other errors than memory kept.
        block_kept = tool != "Memcheck" || line.substr(colon + 1) == "Leak";
        stage = Stage::kFrames;
        break;
      }
      case Stage::kFrames:
        if (line == "}") {
          if (block.frames.empty()) fail(number, fmt::format("block '{}' has no frame lines", block_name));
          if (block_kept) out.rules_.push_back(std::exchange(block, Rule{}));
          stage = Stage::kOutside;
        } else if (line.rfind("match-leak-kinds:", 0) == 0 && block.frames.empty()) {
          // Which of valgrind's leak kinds it hides: memdx's "live at the end" is all of them.
        } else if (auto pattern = frame_pattern(line, true)) {
          block.frames.push_back(std::move(*pattern));
        } else {
          fail(number, fmt::format("in block '{}': expected fun:, obj:, src: or '...'; found '{}'", block_name, line));
        }
        break;
    }
  }
  if (stage != Stage::kOutside) {
    fail(block_line, fmt::format("block '{}' is not closed with '}}'", block_name.empty() ? "?" : block_name));
  }
  return out;
}

Suppressions Suppressions::read_file(const std::string& path) {
  // Only a regular file: a FIFO or a device would block the read or never end.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw SuppressionError(fmt::format("{}: cannot read the suppression file: {}", path, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) throw SuppressionError(fmt::format("{}: a suppression file must be a regular file", path));
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) {
    throw SuppressionError(fmt::format("{}: cannot read the suppression file: {}", path, std::strerror(errno)));
  }
  return parse(text.str(), path);
}

void Suppressions::merge(Suppressions other) {
  for (Rule& rule : other.rules_) rules_.push_back(std::move(rule));
}

bool Suppressions::frame_matches(const FramePattern& pattern, const SourceFrame& frame) {
  switch (pattern.field) {
    case FrameField::kFunction:
      return glob_matches(pattern.glob, frame.function);
    case FrameField::kModule:
      return !frame.module.empty() && glob_matches(pattern.glob, frame.module);
    case FrameField::kSource:
      if (frame.file.empty() || (pattern.line && pattern.line != frame.line)) return false;
      return glob_matches(pattern.glob, frame.file) || glob_matches(pattern.glob, basename_of(frame.file));
    case FrameField::kFunctionSourceOrModule:
      return (!frame.function.empty() && glob_matches(pattern.glob, frame.function)) ||
             (!frame.file.empty() && glob_matches(pattern.glob, frame.file)) ||
             (!frame.module.empty() && glob_matches(pattern.glob, frame.module));
    case FrameField::kAnyFrames:
      return true;
  }
  return false;
}

bool Suppressions::anchored_match(const std::vector<FramePattern>& patterns, size_t p,
                                  const std::vector<SourceFrame>& frames, size_t f) {
  for (; p < patterns.size(); ++p, ++f) {
    if (patterns[p].field == FrameField::kAnyFrames) {
      for (size_t from = f; from <= frames.size(); ++from) {
        if (anchored_match(patterns, p + 1, frames, from)) return true;
      }
      return false;
    }
    if (f >= frames.size() || !frame_matches(patterns[p], frames[f])) return false;
  }
  return true;  // valgrind: a block may name only the top of a deeper stack
}

bool Suppressions::matches(const std::vector<SourceFrame>& frames) const {
  size_t top = 0;
  while (top < frames.size() && is_allocator_frame(frames[top])) ++top;
  for (const Rule& rule : rules_) {
    if (!rule.anchored) {
      if (std::any_of(frames.begin(), frames.end(),
                      [&](const SourceFrame& frame) { return frame_matches(rule.frames.front(), frame); })) {
        return true;
      }
      continue;
    }
    size_t first = 0;
    while (first < rule.frames.size() && rule.frames[first].field == FrameField::kFunction &&
           names_allocator(rule.frames[first].glob)) {
      ++first;
    }
    if (anchored_match(rule.frames, first, frames, top)) return true;
  }
  return false;
}

bool Suppressions::matches(std::span<const uint64_t> stack, uint64_t seq, Symbolizer& symbolizer) const {
  if (rules_.empty()) return false;
  std::vector<SourceFrame> frames;
  for (uint64_t address : stack) {
    const std::vector<SourceFrame>& resolved = symbolizer.resolve_at(address, seq);
    frames.insert(frames.end(), resolved.begin(), resolved.end());
  }
  return matches(frames);
}

}  // namespace memdx::analyze
