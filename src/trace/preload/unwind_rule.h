#pragma once
// The unwind rule of one x86_64 code address, as the cache stores it: 64 bits, derived from the
// DWARF CFI of the function that contains the address. Internal to the unwinder.
#include <cstddef>
#include <cstdint>

namespace memdx::trace::unwind_detail {

// The register the CFA is computed from.
enum class CfaBase : uint8_t { kRsp = 0, kRbp = 1 };

// What unwinding does to RBP. (RSP is always the CFA; the return address is always at CFA-8.)
enum class RbpRule : uint8_t {
  kUnchanged = 0,   // the caller's RBP is the current RBP (DW_CFA_same_value or no rule)
  kSavedAtCfa = 1,  // saved at CFA + rbp_offset_bytes
  kUnknown = 2,     // DW_CFA_undefined: a caller whose CFA needs RBP stops the walk
};

struct FrameRule {
  bool can_unwind = false;  // false: this is where the walk stops
  CfaBase cfa_base = CfaBase::kRsp;
  RbpRule rbp_rule = RbpRule::kUnchanged;
  int32_t cfa_offset_bytes = 0;  // CFA = cfa_base + cfa_offset_bytes
  int32_t rbp_offset_bytes = 0;  // only for kSavedAtCfa; fits kRbpOffsetBits when packed
};

// Layout of a packed rule: bits 0-31 CFA offset, 32-55 RBP offset (24-bit two's complement),
// bit 56 CFA base, bits 57-58 RBP rule, bit 59 can_unwind.
inline constexpr int kRbpOffsetBits = 24;
inline constexpr int32_t kMaxRbpOffsetBytes = (1 << (kRbpOffsetBits - 1)) - 1;
inline constexpr int32_t kMinRbpOffsetBytes = -(1 << (kRbpOffsetBits - 1));

inline uint64_t pack_rule(const FrameRule& rule) noexcept {
  const uint64_t rbp_field = static_cast<uint32_t>(rule.rbp_offset_bytes) & ((1u << kRbpOffsetBits) - 1);
  return static_cast<uint64_t>(static_cast<uint32_t>(rule.cfa_offset_bytes)) | (rbp_field << 32) |
         (static_cast<uint64_t>(rule.cfa_base) << 56) | (static_cast<uint64_t>(rule.rbp_rule) << 57) |
         (static_cast<uint64_t>(rule.can_unwind) << 59);
}

// Accessors on a packed rule, for the unwinder's hot loop (equivalent to unpack_rule's fields).
inline bool packed_can_unwind(uint64_t packed) noexcept {
  return ((packed >> 59) & 1) != 0;
}
inline bool packed_cfa_from_rbp(uint64_t packed) noexcept {
  return ((packed >> 56) & 1) != 0;
}
inline RbpRule packed_rbp_rule(uint64_t packed) noexcept {
  return static_cast<RbpRule>((packed >> 57) & 3);
}
inline int32_t packed_cfa_offset(uint64_t packed) noexcept {
  return static_cast<int32_t>(static_cast<uint32_t>(packed));
}
inline int32_t packed_rbp_offset(uint64_t packed) noexcept {
  // Shift the 24-bit field to the top of an int32 and back to sign-extend it.
  const auto high = static_cast<uint32_t>((packed >> 32) << (32 - kRbpOffsetBits));
  return static_cast<int32_t>(high) >> (32 - kRbpOffsetBits);
}

inline FrameRule unpack_rule(uint64_t packed) noexcept {
  FrameRule rule;
  rule.can_unwind = packed_can_unwind(packed);
  rule.cfa_base = packed_cfa_from_rbp(packed) ? CfaBase::kRbp : CfaBase::kRsp;
  rule.rbp_rule = packed_rbp_rule(packed);
  rule.cfa_offset_bytes = packed_cfa_offset(packed);
  rule.rbp_offset_bytes = packed_rbp_offset(packed);
  return rule;
}

// Copies size bytes from a computed address: the unwinder's way of reading stack words and CFI
// bytes. Callers check the address against the stack bounds or the object's range first.
inline void copy_from_address(void* out, uintptr_t address, size_t size) noexcept {
  __builtin_memcpy(out, reinterpret_cast<const void*>(address), size);  // NOLINT(performance-no-int-to-ptr)
}

// Computes the rule for code address pc from the .eh_frame of the object that contains it
// (found with _dl_find_object). Returns a rule with can_unwind = false where the CFI is missing,
// marks a signal frame or the outermost frame, or says something this unwinder does not model.
// Lock-free and malloc-free; reads only the object's mapped .eh_frame_hdr and .eh_frame.
FrameRule compute_frame_rule(uintptr_t pc) noexcept;

}  // namespace memdx::trace::unwind_detail
