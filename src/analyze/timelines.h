// Each process's memory over time, cut to a size a page can carry: the series of its samples
// (and the heap tracer's live bytes) on one grid of time buckets, each bucket keeping its minimum
// and maximum, so that a one-sample spike survives. What the HTML report draws; computed here,
// where the recording is read, so that rendering reads nothing.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "analyze/diagnose.h"

namespace memdx::analyze {

// Equal time buckets centred on t0_ms + i * step_ms, i < count: bucket i holds the instants
// within half a step of its centre.
struct BucketGrid {
  int64_t t0_ms = 0;
  int64_t step_ms = 1;
  size_t count = 0;
};

// At most max_buckets buckets over [first_ms, last_ms], centred on both ends, and no more than
// there are points: a short recording keeps one bucket per sample (a sample up to half an
// interval late still lands in its own bucket).
BucketGrid bucket_grid(int64_t first_ms, int64_t last_ms, size_t points, size_t max_buckets);

// The bucket of an instant; instants outside the grid count in its first or last bucket.
size_t bucket_of(const BucketGrid& grid, int64_t t_ms);

struct TimedValue {
  int64_t t_ms = 0;
  double value = 0;
};

// Each bucket's minimum and maximum; nullopt where no point fell in the bucket.
struct MinMax {
  std::vector<std::optional<double>> min;
  std::vector<std::optional<double>> max;
};
MinMax downsample(const std::vector<TimedValue>& points, const BucketGrid& grid);

// One series of a full timeline, named as the sample's field is ("rss_bytes", "fds", ...,
// "heap_live_bytes").
struct TimelineSeries {
  const char* name = "";
  MinMax values;
};

// Every series of one process on one grid: bucket i of each is the same instant. Series that
// were never read (PSS without the budget, say) are left out.
struct Timeline {
  BucketGrid grid;
  std::vector<TimelineSeries> series;
};

// RSS maxima only, over few buckets: for the processes without a full timeline.
struct Sparkline {
  BucketGrid grid;
  std::vector<std::optional<double>> rss_max_bytes;
};

struct TimelineOptions {
  std::set<pid_t> full;  // the processes that get a full timeline; the others get a sparkline
  size_t buckets_per_series = 400;
  size_t sparkline_buckets = 32;
};

struct ProcessTimelines {
  std::set<pid_t> full;                 // as asked, whether or not they had anything to draw
  std::map<pid_t, Timeline> timelines;  // of `full`, where a series had points
  std::map<pid_t, Sparkline> sparklines;
};

// Reads each process's samples once (one process at a time from an opened recording). The live
// heap comes from the trace when there is one, on the recording's clock. Throws
// store::StoreError when the samples cannot be read.
ProcessTimelines process_timelines(const RecordingData& data, const TimelineOptions& options);

}  // namespace memdx::analyze
