// Reserved address space is not memory: a 16 GiB PROT_NONE reservation of which 96 MiB is made
// accessible (programs/reserve.cpp) is reported as 96 MiB live and 16 GiB - 96 MiB reserved.
#include <gtest/gtest.h>

#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

using ReservationTest = TraceTest;

TEST_F(ReservationTest, AReservationIsNeverLiveMemory) {
  Finished run = this->run({tracee_path("reserve")}, 120);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.out, "reserved\n");
  json verdict = report();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  const json& heap = verdict["heap"][0];
  EXPECT_EQ(heap["final_mapped_live_bytes"], 96 * kMiB);
  EXPECT_EQ(heap["final_mapped_reserved_bytes"], (uint64_t{16} << 30) - 96 * kMiB);
  EXPECT_EQ(heap["peak_mapped_live_bytes"], 96 * kMiB);
  const json* reserve = nullptr;
  const json* fixed = nullptr;
  for (const json& site : heap["mapped_sites"]) {
    if (site["function"] == "reserve_space") reserve = &site;
    if (site["function"] == "commit_fixed") fixed = &site;
  }
  ASSERT_NE(reserve, nullptr) << heap["mapped_sites"].dump(1);
  ASSERT_NE(fixed, nullptr) << heap["mapped_sites"].dump(1);
  EXPECT_EQ((*reserve)["final_live_bytes"], 64 * kMiB) << "what mprotect made accessible in the reservation";
  EXPECT_EQ((*reserve)["reserved_bytes"], (uint64_t{16} << 30) - 96 * kMiB);
  EXPECT_EQ((*reserve)["final_live_blocks"], 1u);
  EXPECT_EQ((*fixed)["final_live_bytes"], 32 * kMiB);
  EXPECT_EQ((*fixed)["reserved_bytes"], 0u);

  // The text never calls the reservation live or leaked: 16 GiB appears only as mapped.
  CommandResult text = run_command({memdx_path(), "report", recording()});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (size_t at = text.out.find("16.0 GiB"); at != std::string::npos; at = text.out.find("16.0 GiB", at + 1)) {
    EXPECT_EQ(text.out.compare(at, 15, "16.0 GiB mapped"), 0) << text.out;
  }
  EXPECT_NE(text.out.find("reserved (PROT_NONE)"), std::string::npos) << text.out;
}

}  // namespace
}  // namespace memdx::test
