// IdleUnloader and Governor through the public API, on real threads: what is unloaded, in which
// order, never while in use, never after destruction, and the decisions logged with their numbers.
// Waits are for states, with generous limits; no assertion is on how long something took.
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "memdx/cache.h"
#include "memdx/error.h"
#include "memdx/governor.h"
#include "memdx/idle_unloader.h"

namespace {

using namespace std::chrono_literals;
using memdx::DecisionKind;
using memdx::Governor;
using memdx::IdleUnloader;
using memdx::PressureLevel;

// Polls `done` until it holds or 10 s pass; returns whether it held.
bool eventually(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

TEST(IdleUnloader, UnloadsOncePerIdlePeriod) {
  std::atomic<int> unloads{0};
  IdleUnloader idle(100ms, [&] { ++unloads; });
  ASSERT_TRUE(eventually([&] { return unloads == 1; }));
  EXPECT_TRUE(idle.unloaded());
  std::this_thread::sleep_for(400ms);  // four more timeouts: still once, until the next use
  EXPECT_EQ(unloads, 1);
  EXPECT_TRUE(idle.record_usage());  // it had been unloaded
  EXPECT_FALSE(idle.unloaded());
  ASSERT_TRUE(eventually([&] { return unloads == 2; }));
  EXPECT_EQ(idle.unload_count(), 2u);
}

TEST(IdleUnloader, UseKeepsItLoaded) {
  std::atomic<int> unloads{0};
  IdleUnloader idle(1000ms, [&] { ++unloads; });
  for (int i = 0; i < 30; ++i) {
    EXPECT_FALSE(idle.record_usage());
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(unloads, 0);  // 1.5 s of use, never 1 s idle
}

TEST(IdleUnloader, NeverWhileInUse) {
  std::atomic<int> unloads{0};
  IdleUnloader idle(50ms, [&] { ++unloads; });
  {
    IdleUnloader::UsageScope use = idle.in_use();
    EXPECT_FALSE(use.needs_reload());
    std::this_thread::sleep_for(400ms);  // eight timeouts long
    EXPECT_EQ(unloads, 0);
  }
  ASSERT_TRUE(eventually([&] { return unloads == 1; }));  // idle from the end of the use
  IdleUnloader::UsageScope again = idle.in_use();
  EXPECT_TRUE(again.needs_reload());
}

// A use that comes while the unload runs waits for it, and is told to load again.
TEST(IdleUnloader, AUseWaitsForARunningUnload) {
  std::atomic<bool> started{false}, finished{false};
  IdleUnloader idle(20ms, [&] {
    started = true;
    std::this_thread::sleep_for(300ms);
    finished = true;
  });
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  IdleUnloader::UsageScope use = idle.in_use();
  EXPECT_TRUE(finished);
  EXPECT_TRUE(use.needs_reload());
}

TEST(IdleUnloader, NothingRunsAfterDestruction) {
  auto unloads = std::make_shared<std::atomic<int>>(0);
  std::atomic<bool> running{false}, finished{false};
  {
    IdleUnloader idle(20ms, [&, unloads] {
      running = true;
      std::this_thread::sleep_for(200ms);
      finished = true;
      ++*unloads;
    });
    ASSERT_TRUE(eventually([&] { return running.load(); }));
  }  // the destructor waits for the unload that runs
  EXPECT_TRUE(finished);
  {
    IdleUnloader idle(50ms, [unloads] { ++*unloads; });
  }  // destroyed before its timeout: the unload never runs
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(*unloads, 1);
}

TEST(IdleUnloader, NeverMeansNever) {
  std::atomic<int> unloads{0};
  IdleUnloader idle(30ms, [&] { ++unloads; });
  idle.set_timeout(IdleUnloader::kNever);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(unloads, 0);
  idle.set_timeout(30ms);  // measured against the idle time so far: due at once
  ASSERT_TRUE(eventually([&] { return unloads == 1; }));
}

TEST(IdleUnloader, RefusesWhatCannotWork) {
  auto kind_of = [](const std::function<void()>& make) {
    try {
      make();
    } catch (const memdx::Error& e) {
      return e.kind();
    }
    return memdx::ErrorKind::kSystem;
  };
  EXPECT_EQ(kind_of([] { IdleUnloader idle(0ms, [] {}); }), memdx::ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([] { IdleUnloader idle(10ms, {}); }), memdx::ErrorKind::kInvalidArgument);
}

// What the governor's unload callbacks saw, in order.
struct Unloads {
  std::mutex mutex;
  std::vector<std::string> names;
  std::function<uint64_t()> of(const std::string& name, uint64_t freed_bytes = 0) {
    return [this, name, freed_bytes] {
      std::lock_guard<std::mutex> lock(mutex);
      names.push_back(name);
      return freed_bytes;
    };
  }
  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> lock(mutex);
    return names;
  }
};

std::vector<DecisionKind> kinds(const std::vector<memdx::GovernorDecision>& decisions) {
  std::vector<DecisionKind> out;
  for (const auto& d : decisions) out.push_back(d.kind);
  return out;
}

TEST(Governor, UnloadsByPriorityUntilThePressureFalls) {
  Unloads unloads;
  memdx::GovernorOptions options;
  options.settle_time = 2000ms;  // long enough to lower the pressure before a third unload
  Governor governor(options);
  auto small = governor.add({"small-cache", 1 << 20, 0, unloads.of("small-cache", 512 << 10)});
  auto model = governor.add({"model", 20 << 20, 1, unloads.of("model")});
  auto index = governor.add({"index", 10 << 20, 1, unloads.of("index")});
  governor.on_pressure(PressureLevel::kModerate);
  ASSERT_TRUE(eventually([&] { return unloads.seen().size() == 2; }));
  governor.on_pressure(PressureLevel::kNone);
  std::this_thread::sleep_for(2500ms);  // past a settle time: nothing more goes
  EXPECT_EQ(unloads.seen(), (std::vector<std::string>{"small-cache", "model"}));  // lowest priority, then largest
  EXPECT_FALSE(governor.loaded(small));
  EXPECT_FALSE(governor.loaded(model));
  EXPECT_TRUE(governor.loaded(index));

  std::vector<memdx::GovernorDecision> log = governor.decisions();
  ASSERT_EQ(kinds(log),
            (std::vector<DecisionKind>{DecisionKind::kPressureRaised, DecisionKind::kUnloadedForPressure,
                                       DecisionKind::kUnloadedForPressure, DecisionKind::kPressureLowered}));
  EXPECT_EQ(log[1].resource, "small-cache");
  EXPECT_EQ(log[1].freed_bytes, 512u << 10);  // as its unload said
  EXPECT_EQ(log[2].freed_bytes, 20u << 20);   // 0 from the unload: as registered
  EXPECT_EQ(log[1].level, PressureLevel::kModerate);
  EXPECT_NE(log[1].text.find("small-cache"), std::string::npos) << log[1].text;
  EXPECT_NE(log[1].text.find("moderate pressure"), std::string::npos) << log[1].text;
  EXPECT_GT(log[1].watermark.rss_bytes, 0u);
  EXPECT_GT(log[1].t_unix_ms, 0);
}

TEST(Governor, SkipsWhatIsInUseAndSaysWhenNothingIsLeft) {
  Unloads unloads;
  Governor governor;
  auto busy = governor.add({"busy", 1 << 20, 0, unloads.of("busy")});
  auto idle = governor.add({"idle", 1 << 20, 5, unloads.of("idle")});
  {
    Governor::UsageScope use = governor.in_use(busy);
    governor.on_pressure(PressureLevel::kCritical);
    ASSERT_TRUE(eventually([&] {
      auto log = governor.decisions();
      return !log.empty() && log.back().kind == DecisionKind::kNothingLeftToUnload;
    }));
    EXPECT_EQ(unloads.seen(), (std::vector<std::string>{"idle"}));
    EXPECT_TRUE(governor.loaded(busy));
  }
  // Out of use, under the same pressure: it goes too.
  ASSERT_TRUE(eventually([&] { return unloads.seen().size() == 2; }));
  EXPECT_FALSE(governor.loaded(busy));
  EXPECT_FALSE(governor.loaded(idle));
  size_t nothing_left = 0;
  for (const auto& d : governor.decisions()) nothing_left += d.kind == DecisionKind::kNothingLeftToUnload;
  EXPECT_EQ(nothing_left, 1u);  // said once per raised period
}

TEST(Governor, UnloadsEachAfterItsOwnIdleTimeout) {
  Unloads unloads;
  Governor governor;
  auto session = governor.add({"session", 1 << 20, 0, unloads.of("session"), 100ms});
  auto pinned = governor.add({"pinned", 1 << 20, 0, unloads.of("pinned")});
  ASSERT_TRUE(eventually([&] { return !governor.loaded(session); }));
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(governor.loaded(pinned));
  EXPECT_EQ(unloads.seen(), (std::vector<std::string>{"session"}));
  auto log = governor.decisions();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].kind, DecisionKind::kUnloadedIdle);
  EXPECT_NE(log[0].text.find("after 100 ms unused"), std::string::npos) << log[0].text;

