#pragma once
// One input of the CFI fuzz target: the bytes of a loaded object (as the loader maps it) with the
// offsets of its .eh_frame_hdr and of a code address, handed to the unwinder's CFI parser
// (frame_rule_from_tables) as an object of their own. Shared by the libFuzzer target
// (cfi_fuzz.cpp), the seed maker and the replay test that runs in every build.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "trace/preload/unwind_rule.h"

namespace memdx::fuzz {

// Encoded as u32 header_offset, u32 pc_offset (little-endian), then the image.
struct CfiInput {
  uint32_t header_offset = 0;  // of .eh_frame_hdr in the image
  uint32_t pc_offset = 0;      // of the code address asked about
  std::vector<uint8_t> image;  // the object from its lowest mapped address
};

std::vector<uint8_t> encode_cfi_input(const CfiInput& input);

// The parser's rules for the input's pc and a few addresses around it (fewer than 8 bytes: none).
// Reads only the image, copied to a buffer of exactly its size, so the sanitizers see any read
// outside it.
std::vector<trace::unwind_detail::FrameRule> run_cfi_input(const uint8_t* data, size_t size);

// The loaded object that holds `address`, from its lowest mapped address to the end of the
// segment that holds its .eh_frame_hdr (its .eh_frame follows it there), with pc_offset at
// `address`; nullopt when no object holds it or it has no .eh_frame_hdr.
std::optional<CfiInput> cfi_input_of_loaded_object(uintptr_t address);

}  // namespace memdx::fuzz
