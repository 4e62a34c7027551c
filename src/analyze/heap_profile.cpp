#include "analyze/heap_profile.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <queue>
#include <utility>

#include "proc/unique_fd.h"

namespace memdx::analyze {
namespace wire = trace::wire;

namespace {

// Events of different threads arrive in batches, so seq order is restored by merging the
// threads' queues (each already in order). The threads' batches are kept as they arrived,
// encoded (3-4 bytes an event), and decoded a few events at a time as the merge reaches them.
//
// The first pass merges within a window of kept batches: a thread flushes at least every 64 KiB
// or 100 ms, so most streams never have an event arrive later than the window allows, and for
// them the merge is the exact order. 4 MiB of batches hold about 1.2 million events (decoded
// events took 32 bytes each: the same memory held 131,072), so a thread may be preempted for a
// few hundred milliseconds among busy ones before its events come too late.
//
// A stream where an event does arrive after a later one was applied (an idle thread's buffer
// flushed while busy threads made millions of events) is replayed exactly in a second pass:
// the first pass notes the lowest seq of every batch, so the second knows, after each batch,
// the seq below which nothing can still arrive, and applies exactly those events; past a memory
// budget its kept batches go to a temporary file.
// Events applied per step while the first pass brings its window back under half.
constexpr size_t kDrainStep = 4096;
// Events decoded at a time from a thread's kept batches in the exact pass.
constexpr size_t kRefillEvents = 256;
constexpr uint64_t kNoSeq = std::numeric_limits<uint64_t>::max();
// A stack state's group not yet looked up (StackGrouping::kNoGroup is "in none").
constexpr uint32_t kGroupUnknown = StackGrouping::kNoGroup - 1;

// The timeline's points: one every 100 ms of the process's life. Live bytes only change at
// events, so a point is the state just before the first event at or after its instant, however
// rarely the process allocates (the tracer's markers come only with its allocations).
constexpr uint64_t kTimelineStepNs = 100'000'000;
// A corrupt or absurd clock must not make a point for every 100 ms of a thousand years.
constexpr uint64_t kMaxTimelineGap = 1'000'000;

// How many events ahead the live table's slot is prefetched.
constexpr size_t kPrefetchDistance = 8;

// One event waiting in its thread's queue (markers wait in queue 0, `address` = their index).
struct QueuedEvent {
  uint64_t seq;
  uint64_t address;
  uint64_t size;
  uint32_t stack;
  TraceEvent::Kind kind;
  uint8_t map_flags;  // wire::MapFlag bits (they fit in 8)
};

// The head of one queue in the merge: markers (queue 0) sort before events of the same seq.
struct Head {
  uint64_t seq;
  uint32_t queue;
  bool operator>(const Head& other) const { return seq != other.seq ? seq > other.seq : queue > other.queue; }
};

struct LiveBlock {
  uint64_t address;
  uint64_t bytes;   // weighted in sampling mode
  uint64_t blocks;  // 1, or the weight in sampling mode
  uint32_t stack;
};

// The live blocks by address: open addressing with linear probing and backward-shift deletion
// (no tombstones), 16 bytes a slot, grown at 70 % full. The aggregation spends most of its time
// and memory here; std::unordered_map's node per block cost twice the time and three times the
// memory. Blocks of 4 GiB or more, and sampled blocks standing for several, keep their figures
// in a side map.
class LiveBlockTable {
 public:
  // The slots come with the first block: a stream that never allocates (a process that only
  // forked, or a corrupt stream of empty ones) costs nothing here.
  LiveBlockTable() = default;

  void insert(const LiveBlock& block) {
    if (block.address == 0) {
      zero_ = block;
      return;
    }
    if (slots_.empty()) slots_.resize(kInitialSlots);
    if ((size_ + 1) * 10 > slots_.size() * 7) grow();
    bool narrow = block.bytes < kWide && block.blocks == 1;
    if (!narrow) wide_[block.address] = {block.bytes, block.blocks};
    place({block.address, narrow ? static_cast<uint32_t>(block.bytes) : kWide, block.stack});
    ++size_;
  }
  // Removes and returns the block at `address`, if it is live.
  std::optional<LiveBlock> take(uint64_t address) {
    if (address == 0) {
      if (!zero_.blocks) return std::nullopt;
      return std::exchange(zero_, LiveBlock{});
    }
    if (slots_.empty()) return std::nullopt;
    size_t hole = home(address);
    for (;; hole = (hole + 1) & mask()) {
      if (slots_[hole].address == address) break;
      if (slots_[hole].address == 0) return std::nullopt;
    }
    LiveBlock block = unpack(slots_[hole]);
    if (slots_[hole].bytes == kWide) wide_.erase(address);
    for (size_t i = (hole + 1) & mask(); slots_[i].address != 0; i = (i + 1) & mask()) {
      size_t want = home(slots_[i].address);
      // Move the entry back into the hole unless its home lies cyclically in (hole, i].
      if (((i - want) & mask()) >= ((i - hole) & mask())) {
        slots_[hole] = slots_[i];
        hole = i;
      }
    }
    slots_[hole] = {};
    --size_;
    return block;
  }
  // Starts loading the slot `address` will probe first: the table is far larger than the
  // caches and most lookups of long-lived blocks miss.
  void prefetch(uint64_t address) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(address)]);
  }
  template <typename Visit>
  void for_each(Visit visit) const {
    if (zero_.blocks) visit(zero_);
    for (const Slot& slot : slots_) {
      if (slot.address != 0) visit(unpack(slot));
    }
  }
  void clear() {
    slots_ = std::vector<Slot>();
    size_ = 0;
    zero_ = {};
    wide_.clear();
  }

 private:
  struct Slot {
    uint64_t address;
    uint32_t bytes;  // kWide: see wide_
    uint32_t stack;
  };
  static constexpr size_t kInitialSlots = 1024;
  static constexpr uint32_t kWide = UINT32_MAX;

  LiveBlock unpack(const Slot& slot) const {
    if (slot.bytes != kWide) return {slot.address, slot.bytes, 1, slot.stack};
    const auto& [bytes, blocks] = wide_.at(slot.address);
    return {slot.address, bytes, blocks, slot.stack};
  }
  size_t mask() const { return slots_.size() - 1; }
  size_t home(uint64_t address) const {
    return static_cast<size_t>(((address >> 4) * 0x9E3779B97F4A7C15ull) >> 20) & mask();
  }
  void place(const Slot& slot) {
    size_t i = home(slot.address);
    while (slots_[i].address != 0) i = (i + 1) & mask();
    slots_[i] = slot;
  }
  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (const Slot& slot : old) {
      if (slot.address != 0) place(slot);
    }
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
  LiveBlock zero_{};                                                  // address 0 is the empty mark of the slots
  std::unordered_map<uint64_t, std::pair<uint64_t, uint64_t>> wide_;  // address -> bytes, blocks
};

