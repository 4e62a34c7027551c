#include "proc/cgroup_files.h"

#include "proc/kv.h"

namespace memdx::proc {
namespace {

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  size_t pos = 0;
  while (pos < line.size()) {
    size_t start = line.find_first_not_of(' ', pos);
    if (start == std::string_view::npos) break;
    size_t end = line.find(' ', start);
    if (end == std::string_view::npos) end = line.size();
    words.push_back(line.substr(start, end - start));
    pos = end;
  }
  return words;
}

// mountinfo escapes space, tab, newline and backslash as three octal digits.
std::string unescape_octal(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      std::string_view digits = s.substr(i + 1, 3);
      bool octal = digits.size() == 3;
      for (char c : digits) octal = octal && c >= '0' && c <= '7';
      if (octal) {
        out.push_back(static_cast<char>((digits[0] - '0') * 64 + (digits[1] - '0') * 8 + (digits[2] - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

std::vector<CgroupEntry> parse_proc_cgroup(std::string_view text) {
  std::vector<CgroupEntry> entries;
  for (std::string_view line : split_lines(text)) {
    size_t first = line.find(':');
    if (first == std::string_view::npos) continue;
    size_t second = line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    CgroupEntry entry;
    entry.hierarchy_id = static_cast<int>(parse_u64(line.substr(0, first)).value_or(0));
    std::string_view controllers = line.substr(first + 1, second - first - 1);
    size_t pos = 0;
    while (pos <= controllers.size() && !controllers.empty()) {
      size_t comma = controllers.find(',', pos);
      if (comma == std::string_view::npos) comma = controllers.size();
      entry.controllers.emplace_back(controllers.substr(pos, comma - pos));
      pos = comma + 1;
      if (comma == controllers.size()) break;
    }
    entry.path = std::string(line.substr(second + 1));
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::vector<MountEntry> parse_mountinfo(std::string_view text) {
  std::vector<MountEntry> mounts;
  for (std::string_view line : split_lines(text)) {
    std::vector<std::string_view> words = split_words(line);
    // id parent maj:min root mount-point options [optional...] - fstype source super-options
    size_t separator = 0;
    for (size_t i = 6; i < words.size(); ++i) {
      if (words[i] == "-") {
        separator = i;
        break;
      }
    }
    if (words.size() < 7 || separator == 0 || separator + 1 >= words.size()) continue;
    MountEntry mount;
    std::string_view dev = words[2];
    size_t colon = dev.find(':');
    if (colon == std::string_view::npos) continue;
    mount.dev_major = static_cast<uint32_t>(parse_u64(dev.substr(0, colon)).value_or(0));
    mount.dev_minor = static_cast<uint32_t>(parse_u64(dev.substr(colon + 1)).value_or(0));
    mount.root = unescape_octal(words[3]);
    mount.mount_point = unescape_octal(words[4]);
    mount.fs_type = std::string(words[separator + 1]);
    if (separator + 3 < words.size()) mount.super_options = std::string(words[separator + 3]);
    mounts.push_back(std::move(mount));
  }
  return mounts;
}

std::optional<uint64_t> parse_memory_limit(std::string_view text) {
  text = trim(text);
  if (text == "max") return std::nullopt;
  auto value = parse_u64(text);
  // cgroup v1 reports "unlimited" as PAGE_COUNTER_MAX * page size, just under 2^63.
  constexpr uint64_t kUnlimitedFloor = uint64_t{1} << 62;
  if (!value || *value >= kUnlimitedFloor) return std::nullopt;
  return value;
}

std::vector<std::pair<std::string, uint64_t>> parse_flat_keyed(std::string_view text) {
  std::vector<std::pair<std::string, uint64_t>> entries;
  for (std::string_view line : split_lines(text)) {
    size_t space = line.find(' ');
    if (space == std::string_view::npos) continue;
    auto value = parse_u64(line.substr(space + 1));
    if (!value) continue;
    entries.emplace_back(std::string(line.substr(0, space)), *value);
  }
  return entries;
}

std::optional<uint64_t> find_key(const std::vector<std::pair<std::string, uint64_t>>& entries, std::string_view key) {
  for (const auto& [name, value] : entries) {
    if (name == key) return value;
  }
  return std::nullopt;
}

}  // namespace memdx::proc
