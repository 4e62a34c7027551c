#include "fuzz/cfi_fuzz_input.h"

#include <elf.h>
#include <link.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "trace/preload/unwind_dwarf.h"

namespace memdx::fuzz {
namespace {

using trace::unwind_detail::FrameRule;
using trace::unwind_detail::ObjectRange;

uint32_t read_u32(const uint8_t* data) {
  uint32_t value = 0;
  std::memcpy(&value, data, sizeof(value));
  return value;
}

struct Search {
  uintptr_t address = 0;
  std::optional<CfiInput> found;
};

// The lowest and highest mapped addresses of an object's loadable segments, and the segment
// holding its .eh_frame_hdr.
int visit_object(dl_phdr_info* info, size_t, void* context) {
  auto& search = *static_cast<Search*>(context);
  const ElfW(Phdr)* eh_frame_hdr = nullptr;
  bool holds = false;
  uintptr_t low = UINTPTR_MAX;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    const uintptr_t start = info->dlpi_addr + segment.p_vaddr;
    if (segment.p_type == PT_GNU_EH_FRAME) eh_frame_hdr = &segment;
    if (segment.p_type != PT_LOAD) continue;
    low = std::min(low, start);
    holds |= search.address >= start && search.address < start + segment.p_memsz;
  }
  if (!holds || eh_frame_hdr == nullptr) return 0;
  const uintptr_t header = info->dlpi_addr + eh_frame_hdr->p_vaddr;
  uintptr_t end = 0;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    const uintptr_t start = info->dlpi_addr + segment.p_vaddr;
    if (segment.p_type == PT_LOAD && header >= start && header < start + segment.p_memsz) {
      end = start + segment.p_filesz;
    }
  }
  if (end <= header) return 0;
  CfiInput input;
  input.header_offset = static_cast<uint32_t>(header - low);
  input.pc_offset = static_cast<uint32_t>(search.address - low);
  input.image.assign(end - low, 0);
  // Segment by segment: the gaps between them are not mapped.
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    const uintptr_t start = info->dlpi_addr + segment.p_vaddr;
    if (segment.p_type != PT_LOAD || (segment.p_flags & PF_R) == 0 || start >= end) continue;
    const size_t bytes = std::min<uintptr_t>(segment.p_filesz, end - start);
    std::memcpy(input.image.data() + (start - low), reinterpret_cast<const void*>(start), bytes);
  }
  search.found = std::move(input);
  return 1;
}

}  // namespace

std::vector<uint8_t> encode_cfi_input(const CfiInput& input) {
  std::vector<uint8_t> bytes(8 + input.image.size());
  std::memcpy(bytes.data(), &input.header_offset, 4);
  std::memcpy(bytes.data() + 4, &input.pc_offset, 4);
  std::copy(input.image.begin(), input.image.end(), bytes.begin() + 8);
  return bytes;
}

std::vector<FrameRule> run_cfi_input(const uint8_t* data, size_t size) {
  if (size < 8) return {};
  const size_t image_bytes = size - 8;
  // Exactly the image's size on the heap: a read one byte past it is a sanitizer's finding.
  std::unique_ptr<uint8_t[]> image(new uint8_t[image_bytes == 0 ? 1 : image_bytes]);
  if (image_bytes > 0) std::memcpy(image.get(), data + 8, image_bytes);
  const auto start = reinterpret_cast<uintptr_t>(image.get());
  const ObjectRange object{start, start + image_bytes};
  const uintptr_t header = start + read_u32(data);
  const uintptr_t pc = start + read_u32(data + 4);
  std::vector<FrameRule> rules;
  for (uintptr_t nearby : {pc, pc + 1, pc + 7, pc - 1}) {
    rules.push_back(trace::unwind_detail::frame_rule_from_tables(header, object, nearby));
  }
  return rules;
}

std::optional<CfiInput> cfi_input_of_loaded_object(uintptr_t address) {
  Search search;
  search.address = address;
  dl_iterate_phdr(visit_object, &search);
  return std::move(search.found);
}

}  // namespace memdx::fuzz
