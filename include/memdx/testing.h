// GoogleTest assertions on memory: code that must not keep memory, and code that must fit.
//
//   #include <memdx/testing.h>
//
//   TEST(Cache, EvictsWhatItNoLongerHolds) {
//     LruCache cache(1000);
//     int key = 0;
//     EXPECT_MEMORY_BOUNDED(cache.put(key++, std::string(512, 'x')));
//   }
//   TEST(Parser, ParsesInUnder16MiB) {
//     EXPECT_PEAK_BELOW(16 << 20, parse(big_input));
//   }
//
// EXPECT_MEMORY_BOUNDED(body...) runs the body (a statement, or several separated by ';') a few
// times to warm up, then BoundedOptions::iterations times more, reading the live heap after each,
// and fails when it keeps growing: see memdx/testing_checks.h for what is measured and the
// statistics. The failure says by how much it grew per iteration and in all, prints the series,
// and names the code that holds the growth (function, file:line) when the test links the
// recorder: in CMake,
//
//   find_package(memdx)
//   target_link_libraries(my_test PRIVATE memdx::testing GTest::gtest_main)
//
// (memdx::testing is libmemdx plus libmemdx_testing_heap.so, which records allocations while a
// check runs; build the test with -g for file:line). Linked with memdx::memdx alone, the
// assertions work the same and the failure says how to get the sites.
//
// EXPECT_MEMORY_BOUNDED_WITH(options, body...) takes a memdx::testing::BoundedOptions.
// EXPECT_PEAK_BELOW(limit_bytes, body...) runs the body once and fails when the memory it needed
// at its peak, above the level before it, reached limit_bytes.
// The ASSERT_ forms stop the test (return from the function) on failure, as ASSERT_TRUE does.
//
// The body is captured by reference in a lambda: it may use the test's locals and must not
// `return`. Exceptions it throws propagate to GoogleTest.
#pragma once

#include <gtest/gtest.h>

#include "memdx/testing_checks.h"

// Implementation: one statement that judges and, on failure, streams the message into GoogleTest's
// failure macro (ADD_FAILURE, or GTEST_FAIL, which is FAIL). The switch keeps a dangling else
// from binding to the caller's if.
#define MEMDX_TESTING_BOUNDED_(options, on_failure, ...)                        \
  switch (0)                                                                    \
  case 0:                                                                       \
  default:                                                                      \
    if (const ::memdx::testing::BoundedResult memdx_bounded_result_ =           \
            ::memdx::testing::check_bounded([&]() { __VA_ARGS__; }, (options)); \
        !memdx_bounded_result_.growing)                                         \
      ;                                                                         \
    else                                                                        \
      on_failure() << "memory is not bounded: " #__VA_ARGS__ "\n" << ::memdx::testing::describe(memdx_bounded_result_)

#define MEMDX_TESTING_PEAK_(limit_bytes, on_failure, ...)                                                             \
  switch (0)                                                                                                          \
  case 0:                                                                                                             \
  default:                                                                                                            \
    if (const ::memdx::testing::PeakResult memdx_peak_result_ = ::memdx::testing::check_peak([&]() { __VA_ARGS__; }); \
        memdx_peak_result_.peak_above_before_bytes < static_cast<uint64_t>(limit_bytes))                              \
      ;                                                                                                               \
    else                                                                                                              \
      on_failure() << "memory peak too high: " #__VA_ARGS__ "\n"                                                      \
                   << ::memdx::testing::describe(memdx_peak_result_, static_cast<uint64_t>(limit_bytes))

#define EXPECT_MEMORY_BOUNDED(...) MEMDX_TESTING_BOUNDED_(::memdx::testing::BoundedOptions(), ADD_FAILURE, __VA_ARGS__)
#define ASSERT_MEMORY_BOUNDED(...) MEMDX_TESTING_BOUNDED_(::memdx::testing::BoundedOptions(), GTEST_FAIL, __VA_ARGS__)
#define EXPECT_MEMORY_BOUNDED_WITH(options, ...) MEMDX_TESTING_BOUNDED_(options, ADD_FAILURE, __VA_ARGS__)
#define ASSERT_MEMORY_BOUNDED_WITH(options, ...) MEMDX_TESTING_BOUNDED_(options, GTEST_FAIL, __VA_ARGS__)
#define EXPECT_PEAK_BELOW(limit_bytes, ...) MEMDX_TESTING_PEAK_(limit_bytes, ADD_FAILURE, __VA_ARGS__)
#define ASSERT_PEAK_BELOW(limit_bytes, ...) MEMDX_TESTING_PEAK_(limit_bytes, GTEST_FAIL, __VA_ARGS__)
