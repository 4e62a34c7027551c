// An allocation-heavy C++ program for timing heap tracers (memdx trace, heaptrack) against a
// native run of the same binary. Deterministic: fixed seeds, its own PRNG, no clock, no hash
// of pointers, so every run performs the same allocations and prints the same checksum.
//
//   memdx_workload_alloc [SCALE=1] [--diverse]
//
// SCALE multiplies the number of operations (fractions allowed: 0.1 for a quick try). At 1,
// two threads run 1,000,000 operations each: 8.56 million allocation calls in all.
//
// One operation: pick a stack depth (1 to 40), recurse that deep through two alternating
// functions with differently sized frames, then do one of
//   - string building (append, operator+, numbers), kept in a ring of recent strings
//   - std::unordered_map<string, vector<int>> insert / erase / append
//   - std::map<string, string> (a red-black tree) insert / erase
//   - small vectors growing from empty (the reallocation pattern of std::vector)
//   - malloc / calloc / realloc growth of a C buffer
//   - std::aligned_alloc and operator new with std::align_val_t
//   - rarely, a large buffer (128 KiB to 4 MiB, glibc's mmap-threshold range), partly touched
//
// Counting: containers and strings use Counted<T>, an allocator that increments a thread-local
// counter and forwards to std::allocator (so to ::operator new, as usual); the C and aligned
// calls are counted where they are made, a realloc as one allocation and one free. The printed
// "allocations" is therefore exact for the workload's own calls; the process makes a handful
// more (libstdc++ start-up, std::thread, stdio: heaptrack counts 4 more). Everything is freed
// before exit, so a tracer should find no leak attributable to this code.
//
// Sizes and stacks: requested sizes are rounded to size classes, four per power of two, and
// the depth is one of ten values from 1 to 40, so the program has about 9,600 distinct
// (size, stack) pairs. heaptrack 1.4's heaptrack_interpret keys a hash set by those pairs with
// a weak hash (KDE bug 477018, robin-map issue 71): with every depth from 1 to 40 and sizes
// drawn freely, as --diverse does, its table doubles without end, to 19 GB and std::bad_alloc
// after 400 s on the reference VM, and there is no peer left to compare with. --diverse is
// there for tracers that should cope with it.
#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

constexpr std::uint64_t kOperationsPerThreadAtScale1 = 1'000'000;
// Stack depths of the recursion above each operation: ten values from 1 to 40 rather than all
// forty, unless --diverse (see "Sizes and stacks" at the top).
constexpr std::array<int, 10> kDepths = {1, 2, 3, 5, 8, 12, 17, 23, 31, 40};
constexpr std::size_t kTableLimit = 40'000;  // keys in the hash map, at most
constexpr std::uint64_t kTableKeySpace = 60'000;
constexpr std::size_t kTreeLimit = 20'000;  // keys in the tree, at most
constexpr std::uint64_t kTreeKeySpace = 30'000;
constexpr std::size_t kRecentStrings = 4096;  // strings kept alive, ring
constexpr std::size_t kCBuffers = 64;         // malloc'd buffers kept alive, ring
constexpr std::size_t kAlignedBlocks = 256;   // aligned blocks kept alive, ring
constexpr std::size_t kLargeBuffers = 3;      // large buffers kept alive, ring
constexpr std::size_t kPageBytes = 4096;

// Per thread, so counting costs an increment and no atomic.
struct Counts {
  std::uint64_t allocations = 0;
  std::uint64_t frees = 0;
};
thread_local Counts t_counts;

template <class T>
struct Counted {
  using value_type = T;
  Counted() noexcept = default;
  template <class U>
  Counted(const Counted<U>&) noexcept {}  // NOLINT(google-explicit-constructor): allocator rebinding
  T* allocate(std::size_t n) {
    ++t_counts.allocations;
    return std::allocator<T>{}.allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    ++t_counts.frees;
    std::allocator<T>{}.deallocate(p, n);
  }
  template <class U>
  bool operator==(const Counted<U>&) const noexcept {
    return true;
  }
};

using String = std::basic_string<char, std::char_traits<char>, Counted<char>>;
using IntVector = std::vector<int, Counted<int>>;

// FNV-1a: deterministic across libraries, unlike std::hash, and it needs no std::hash<String>.
std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) hash = (hash ^ c) * 0x100000001b3ULL;
  return hash;
}