  governor.set_loaded(session, 2 << 20);  // loaded again: its idle time starts again
  EXPECT_TRUE(governor.loaded(session));
  ASSERT_TRUE(eventually([&] { return unloads.seen().size() == 2; }));
  EXPECT_EQ(governor.decisions().back().resource_bytes, 2u << 20);
}

TEST(Governor, NoCallbackAfterDestruction) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  std::atomic<bool> running{false};
  {
    memdx::GovernorOptions options;
    options.on_decision = [calls](const memdx::GovernorDecision&) { ++*calls; };
    Governor governor(options);
    governor.add({"slow", 1 << 20, 0, [&] {
                    running = true;
                    std::this_thread::sleep_for(200ms);
                    return uint64_t{0};
                  }});
    governor.add({"later", 1 << 20, 1, [] { return uint64_t{0}; }});
    governor.on_pressure(PressureLevel::kModerate);
    ASSERT_TRUE(eventually([&] { return running.load(); }));
  }
  int at_destruction = *calls;
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(*calls, at_destruction);
  EXPECT_EQ(at_destruction, 2);  // pressure raised, "slow" unloaded; "later" never reached
}

// A cache is shrunk (halved) again and again while the pressure lasts, before anything of a higher
// priority goes; once it frees nothing, the next goes; when the pressure ends it counts again.
TEST(Governor, ShrinksACacheBeforeUnloadingTheModel) {
  memdx::ByteBudgetCache<int, std::string> cache(1 << 20);
  for (int i = 0; i < 256; ++i) cache.put(i, std::string(4096, 'p'), 4096);  // 1 MiB in 4 KiB pages
  Unloads unloads;
  memdx::GovernorOptions options;
  options.settle_time = 20ms;
  Governor governor(options);
  memdx::ResourceId pages = governor.add(memdx::shrinking_cache("pages", cache, 0));
  memdx::ResourceId model = governor.add({"model", 64 << 20, 1, unloads.of("model")});
  governor.on_pressure(PressureLevel::kModerate);
  ASSERT_TRUE(eventually([&] { return !governor.loaded(model); }));
  governor.on_pressure(PressureLevel::kNone);
  EXPECT_EQ(cache.size_bytes(), 0u);  // halved down to nothing first
  std::vector<memdx::GovernorDecision> log = governor.decisions();
  size_t shrinks = 0;
  for (const auto& d : log) shrinks += d.resource == "pages";
  EXPECT_GE(shrinks, 9u);  // 1 MiB -> 512 KiB -> ... -> 4 KiB -> 0, then one that frees nothing
  ASSERT_GE(log.size(), 3u);
  EXPECT_NE(log[1].text.find("shrank pages by 512 KiB"), std::string::npos) << log[1].text;
  EXPECT_EQ(log[1].freed_bytes, 512u << 10);
  ASSERT_TRUE(eventually([&] { return governor.loaded(pages); }));  // the pressure is over: it refills
  EXPECT_EQ(unloads.seen(), (std::vector<std::string>{"model"}));
}

