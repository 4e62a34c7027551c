#include "analyze/timelines.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <utility>

namespace memdx::analyze {
namespace {

// One series of a process's samples, as the script names and draws it.
struct SampleField {
  const char* name;
  std::optional<double> (*value)(const model::ProcessSample&);
};

std::optional<double> bytes(uint64_t value) {
  return static_cast<double>(value);
}
std::optional<double> bytes(const std::optional<uint64_t>& value) {
  if (!value) return std::nullopt;
  return static_cast<double>(*value);
}

// heap_live_bytes is not here: it comes from the heap trace when there is one (live_heap_points).
constexpr SampleField kSampleFields[] = {
    {"rss_bytes", [](const model::ProcessSample& s) { return bytes(s.rss_bytes); }},
    {"pss_bytes", [](const model::ProcessSample& s) { return bytes(s.pss_bytes); }},
    {"rss_anon_bytes", [](const model::ProcessSample& s) { return bytes(s.rss_anon_bytes); }},
    {"rss_file_bytes", [](const model::ProcessSample& s) { return bytes(s.rss_file_bytes); }},
    {"rss_shmem_bytes", [](const model::ProcessSample& s) { return bytes(s.rss_shmem_bytes); }},
    {"swap_bytes", [](const model::ProcessSample& s) { return bytes(s.swap_bytes); }},
    {"vsz_bytes", [](const model::ProcessSample& s) { return bytes(s.vsz_bytes); }},
    {"fds", [](const model::ProcessSample& s) -> std::optional<double> { return s.fds; }},
    {"threads", [](const model::ProcessSample& s) -> std::optional<double> { return s.threads; }},
    {"gpu_bytes", [](const model::ProcessSample& s) { return bytes(s.gpu_bytes); }},
};

std::vector<TimedValue> field_points(const std::vector<model::ProcessSample>& samples, const SampleField& field) {
  std::vector<TimedValue> points;
  points.reserve(samples.size());
  for (const model::ProcessSample& s : samples) {
    if (auto v = field.value(s)) points.push_back({s.t_ms, *v});
  }
  return points;
}

const model::ProcessRecord* record_of(const RecordingData& data, pid_t pid) {
  auto it = std::find_if(data.processes.begin(), data.processes.end(), [&](auto& p) { return p.pid == pid; });
  return it == data.processes.end() ? nullptr : &*it;
}

// The traced live heap on the recording's clock. The tracer stamps CLOCK_MONOTONIC; without the
// recording's monotonic origin, the series is aligned so that it starts when the process was
// first seen (the tracer starts with the process, within one sampling interval).
std::vector<TimedValue> live_heap_points(const RecordingData& data, pid_t pid,
                                         const std::vector<model::ProcessSample>& samples) {
  std::vector<TimedValue> points;
  auto traced = data.traced.find(pid);
  if (traced == data.traced.end() || traced->second.heap_live_bytes.empty()) {
    for (const model::ProcessSample& s : samples) {
      if (s.heap_live_bytes) points.push_back({s.t_ms, static_cast<double>(*s.heap_live_bytes)});
    }
    return points;
  }
  const auto& series = traced->second.heap_live_bytes;
  double offset_ms = 0;
  if (data.monotonic_origin_ns) {
    offset_ms = -static_cast<double>(*data.monotonic_origin_ns) / 1e6;
  } else {
    const model::ProcessRecord* record = record_of(data, pid);
    offset_ms = static_cast<double>(record ? record->first_seen_ms : 0) - series.front().t_s * 1000;
  }
  points.reserve(series.size());
  for (const SeriesPoint& p : series) {
    points.push_back({static_cast<int64_t>(std::llround(p.t_s * 1000 + offset_ms)), p.value});
  }
  return points;
}

std::pair<int64_t, int64_t> time_range(const std::vector<std::vector<TimedValue>>& all) {
  int64_t first = INT64_MAX, last = INT64_MIN;
  for (const auto& points : all) {
    for (const TimedValue& p : points) {
      first = std::min(first, p.t_ms);
      last = std::max(last, p.t_ms);
    }
  }
  return {first, last};
}

// Every series of one process on one grid; nullopt when none has a point.
std::optional<Timeline> timeline_of(const RecordingData& data, pid_t pid,
                                    const std::vector<model::ProcessSample>& samples, size_t max_buckets) {
  std::vector<std::vector<TimedValue>> all;
  std::vector<const char*> names;
  if (!samples.empty()) {
    for (const SampleField& field : kSampleFields) {
      all.push_back(field_points(samples, field));
      names.push_back(field.name);
    }
  }
  all.push_back(live_heap_points(data, pid, samples));
  names.push_back("heap_live_bytes");
  size_t most_points = 0;
  for (const auto& points : all) most_points = std::max(most_points, points.size());
  if (most_points == 0) return std::nullopt;
  auto [first, last] = time_range(all);
  Timeline timeline;
  timeline.grid = bucket_grid(first, last, most_points, max_buckets);
  for (size_t i = 0; i < all.size(); ++i) {
    if (!all[i].empty()) timeline.series.push_back({names[i], downsample(all[i], timeline.grid)});
  }
  return timeline;
}

std::optional<Sparkline> sparkline_of(const std::vector<model::ProcessSample>& samples, size_t max_buckets) {
  std::vector<TimedValue> rss = field_points(samples, kSampleFields[0]);
  if (rss.empty()) return std::nullopt;
  Sparkline spark;
  spark.grid = bucket_grid(rss.front().t_ms, rss.back().t_ms, rss.size(), max_buckets);
  spark.rss_max_bytes = downsample(rss, spark.grid).max;
  return spark;
}

}  // namespace

BucketGrid bucket_grid(int64_t first_ms, int64_t last_ms, size_t points, size_t max_buckets) {
  BucketGrid grid;
  grid.t0_ms = first_ms;
  int64_t span_ms = std::max<int64_t>(last_ms - first_ms, 0);
  auto wanted = static_cast<int64_t>(std::clamp<size_t>(std::min(points, max_buckets), 1, SIZE_MAX / 2));
  if (wanted == 1 || span_ms == 0) {
    grid.step_ms = span_ms + 1;
    grid.count = 1;
    return grid;
  }
  // Bucket centres at the first and the last instant: regular samples land one per bucket.
  grid.step_ms = std::max<int64_t>((span_ms + wanted - 2) / (wanted - 1), 1);
  grid.count = static_cast<size_t>((span_ms + grid.step_ms / 2) / grid.step_ms) + 1;
  return grid;
}

size_t bucket_of(const BucketGrid& grid, int64_t t_ms) {
  int64_t offset = std::max<int64_t>(t_ms - grid.t0_ms + grid.step_ms / 2, 0) / grid.step_ms;
  return std::min(static_cast<size_t>(offset), grid.count - 1);
}

MinMax downsample(const std::vector<TimedValue>& points, const BucketGrid& grid) {
  MinMax out;
  out.min.assign(grid.count, std::nullopt);
  out.max.assign(grid.count, std::nullopt);
  if (grid.count == 0) return out;
  for (const TimedValue& p : points) {
    size_t i = bucket_of(grid, p.t_ms);
    out.min[i] = out.min[i] ? std::min(*out.min[i], p.value) : p.value;
    out.max[i] = out.max[i] ? std::max(*out.max[i], p.value) : p.value;
  }
  return out;
}

ProcessTimelines process_timelines(const RecordingData& data, const TimelineOptions& options) {
  ProcessTimelines out;
  out.full = options.full;
  std::vector<model::ProcessSample> loaded;  // one process's samples at a time
  for (const model::ProcessRecord& record : data.processes) {
    const std::vector<model::ProcessSample>& samples = data.samples_of(record.pid, loaded);
    if (options.full.count(record.pid)) {
      if (auto timeline = timeline_of(data, record.pid, samples, options.buckets_per_series)) {
        out.timelines.emplace(record.pid, std::move(*timeline));
      }
    } else if (auto spark = sparkline_of(samples, options.sparkline_buckets)) {
      out.sparklines.emplace(record.pid, std::move(*spark));
    }
  }
  return out;
}

}  // namespace memdx::analyze