// Per stack while the stream is read: its figures, and the peak number it last copied its live
// bytes for (see touch()).
struct StackState {
  AllocationStats stats;
  uint64_t peak_number = 0;
  std::vector<float> series;       // live bytes at the series instants; empty while never live there
  uint32_t group = kGroupUnknown;  // its StackGrouping group, looked up at its first use
};

// The stacks of one kind of memory (heap or direct mappings) with their live bytes at the
// process's peak of that kind, and the bounded live series.
//
// Live at peak without a second pass: each new peak of the total gets a number; a stack's live
// bytes are copied into live_at_peak just before its first change after a peak (until then they
// are what it had at the peak); at the end, stacks unchanged since the last peak copy them too.
class StackLedger {
 public:
  // The state of a stack id. Ids are dense from 1 in a valid stream; ids far beyond the
  // stacks defined so far (a corrupt stream) go to a map, so they cannot make a huge vector.
  StackState& at(uint32_t id) {
    if (id < dense_.size()) return dense_[id];
    if (id < std::max<size_t>(size_t{1} << 16, 4 * (dense_limit_hint_ + 1))) {
      dense_.resize(std::max<size_t>(id + 1, dense_.size() * 2));
      return dense_[id];
    }
    return sparse_[id];
  }
  void note_defined(uint32_t count) { dense_limit_hint_ = count; }

  // A stack's live bytes rose or fell by `bytes`: so did its group's. `group` is the state's
  // group, looked up.
  void grew(uint32_t group, uint64_t bytes) {
    if (group >= kGroupUnknown) return;
    if (group >= groups_.size()) groups_.resize(group + 1);
    GroupLive& live = groups_[group];
    live.bytes += bytes;
    live.peak_bytes = std::max(live.peak_bytes, live.bytes);
  }
  void shrank(uint32_t group, uint64_t bytes) {
    if (group < groups_.size()) groups_[group].bytes -= bytes;
  }
  std::vector<uint64_t> group_peaks() const {
    std::vector<uint64_t> peaks;
    for (const GroupLive& group : groups_) peaks.push_back(group.peak_bytes);
    return peaks;
  }

  // Call before changing a stack's live bytes.
  void touch(StackState& state) const {
    if (state.peak_number == peak_number_) return;
    state.stats.live_at_peak_bytes = state.stats.live_bytes;
    state.stats.live_at_peak_blocks = state.stats.live_blocks;
    state.peak_number = peak_number_;
  }
  // Call after changing the total.
  void total_changed(uint64_t total_live_bytes, uint64_t& peak_live_bytes) {
    if (total_live_bytes <= peak_live_bytes) return;
    peak_live_bytes = total_live_bytes;
    ++peak_number_;
  }

  // One point of every stack's series; when the points are full every other one is dropped.
  void snapshot() {
    size_t points = ++points_;
    auto record = [points](StackState& state) {
      if (state.series.empty() && state.stats.live_bytes == 0) return;
      state.series.resize(points - 1, 0.0f);
      state.series.push_back(static_cast<float>(state.stats.live_bytes));
    };
    for (StackState& state : dense_) record(state);
    for (auto& [id, state] : sparse_) record(state);
  }
  size_t points() const { return points_; }
  void halve_points() {
    auto halve = [](StackState& state) {
      size_t kept = 0;
      for (size_t i = 0; i < state.series.size(); i += 2) state.series[kept++] = state.series[i];
      state.series.resize(kept);
    };
    for (StackState& state : dense_) halve(state);
    for (auto& [id, state] : sparse_) halve(state);
    points_ = (points_ + 1) / 2;
  }

  // Hands every stack that ever allocated to `stats` and `series`.
  void finish(std::unordered_map<uint32_t, AllocationStats>& stats, LiveSeries& series) {
    auto hand = [&](uint32_t id, StackState& state) {
      if (state.stats.allocations == 0) return;
      touch(state);
      if (!state.series.empty()) {
        state.series.resize(points_, 0.0f);
        series.by_stack[id] = std::move(state.series);
      }
      stats[id] = state.stats;
    };
    for (size_t id = 0; id < dense_.size(); ++id) hand(static_cast<uint32_t>(id), dense_[id]);
    for (auto& [id, state] : sparse_) hand(id, state);
    dense_.clear();
    sparse_.clear();
  }

 private:
  struct GroupLive {
    uint64_t bytes = 0;
    uint64_t peak_bytes = 0;
  };
  std::vector<GroupLive> groups_;  // by StackGrouping group
  std::deque<StackState> dense_;   // a deque: growing it keeps references to its states valid
  std::unordered_map<uint32_t, StackState> sparse_;
  size_t dense_limit_hint_ = 0;
  uint64_t peak_number_ = 0;
  size_t points_ = 0;
};

