#include "analyze/heap_profile.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <deque>
#include <queue>

namespace memdx::analyze {
namespace wire = trace::wire;

namespace {

// Events of different threads arrive in batches, so seq order is restored by merging the
// threads' queues (each already in order) within a window: a thread flushes at least every
// 64 KiB or 100 ms, far inside a million events. Beyond the window a late free is still
// matched to its allocation (see pending_frees_); only the peak could then be off.
constexpr size_t kReorderWindow = size_t{1} << 20;

// The head of one queue in the merge: markers (queue 0) sort before events of the same seq.
struct Head {
  uint64_t seq;
  uint32_t queue;
  bool operator>(const Head& other) const { return seq != other.seq ? seq > other.seq : queue > other.queue; }
};

struct LiveBlock {
  uint64_t bytes;       // weighted in sampling mode
  uint64_t blocks;      // 1, or the weight in sampling mode
  uint32_t stack;
};

struct Region {
  uint64_t length;
  uint32_t flags;
  uint32_t stack;
};

class ProfileBuilder final : public StreamSink {
 public:
  explicit ProfileBuilder(ProcessHeapProfile& profile) : profile_(profile) {}

  void hello(const wire::StreamHello& hello) override {
    profile_.pid = hello.pid;
    profile_.ppid = hello.ppid;
    profile_.after_fork = (hello.flags & wire::kHelloAfterFork) != 0;
    profile_.start_monotonic_ns = hello.start_monotonic_ns;
    profile_.sample_bytes = hello.sample_bytes;
    profile_.max_depth = hello.max_depth;
  }
  void event(const TraceEvent& event) override {
    auto [slot, fresh] = thread_queue_.try_emplace(event.tid, static_cast<uint32_t>(queues_.size()));
    if (fresh) queues_.emplace_back();
    enqueue(slot->second, event);
    if (++buffered_ > kReorderWindow) drain(kReorderWindow / 2);
  }
  void stack(uint32_t id, std::span<const uint64_t> frames) override {
    profile_.stacks[id].assign(frames.begin(), frames.end());
  }
  void module(const TraceModule& module) override { profile_.modules.push_back(module); }
  void unmodule(uint64_t, uint64_t) override {}
  void marker(const TraceMarker& marker) override {
    TraceEvent carrier;  // queue 0 holds markers, by index
    carrier.seq = marker.seq;
    carrier.size = markers_.size();
    markers_.push_back(marker);
    enqueue(0, carrier);
    ++buffered_;
  }
  void end(const TraceEnd& end) override { profile_.end = end; }
  void note(wire::NoteCode code) override {
    if (code == wire::NoteCode::kStackTableFull) profile_.stack_table_full = true;
  }
  void closed(bool clean) override {
    drain(buffered_);
    profile_.closed_cleanly = clean;
    finish();
  }

 private:
  void enqueue(uint32_t queue, const TraceEvent& event) {
    if (queues_[queue].empty()) heads_.push({event.seq, queue});
    queues_[queue].push_back(event);
  }
  void drain(size_t count);
  void apply(const TraceEvent& event);
  void apply_marker(const TraceMarker& marker);
  void allocate(const TraceEvent& event);
  void release(const TraceEvent& event);
  void map(const TraceEvent& event);
  void unmap(uint64_t address, uint64_t length);
  void finish();
  // Sampling mode: an allocation of `size` bytes was sampled with probability
  // 1 - exp(-size / mean); it stands for the inverse of that many allocations.
  double weight(uint64_t size) const {
    if (profile_.sample_bytes == 0) return 1.0;
    double p = -std::expm1(-static_cast<double>(size) / static_cast<double>(profile_.sample_bytes));
    return p > 0 ? 1.0 / p : 1.0;
  }

