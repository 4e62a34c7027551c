#include "cli/tracing.h"

#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "model/terminal_text.h"
#include "trace/format/wire.h"

namespace memdx::cli {
namespace {

std::string directory_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The interpreter of a "#!" script, or "" for anything else.
std::string script_interpreter(const std::string& head) {
  if (head.rfind("#!", 0) != 0) return "";
  size_t start = head.find_first_not_of(" \t", 2);
  if (start == std::string::npos) return "";
  size_t end = head.find_first_of(" \t\n", start);
  return head.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// A 64-bit ELF without a PT_INTERP header has no dynamic loader to honour LD_PRELOAD.
bool elf_is_static(std::ifstream& file) {
  Elf64_Ehdr header{};
  file.seekg(0);
  if (!file.read(reinterpret_cast<char*>(&header), sizeof(header)) || header.e_ident[EI_CLASS] != ELFCLASS64)
    return false;
  for (unsigned i = 0; i < header.e_phnum; ++i) {
    Elf64_Phdr program{};
    file.seekg(static_cast<std::streamoff>(header.e_phoff + uint64_t{i} * header.e_phentsize));
    if (!file.read(reinterpret_cast<char*>(&program), sizeof(program))) return false;
    if (program.p_type == PT_INTERP) return false;
  }
  return true;
}

// The sanitizer whose runtime a 64-bit ELF carries or needs, from its dynamic string table (the
// DT_NEEDED names and the dynamic symbols): "" for none. Their runtimes replace malloc themselves
// and insist on coming first in the process (ASan aborts when a preloaded library precedes it).
std::string sanitizer_of(std::ifstream& file) {
  static constexpr std::pair<std::string_view, std::string_view> kMarks[] = {
      {"__asan_init", "AddressSanitizer"}, {"libasan.so", "AddressSanitizer"}, {"__hwasan_init", "HWAddressSanitizer"},
      {"__tsan_init", "ThreadSanitizer"},  {"libtsan.so", "ThreadSanitizer"},  {"__msan_init", "MemorySanitizer"}};
  Elf64_Ehdr header{};
  file.seekg(0);
  if (!file.read(reinterpret_cast<char*>(&header), sizeof(header)) || header.e_ident[EI_CLASS] != ELFCLASS64) return "";
  auto section = [&](size_t index, Elf64_Shdr& out) {
    file.seekg(static_cast<std::streamoff>(header.e_shoff + index * header.e_shentsize));
    return static_cast<bool>(file.read(reinterpret_cast<char*>(&out), sizeof(out)));
  };
  constexpr uint64_t kMaxStringTableBytes = 64 << 20;
  for (unsigned i = 0; i < header.e_shnum; ++i) {
    Elf64_Shdr dynsym{}, strings{};
    if (!section(i, dynsym) || dynsym.sh_type != SHT_DYNSYM || !section(dynsym.sh_link, strings)) continue;
    if (strings.sh_size > kMaxStringTableBytes) return "";
    std::string text(strings.sh_size, '\0');
    file.seekg(static_cast<std::streamoff>(strings.sh_offset));
    if (!file.read(text.data(), static_cast<std::streamsize>(text.size()))) return "";
    for (const auto& [mark, name] : kMarks) {
      if (text.find(mark) != std::string::npos) return std::string(name);
    }
  }
  return "";
}

std::optional<std::string> check(const std::string& path, int depth) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  bool secure =
      ((st.st_mode & S_ISUID) && st.st_uid != ::getuid()) || ((st.st_mode & S_ISGID) && st.st_gid != ::getgid());
  if (secure) {
    return fmt::format("{} is setuid or setgid, and the loader ignores LD_PRELOAD for it", model::terminal_safe(path));
  }
  std::ifstream file(path, std::ios::binary);
  std::string head(256, '\0');
  file.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(file.gcount()));
  if (std::string interpreter = script_interpreter(head); !interpreter.empty() && depth < 2) {
    return check(interpreter, depth + 1);
  }
  if (head.size() >= 4 && std::memcmp(head.data(), ELFMAG, SELFMAG) == 0) {
    file.clear();
    if (elf_is_static(file)) {
      return fmt::format("{} is statically linked, so LD_PRELOAD cannot reach it", model::terminal_safe(path));
    }
    file.clear();
    if (std::string sanitizer = sanitizer_of(file); !sanitizer.empty()) {
      return fmt::format(
          "{} is built with {}, whose runtime must come first in the process and replaces malloc "
          "itself (run it with --no-trace)",
          model::terminal_safe(path), sanitizer);
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> find_tracer_library() {
  char self[4096];
  ssize_t length = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length <= 0) return std::nullopt;
  std::string directory = directory_of(std::string(self, static_cast<size_t>(length)));
  // Beside memdx in the build tree; where `cmake --install` and the .deb put it (the libdir's
  // memdx/, on Debian lib/x86_64-linux-gnu/memdx/ under /usr); ../lib/memdx/ as older installs had it.
  for (const std::string& candidate :
       {directory + "/libmemdx_trace.so", directory + "/" MEMDX_TRACER_FROM_BINDIR "/libmemdx_trace.so",
        directory + "/../lib/memdx/libmemdx_trace.so"}) {
    if (is_file(candidate)) return candidate;
  }
  return std::nullopt;
}

std::optional<std::string> why_untraceable(const std::string& path) {
  return check(path, 0);
}

void add_trace_options(CLI::App& command, TraceSettings& settings) {
  command
      .add_option("--sample-bytes", settings.sample_bytes,
                  "Trace a Poisson sample of allocations, one per N bytes allocated on average (0: every "
                  "allocation); counts and bytes become unbiased estimates. For long production runs, e.g. 524288")
      ->capture_default_str();
  command.add_option("--max-depth", settings.max_depth, "Frames kept per allocation stack")
      ->capture_default_str()
      ->check(CLI::Range(1u, trace::wire::kMaxMaxDepth));
}

std::optional<std::string> tracer_for(const std::string& path) {
  if (std::optional<std::string> why = why_untraceable(path)) {
    std::fprintf(stderr, "memdx: %s: the heap is not traced, memory is sampled only\n", why->c_str());
    return std::nullopt;
  }
  std::optional<std::string> library = find_tracer_library();
  if (!library) {
    std::fprintf(stderr,
                 "memdx: libmemdx_trace.so is not next to memdx (rebuild with ./memdx): the heap is not traced, memory "
                 "is sampled only\n");
    return std::nullopt;
  }
  // The loader splits LD_PRELOAD at spaces and colons: such a path would name files that do not
  // exist, and every process would print the loader's complaint.
  if (size_t bad = library->find_first_of(" :\t"); bad != std::string::npos) {
    std::fprintf(stderr,
                 "memdx: the heap tracer's path holds a %s, which LD_PRELOAD cannot carry (%s): move memdx to a "
                 "directory without spaces or colons; the heap is not traced, memory is sampled only\n",
                 (*library)[bad] == ':' ? "colon" : "space", model::terminal_safe(*library).c_str());
    return std::nullopt;
  }
  return library;
}

}  // namespace memdx::cli