struct Region {
  uint64_t length;
  uint32_t flags;  // wire::MapFlag bits, and kPiece
  uint32_t stack;
};
// A region split off another by mprotect or a partial munmap: unmapping it whole does not end
// a mapping of its own.
constexpr uint32_t kPiece = 1u << 31;

// An unnamed temporary file (gone when closed, never visible to another user) for the batches
// the exact pass cannot keep in memory.
class SpillFile {
 public:
  SpillFile() = default;

  // Where `bytes` were written, or nullopt when they could not be (no temporary directory, disk
  // full): the caller keeps them in memory instead.
  std::optional<uint64_t> append(std::span<const uint8_t> bytes) {
    if (!fd_.valid() && !open()) return std::nullopt;
    uint64_t offset = size_;
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t wrote = ::pwrite(fd_.get(), bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
      if (wrote < 0 && errno == EINTR) continue;
      if (wrote <= 0) return std::nullopt;
      done += static_cast<size_t>(wrote);
    }
    size_ += bytes.size();
    return offset;
  }
  void read(uint64_t offset, size_t bytes, std::vector<uint8_t>& into) const {
    into.resize(bytes);
    size_t done = 0;
    while (done < bytes) {
      ssize_t got = ::pread(fd_.get(), into.data() + done, bytes - done, static_cast<off_t>(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) throw TraceFormatError("the temporary file of the exact heap replay could not be read back");
      done += static_cast<size_t>(got);
    }
  }

 private:
  bool open() {
    const char* tmpdir = std::getenv("TMPDIR");
    for (const char* directory : {tmpdir, "/tmp"}) {
      if (directory == nullptr || *directory == 0) continue;
      fd_.reset(::open(directory, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
      if (fd_.valid()) return true;
    }
    return false;
  }
  proc::UniqueFd fd_;
  uint64_t size_ = 0;
};

// One thread's batches in the exact pass, as they arrived, waiting to be decoded.
struct RawBatch {
  std::vector<uint8_t> bytes;  // empty when spilled
  uint64_t spill_offset = 0;
  uint32_t spill_bytes = 0;
  bool spilled = false;
  bool start = false;  // a kThreadStart batch
  size_t arrival = 0;  // its number among the stream's batches (first pass: for its lowest seq)
};

struct RawQueue {
  RawQueue(uint32_t stream, int32_t tid) : decoder(stream, tid) {}
  ThreadBatchDecoder decoder;
  std::deque<RawBatch> batches;
  bool begun = false;              // the decoder is inside batches.front()
  bool first_pending = false;      // and has not yet decoded its first event
  std::vector<uint8_t> read_back;  // the front batch, when it was spilled
};

class ProfileBuilder final : public StreamSink {
 public:
  // The first pass: merges within the window, and notes whether that was the exact order.
  ProfileBuilder(ProcessHeapProfile& profile, uint64_t window_bytes, std::shared_ptr<StackGrouping> grouping)
      : profile_(profile), window_bytes_(window_bytes), grouping_(std::move(grouping)) {}
  // The exact pass over a stream the first pass found out of window: `first` is that pass's
  // builder of the same stream, whose batch seqs and markers it takes.
  ProfileBuilder(ProcessHeapProfile& profile, ProfileBuilder& first, uint64_t raw_memory_bytes,
                 std::shared_ptr<StackGrouping> grouping)
      : profile_(profile),
        exact_(true),
        raw_memory_bytes_(raw_memory_bytes),
        grouping_(std::move(grouping)),
        markers_(std::move(first.markers_)) {
    // After batch i, nothing below the lowest seq of the batches after it can still arrive.
    safe_below_.assign(first.batch_min_seq_.size() + 1, kNoSeq);
    for (size_t i = first.batch_min_seq_.size(); i-- > 0;) {
      safe_below_[i] = std::min(safe_below_[i + 1], first.batch_min_seq_[i]);
    }
    first.batch_min_seq_ = {};
  }

  // Some event arrived after the window had applied a later one: only the exact pass gives this
  // stream's figures.
  bool out_of_window() const { return out_of_window_; }

  void hello(const wire::StreamHello& hello) override {
    profile_.pid = hello.pid;
    profile_.ppid = hello.ppid;
    profile_.after_fork = (hello.flags & wire::kHelloAfterFork) != 0;
    profile_.start_monotonic_ns = hello.start_monotonic_ns;
    profile_.sample_bytes = hello.sample_bytes;
    profile_.max_depth = hello.max_depth;
  }
  // Never called: the builder takes thread batches raw (raw_thread_batch).
  void event(const TraceEvent&) override {}
  void batch_end() override {
    if (!exact_) {
      if (!arrival_noted_) batch_min_seq_.push_back(kNoSeq);
      batch_min_seq_.back() = std::min(batch_min_seq_.back(), batch_min_seq_now_);
      batch_min_seq_now_ = kNoSeq;
      arrival_noted_ = false;
      return;
    }
    ++batches_seen_;
    drain(std::numeric_limits<size_t>::max(), batches_seen_ < safe_below_.size() ? safe_below_[batches_seen_] : kNoSeq);
  }
  bool wants_raw_thread_batches() const override { return true; }
  void raw_thread_batch(int32_t tid, bool start, std::span<const uint8_t> payload) override;
  void stack(uint32_t id, uint64_t seq, std::span<const uint64_t> frames) override {
    profile_.stacks[id].assign(frames.begin(), frames.end());
    profile_.stack_seqs.emplace(id, seq);
    heap_.note_defined(static_cast<uint32_t>(profile_.stacks.size()));
    if (grouping_) profile_.stack_groups[id] = grouping_->group_of(seq, frames);
  }
  void module(const TraceModule& module) override {
    profile_.modules.push_back(module);
    if (grouping_) grouping_->module_loaded(module);
  }
  // The latest module loaded with that bias and still mapped is the one unloaded.
  void unmodule(uint64_t seq, uint64_t load_bias) override {
    for (auto module = profile_.modules.rbegin(); module != profile_.modules.rend(); ++module) {
      if (module->load_bias != load_bias || module->unload_seq != TraceModule::kNeverUnloaded) continue;
      module->unload_seq = std::max(seq, module->seq);
      if (grouping_) grouping_->module_unloaded(*module);
      return;
    }
  }
  void marker(const TraceMarker& marker) override {
    if (exact_) {
      // The first pass read every marker: the clock is calibrated on all of them from the start.
      if (markers_applied_ < markers_.size())
        enqueue(0, {marker.seq, markers_applied_++, 0, 0, TraceEvent::Kind::kAlloc, 0});
      ++buffered_;
      return;
    }
    batch_min_seq_now_ = std::min(batch_min_seq_now_, marker.seq);
    markers_.push_back(marker);
    if (out_of_window_) return;
    if (marker.seq < applied_seq_) {
      leave_window();
      return;
    }
    enqueue(0, {marker.seq, markers_.size() - 1, 0, 0, TraceEvent::Kind::kAlloc, 0});
    point_due_seq_ = 0;  // the clock's calibration changed: recompute at the next event
    ++buffered_;
  }
  void end(const TraceEnd& end) override { profile_.end = end; }
  void note(wire::NoteCode code) override {
    if (code == wire::NoteCode::kStackTableFull) profile_.stack_table_full = true;
  }
  void closed(bool clean) override {
    profile_.closed_cleanly = clean;
    if (!out_of_window_) drain(std::numeric_limits<size_t>::max(), kNoSeq);
    if (late_found_ && !out_of_window_) leave_window();
    if (out_of_window_) return;  // the exact pass makes this stream's profile
    for (auto& raw : raw_) {
      if (raw) raw->decoder.finish(*this);  // stack definitions no event followed
    }
    finish();
  }

 private:
  // The stack's group, looked up once per stack and kind of memory.
  uint32_t group_of(StackState& state, uint32_t stack) const {
    if (state.group == kGroupUnknown) {
      auto group = profile_.stack_groups.find(stack);
      state.group = group == profile_.stack_groups.end() ? StackGrouping::kNoGroup : group->second;
    }
    return state.group;
  }
  uint32_t queue_of(int32_t tid) {
    auto [slot, fresh] = thread_queue_.try_emplace(tid, static_cast<uint32_t>(queues_.size()));
    if (fresh) {
      queues_.emplace_back();
      last_allocation_.push_back(0);
      raw_.push_back(std::make_unique<RawQueue>(profile_.stream, tid));
    }
    return slot->second;
  }
  // Stops aggregating: the figures so far are not in seq order. The batches' seqs are still
  // noted for the exact pass.
  void leave_window() {
    out_of_window_ = true;
    for (uint32_t queue = 1; queue < raw_.size(); ++queue) skim(queue);
    for (auto& events : queues_) events.clear();
    heads_ = {};
    live_.clear();
    pending_frees_.clear();
    regions_.clear();
  }
  // Out of window: decodes the thread's kept batches only for their lowest seqs.
  void skim(uint32_t queue);
  bool refill(uint32_t queue);
  bool next_event(RawQueue& raw, TraceEvent& event);
  void keep_window();
  void enqueue(uint32_t queue, const QueuedEvent& event) {
    if (queues_[queue].empty()) heads_.push({event.seq, queue});
    queues_[queue].push_back(event);
  }
  void drain(size_t count, uint64_t below);
  void apply(const QueuedEvent& event, uint32_t queue);
  void apply_marker(const TraceMarker& marker);
  void allocate(const QueuedEvent& event, uint32_t queue);
  void release(const QueuedEvent& event, uint32_t queue);
  void map(const QueuedEvent& event);
  void unmap(uint64_t address, uint64_t length);
  void protect(uint64_t address, uint64_t length, uint32_t no_access);
  // The accessible or reserved bytes of a region piece changed by `delta`.
  void account(const Region& region, int64_t delta);
  void snapshot_series();
  std::optional<uint64_t> ns_of(uint64_t seq) const;
  uint64_t seq_before_ns(uint64_t ns) const;
  void advance_clock(uint64_t seq);
  void advance_to_ns(uint64_t ns);
  void add_timeline_point(uint64_t ns);
  void finish();
  // Sampling mode: an allocation of `size` bytes was sampled with probability
  // 1 - exp(-size / mean); it stands for the inverse of that many allocations.
  double weight(uint64_t size) const {
    if (profile_.sample_bytes == 0) return 1.0;
    double p = -std::expm1(-static_cast<double>(size) / static_cast<double>(profile_.sample_bytes));
    return p > 0 ? 1.0 / p : 1.0;
  }

  ProcessHeapProfile& profile_;
  const uint64_t window_bytes_ = 0;  // first pass: see HeapTraceOptions
  const bool exact_ = false;
  const uint64_t raw_memory_bytes_ = 0;            // exact pass: kept in memory, the rest spilled
  const std::shared_ptr<StackGrouping> grouping_;  // null: no groups
  bool out_of_window_ = false;
  bool late_found_ = false;     // first pass: decoding met an event older than one applied
  bool arrival_noted_ = false;  // first pass: raw_thread_batch numbered the batch now ending
  uint64_t applied_seq_ = 0;    // of the last event applied
  // First pass: the lowest seq of each batch in arrival order (kNoSeq: it had none).
  std::vector<uint64_t> batch_min_seq_;
  uint64_t batch_min_seq_now_ = kNoSeq;
  // Exact pass: safe_below_[i] is the lowest seq still to come once i batches have arrived.
  std::vector<uint64_t> safe_below_;
  size_t batches_seen_ = 0;
  size_t markers_applied_ = 0;
  std::vector<std::unique_ptr<RawQueue>> raw_ = std::vector<std::unique_ptr<RawQueue>>(1);  // per queue; [0] unused
  uint64_t raw_bytes_in_memory_ = 0;
  SpillFile spill_;
  std::vector<std::deque<QueuedEvent>> queues_ = std::vector<std::deque<QueuedEvent>>(1);  // [0]: markers
  std::vector<uint64_t> last_allocation_ = std::vector<uint64_t>(1);  // per queue: its thread's last block
  std::unordered_map<int32_t, uint32_t> thread_queue_;
  std::priority_queue<Head, std::vector<Head>, std::greater<>> heads_;  // one per non-empty queue
  size_t buffered_ = 0;
  std::vector<TraceMarker> markers_;
  LiveBlockTable live_;
  std::unordered_map<uint64_t, uint64_t> pending_frees_;  // address -> seq of a free seen before its allocation
  std::map<uint64_t, Region> regions_;
  StackLedger heap_;
  StackLedger mapped_;
  uint64_t live_bytes_ = 0;
  uint64_t mapped_live_ = 0;    // accessible
  uint64_t reserved_live_ = 0;  // PROT_NONE
  uint64_t next_point_ns_ = 0;  // the timeline's next instant; 0 before the clock is known
  // Events before this seq cannot reach next_point_ns_ under the current calibration: one compare
  // an event instead of converting every seq to nanoseconds. 0: check every event.
  uint64_t point_due_seq_ = 0;
  uint64_t rss_bytes_ = 0;  // of the last marker applied
  uint64_t tracer_bytes_ = 0;
  uint64_t points_seen_ = 0;
  uint64_t series_stride_ = 1;  // timeline points between two series points
};

// Applies queued events in seq order: at most `count`, and only those below `below`.
void ProfileBuilder::drain(size_t count, uint64_t below) {
  while (count > 0 && !heads_.empty() && heads_.top().seq < below) {
    uint32_t queue = heads_.top().queue;
    heads_.pop();
    std::deque<QueuedEvent>& events = queues_[queue];
    // A thread's events come in runs: apply the queue's events while they stay ahead of
    // every other queue's head, one heap operation a run instead of one an event.
    do {
      if (events.size() > kPrefetchDistance) live_.prefetch(events[kPrefetchDistance].address);
      QueuedEvent next = events.front();
      events.pop_front();
      --buffered_;
      --count;
      applied_seq_ = next.seq;
      if (next.seq >= point_due_seq_) advance_clock(next.seq);
      if (queue == 0) {
        apply_marker(markers_[next.address]);
      } else {
        apply(next, queue);
        if (events.empty()) {
          refill(queue);
          if (late_found_) return;
        }
      }
    } while (count > 0 && !events.empty() && events.front().seq < below &&
             (heads_.empty() || !(Head{events.front().seq, queue} > heads_.top())));
    if (!events.empty()) heads_.push({events.front().seq, queue});
  }
}

void ProfileBuilder::raw_thread_batch(int32_t tid, bool start, std::span<const uint8_t> payload) {
  uint32_t queue = queue_of(tid);
  RawQueue& raw = *raw_[queue];
  RawBatch batch;
  batch.start = start;
  if (!exact_) {
    // Numbered now (batch_end() comes after): its first event may be decoded at once.
    batch.arrival = batch_min_seq_.size();
    batch_min_seq_.push_back(kNoSeq);
    arrival_noted_ = true;
  }
  if (exact_ && raw_bytes_in_memory_ + payload.size() > raw_memory_bytes_) {
    if (std::optional<uint64_t> offset = spill_.append(payload)) {
      batch.spilled = true;
      batch.spill_offset = *offset;
      batch.spill_bytes = static_cast<uint32_t>(payload.size());
    }
  }
  if (!batch.spilled) {
    batch.bytes.assign(payload.begin(), payload.end());
    raw_bytes_in_memory_ += payload.size();
  }
  raw.batches.push_back(std::move(batch));
  if (out_of_window_) {
    skim(queue);
    return;
  }
  if (queues_[queue].empty() && refill(queue)) heads_.push({queues_[queue].front().seq, queue});
  if (!exact_) keep_window();
}

// First pass: applies events in seq order until the kept batches are back under half the window.
void ProfileBuilder::keep_window() {
  if (!late_found_ && raw_bytes_in_memory_ > window_bytes_) {
    while (!late_found_ && raw_bytes_in_memory_ > window_bytes_ / 2 && !heads_.empty()) drain(kDrainStep, kNoSeq);
  }
  if (late_found_ && !out_of_window_) leave_window();
}

// The next event of a thread's kept batches, across batches; false when none is kept. The first
// pass notes each batch's first (lowest) seq as it is decoded.
bool ProfileBuilder::next_event(RawQueue& raw, TraceEvent& event) {
  while (!raw.batches.empty()) {
    RawBatch& batch = raw.batches.front();
    if (!raw.begun) {
      std::span<const uint8_t> bytes = batch.bytes;
      if (batch.spilled) {
        spill_.read(batch.spill_offset, batch.spill_bytes, raw.read_back);
        bytes = raw.read_back;
      }
      raw.decoder.begin(bytes, batch.start, *this);
      raw.begun = true;
      raw.first_pending = !exact_;
    }
    if (raw.decoder.next(event, *this)) {
      if (raw.first_pending) {
        raw.first_pending = false;
        batch_min_seq_[batch.arrival] = std::min(batch_min_seq_[batch.arrival], event.seq);
      }
      return true;
    }
    raw_bytes_in_memory_ -= batch.bytes.size();
    raw.batches.pop_front();
    raw.begun = false;
  }
  return false;
}

// Decodes the next few events of a thread's kept batches into its queue (empty, and not in the
// merge's heads); false when there are none yet. In the first pass an event older than one
// already applied ends the window (late_found_).
bool ProfileBuilder::refill(uint32_t queue) {
  RawQueue& raw = *raw_[queue];
  std::deque<QueuedEvent>& events = queues_[queue];
  TraceEvent event;
  while (events.size() < kRefillEvents && next_event(raw, event)) {
    if (!exact_ && event.seq < applied_seq_) {
      late_found_ = true;
      break;
    }
    events.push_back(
        {event.seq, event.address, event.size, event.stack, event.kind, static_cast<uint8_t>(event.map_flags)});
    ++buffered_;
  }
  return !events.empty();
}

void ProfileBuilder::skim(uint32_t queue) {
  TraceEvent event;
  while (next_event(*raw_[queue], event)) {
  }
}

void ProfileBuilder::apply(const QueuedEvent& event, uint32_t queue) {
  switch (event.kind) {
    case TraceEvent::Kind::kAlloc:
      allocate(event, queue);
      break;
    case TraceEvent::Kind::kFree:
      release(event, queue);
      break;
    case TraceEvent::Kind::kMmap:
      map(event);
      break;
    case TraceEvent::Kind::kMunmap:
      unmap(event.address, event.size);
      break;
    case TraceEvent::Kind::kProtect:
      protect(event.address, event.size, event.map_flags);
      break;
  }
}

void ProfileBuilder::apply_marker(const TraceMarker& marker) {
  rss_bytes_ = marker.rss_bytes;
  tracer_bytes_ = marker.tracer_bytes;
  profile_.peak_rss_bytes = std::max(profile_.peak_rss_bytes, marker.rss_bytes);
  profile_.peak_tracer_bytes = std::max(profile_.peak_tracer_bytes, marker.tracer_bytes);
}

// Events carry the TSC-based seq, markers both seq and CLOCK_MONOTONIC: the first and the
// latest marker received give the clock of every event between and after them.
std::optional<uint64_t> ProfileBuilder::ns_of(uint64_t seq) const {
  if (markers_.size() < 2) return std::nullopt;
  const TraceMarker& first = markers_.front();
  const TraceMarker& last = markers_.back();
  if (last.seq <= first.seq || last.monotonic_ns <= first.monotonic_ns || seq < first.seq) return std::nullopt;
  double ns_per_tick =
      static_cast<double>(last.monotonic_ns - first.monotonic_ns) / static_cast<double>(last.seq - first.seq);
  double ns = static_cast<double>(first.monotonic_ns) + static_cast<double>(seq - first.seq) * ns_per_tick;
  if (!(ns < 1.8e19)) return std::nullopt;
  return static_cast<uint64_t>(ns);
}

// A seq at or before the first one whose time is `ns` (ns_of's inverse, rounded down with a tick
// to spare); 0 when the clock is not known.
uint64_t ProfileBuilder::seq_before_ns(uint64_t ns) const {
  if (markers_.size() < 2) return 0;
  const TraceMarker& first = markers_.front();
  const TraceMarker& last = markers_.back();
  if (last.seq <= first.seq || last.monotonic_ns <= first.monotonic_ns || ns <= first.monotonic_ns) return 0;
  double ticks_per_ns =
      static_cast<double>(last.seq - first.seq) / static_cast<double>(last.monotonic_ns - first.monotonic_ns);
  double seq = static_cast<double>(first.seq) + static_cast<double>(ns - first.monotonic_ns) * ticks_per_ns - 1;
  if (!(seq > 0 && seq < 1.8e19)) return 0;
  return static_cast<uint64_t>(seq);
}

// Adds the points due by the event at `seq`, then says which seq the next point waits for.
void ProfileBuilder::advance_clock(uint64_t seq) {
  std::optional<uint64_t> ns = ns_of(seq);
  if (!ns) return;
  advance_to_ns(*ns);
  point_due_seq_ = seq_before_ns(next_point_ns_);
}

// Adds the timeline points due up to `ns` (the time of the event about to be applied).
void ProfileBuilder::advance_to_ns(uint64_t ns) {
  if (next_point_ns_ == 0) next_point_ns_ = markers_.front().monotonic_ns;
  if (ns < next_point_ns_) return;
  if ((ns - next_point_ns_) / kTimelineStepNs > kMaxTimelineGap) next_point_ns_ = ns;
  for (; next_point_ns_ <= ns; next_point_ns_ += kTimelineStepNs) add_timeline_point(next_point_ns_);
}

void ProfileBuilder::add_timeline_point(uint64_t ns) {
  profile_.timeline.push_back({ns, rss_bytes_, live_bytes_, mapped_live_, tracer_bytes_});
  if (points_seen_++ % series_stride_ == 0) {
    profile_.heap_series.monotonic_ns.push_back(ns);
    snapshot_series();
  }
}

void ProfileBuilder::snapshot_series() {
  heap_.snapshot();
  mapped_.snapshot();
  std::vector<uint64_t>& instants = profile_.heap_series.monotonic_ns;
  if (instants.size() < kSeriesPoints) return;
  // Full: keep every other point, and take one every twice as many markers from now on.
  size_t kept = 0;
  for (size_t i = 0; i < instants.size(); i += 2) instants[kept++] = instants[i];
  instants.resize(kept);
  heap_.halve_points();
  mapped_.halve_points();
  series_stride_ *= 2;
}

void ProfileBuilder::allocate(const QueuedEvent& event, uint32_t queue) {
  double scale = weight(event.size);
  auto blocks = static_cast<uint64_t>(std::llround(scale));
  auto bytes = static_cast<uint64_t>(std::llround(scale * static_cast<double>(event.size)));
  StackState& state = heap_.at(event.stack);
  AllocationStats& site = state.stats;
  for (AllocationStats* stats : {&profile_.heap, &site}) {
    stats->allocations += blocks;
    stats->allocated_bytes += bytes;
  }
  last_allocation_[queue] = event.address;
  if (auto pending = pending_frees_.find(event.address);
      pending != pending_frees_.end() && pending->second >= event.seq) {
    // Its free was seen first (beyond the reorder window): the block is already gone.
    pending_frees_.erase(pending);
    profile_.heap.frees += blocks;
    site.frees += blocks;
    return;
  }
  if (std::optional<LiveBlock> old = live_.take(event.address)) {
    // A free the tracer never saw (e.g. from before a fork's new stream); the old block is gone.
    StackState& old_state = heap_.at(old->stack);
    heap_.touch(old_state);
    live_bytes_ -= old->bytes;
    heap_.shrank(group_of(old_state, old->stack), old->bytes);
    old_state.stats.live_bytes -= old->bytes;
    old_state.stats.live_blocks -= old->blocks;
  }
  live_.insert({event.address, bytes, blocks, event.stack});
  heap_.touch(state);
  live_bytes_ += bytes;
  site.live_bytes += bytes;
  site.live_blocks += blocks;
  site.peak_live_bytes = std::max(site.peak_live_bytes, site.live_bytes);
  heap_.grew(group_of(state, event.stack), bytes);
  heap_.total_changed(live_bytes_, profile_.heap.peak_live_bytes);
}

void ProfileBuilder::release(const QueuedEvent& event, uint32_t queue) {
  std::optional<LiveBlock> found = live_.take(event.address);
  if (!found) {
    pending_frees_[event.address] = event.seq;
    return;
  }
  const LiveBlock& block = *found;
  StackState& state = heap_.at(block.stack);
  heap_.touch(state);
  live_bytes_ -= block.bytes;
  heap_.shrank(group_of(state, block.stack), block.bytes);
  AllocationStats& site = state.stats;
  site.live_bytes -= block.bytes;
  site.live_blocks -= block.blocks;
  site.frees += block.blocks;
  profile_.heap.frees += block.blocks;
  // Temporary: freed directly after it was allocated, nothing else done by the thread between.
  if (last_allocation_[queue] == event.address) {
    site.temporary_allocations += block.blocks;
    profile_.heap.temporary_allocations += block.blocks;
  }
  last_allocation_[queue] = 0;
}

void ProfileBuilder::map(const QueuedEvent& event) {
  uint32_t flags = event.map_flags;
  if (flags == 0) {
    // mremap: the region keeps the kind it had (its old range was unmapped just before).
    flags = wire::kMapAnonymous;
  }
  unmap(event.address, event.size);  // MAP_FIXED over an old region replaces it
  Region region{event.size, flags, event.stack};
  regions_[event.address] = region;
  StackState& state = mapped_.at(event.stack);
  mapped_.touch(state);
  state.stats.allocations += 1;
  state.stats.allocated_bytes += event.size;
  state.stats.live_blocks += 1;
  profile_.mapped.maps += 1;
  profile_.mapped.mapped_bytes += event.size;
  account(region, static_cast<int64_t>(event.size));
}

void ProfileBuilder::account(const Region& region, int64_t delta) {
  StackState& state = mapped_.at(region.stack);
  mapped_.touch(state);
  AllocationStats& site = state.stats;
  if (region.flags & wire::kMapNoAccess) {
    reserved_live_ += static_cast<uint64_t>(delta);
    site.reserved_bytes += static_cast<uint64_t>(delta);
    profile_.mapped.peak_reserved_bytes = std::max(profile_.mapped.peak_reserved_bytes, reserved_live_);
    return;
  }
  mapped_live_ += static_cast<uint64_t>(delta);
  site.live_bytes += static_cast<uint64_t>(delta);
  site.peak_live_bytes = std::max(site.peak_live_bytes, site.live_bytes);
  if (delta > 0) {
    mapped_.grew(group_of(state, region.stack), static_cast<uint64_t>(delta));
  } else {
    mapped_.shrank(group_of(state, region.stack), static_cast<uint64_t>(-delta));
  }
  if (delta > 0) mapped_.total_changed(mapped_live_, profile_.mapped.peak_live_bytes);
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
    account(region, -static_cast<int64_t>(cut_end - cut_start));
    if (start < cut_start) regions_[start] = {cut_start - start, region.flags, region.stack};
    if (cut_end < region_end) {
      it = regions_.insert({cut_end, {region_end - cut_end, region.flags | kPiece, region.stack}}).first;
    }
    if (start >= cut_start && region_end <= cut_end && !(region.flags & kPiece)) {
      StackState& state = mapped_.at(region.stack);
      state.stats.live_blocks -= 1;
      state.stats.frees += 1;
    }
  }
  if (any) profile_.mapped.unmaps += 1;
}

// mprotect over [address, address + length): the parts of the regions it covers become
// accessible or reserved. A region is split where the range cuts it; the pieces keep the map's
// stack, so a reservation and what was made accessible in it stay one site, and count as one
// mapping (kPiece marks the pieces after the first).
void ProfileBuilder::protect(uint64_t address, uint64_t length, uint32_t no_access) {
  uint64_t end = address + length;
  auto it = regions_.upper_bound(address);
  if (it != regions_.begin()) --it;
  while (it != regions_.end() && it->first < end) {
    uint64_t start = it->first;
    Region region = it->second;
    uint64_t region_end = start + region.length;
    if (region_end <= address || (region.flags & wire::kMapNoAccess) == no_access) {
      ++it;
      continue;
    }
    it = regions_.erase(it);
    uint64_t cut_start = std::max(start, address), cut_end = std::min(region_end, end);
    Region changed{cut_end - cut_start, (region.flags & ~uint32_t{wire::kMapNoAccess}) | no_access, region.stack};
    if (start < cut_start) {
      regions_[start] = {cut_start - start, region.flags, region.stack};
      changed.flags |= kPiece;
    }
    account(region, -static_cast<int64_t>(changed.length));
    account(changed, static_cast<int64_t>(changed.length));
    it = regions_.insert({cut_start, changed}).first;
    ++it;
    if (cut_end < region_end) {
      it = regions_.insert({cut_end, {region_end - cut_end, region.flags | kPiece, region.stack}}).first;
      ++it;
    }
  }
}

void ProfileBuilder::finish() {
  // The timeline runs to the end of the stream; the series' last point is the very end.
  uint64_t last_ns = markers_.empty() ? profile_.start_monotonic_ns : markers_.back().monotonic_ns;
  if (profile_.end) last_ns = std::max(last_ns, profile_.end->monotonic_ns);
  if (next_point_ns_ != 0) advance_to_ns(last_ns);
  if (profile_.heap_series.monotonic_ns.empty() || profile_.heap_series.monotonic_ns.back() < last_ns) {
    profile_.heap_series.monotonic_ns.push_back(last_ns);
    heap_.snapshot();
    mapped_.snapshot();
  }
  profile_.mapped_series.monotonic_ns = profile_.heap_series.monotonic_ns;
  profile_.heap.live_bytes = live_bytes_;
  uint64_t blocks = 0;
  live_.for_each([&blocks](const LiveBlock& block) { blocks += block.blocks; });
  profile_.heap.live_blocks = blocks;
  profile_.unmatched_frees = pending_frees_.size();
  profile_.mapped.live_bytes = mapped_live_;
  profile_.mapped.reserved_bytes = reserved_live_;
  for (const auto& [start, region] : regions_) {
    if (region.flags & wire::kMapNoAccess) continue;
    if (region.flags & wire::kMapAnonymous) profile_.mapped.anon_live_bytes += region.length;
    if (region.flags & wire::kMapShared) profile_.mapped.shared_live_bytes += region.length;
  }
  profile_.heap_group_peak_bytes = heap_.group_peaks();
  profile_.mapped_group_peak_bytes = mapped_.group_peaks();
  profile_.grouping = grouping_;
  heap_.finish(profile_.heap_by_stack, profile_.heap_series);
  mapped_.finish(profile_.mapped_by_stack, profile_.mapped_series);
  for (const auto& [id, stats] : profile_.heap_by_stack) {
    profile_.heap.live_at_peak_bytes += stats.live_at_peak_bytes;
    profile_.heap.live_at_peak_blocks += stats.live_at_peak_blocks;
  }
  for (const auto& [id, stats] : profile_.mapped_by_stack)
    profile_.mapped.live_at_peak_bytes += stats.live_at_peak_bytes;
  live_.clear();
  pending_frees_.clear();
  regions_.clear();
}

}  // namespace

namespace {

// Takes nothing: the streams the exact pass does not replay.
class IgnoredStream final : public StreamSink {
 public:
  void hello(const wire::StreamHello&) override {}
  void event(const TraceEvent&) override {}
  void stack(uint32_t, uint64_t, std::span<const uint64_t>) override {}
  void module(const TraceModule&) override {}
  void unmodule(uint64_t, uint64_t) override {}
  void marker(const TraceMarker&) override {}
  void end(const TraceEnd&) override {}
  void note(wire::NoteCode) override {}
  void closed(bool) override {}
  bool wants_raw_thread_batches() const override { return true; }  // not even decoded
};

}  // namespace

HeapTrace build_heap_trace(const store::RecordingReader& recording,
                           const std::function<void(uint64_t, uint64_t)>& progress, const HeapTraceOptions& options) {
  HeapTrace trace;
  // Stable addresses for the builders: profiles are moved into trace.processes at the end.
  std::vector<std::unique_ptr<ProcessHeapProfile>> profiles;
  std::vector<std::unique_ptr<ProfileBuilder>> builders;
  const uint64_t total_bytes = progress ? recording.trace_chunk_bytes() : 0;
  trace.read = read_heap_trace(
      recording,
      [&](uint32_t stream) -> StreamSink& {
        profiles.push_back(std::make_unique<ProcessHeapProfile>());
        profiles.back()->stream = stream;
        builders.push_back(std::make_unique<ProfileBuilder>(*profiles.back(), options.window_bytes,
                                                            options.grouping ? options.grouping() : nullptr));
        return *builders.back();
      },
      [&progress, total_bytes](uint64_t done_bytes, uint64_t) {
        if (progress) progress(done_bytes, total_bytes);
      });

  // The exact pass, over the streams the window could not order. Streams are numbered by first
  // appearance, the same in both passes.
  std::vector<size_t> out_of_window;
  for (size_t i = 0; i < builders.size(); ++i) {
    if (builders[i]->out_of_window()) out_of_window.push_back(i);
  }
  if (!out_of_window.empty()) {
    std::vector<std::unique_ptr<ProfileBuilder>> exact(builders.size());
    for (size_t i : out_of_window) {
      auto profile = std::make_unique<ProcessHeapProfile>();
      profile->stream = profiles[i]->stream;
      profile->replayed_exactly = true;
      exact[i] = std::make_unique<ProfileBuilder>(*profile, *builders[i], options.exact_replay_memory_bytes,
                                                  options.grouping ? options.grouping() : nullptr);
      profiles[i] = std::move(profile);
    }
    builders.clear();
    IgnoredStream ignored;
    size_t next_stream = 0;
    read_heap_trace(
        recording,
        [&](uint32_t) -> StreamSink& {
          size_t index = next_stream++;
          if (index < exact.size() && exact[index]) return *exact[index];
          return ignored;
        },
        [&progress, total_bytes](uint64_t done_bytes, uint64_t) {
          if (progress) progress(done_bytes, total_bytes);
        });
  }
  for (auto& profile : profiles) trace.processes.push_back(std::move(*profile));
  return trace;
}

}  // namespace memdx::analyze
