#pragma once
// Reading DWARF call frame information from a loaded object's .eh_frame: the pieces shared by the
// record parser (unwind_cfi.cpp) and the CFA program interpreter (unwind_cfa_program.cpp).
// Internal to the unwinder; everything here is malloc-free and async-signal-safe.
//
// References: DWARF 5 section 6.4 (call frame information) and the LSB's description of
// .eh_frame and .eh_frame_hdr (pointer encodings DW_EH_PE_*).
#include <cstddef>
#include <cstdint>

#include "trace/preload/unwind_rule.h"

namespace memdx::trace::unwind_detail {

// x86_64 DWARF register numbers (System V psABI, figure 3.36).
inline constexpr uint64_t kRegRbp = 6;
inline constexpr uint64_t kRegRsp = 7;
inline constexpr uint64_t kRegReturnAddress = 16;  // the return address column, "RIP"

// The address range of one loaded object; every CFI byte we read must lie inside it, which
// keeps a corrupt table from sending the parser across the address space.
struct ObjectRange {
  uintptr_t start = 0;
  uintptr_t end = 0;
  bool contains(uintptr_t address, size_t size) const noexcept {
    return address >= start && address <= end && size <= end - address;
  }
};

// A bounds-checked cursor over CFI bytes. A read past the end yields 0 and makes ok() false, so
// parsers can read a whole record and check once.
class ByteReader {
 public:
  ByteReader(uintptr_t begin, uintptr_t end) noexcept : pos_(begin), end_(end) {}

  uintptr_t pos() const noexcept { return pos_; }
  uintptr_t end() const noexcept { return end_; }
  bool ok() const noexcept { return ok_; }
  bool at_end() const noexcept { return pos_ >= end_; }
  void fail() noexcept {
    ok_ = false;
    pos_ = end_;
  }

  void skip(uint64_t size) noexcept {
    if (size > end_ - pos_) return fail();
    pos_ += static_cast<uintptr_t>(size);
  }

  // Little-endian fixed-size read of size bytes (1, 2, 4 or 8), zero-extended.
  uint64_t fixed(size_t size) noexcept {
    if (!ok_ || size > end_ - pos_) {
      fail();
      return 0;
    }
    uint64_t value = 0;
    copy_from_address(&value, pos_, size);
    pos_ += size;
    return value;
  }
  uint8_t u8() noexcept { return static_cast<uint8_t>(fixed(1)); }
  uint32_t u32() noexcept { return static_cast<uint32_t>(fixed(4)); }

  uint64_t uleb128() noexcept {
    uint64_t value = 0;
    for (unsigned shift = 0;; shift += 7) {
      const uint8_t byte = u8();
      if (!ok_) return 0;
      if (shift < 64) value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return value;
    }
  }

  int64_t sleb128() noexcept {
    uint64_t value = 0;
    unsigned shift = 0;
    uint8_t byte = 0;
    do {
      byte = u8();
      if (!ok_) return 0;
      if (shift < 64) value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      shift += 7;
    } while ((byte & 0x80) != 0);
    if (shift < 64 && (byte & 0x40) != 0) value |= ~uint64_t{0} << shift;  // sign-extend
    return static_cast<int64_t>(value);
  }

 private:
  uintptr_t pos_;
  uintptr_t end_;
  bool ok_ = true;
};

// Where DW_EH_PE_datarel and _funcrel point: 0 when the context has no such base.
struct EncodingBases {
  uintptr_t data = 0;
  uintptr_t function = 0;
};

// Reads a DW_EH_PE_* encoded pointer: its value, plus its base (pcrel: the field's own address),
// then the indirection if asked (read only from inside object). DW_EH_PE_textrel and _aligned
// have no meaning on x86_64 GNU/Linux: refusing them makes the frame "cannot unwind", which is
// safe.
bool read_encoded_pointer(ByteReader& in, uint8_t encoding, const EncodingBases& bases, const ObjectRange& object,
                          uintptr_t* pointer) noexcept;

// A parsed CIE (common information entry) of .eh_frame.
struct Cie {
  uint64_t code_alignment = 1;
  int64_t data_alignment = 0;
  uint8_t fde_pointer_encoding = 0;    // DW_EH_PE_absptr unless the 'R' augmentation says otherwise
  bool has_augmentation_data = false;  // 'z'
  bool is_signal_frame = false;        // 'S'
  uintptr_t instructions_begin = 0;
  uintptr_t instructions_end = 0;
};

// A parsed FDE (frame description entry): the code range it covers and its CFA program.
struct Fde {
  uintptr_t pc_begin = 0;
  uintptr_t pc_end = 0;
  uintptr_t instructions_begin = 0;
  uintptr_t instructions_end = 0;
};

// Runs the CIE's initial instructions, then the FDE's up to pc (inside the FDE's range), and
// reduces the resulting row to a FrameRule; can_unwind is false for anything not modelled.
FrameRule evaluate_cfa_program(const Cie& cie, const Fde& fde, const ObjectRange& object, uintptr_t pc) noexcept;

// The rule for pc from the .eh_frame_hdr at eh_frame_hdr, reading nothing outside object: what
// compute_frame_rule does once _dl_find_object has found the object. Apart so that the CFI fuzz
// target (tests/fuzz/cfi_fuzz_input.cpp) can hand it arbitrary bytes as an object.
FrameRule frame_rule_from_tables(uintptr_t eh_frame_hdr, const ObjectRange& object, uintptr_t pc) noexcept;

}  // namespace memdx::trace::unwind_detail