struct StringHash {
  std::size_t operator()(const String& s) const noexcept { return fnv1a(std::string_view(s)); }
};

using Table = std::unordered_map<String, IntVector, StringHash, std::equal_to<String>,
                                 Counted<std::pair<const String, IntVector>>>;
using Tree = std::map<String, String, std::less<>, Counted<std::pair<const String, String>>>;

// splitmix64: tiny, fast, and the same sequence everywhere (std distributions are not).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform enough in [lo, hi] for a workload.
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) { return lo + next() % (hi - lo + 1); }
  std::size_t index(std::size_t size) { return static_cast<std::size_t>(next() % size); }

 private:
  std::uint64_t state_;
};

// Short and long words, so that some strings fit the small-string buffer and most do not.
// (clang-format would put one word on each line.)
// clang-format off
constexpr std::array<std::string_view, 16> kWords = {
    "id", "user", "session", "configuration", "a", "payload-buffer", "index", "tokenizer", "synchronised", "x",
    "resident", "allocation-site", "page-fault", "mapping", "eviction", "the-quick-brown-fox-jumps-over"};
// clang-format on

void append_number(String& out, std::uint64_t value) {
  std::array<char, 24> digits{};
  auto [end, error] = std::to_chars(digits.data(), digits.data() + digits.size(), value);
  (void)error;  // 24 digits always suffice for a 64-bit value
  out.append(digits.data(), end);
}

String number_string(std::uint64_t value) {
  String out;
  append_number(out, value);
  return out;
}

// Rounds up to one of four classes per power of two (16, 20, 24, 28, 32, 40, 48, ...), the
// classes of jemalloc and tcmalloc. See "Sizes" at the top for why sizes are classed at all.
std::size_t size_class(std::size_t bytes) {
  if (bytes <= 16) return 16;
  const std::size_t step = std::bit_floor(bytes) / 4;
  return (bytes + step - 1) / step * step;
}

struct CBuffer {
  char* data = nullptr;
  std::size_t bytes = 0;
};

struct AlignedBlock {
  void* data = nullptr;
  std::size_t alignment = 0;
  bool from_new = false;  // operator new(align_val_t) rather than std::aligned_alloc
};

struct LargeBuffer {
  char* data = nullptr;
  std::size_t bytes = 0;
  bool from_new = false;  // new char[] rather than malloc
};

// The state of one thread's share of the work. Move-free on purpose: it lives in one frame.
class Worker {
 public:
  Worker(std::uint64_t seed, bool diverse)
      : rng_(seed),
        diverse_(diverse),
        recent_(kRecentStrings),
        buffers_(kCBuffers),
        aligned_(kAlignedBlocks),
        large_(kLargeBuffers) {}
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() { release_raw_blocks(); }

  void run(std::uint64_t operations);
  std::uint64_t operation();  // one operation, called at the bottom of the recursion
  std::uint64_t checksum() const { return checksum_; }
  int pick_depth() {
    return diverse_ ? static_cast<int>(rng_.between(1, kDepths.back())) : kDepths[rng_.index(kDepths.size())];
  }
  void finish();

 private:
  [[gnu::noinline]] void build_string();
  [[gnu::noinline]] void update_table();
  [[gnu::noinline]] void update_tree();
  [[gnu::noinline]] void grow_vectors();
  [[gnu::noinline]] void grow_c_buffer();
  [[gnu::noinline]] void aligned_block();
  [[gnu::noinline]] void large_buffer();
  void release_raw_blocks();
  void mix(std::uint64_t value) { checksum_ = (checksum_ ^ value) * 0x100000001b3ULL + 0x9e37ULL; }
  std::string_view word() { return kWords[rng_.index(kWords.size())]; }
  std::size_t request_size(std::size_t lo, std::size_t hi);

  Rng rng_;
  bool diverse_;  // every depth from 1 to 40, sizes not rounded to classes
  std::uint64_t checksum_ = 0;
  Table table_;
  Tree tree_;
  std::vector<String, Counted<String>> recent_;
  std::size_t recent_next_ = 0;
  std::vector<CBuffer, Counted<CBuffer>> buffers_;
  std::size_t buffer_next_ = 0;
  std::vector<AlignedBlock, Counted<AlignedBlock>> aligned_;
  std::size_t aligned_next_ = 0;
  std::vector<LargeBuffer, Counted<LargeBuffer>> large_;
  std::size_t large_next_ = 0;
};

