// One row per finding kind and per hypothesis kind: every word memdx says about a kind, in one
// place. The JSON names (to_string), the hypothesis' statement, what the headline says grows, and
// the next step the text gives, so that adding a kind is adding a row, and a kind cannot be named
// in one output and forgotten in another.
#pragma once

#include <optional>

#include "memdx/verdict.h"

namespace memdx::model {

struct FindingKindRow {
  FindingKind kind;
  const char* json_name;  // memdx.verdict/1's "kind"
  // What grows, as the headline names it ("LEAK: live heap of pid 42 grows ..."); null for the
  // kinds that are no growth.
  const char* what_grows;
  // The next step while the process runs: a format string with {pid}; null: none of its own.
  const char* running_step;
  // The same once it has exited: {recording} (the recording's path) and {rerun} (the command
  // to run it again under memdx); null: none of its own.
  const char* exited_step;
};

struct HypothesisKindRow {
  HypothesisKind kind;
  const char* json_name;               // memdx.verdict/1's hypothesis "name"
  const char* statement;               // what the hypothesis says
  std::optional<FindingKind> finding;  // the finding that confirms it, when one kind does
};

const FindingKindRow& row_of(FindingKind kind);
const HypothesisKindRow& row_of(HypothesisKind kind);

}  // namespace memdx::model
