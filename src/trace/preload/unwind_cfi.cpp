// Call frame information for the unwinder: finds the FDE of a code address through the object's
// .eh_frame_hdr search table, parses the FDE and its CIE, and hands them to the CFA program
// interpreter (unwind_cfa_program.cpp). Runs on cache misses only, so it favours clarity over
// speed, but it is still lock-free, malloc-free and async-signal-safe: it may run inside malloc
// or a signal handler.
#include <dlfcn.h>

#include <cstddef>
#include <cstdint>

#include "trace/preload/unwind_dwarf.h"
#include "trace/preload/unwind_rule.h"

namespace memdx::trace::unwind_detail {
namespace {

// DW_EH_PE_* pointer encodings: the low nibble is the format, bits 4-6 the base it is relative
// to, bit 7 an extra indirection.
constexpr uint8_t kPeOmit = 0xff;
constexpr uint8_t kPeFormatMask = 0x0f;
constexpr uint8_t kPeApplicationMask = 0x70;
constexpr uint8_t kPeIndirect = 0x80;
// Formats.
constexpr uint8_t kPeAbsptr = 0x00;
constexpr uint8_t kPeUleb128 = 0x01;
constexpr uint8_t kPeUdata2 = 0x02;
constexpr uint8_t kPeUdata4 = 0x03;
constexpr uint8_t kPeUdata8 = 0x04;
constexpr uint8_t kPeSleb128 = 0x09;
constexpr uint8_t kPeSdata2 = 0x0a;
constexpr uint8_t kPeSdata4 = 0x0b;
constexpr uint8_t kPeSdata8 = 0x0c;
// Applications (bases).
constexpr uint8_t kPeAbsolute = 0x00;
constexpr uint8_t kPePcrel = 0x10;
constexpr uint8_t kPeDatarel = 0x30;
constexpr uint8_t kPeFuncrel = 0x40;
// The only .eh_frame_hdr table encoding GNU ld writes.
constexpr uint8_t kPeDatarelSdata4 = kPeDatarel | kPeSdata4;

// Sign-extends the low `bits` bits of value.
int64_t sign_extend(uint64_t value, unsigned bits) noexcept {
  const unsigned unused = 64 - bits;
  return static_cast<int64_t>(value << unused) >> unused;
}

// Reads the value part of an encoded pointer (the format nibble), with no base applied.
bool read_encoded_value(ByteReader& in, uint8_t encoding, uint64_t* value) noexcept {
  switch (encoding & kPeFormatMask) {
    case kPeAbsptr:
    case kPeUdata8:
    case kPeSdata8:
      *value = in.fixed(8);
      break;
    case kPeUdata4:
      *value = in.fixed(4);
      break;
    case kPeUdata2:
      *value = in.fixed(2);
      break;
    case kPeSdata4:
      *value = static_cast<uint64_t>(sign_extend(in.fixed(4), 32));
      break;
    case kPeSdata2:
      *value = static_cast<uint64_t>(sign_extend(in.fixed(2), 16));
      break;
    case kPeUleb128:
      *value = in.uleb128();
      break;
    case kPeSleb128:
      *value = static_cast<uint64_t>(in.sleb128());
      break;
    default:
      return false;
  }
  return in.ok();
}

// The base an encoded pointer's value is relative to; false for bases we cannot know.
bool encoding_base(uint8_t encoding, uintptr_t field_address, const EncodingBases& bases, uintptr_t* base) noexcept {
  switch (encoding & kPeApplicationMask) {
    case kPeAbsolute:
      *base = 0;
      return true;
    case kPePcrel:
      *base = field_address;
      return true;
    case kPeDatarel:
      *base = bases.data;
      return bases.data != 0;
    case kPeFuncrel:
      *base = bases.function;
      return bases.function != 0;
    default:  // textrel, aligned
      return false;
  }
}

// Skips an encoded pointer we do not need (the personality routine) without dereferencing it.
bool skip_encoded_pointer(ByteReader& in, uint8_t encoding) noexcept {
  uint64_t ignored = 0;
  return encoding == kPeOmit || read_encoded_value(in, encoding, &ignored);
}

// ---- .eh_frame records -----------------------------------------------------------------------

// Reads a record's length and returns a reader over its body (after the length field).
// 64-bit DWARF records (length 0xffffffff) and terminators (length 0) are refused: GNU
// toolchains never emit the former in .eh_frame, and libgcc does not read them either.
bool open_record(uintptr_t record, const ObjectRange& object, ByteReader* body) noexcept {
  if (!object.contains(record, 4)) return false;
  ByteReader header(record, record + 4);
  const uint32_t length = header.u32();
  if (length == 0 || length == 0xffffffffu || !object.contains(record + 4, length)) return false;
  *body = ByteReader(record + 4, record + 4 + length);
  return true;
}

// Parses the augmentation string and data of a CIE ("zPLR", "zRS", ...).
bool parse_cie_augmentation(ByteReader& in, Cie* cie) noexcept {
  char augmentation[8] = {};
  size_t length = 0;
  for (char c = static_cast<char>(in.u8()); c != '\0'; c = static_cast<char>(in.u8())) {
    if (!in.ok() || length + 1 >= sizeof(augmentation)) return false;
    augmentation[length++] = c;
  }
  if (length > 0 && augmentation[0] != 'z') return false;  // e.g. the old "eh": not supported
  cie->has_augmentation_data = length > 0;
  // The fixed fields sit between the string and the augmentation data.
  cie->code_alignment = in.uleb128();
  cie->data_alignment = in.sleb128();
  // A byte in version 1, a uleb128 in version 3: the same bytes for values below 128, which is
  // all x86_64 uses, so one parser serves both versions.
  const uint64_t return_address_column = in.uleb128();
  if (return_address_column != kRegReturnAddress || !in.ok()) return false;
  if (!cie->has_augmentation_data) return true;
  const uint64_t data_size = in.uleb128();
  if (!in.ok() || data_size > in.end() - in.pos()) return false;
  ByteReader data(in.pos(), in.pos() + static_cast<uintptr_t>(data_size));
  in.skip(data_size);
  for (size_t i = 1; i < length; ++i) {
    switch (augmentation[i]) {
      case 'R':
        cie->fde_pointer_encoding = data.u8();
        break;
      case 'L':  // the LSDA's encoding: the LSDA itself is for exception handling only
        data.u8();
        break;
      case 'P':
        if (!skip_encoded_pointer(data, data.u8())) return false;
        break;
      case 'S':
        cie->is_signal_frame = true;
        break;
      default:
        return data.ok();  // unknown: 'z' tells us the size, so the rest can be skipped
    }
  }
  return data.ok();
}

// Parses the CIE at record (versions 1 and 3, the ones GCC and LLVM write to .eh_frame).
bool parse_cie(uintptr_t record, const ObjectRange& object, Cie* cie) noexcept {
  ByteReader in(0, 0);
  if (!open_record(record, object, &in)) return false;
  if (in.u32() != 0) return false;  // CIE id: 0 in .eh_frame (an FDE would be non-zero)
  const uint8_t version = in.u8();
  if (version != 1 && version != 3) return false;
  if (!parse_cie_augmentation(in, cie) || !in.ok()) return false;
  cie->instructions_begin = in.pos();
  cie->instructions_end = in.end();
  return true;
}

// Parses the FDE at record and its CIE.
bool parse_fde(uintptr_t record, const ObjectRange& object, Fde* fde, Cie* cie) noexcept {
  ByteReader in(0, 0);
  if (!open_record(record, object, &in)) return false;
  const uintptr_t cie_pointer_field = in.pos();
  const uint32_t cie_offset = in.u32();  // back from this field to the CIE
  if (cie_offset == 0 || cie_offset > cie_pointer_field) return false;
  if (!parse_cie(cie_pointer_field - cie_offset, object, cie)) return false;
  const uint8_t encoding = cie->fde_pointer_encoding;
  uint64_t pc_range = 0;
  if (!read_encoded_pointer(in, encoding, EncodingBases{}, object, &fde->pc_begin) ||
      !read_encoded_value(in, encoding & kPeFormatMask, &pc_range)) {
    return false;
  }
  fde->pc_end = fde->pc_begin + static_cast<uintptr_t>(pc_range);
  if (cie->has_augmentation_data) in.skip(in.uleb128());
  fde->instructions_begin = in.pos();
  fde->instructions_end = in.end();
  return in.ok();
}

// ---- .eh_frame_hdr search table --------------------------------------------------------------

// Binary-searches the .eh_frame_hdr table for the FDE whose range starts at or below pc.
// The table is sorted by initial location; entries are (initial_loc, fde) pairs of sdata4
// offsets from the start of the header. Any other table layout: not found (stop unwinding).
bool find_fde_address(uintptr_t header, uintptr_t pc, const ObjectRange& object, uintptr_t* fde_address) noexcept {
  if (!object.contains(header, 4)) return false;
  ByteReader in(header, object.end);
  const uint8_t version = in.u8();
  const uint8_t eh_frame_pointer_encoding = in.u8();
  const uint8_t count_encoding = in.u8();
  const uint8_t table_encoding = in.u8();
  if (version != 1 || table_encoding != kPeDatarelSdata4 || count_encoding == kPeOmit) return false;
  const EncodingBases bases{header, 0};
  uintptr_t ignored_eh_frame = 0;
  uintptr_t count = 0;
  if (!read_encoded_pointer(in, eh_frame_pointer_encoding, bases, object, &ignored_eh_frame) ||
      !read_encoded_pointer(in, count_encoding, bases, object, &count)) {
    return false;
  }
  constexpr size_t kEntryBytes = 8;
  const uintptr_t table = in.pos();
  if (count == 0 || count > (object.end - table) / kEntryBytes) return false;
  auto entry_field = [&](uintptr_t index, size_t field) {
    int32_t offset = 0;
    copy_from_address(&offset, table + index * kEntryBytes + field * 4, sizeof(offset));
    return header + static_cast<uintptr_t>(static_cast<intptr_t>(offset));
  };
  uintptr_t low = 0;       // invariant: entries below `low` start at or below pc
  uintptr_t high = count;  // entries from `high` on start above pc
  while (low < high) {
    const uintptr_t middle = low + (high - low) / 2;
    if (entry_field(middle, 0) <= pc)
      low = middle + 1;
    else
      high = middle;
  }
  if (low == 0) return false;
  *fde_address = entry_field(low - 1, 1);
  return true;
}

}  // namespace

bool read_encoded_pointer(ByteReader& in, uint8_t encoding, const EncodingBases& bases, const ObjectRange& object,
                          uintptr_t* pointer) noexcept {
  const uintptr_t field_address = in.pos();
  uint64_t value = 0;
  uintptr_t base = 0;
  if (!read_encoded_value(in, encoding, &value) || !encoding_base(encoding, field_address, bases, &base)) {
    return false;
  }
  uintptr_t address = base + static_cast<uintptr_t>(value);
  if ((encoding & kPeIndirect) != 0) {
    // The pointer lives in the object's own data (its GOT); read it only from there.
    if (!object.contains(address, sizeof(uintptr_t))) return false;
    copy_from_address(&address, address, sizeof(address));
  }
  *pointer = address;
  return true;
}

FrameRule compute_frame_rule(uintptr_t pc) noexcept {
  dl_find_object found{};
  if (_dl_find_object(reinterpret_cast<void*>(pc), &found) != 0 ||  // NOLINT(performance-no-int-to-ptr)
      found.dlfo_eh_frame == nullptr) {
    return FrameRule{};
  }
  const ObjectRange object{reinterpret_cast<uintptr_t>(found.dlfo_map_start),
                           reinterpret_cast<uintptr_t>(found.dlfo_map_end)};
  return frame_rule_from_tables(reinterpret_cast<uintptr_t>(found.dlfo_eh_frame), object, pc);
}

FrameRule frame_rule_from_tables(uintptr_t eh_frame_hdr, const ObjectRange& object, uintptr_t pc) noexcept {
  uintptr_t fde_address = 0;
  Fde fde;
  Cie cie;
  if (!find_fde_address(eh_frame_hdr, pc, object, &fde_address) || !parse_fde(fde_address, object, &fde, &cie)) {
    return FrameRule{};
  }
  // The table only says where the nearest FDE below pc starts; pc may lie in a gap after it.
  if (pc < fde.pc_begin || pc >= fde.pc_end || cie.is_signal_frame) return FrameRule{};
  return evaluate_cfa_program(cie, fde, object, pc);
}

}  // namespace memdx::trace::unwind_detail