  ProcessHeapProfile& profile_;
  std::vector<std::deque<TraceEvent>> queues_ = std::vector<std::deque<TraceEvent>>(1);  // [0]: markers
  std::unordered_map<int32_t, uint32_t> thread_queue_;
  std::priority_queue<Head, std::vector<Head>, std::greater<>> heads_;  // one per non-empty queue
  size_t buffered_ = 0;
  std::vector<TraceMarker> markers_;
  std::unordered_map<uint64_t, LiveBlock> live_;
  std::unordered_map<uint64_t, uint64_t> pending_frees_;  // address -> seq of a free seen before its allocation
  std::map<uint64_t, Region> regions_;
  uint64_t live_bytes_ = 0;
  uint64_t mapped_live_ = 0;
};

void ProfileBuilder::drain(size_t count) {
  for (; count > 0 && !heads_.empty(); --count) {
    uint32_t queue = heads_.top().queue;
    heads_.pop();
    TraceEvent next = queues_[queue].front();
    queues_[queue].pop_front();
    --buffered_;
    if (!queues_[queue].empty()) heads_.push({queues_[queue].front().seq, queue});
    if (queue == 0) {
      apply_marker(markers_[next.size]);
    } else {
      apply(next);
    }
  }
}

void ProfileBuilder::apply(const TraceEvent& event) {
  switch (event.kind) {
    case TraceEvent::Kind::kAlloc: allocate(event); break;
    case TraceEvent::Kind::kFree: release(event); break;
    case TraceEvent::Kind::kMmap: map(event); break;
    case TraceEvent::Kind::kMunmap: unmap(event.address, event.size); break;
  }
}

void ProfileBuilder::apply_marker(const TraceMarker& marker) {
  profile_.timeline.push_back({marker.monotonic_ns, marker.rss_bytes, live_bytes_, mapped_live_, marker.tracer_bytes});
  profile_.peak_rss_bytes = std::max(profile_.peak_rss_bytes, marker.rss_bytes);
  profile_.peak_tracer_bytes = std::max(profile_.peak_tracer_bytes, marker.tracer_bytes);
}

void ProfileBuilder::allocate(const TraceEvent& event) {
  double scale = weight(event.size);
  auto blocks = static_cast<uint64_t>(std::llround(scale));
  auto bytes = static_cast<uint64_t>(std::llround(scale * static_cast<double>(event.size)));
  AllocationStats& site = profile_.heap_by_stack[event.stack];
  for (AllocationStats* stats : {&profile_.heap, &site}) {
    stats->allocations += blocks;
    stats->allocated_bytes += bytes;
  }
  if (auto pending = pending_frees_.find(event.address); pending != pending_frees_.end() && pending->second >= event.seq) {
    // Its free was seen first (beyond the reorder window): the block is already gone.
    pending_frees_.erase(pending);
    profile_.heap.frees += blocks;
    site.frees += blocks;
    return;
  }
  auto [slot, fresh] = live_.try_emplace(event.address, LiveBlock{bytes, blocks, event.stack});
  if (!fresh) {
    // A free the tracer never saw (e.g. from before a fork's new stream); the old block is gone.
    LiveBlock old = slot->second;
    live_bytes_ -= old.bytes;
    AllocationStats& old_site = profile_.heap_by_stack[old.stack];
    old_site.live_bytes -= old.bytes;
    old_site.live_blocks -= old.blocks;
    slot->second = {bytes, blocks, event.stack};
  }
  live_bytes_ += bytes;
  site.live_bytes += bytes;
  site.live_blocks += blocks;
  site.peak_live_bytes = std::max(site.peak_live_bytes, site.live_bytes);
  profile_.heap.peak_live_bytes = std::max(profile_.heap.peak_live_bytes, live_bytes_);
}

void ProfileBuilder::release(const TraceEvent& event) {
  auto found = live_.find(event.address);
  if (found == live_.end()) {
    pending_frees_[event.address] = event.seq;
    return;
  }
  LiveBlock block = found->second;
  live_.erase(found);
  live_bytes_ -= block.bytes;
  AllocationStats& site = profile_.heap_by_stack[block.stack];
  site.live_bytes -= block.bytes;
  site.live_blocks -= block.blocks;
  site.frees += block.blocks;
  profile_.heap.frees += block.blocks;
}

void ProfileBuilder::map(const TraceEvent& event) {
  uint32_t flags = event.map_flags;
  if (flags == 0) {
    // mremap: the region keeps the kind it had (its old range was unmapped just before).
    flags = wire::kMapAnonymous;
  }
  unmap(event.address, event.size);  // MAP_FIXED over an old region replaces it
  regions_[event.address] = {event.size, flags, event.stack};
  mapped_live_ += event.size;
  AllocationStats& site = profile_.mapped_by_stack[event.stack];
  site.allocations += 1;
  site.allocated_bytes += event.size;
  site.live_bytes += event.size;
  site.live_blocks += 1;
  site.peak_live_bytes = std::max(site.peak_live_bytes, site.live_bytes);
  profile_.mapped.maps += 1;
  profile_.mapped.mapped_bytes += event.size;
  profile_.mapped.peak_live_bytes = std::max(profile_.mapped.peak_live_bytes, mapped_live_);
}

// Removes [address, address + length) from the live regions, trimming or splitting those that
// overlap it partly, as munmap does.
void ProfileBuilder::unmap(uint64_t address, uint64_t length) {
  uint64_t end = address + length;
  auto it = regions_.upper_bound(address);
  if (it != regions_.begin()) --it;
  bool any = false;
  while (it != regions_.end() && it->first < end) {
    uint64_t start = it->first;
    Region region = it->second;
    uint64_t region_end = start + region.length;
    if (region_end <= address) {
      ++it;
      continue;
    }
    any = true;
    it = regions_.erase(it);
    uint64_t cut_start = std::max(start, address), cut_end = std::min(region_end, end);
    mapped_live_ -= cut_end - cut_start;
    AllocationStats& site = profile_.mapped_by_stack[region.stack];
    site.live_bytes -= cut_end - cut_start;
    if (start < cut_start) regions_[start] = {cut_start - start, region.flags, region.stack};
    if (cut_end < region_end) it = regions_.insert({cut_end, {region_end - cut_end, region.flags, region.stack}}).first;
    if (start >= cut_start && region_end <= cut_end) site.live_blocks -= 1;
  }
  if (any) profile_.mapped.unmaps += 1;
}

void ProfileBuilder::finish() {
  profile_.heap.live_bytes = live_bytes_;
  uint64_t blocks = 0;
  for (const auto& [address, block] : live_) blocks += block.blocks;
  profile_.heap.live_blocks = blocks;
  profile_.unmatched_frees = pending_frees_.size();
  profile_.mapped.live_bytes = mapped_live_;
  for (const auto& [start, region] : regions_) {
    if (region.flags & wire::kMapAnonymous) profile_.mapped.anon_live_bytes += region.length;
    if (region.flags & wire::kMapShared) profile_.mapped.shared_live_bytes += region.length;
  }
  live_.clear();
  pending_frees_.clear();
  regions_.clear();
}

}  // namespace

HeapTrace build_heap_trace(const store::RecordingReader& recording,
                           const std::function<void(uint64_t, uint64_t)>& progress) {
  HeapTrace trace;
  // Stable addresses for the builders: profiles are moved into trace.processes at the end.
  std::vector<std::unique_ptr<ProcessHeapProfile>> profiles;
  std::vector<std::unique_ptr<ProfileBuilder>> builders;
  trace.read = read_heap_trace(
      recording,
      [&](uint32_t stream) -> StreamSink& {
        profiles.push_back(std::make_unique<ProcessHeapProfile>());
        profiles.back()->stream = stream;
        builders.push_back(std::make_unique<ProfileBuilder>(*profiles.back()));
        return *builders.back();
      },
      progress);
  for (auto& profile : profiles) trace.processes.push_back(std::move(*profile));
  return trace;
}

}  // namespace memdx::analyze
