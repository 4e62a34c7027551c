#include "cli/output_paths.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "cli/errors.h"

namespace memdx::cli {
namespace {

constexpr int kMaxLinks = 40;  // the kernel's own limit (ELOOP)

std::string parent_of(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

std::optional<std::string> read_link(const std::string& path) {
  std::string target(256, '\0');
  for (;;) {
    ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
    if (n < 0) return std::nullopt;  // no link (or nothing there): the walk ends
    if (static_cast<size_t>(n) < target.size()) {
      target.resize(static_cast<size_t>(n));
      return target;
    }
    target.resize(target.size() * 2);
  }
}

// The kernel follows a link in a sticky, world-writable directory only for the link's owner or
// the directory's owner; readlink applies no such rule, so the walk does.
void refuse_foreign_link(const std::string& path, const std::string& link) {
  struct stat link_st {};
  struct stat dir_st {};
  if (::lstat(link.c_str(), &link_st) != 0 || ::stat(parent_of(link).c_str(), &dir_st) != 0) return;
  const bool shared_dir = (dir_st.st_mode & S_ISVTX) && (dir_st.st_mode & S_IWOTH);
  if (!shared_dir || link_st.st_uid == ::geteuid() || link_st.st_uid == dir_st.st_uid) return;
  throw RuntimeError(fmt::format(
      "cannot write {}: it is a symbolic link another user made in a shared directory; memdx does not follow it",
      path));
}

// What one output leads to, for comparing outputs.
struct Identity {
  std::optional<int> descriptor;
  std::optional<std::pair<dev_t, ino_t>> file;  // when it exists
  bool shareable = false;                       // a character device
  std::string missing_name;                     // canonical, when it does not exist (and can be made)
};

// realpath of the directory and the name itself: a name that does not exist yet has no realpath.
std::string canonical_missing_name(const std::string& path) {
  std::unique_ptr<char, decltype(&std::free)> directory(::realpath(parent_of(path).c_str(), nullptr), &std::free);
  if (!directory) return {};  // creating it fails later, with its own line
  return std::string(directory.get()) + "/" + std::filesystem::path(path).filename().string();
}

Identity identify(const NamedOutput& output) {
  Identity id;
  std::string path = output.path;
  if (output.kind == OutputKind::kReport) {
    path = follow_links(path);
    id.descriptor = named_descriptor(path);
  }
  struct stat st {};
  const bool found = id.descriptor ? ::fstat(*id.descriptor, &st) == 0 : ::stat(path.c_str(), &st) == 0;
  if (found) {
    id.file = std::pair(st.st_dev, st.st_ino);
    id.shareable = S_ISCHR(st.st_mode);
  } else if (!id.descriptor && errno == ENOENT) {
    id.missing_name = canonical_missing_name(path);
  }
  return id;
}

bool same_file(const Identity& a, const Identity& b) {
  if (a.descriptor && a.descriptor == b.descriptor) return true;
  if (a.file && a.file == b.file) return !a.shareable;
  return !a.missing_name.empty() && a.missing_name == b.missing_name;
}

}  // namespace

std::optional<int> named_descriptor(const std::string& path) {
  if (path == "-" || path == "/dev/stdout") return 1;
  if (path == "/dev/stderr") return 2;
  for (std::string_view prefix : {"/dev/fd/", "/proc/self/fd/"}) {
    if (!path.starts_with(prefix)) continue;
    std::string_view digits = std::string_view(path).substr(prefix.size());
    int fd = -1;
    auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), fd);
    if (error == std::errc() && end == digits.data() + digits.size() && fd >= 0) return fd;
  }
  return std::nullopt;
}

std::string follow_links(const std::string& path) {
  std::string current = path;
  for (int hops = 0; hops < kMaxLinks; ++hops) {
    if (named_descriptor(current)) return current;  // /dev/stdout leads to a descriptor, not to a file
    std::optional<std::string> target = read_link(current);
    if (!target) return current;
    refuse_foreign_link(path, current);
    current = target->starts_with('/') ? *target : parent_of(current) + "/" + *target;
  }
  throw RuntimeError(fmt::format("cannot write {}: {}", path, std::strerror(ELOOP)));
}

void check_distinct_outputs(const std::vector<NamedOutput>& outputs, const std::string& input_recording) {
  std::optional<Identity> input;
  if (!input_recording.empty()) input = identify({"", input_recording, OutputKind::kRecording});
  std::vector<Identity> seen(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const NamedOutput& output = outputs[i];
    if (output.path.empty()) continue;
    seen[i] = identify(output);
    if (input && input->file && seen[i].file == input->file) {
      throw UsageError(fmt::format("{} names the recording being read ({}): the report would replace it", output.label,
                                   output.path));
    }
    for (size_t j = 0; j < i; ++j) {
      if (outputs[j].path.empty() || !same_file(seen[i], seen[j])) continue;
      throw UsageError(fmt::format("{} and {} name the same file ({}): give each output its own path", output.label,
                                   outputs[j].label, output.path));
    }
  }
}

}  // namespace memdx::cli
