// memdx_tracee_lines: allocations whose call lies lines before the closing brace of its function,
// once directly and once through an inlined helper. The instruction after each call belongs to a
// later line (the closing brace, where the destructor runs), so a report that looked up the
// return address itself would name that line instead of the call's. Also built stripped, with
// its debug information in separate files (CMakeLists.txt).
// Lines the report must name end in "// site: FUNCTION".
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tracee_common.h"

namespace {

constexpr int kRounds = 200;

std::vector<char*> g_records;

volatile long g_open_scopes = 0;

// Its destructor runs at the closing brace of the function that holds one, after the allocation.
struct Scope {
  Scope() { g_open_scopes = g_open_scopes + 1; }
  ~Scope() { g_open_scopes = g_open_scopes - 1; }
};

// Never freed: the blocks are live at the end.
__attribute__((noinline)) void keep_history() {
  Scope scope;
  memdx::tracee::escape(std::malloc(16 << 10));  // site: keep_history

  // The return address of malloc is in the destructor, inlined at the closing brace.
}

__attribute__((always_inline)) inline char* make_record(long n) {
  char* record = new char[4096];  // site: make_record
  std::memset(record, static_cast<int>(n), 4096);
  memdx::tracee::escape(record);
  return record;
}

__attribute__((noinline)) void keep_record(long n) {
  Scope scope;
  g_records.reserve(kRounds);
  g_records.push_back(make_record(n));  // site: keep_record

  // The return address of operator new[] is on the memset line, in the inlined make_record.
}

}  // namespace

int main() {
  for (long n = 0; n < kRounds; ++n) {
    keep_history();
    keep_record(n);
  }
  memdx::tracee::say("done");
  return 0;
}
