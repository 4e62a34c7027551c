// The CFA program interpreter of the unwinder: executes the DW_CFA_* instructions of a CIE and an
// FDE up to a code address and reduces the resulting row of the CFI table to the few facts an
// x86_64 unwind step needs (unwind_rule.h). Only RBP and the return address are tracked; rules
// for other registers are parsed and dropped. Malloc-free and async-signal-safe.
#include <cstddef>
#include <cstdint>

#include "trace/preload/unwind_dwarf.h"
#include "trace/preload/unwind_rule.h"

namespace memdx::trace::unwind_detail {
namespace {

// DW_CFA_* opcodes. The three "primary" ones carry an operand in their low six bits.
constexpr uint8_t kCfaAdvanceLoc = 0x1;  // in the top two bits
constexpr uint8_t kCfaOffset = 0x2;      // in the top two bits
constexpr uint8_t kCfaRestore = 0x3;     // in the top two bits
constexpr uint8_t kCfaNop = 0x00;
constexpr uint8_t kCfaSetLoc = 0x01;
constexpr uint8_t kCfaAdvanceLoc1 = 0x02;
constexpr uint8_t kCfaAdvanceLoc2 = 0x03;
constexpr uint8_t kCfaAdvanceLoc4 = 0x04;
constexpr uint8_t kCfaOffsetExtended = 0x05;
constexpr uint8_t kCfaRestoreExtended = 0x06;
constexpr uint8_t kCfaUndefined = 0x07;
constexpr uint8_t kCfaSameValue = 0x08;
constexpr uint8_t kCfaRegister = 0x09;
constexpr uint8_t kCfaRememberState = 0x0a;
constexpr uint8_t kCfaRestoreState = 0x0b;
constexpr uint8_t kCfaDefCfa = 0x0c;
constexpr uint8_t kCfaDefCfaRegister = 0x0d;
constexpr uint8_t kCfaDefCfaOffset = 0x0e;
constexpr uint8_t kCfaDefCfaExpression = 0x0f;
constexpr uint8_t kCfaExpression = 0x10;
constexpr uint8_t kCfaOffsetExtendedSf = 0x11;
constexpr uint8_t kCfaDefCfaSf = 0x12;
constexpr uint8_t kCfaDefCfaOffsetSf = 0x13;
constexpr uint8_t kCfaValOffset = 0x14;
constexpr uint8_t kCfaValOffsetSf = 0x15;
constexpr uint8_t kCfaValExpression = 0x16;
constexpr uint8_t kCfaGnuArgsSize = 0x2e;
constexpr uint8_t kCfaGnuNegativeOffsetExtended = 0x2f;

// How one register of the caller is recovered. Only RBP and the return address are tracked.
enum class RegisterRuleKind : uint8_t { kSameValue, kUndefined, kOffset, kOther };

struct RegisterRule {
  RegisterRuleKind kind = RegisterRuleKind::kSameValue;
  int64_t offset_bytes = 0;  // kOffset: saved at CFA + offset_bytes
};

// One row of the CFI table, reduced to what x86_64 unwinding needs.
struct Row {
  uint64_t cfa_register = kRegRsp;
  int64_t cfa_offset_bytes = 0;
  bool cfa_is_expression = false;
  RegisterRule rbp;
  RegisterRule return_address;
};

constexpr int kMaxRememberedRows = 8;  // DW_CFA_remember_state depth; GCC nests 1 or 2

struct CfaMachine {
  const Cie* cie = nullptr;
  const ObjectRange* object = nullptr;
  uintptr_t target_pc = 0;      // run the program up to this address
  uintptr_t location = 0;       // the address the current row starts at
  bool reached_target = false;  // an advance went past target_pc: stop executing
  Row row;
  Row initial;  // the row after the CIE's instructions: what DW_CFA_restore returns to
  Row remembered[kMaxRememberedRows];
  int remembered_count = 0;
};

// The rule slot of a tracked register, or null for registers this unwinder ignores.
RegisterRule* tracked_rule(Row& row, uint64_t reg) noexcept {
  if (reg == kRegRbp) return &row.rbp;
  if (reg == kRegReturnAddress) return &row.return_address;
  return nullptr;
}

void set_rule(CfaMachine& m, uint64_t reg, RegisterRuleKind kind, int64_t offset_bytes) noexcept {
  if (RegisterRule* rule = tracked_rule(m.row, reg)) *rule = RegisterRule{kind, offset_bytes};
}

void restore_rule(CfaMachine& m, uint64_t reg) noexcept {
  RegisterRule* rule = tracked_rule(m.row, reg);
  if (rule != nullptr) *rule = *tracked_rule(m.initial, reg);
}

void advance(CfaMachine& m, uint64_t delta_units) noexcept {
  const uint64_t delta_bytes = delta_units * m.cie->code_alignment;
  if (delta_bytes > m.target_pc - m.location) {
    m.reached_target = true;  // the next row starts after target_pc: the current row applies
    return;
  }
  m.location += static_cast<uintptr_t>(delta_bytes);
}

// Operands that are DWARF expressions are skipped; the rule they define is "unsupported".
void skip_block(ByteReader& in) noexcept {
  in.skip(in.uleb128());
}

// DW_CFA_def_cfa* (and the expression form).
bool execute_cfa_definition(CfaMachine& m, uint8_t opcode, ByteReader& in) noexcept {
  const int64_t data_alignment = m.cie->data_alignment;
  Row& row = m.row;
  switch (opcode) {
    case kCfaDefCfa:
      row.cfa_register = in.uleb128();
      row.cfa_offset_bytes = static_cast<int64_t>(in.uleb128());
      row.cfa_is_expression = false;
      return true;
    case kCfaDefCfaSf:
      row.cfa_register = in.uleb128();
      row.cfa_offset_bytes = in.sleb128() * data_alignment;
      row.cfa_is_expression = false;
      return true;
    case kCfaDefCfaRegister:
      row.cfa_register = in.uleb128();
      row.cfa_is_expression = false;
      return true;
    case kCfaDefCfaOffset:
      row.cfa_offset_bytes = static_cast<int64_t>(in.uleb128());
      return true;
    case kCfaDefCfaOffsetSf:
      row.cfa_offset_bytes = in.sleb128() * data_alignment;
      return true;
    case kCfaDefCfaExpression:
      skip_block(in);
      row.cfa_is_expression = true;
      return true;
    default:
      return false;
  }
}

// The register rules of DW_CFA_* with explicit register operands. Rules other than offset,
// undefined and same_value become kOther: fine for registers we do not track, a stop for RBP and
// the return address.
bool execute_register_rule(CfaMachine& m, uint8_t opcode, ByteReader& in) noexcept {
  const int64_t data_alignment = m.cie->data_alignment;
  const uint64_t reg = in.uleb128();
  switch (opcode) {
    case kCfaOffsetExtended:
      set_rule(m, reg, RegisterRuleKind::kOffset, static_cast<int64_t>(in.uleb128()) * data_alignment);
      return true;
    case kCfaOffsetExtendedSf:
      set_rule(m, reg, RegisterRuleKind::kOffset, in.sleb128() * data_alignment);
      return true;
    case kCfaGnuNegativeOffsetExtended:
      set_rule(m, reg, RegisterRuleKind::kOffset, -static_cast<int64_t>(in.uleb128()) * data_alignment);
      return true;
    case kCfaRestoreExtended:
      restore_rule(m, reg);
      return true;
    case kCfaUndefined:
      set_rule(m, reg, RegisterRuleKind::kUndefined, 0);
      return true;
    case kCfaSameValue:
      set_rule(m, reg, RegisterRuleKind::kSameValue, 0);
      return true;
    case kCfaRegister:
    case kCfaValOffset:
      in.uleb128();
      set_rule(m, reg, RegisterRuleKind::kOther, 0);
      return true;
    case kCfaValOffsetSf:
      in.sleb128();
      set_rule(m, reg, RegisterRuleKind::kOther, 0);
      return true;
    case kCfaExpression:
    case kCfaValExpression:
      skip_block(in);
      set_rule(m, reg, RegisterRuleKind::kOther, 0);
      return true;
    default:
      return false;
  }
}

// DW_CFA_set_loc: an absolute location, encoded like the FDE's addresses.
bool set_location(CfaMachine& m, ByteReader& in) noexcept {
  uintptr_t location = 0;
  if (!read_encoded_pointer(in, m.cie->fde_pointer_encoding, EncodingBases{}, *m.object, &location)) return false;
  if (location > m.target_pc) {
    m.reached_target = true;
  } else {
    m.location = location;
  }
  return true;
}

// Location changes and the remember/restore stack.
bool execute_flow(CfaMachine& m, uint8_t opcode, ByteReader& in) noexcept {
  switch (opcode) {
    case kCfaNop:
      return true;
    case kCfaSetLoc:
      return set_location(m, in);
    case kCfaAdvanceLoc1:
      advance(m, in.fixed(1));
      return true;
    case kCfaAdvanceLoc2:
      advance(m, in.fixed(2));
      return true;
    case kCfaAdvanceLoc4:
      advance(m, in.fixed(4));
      return true;
    case kCfaRememberState:
      if (m.remembered_count == kMaxRememberedRows) return false;
      m.remembered[m.remembered_count++] = m.row;
      return true;
    case kCfaRestoreState:  // the whole row, CFA included: GCC's multiple epilogues need it
      if (m.remembered_count == 0) return false;
      m.row = m.remembered[--m.remembered_count];
      return true;
    case kCfaGnuArgsSize:  // only matters to landing pads
      in.uleb128();
      return true;
    default:
      return false;
  }
}

// Executes one instruction; false on an opcode this unwinder does not know.
bool execute_instruction(CfaMachine& m, ByteReader& in) noexcept {
  const uint8_t opcode = in.u8();
  const uint8_t operand = opcode & 0x3f;
  switch (opcode >> 6) {
    case kCfaAdvanceLoc:
      advance(m, operand);
      return true;
    case kCfaOffset:
      set_rule(m, operand, RegisterRuleKind::kOffset, static_cast<int64_t>(in.uleb128()) * m.cie->data_alignment);
      return true;
    case kCfaRestore:
      restore_rule(m, operand);
      return true;
    default:
      break;
  }
  return execute_flow(m, opcode, in) || execute_cfa_definition(m, opcode, in) || execute_register_rule(m, opcode, in);
}

bool run_program(CfaMachine& m, uintptr_t begin, uintptr_t end) noexcept {
  ByteReader in(begin, end);
  while (!in.at_end() && !m.reached_target) {
    if (!execute_instruction(m, in) || !in.ok()) return false;
  }
  return true;
}

// ---- From a row to a FrameRule ---------------------------------------------------------------

bool fits_int32(int64_t value) noexcept {
  return value >= INT32_MIN && value <= INT32_MAX;
}

FrameRule reduce_row(const Row& row) noexcept {
  FrameRule rule;  // can_unwind = false
  if (row.cfa_is_expression || !fits_int32(row.cfa_offset_bytes)) return rule;
  if (row.cfa_register != kRegRsp && row.cfa_register != kRegRbp) return rule;
  // The return address must be where the call instruction put it. Undefined (_start, clone3)
  // marks the outermost frame.
  const RegisterRule& ra = row.return_address;
  if (ra.kind != RegisterRuleKind::kOffset || ra.offset_bytes != -8) return rule;
  switch (row.rbp.kind) {
    case RegisterRuleKind::kSameValue:
      rule.rbp_rule = RbpRule::kUnchanged;
      break;
    case RegisterRuleKind::kUndefined:
      rule.rbp_rule = RbpRule::kUnknown;
      break;
    case RegisterRuleKind::kOffset:
      if (row.rbp.offset_bytes < kMinRbpOffsetBytes || row.rbp.offset_bytes > kMaxRbpOffsetBytes) return rule;
      rule.rbp_rule = RbpRule::kSavedAtCfa;
      rule.rbp_offset_bytes = static_cast<int32_t>(row.rbp.offset_bytes);
      break;
    case RegisterRuleKind::kOther:
      return rule;
  }
  rule.cfa_base = row.cfa_register == kRegRsp ? CfaBase::kRsp : CfaBase::kRbp;
  rule.cfa_offset_bytes = static_cast<int32_t>(row.cfa_offset_bytes);
  rule.can_unwind = true;
  return rule;
}

}  // namespace

FrameRule evaluate_cfa_program(const Cie& cie, const Fde& fde, const ObjectRange& object, uintptr_t pc) noexcept {
  CfaMachine m;
  m.cie = &cie;
  m.object = &object;
  m.target_pc = pc;
  m.location = fde.pc_begin;
  if (!run_program(m, cie.instructions_begin, cie.instructions_end)) return FrameRule{};
  m.initial = m.row;
  m.reached_target = false;
  m.location = fde.pc_begin;  // an advance in the CIE program is meaningless; start over
  m.remembered_count = 0;
  if (!run_program(m, fde.instructions_begin, fde.instructions_end)) return FrameRule{};
  return reduce_row(m.row);
}

}  // namespace memdx::trace::unwind_detail