TEST(Governor, RefusesAResourceItCannotUnload) {
  Governor governor;
  EXPECT_THROW(governor.add({"", 1, 0, [] { return uint64_t{0}; }}), memdx::Error);
  EXPECT_THROW(governor.add({"x", 1, 0, {}}), memdx::Error);
  EXPECT_THROW(governor.add({"x", 1, 0, [] { return uint64_t{0}; }, 0ms}), memdx::Error);
}

uint64_t status_kib(const std::string& key) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1));
  }
  return 0;
}

TEST(Watermark, ReadsTheProcessOwnNumbers) {
  std::vector<char> block(64 << 20, 1);  // 64 MiB touched: RSS and its peak rise
  memdx::Watermark mark = memdx::read_watermark(true);
  uint64_t rss_bytes = status_kib("VmRSS") * 1024;
  EXPECT_NEAR(static_cast<double>(mark.rss_bytes), static_cast<double>(rss_bytes), 4.0 * (1 << 20));
  EXPECT_GE(mark.rss_bytes, 64u << 20);
  EXPECT_GE(mark.peak_rss_bytes, mark.rss_bytes);
  ASSERT_TRUE(mark.pss_bytes);
  EXPECT_GT(*mark.pss_bytes, 60u << 20);
  EXPECT_FALSE(memdx::read_watermark().pss_bytes);  // only when asked
  if (mark.cgroup_limit_bytes) {
    ASSERT_TRUE(mark.cgroup_usage_bytes);
    EXPECT_GE(*mark.cgroup_usage_bytes, 64u << 20);
  }
  EXPECT_EQ(block[12345], 1);
}

}  // namespace
