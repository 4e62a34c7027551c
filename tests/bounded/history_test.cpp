// memdx::BoundedHistory and the metrics records' JSON: the newest N records in order, from one
// thread and from several, and the JSON parsed back.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <memdx/history.h>
#include <nlohmann/json.hpp>

namespace {

TEST(BoundedHistory, KeepsTheNewestRecordsOldestFirst) {
  memdx::BoundedHistory<int> history(3);
  EXPECT_EQ(history.capacity(), 3u);
  EXPECT_TRUE(history.snapshot().empty());
  history.push(1);
  history.push(2);
  EXPECT_EQ(history.snapshot(), (std::vector<int>{1, 2}));
  for (int i = 3; i <= 7; ++i) history.push(i);
  EXPECT_EQ(history.snapshot(), (std::vector<int>{5, 6, 7}));
  EXPECT_EQ(history.size(), 3u);
  EXPECT_EQ(history.total_pushed(), 7u);
  history.push(8);  // wraps past the end of the ring once more
  EXPECT_EQ(history.snapshot(), (std::vector<int>{6, 7, 8}));
}

TEST(BoundedHistory, ACapacityOfOneKeepsTheLastRecord) {
  memdx::BoundedHistory<std::string> history(1);
  history.push("a");
  history.push("b");
  EXPECT_EQ(history.snapshot(), (std::vector<std::string>{"b"}));
}

TEST(BoundedHistory, ACapacityOfZeroIsRefused) {
  try {
    memdx::BoundedHistory<int> history(0);
    ADD_FAILURE() << "no memdx::Error thrown";
  } catch (const memdx::Error& e) {
    EXPECT_EQ(e.kind(), memdx::ErrorKind::kInvalidArgument);
  }
}

// Four threads push increasing numbers tagged with their thread; readers take snapshots
// meanwhile. A snapshot never holds more than the capacity, and each thread's numbers in it
// are in increasing order (oldest first). At the end, the count is exact.
TEST(BoundedHistory, ConcurrentPushesAndSnapshotsStayOrdered) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  memdx::BoundedHistory<std::pair<int, int>> history(100);
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&history, t] {
      for (int i = 0; i < kPerThread; ++i) history.push({t, i});
    });
  }
  std::thread reader([&history] {
    for (int n = 0; n < 500; ++n) {
      std::vector<std::pair<int, int>> records = history.snapshot();
      EXPECT_LE(records.size(), 100u);
      std::vector<int> last(kThreads, -1);
      for (const auto& [thread, i] : records) {
        EXPECT_GT(i, last[thread]);
        last[thread] = i;
      }
    }
  });
  for (std::thread& writer : writers) writer.join();
  reader.join();
  EXPECT_EQ(history.total_pushed(), static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(history.size(), 100u);
}

TEST(MetricsJson, RoundTripsThroughAParser) {
  memdx::BoundedHistory<memdx::MetricsRecord> history(2);
  history.push({1700000000000, {{"latency_ms", 1.0}}});
  history.push({1700000001000, {{"latency_ms", 12.5}, {"queue_depth", 3}}});
  history.push({1700000002000,
                {{"latency_ms", std::nan("")},
                 {"rate", std::numeric_limits<double>::infinity()},
                 {"rss_bytes", 1.5e9},
                 {"name \"quoted\"", -0.25}}});
  nlohmann::json document = nlohmann::json::parse(memdx::to_json(history));
  EXPECT_EQ(document["schema"], "memdx.history/1");
  const nlohmann::json& records = document["records"];
  ASSERT_EQ(records.size(), 2u) << "only the newest two are held";
  EXPECT_EQ(records[0]["t_unix_ms"].get<int64_t>(), 1700000001000);
  EXPECT_EQ(records[0]["values"]["latency_ms"].get<double>(), 12.5);
  EXPECT_EQ(records[0]["values"]["queue_depth"].get<double>(), 3.0);
  EXPECT_EQ(records[0]["values"].size(), 2u);
  EXPECT_EQ(records[1]["t_unix_ms"].get<int64_t>(), 1700000002000);
  EXPECT_TRUE(records[1]["values"]["latency_ms"].is_null());
  EXPECT_TRUE(records[1]["values"]["rate"].is_null());
  EXPECT_EQ(records[1]["values"]["rss_bytes"].get<double>(), 1.5e9);
  EXPECT_EQ(records[1]["values"]["name \"quoted\""].get<double>(), -0.25);
}

TEST(MetricsJson, KeepsTheOrderOfValuesAndOfRecords) {
  std::vector<memdx::MetricsRecord> records = {
      {2, {{"z", 1}, {"a", 2}, {"m", 3}}},
      {1, {}},
  };
  std::string text = memdx::to_json(records);
  EXPECT_EQ(text, R"({"schema":"memdx.history/1","records":[{"t_unix_ms":2,"values":{"z":1.0,"a":2.0,"m":3.0}},)"
                  R"({"t_unix_ms":1,"values":{}}]})");
  EXPECT_EQ(memdx::to_json(std::vector<memdx::MetricsRecord>{}), R"({"schema":"memdx.history/1","records":[]})");
}

TEST(MetricsJson, InvalidUtf8InANameIsReplacedNotThrown) {
  std::string text = memdx::to_json({{5, {{std::string("bad\xff"), 1.0}}}});
  nlohmann::json document = nlohmann::json::parse(text);
  EXPECT_EQ(document["records"][0]["values"]["bad\xEF\xBF\xBD"].get<double>(), 1.0);
}

}  // namespace