// A request size drawn from [lo, hi], rounded up to its size class unless diverse.
std::size_t Worker::request_size(std::size_t lo, std::size_t hi) {
  const auto bytes = static_cast<std::size_t>(rng_.between(lo, hi));
  return diverse_ ? bytes : size_class(bytes);
}

// Append, operator+ on temporaries, numbers: strings of 1 to 300 characters, most past the
// small-string buffer, each growing through a few capacities.
void Worker::build_string() {
  String text;
  const auto pieces = rng_.between(1, 12);
  for (std::uint64_t i = 0; i < pieces; ++i) {
    text += word();
    text += i % 3 == 2 ? '/' : '-';
    if (rng_.next() % 4 == 0) append_number(text, rng_.next() % 100'000);
  }
  if (rng_.next() % 3 == 0) text = String(word()) + ":" + number_string(rng_.next() % 1000) + ":" + text;
  mix(fnv1a(std::string_view(text)));
  recent_[recent_next_] = std::move(text);  // frees the string it replaces
  recent_next_ = (recent_next_ + 1) % recent_.size();
}

// Keys like "key/12345/session": a heap-allocated key for every lookup, a node and a vector
// for every insert, rehashing while the table grows.
void Worker::update_table() {
  String key("key/");
  append_number(key, rng_.next() % kTableKeySpace);
  key += '/';
  key += kWords[rng_.next() % 4];
  auto found = table_.find(key);
  if (found != table_.end()) {
    if (rng_.next() % 2 == 0 || table_.size() > kTableLimit) {
      mix(found->second.size());
      table_.erase(found);
    } else {
      found->second.push_back(static_cast<int>(rng_.next() % 1000));
    }
    return;
  }
  if (table_.size() >= kTableLimit) return;
  IntVector values;
  const auto count = rng_.between(1, 12);
  for (std::uint64_t i = 0; i < count; ++i) values.push_back(static_cast<int>(rng_.next() % 1000));
  table_.emplace(std::move(key), std::move(values));
}

// Zero-padded keys so that the tree's order is the numeric order; values of 16 to 90 bytes.
void Worker::update_tree() {
  String key("tree:");
  const String number = number_string(rng_.next() % kTreeKeySpace);
  key.append(8 - std::min<std::size_t>(8, number.size()), '0');
  key += number;
  auto found = tree_.find(key);
  if (found != tree_.end() && (rng_.next() % 2 == 0 || tree_.size() > kTreeLimit)) {
    mix(found->second.size());
    tree_.erase(found);
    return;
  }
  if (found != tree_.end() || tree_.size() >= kTreeLimit) return;
  String value(request_size(16, 90), 'v');
  value += word();
  tree_.emplace(std::move(key), std::move(value));
}

// std::vector's doubling: 1, 2, 4, ... elements, each step a new block and a free of the old.
void Worker::grow_vectors() {
  std::vector<std::uint32_t, Counted<std::uint32_t>> numbers;
  const auto count = rng_.between(1, 400);
  for (std::uint64_t i = 0; i < count; ++i) numbers.push_back(static_cast<std::uint32_t>(rng_.next()));
  std::uint64_t sum = 0;
  for (auto n : numbers) sum += n;
  mix(sum);

  std::vector<String, Counted<String>> words;
  const auto word_count = rng_.between(1, 20);
  for (std::uint64_t i = 0; i < word_count; ++i) words.emplace_back(word());
  mix(words.size() + words.back().size());
}

// malloc or calloc, then realloc by 1.5x to 2x until 64 to 4096 bytes: the C pattern of a
// growing buffer. Kept in a ring, so frees happen later and out of order.
void Worker::grow_c_buffer() {
  std::size_t bytes = request_size(8, 64);
  char* data = nullptr;
  if (rng_.next() % 4 == 0) {
    data = static_cast<char*>(std::calloc(bytes, 1));
  } else {
    data = static_cast<char*>(std::malloc(bytes));
    if (data != nullptr) std::memset(data, 'c', bytes);
  }
  ++t_counts.allocations;
  const auto target = rng_.between(64, 4096);
  if (data == nullptr) std::abort();
  while (bytes < target) {
    const std::size_t grown = request_size(bytes + bytes / 2, 2 * bytes);
    char* moved = static_cast<char*>(std::realloc(data, grown));
    if (moved == nullptr) std::abort();
    // Counted as heaptrack and memdx model it: a free of the old block and a new allocation.
    ++t_counts.allocations;
    ++t_counts.frees;
    std::memset(moved + bytes, 'r', grown - bytes);
    data = moved;
    bytes = grown;
  }
  mix(bytes + static_cast<unsigned char>(data[bytes / 2]));
  CBuffer& slot = buffers_[buffer_next_];
  if (slot.data != nullptr) {
    std::free(slot.data);
    ++t_counts.frees;
  }
  slot = CBuffer{data, bytes};
  buffer_next_ = (buffer_next_ + 1) % buffers_.size();
}

void free_aligned(const AlignedBlock& block) {
  if (block.data == nullptr) return;
  if (block.from_new) {
    ::operator delete (block.data, std::align_val_t{block.alignment});
  } else {
    std::free(block.data);
  }
  ++t_counts.frees;
}

// std::aligned_alloc (64 or 4096, size a multiple of it) or operator new(align_val_t) (64 or 256).
void Worker::aligned_block() {
  AlignedBlock block;
  block.from_new = rng_.next() % 2 == 0;
  if (block.from_new) {
    block.alignment = rng_.next() % 2 == 0 ? 64 : 256;
    block.data = ::operator new (request_size(1, 2048), std::align_val_t{block.alignment});
  } else {
    block.alignment = rng_.next() % 4 == 0 ? kPageBytes : 64;
    const auto multiples = rng_.between(1, block.alignment == kPageBytes ? 2 : 32);
    block.data = std::aligned_alloc(block.alignment, block.alignment * multiples);
    if (block.data == nullptr) std::abort();
  }
  ++t_counts.allocations;
  static_cast<char*>(block.data)[0] = 'a';
  mix(block.alignment);
  free_aligned(aligned_[aligned_next_]);
  aligned_[aligned_next_] = block;
  aligned_next_ = (aligned_next_ + 1) % aligned_.size();
}

void free_large(const LargeBuffer& buffer) {
  if (buffer.data == nullptr) return;
  if (buffer.from_new) {
    delete[] buffer.data;
  } else {
    std::free(buffer.data);
  }
  ++t_counts.frees;
}

// 128 KiB to 4 MiB, past glibc's initial mmap threshold (which glibc raises after freeing an
// mmapped block, so later ones may come from the heap). One page in eight is touched: page
// faults cost ~11 us on the reference VM and would otherwise dominate.
void Worker::large_buffer() {
  LargeBuffer buffer;
  buffer.bytes = request_size(128 << 10, 4 << 20);
  buffer.from_new = rng_.next() % 2 == 0;
  buffer.data = buffer.from_new ? new char[buffer.bytes] : static_cast<char*>(std::malloc(buffer.bytes));
  if (buffer.data == nullptr) std::abort();
  ++t_counts.allocations;
  for (std::size_t offset = 0; offset < buffer.bytes; offset += 8 * kPageBytes) buffer.data[offset] = 'L';
  mix(buffer.bytes);
  free_large(large_[large_next_]);
  large_[large_next_] = buffer;
  large_next_ = (large_next_ + 1) % large_.size();
}

// Percentages of the operation mix; large buffers are 1 in 8,192 operations.
std::uint64_t Worker::operation() {
  const auto pick = rng_.next();
  if (pick % 8192 == 0) {
    large_buffer();
    return 1;
  }
  const auto percent = (pick >> 16) % 100;
  if (percent < 30) {
    build_string();
  } else if (percent < 52) {
    update_table();
  } else if (percent < 72) {
    update_tree();
  } else if (percent < 88) {
    grow_vectors();
  } else if (percent < 95) {
    grow_c_buffer();
  } else {
    aligned_block();
  }
  return percent;
}

void Worker::release_raw_blocks() {
  for (auto& buffer : buffers_) {
    if (buffer.data != nullptr) ++t_counts.frees;
    std::free(buffer.data);
    buffer = CBuffer{};
  }
  for (auto& block : aligned_) {
    free_aligned(block);
    block = AlignedBlock{};
  }
  for (auto& buffer : large_) {
    free_large(buffer);
    buffer = LargeBuffer{};
  }
}

// Folds the final contents into the checksum (order-independent for the hash map, whose
// iteration order is the library's business) and frees everything.
void Worker::finish() {
  std::uint64_t table_sum = 0;
  for (const auto& [key, values] : table_) table_sum += fnv1a(std::string_view(key)) + values.size();
  mix(table_sum);
  for (const auto& [key, value] : tree_) mix(fnv1a(std::string_view(key)) + value.size());
  for (const auto& text : recent_) mix(text.size());
  mix(table_.size() * 1'000'003 + tree_.size());
  table_.clear();
  tree_.clear();
  release_raw_blocks();
}

// The recursion that varies the stack depth of every allocation. Two functions with different
// frame sizes alternate, and each uses the result after the call, so the compiler can neither
// turn the recursion into a loop nor make it a tail call.
[[gnu::noinline]] std::uint64_t descend_b(Worker& worker, int depth);

[[gnu::noinline]] std::uint64_t descend_a(Worker& worker, int depth) {
  if (depth <= 0) return worker.operation();
  const std::uint64_t below = descend_b(worker, depth - 1);
  return (below << 1) ^ (below >> 7) ^ static_cast<std::uint64_t>(depth);
}

[[gnu::noinline]] std::uint64_t descend_b(Worker& worker, int depth) {
  // A bigger frame than descend_a's. A C array: std::array's operator[] is not volatile.
  volatile std::uint32_t frame[8] = {};  // NOLINT(modernize-avoid-c-arrays)
  const auto slot = static_cast<std::size_t>(depth) % 8;
  frame[slot] = static_cast<std::uint32_t>(depth);
  if (depth <= 0) return worker.operation();
  const std::uint64_t below = descend_a(worker, depth - 1);
  return below * 31 + frame[slot];
}

void Worker::run(std::uint64_t operations) {
  for (std::uint64_t i = 0; i < operations; ++i) {
    const int depth = pick_depth();
    mix(depth % 2 == 0 ? descend_a(*this, depth) : descend_b(*this, depth));
  }
  finish();
}

struct ThreadResult {
  std::uint64_t checksum = 0;
  Counts counts;
};

ThreadResult run_thread(std::uint64_t seed, std::uint64_t operations, bool diverse) {
  ThreadResult result;
  {
    Worker worker(seed, diverse);
    worker.run(operations);
    result.checksum = worker.checksum();
  }  // the worker's own containers are freed here, and counted
  result.counts = t_counts;
  return result;
}

struct Options {
  double scale = 1.0;
  bool diverse = false;
};

bool parse_options(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--diverse") {
      options.diverse = true;
      continue;
    }
    char* end = nullptr;
    options.scale = std::strtod(argv[i], &end);
    if (end == argv[i] || *end != '\0' || !(options.scale > 0 && options.scale <= 1000)) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse_options(argc, argv, options)) {
    std::fprintf(stderr, "usage: %s [SCALE] [--diverse]   SCALE in (0, 1000], default 1\n", argv[0]);
    return 2;
  }
  const auto operations = static_cast<std::uint64_t>(static_cast<double>(kOperationsPerThreadAtScale1) * options.scale);

  ThreadResult second;
  std::thread helper([&] { second = run_thread(0x5eed'0002, operations, options.diverse); });
  const ThreadResult first = run_thread(0x5eed'0001, operations, options.diverse);
  helper.join();

  const std::uint64_t allocations = first.counts.allocations + second.counts.allocations;
  const std::uint64_t frees = first.counts.frees + second.counts.frees;
  std::printf("operations %llu (2 threads, scale %g%s)\n", static_cast<unsigned long long>(2 * operations),
              options.scale, options.diverse ? ", diverse" : "");
  std::printf("allocations %llu\n", static_cast<unsigned long long>(allocations));
  std::printf("frees %llu\n", static_cast<unsigned long long>(frees));
  std::printf("checksum %016llx\n",
              static_cast<unsigned long long>(first.checksum * 0x9e3779b97f4a7c15ULL ^ second.checksum));
  return allocations == frees ? 0 : 1;
}
