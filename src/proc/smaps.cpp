#include "proc/smaps.h"

#include "proc/kv.h"

namespace memdx::proc {
namespace {

// Applies one "Key:   123 kB" line to the counters; unknown keys are ignored so new kernels
// (KSM, FilePmdMapped, THPeligible, ProtectionKey, ...) parse unchanged.
void apply_counter(SmapsCounters& c, std::string_view key, std::string_view value) {
  uint64_t* target = nullptr;
  switch (key.size()) {
    case 3:
      if (key == "Rss")
        target = &c.rss_bytes;
      else if (key == "Pss")
        target = &c.pss_bytes;
      break;
    case 4:
      if (key == "Size")
        target = &c.size_bytes;
      else if (key == "Swap")
        target = &c.swap_bytes;
      break;
    case 6:
      if (key == "Locked") target = &c.locked_bytes;
      break;
    case 7:
      if (key == "SwapPss") {
        target = &c.swap_pss_bytes;
        c.has_swap_pss = true;
      }
      break;
    case 8:
      if (key == "Pss_Anon") {
        target = &c.pss_anon_bytes;
        c.has_pss_split = true;
      } else if (key == "Pss_File") {
        target = &c.pss_file_bytes;
        c.has_pss_split = true;
      }
      break;
    case 9:
      if (key == "Pss_Shmem") {
        target = &c.pss_shmem_bytes;
        c.has_pss_split = true;
      } else if (key == "Anonymous")
        target = &c.anonymous_bytes;
      break;
    case 12:
      if (key == "Shared_Clean")
        target = &c.shared_clean_bytes;
      else if (key == "Shared_Dirty")
        target = &c.shared_dirty_bytes;
      break;
    case 13:
      if (key == "Private_Clean")
        target = &c.private_clean_bytes;
      else if (key == "Private_Dirty")
        target = &c.private_dirty_bytes;
      else if (key == "AnonHugePages")
        target = &c.anon_huge_bytes;
      break;
    default:
      break;
  }
  if (target) *target = parse_kb_value(value).value_or(0);
}

// Reads the next whitespace-delimited word of `line` starting at `pos`.
std::string_view next_word(std::string_view line, size_t& pos) {
  size_t start = line.find_first_not_of(' ', pos);
  if (start == std::string_view::npos) {
    pos = line.size();
    return {};
  }
  size_t end = line.find(' ', start);
  if (end == std::string_view::npos) end = line.size();
  pos = end;
  return line.substr(start, end - start);
}

// A mapping header starts with "hex-hex "; counter lines start with a capitalised key.
bool parse_header(std::string_view line, Mapping& m) {
  size_t pos = 0;
  std::string_view range = next_word(line, pos);
  size_t dash = range.find('-');
  if (dash == std::string_view::npos) return false;
  auto start = parse_hex_u64(range.substr(0, dash));
  auto end = parse_hex_u64(range.substr(dash + 1));
  if (!start || !end) return false;
  std::string_view perms = next_word(line, pos);
  if (perms.size() < 4) return false;
  auto offset = parse_hex_u64(next_word(line, pos));
  std::string_view dev = next_word(line, pos);
  auto inode = parse_u64(next_word(line, pos));
  size_t colon = dev.find(':');
  if (!offset || !inode || colon == std::string_view::npos) return false;

  m.start = *start;
  m.end = *end;
  m.readable = perms[0] == 'r';
  m.writable = perms[1] == 'w';
  m.executable = perms[2] == 'x';
  m.shared = perms[3] == 's';
  m.offset = *offset;
  m.dev_major = static_cast<uint32_t>(parse_hex_u64(dev.substr(0, colon)).value_or(0));
  m.dev_minor = static_cast<uint32_t>(parse_hex_u64(dev.substr(colon + 1)).value_or(0));
  m.inode = *inode;
  // The path is the rest of the line after the padding; it may itself contain spaces.
  size_t path_start = line.find_first_not_of(' ', pos);
  if (path_start != std::string_view::npos) {
    std::string_view path = line.substr(path_start);
    constexpr std::string_view kDeleted = " (deleted)";
    if (path.ends_with(kDeleted)) {
      m.deleted = true;
      path.remove_suffix(kDeleted.size());
    }
    m.path = std::string(path);
  }
  return true;
}

}  // namespace

void SmapsCounters::add(const SmapsCounters& o) {
  auto sum = [](uint64_t& into, uint64_t value) { into = saturating_add(into, value); };
  sum(size_bytes, o.size_bytes);
  sum(rss_bytes, o.rss_bytes);
  sum(pss_bytes, o.pss_bytes);
  sum(pss_anon_bytes, o.pss_anon_bytes);
  sum(pss_file_bytes, o.pss_file_bytes);
  sum(pss_shmem_bytes, o.pss_shmem_bytes);
  sum(shared_clean_bytes, o.shared_clean_bytes);
  sum(shared_dirty_bytes, o.shared_dirty_bytes);
  sum(private_clean_bytes, o.private_clean_bytes);
  sum(private_dirty_bytes, o.private_dirty_bytes);
  sum(anonymous_bytes, o.anonymous_bytes);
  sum(anon_huge_bytes, o.anon_huge_bytes);
  sum(swap_bytes, o.swap_bytes);
  sum(swap_pss_bytes, o.swap_pss_bytes);
  sum(locked_bytes, o.locked_bytes);
  has_pss_split = has_pss_split || o.has_pss_split;
  has_swap_pss = has_swap_pss || o.has_swap_pss;
}

std::string Mapping::perms() const {
  std::string p = "----";
  if (readable) p[0] = 'r';
  if (writable) p[1] = 'w';
  if (executable) p[2] = 'x';
  p[3] = shared ? 's' : 'p';
  return p;
}

std::vector<Mapping> parse_smaps(std::string_view text) {
  std::vector<Mapping> mappings;
  // An entry is about 1 KiB of text on current kernels; reserving avoids regrowing 10,000 of them.
  mappings.reserve(text.size() / 1024 + 1);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    size_t colon = line.find(':');
    size_t space = line.find(' ');
    bool is_counter = colon != std::string_view::npos && (space == std::string_view::npos || colon < space);
    if (!is_counter) {
      Mapping m;
      if (parse_header(line, m)) mappings.push_back(std::move(m));
      continue;
    }
    if (mappings.empty()) continue;
    std::string_view key = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (key == "VmFlags") {
      mappings.back().vm_flags = std::string(value);
    } else {
      apply_counter(mappings.back().counters, key, value);
    }
  }
  return mappings;
}

SmapsCounters parse_smaps_rollup(std::string_view text) {
  SmapsCounters counters;
  for (std::string_view line : split_lines(text)) {
    size_t colon = line.find(':');
    size_t space = line.find(' ');
    if (colon == std::string_view::npos || (space != std::string_view::npos && space < colon)) {
      continue;  // the "[rollup]" header line
    }
    apply_counter(counters, line.substr(0, colon), trim(line.substr(colon + 1)));
  }
  return counters;
}

SmapsCounters sum_counters(const std::vector<Mapping>& mappings) {
  SmapsCounters total;
  for (const Mapping& m : mappings) total.add(m.counters);
  total.size_bytes = 0;
  return total;
}

}  // namespace memdx::proc
