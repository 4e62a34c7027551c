// Replays the fuzz corpus (corpus/: seeds cut from real traces, and any input that once crashed the
// reader) and thousands of deterministic mutations of it through the heap-trace reader, in every
// build: ASan and UBSan catch memory errors, and the only failure allowed is a TraceFormatError
// of one line.
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "analyze/trace_decode.h"
#include "fuzz/trace_fuzz_input.h"
#include "trace/format/chunk.h"
#include "trace/format/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace memdx::fuzz {
namespace {
namespace fs = std::filesystem;
namespace wire = trace::wire;
using Bytes = std::vector<uint8_t>;

struct CorpusFile {
  std::string name;
  Bytes bytes;
};

// Every file of corpus/, by name. Seeds are named seed-*; inputs that once crashed, crash-*.
std::vector<CorpusFile> corpus() {
  std::vector<CorpusFile> files;
  for (const auto& entry : fs::directory_iterator(fs::path(MEMDX_TEST_DATA_DIR) / "corpus")) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    files.push_back({entry.path().filename().string(), Bytes(std::istreambuf_iterator<char>(in), {})});
  }
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return files;
}

std::vector<CorpusFile> seeds() {
  std::vector<CorpusFile> out;
  for (auto& file : corpus()) {
    if (file.name.starts_with("seed-")) out.push_back(std::move(file));
  }
  return out;
}

// Offsets of every occurrence of `needle` in `haystack`.
std::vector<size_t> find_all(const Bytes& haystack, const void* needle, size_t bytes) {
  std::vector<size_t> at;
  const auto* first = static_cast<const uint8_t*>(needle);
  for (auto it = haystack.begin(); (it = std::search(it, haystack.end(), first, first + bytes)) != haystack.end();
       ++it) {
    at.push_back(static_cast<size_t>(it - haystack.begin()));
  }
  return at;
}

// Offsets of the chunk's frame headers, as far as they are well formed.
std::vector<size_t> frame_offsets(const Bytes& chunk) {
  std::vector<size_t> at;
  for (size_t offset = 0; chunk.size() - offset >= sizeof(trace::ChunkFrameHeader);) {
    trace::ChunkFrameHeader header{};
    std::memcpy(&header, chunk.data() + offset, sizeof(header));
    at.push_back(offset);
    offset += sizeof(header) + header.bytes;
    if (offset > chunk.size()) break;
  }
  return at;
}

template <typename T>
Bytes with_field(Bytes input, size_t offset, T value) {
  if (offset + sizeof(value) <= input.size()) std::memcpy(input.data() + offset, &value, sizeof(value));
  return input;
}

// Deterministic mutations of one input: cuts, bit flips, inserted bytes, extreme varints, broken
// fields of the frame, batch and hello headers, and every record tag first in every batch. Thousands for a seed of a
// few KiB.
void mutate(const Bytes& input, const std::function<void(const Bytes&)>& visit) {
  for (size_t cut = 0; cut < input.size(); cut += 5)
    visit(Bytes(input.begin(), input.begin() + static_cast<std::ptrdiff_t>(cut)));
  for (size_t at = 0; at < input.size(); at += 3) {
    Bytes flipped = input;
    flipped[at] ^= static_cast<uint8_t>(1u << (at * 7 % 8));
    visit(flipped);
  }
  const uint8_t inserted[] = {0x00, 0x80, 0xff};
  for (size_t at = 0; at < input.size(); at += 11) {
    Bytes longer = input;
    longer.insert(longer.begin() + static_cast<std::ptrdiff_t>(at), inserted[at % 3]);
    visit(longer);
  }
  const std::vector<Bytes> varints = {
      Bytes{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},        // 2^64 - 1
      Bytes{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},  // 11 bytes: too long
      Bytes{0xff, 0xff, 0xff, 0xff, 0x0f},                                      // 2^32 - 1
      Bytes{0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f},        // bits past 64
  };
  for (size_t at = 0; at < input.size(); at += 17) {
    Bytes overwritten = input;
    const Bytes& varint = varints[at % varints.size()];
    for (size_t i = 0; i < varint.size() && at + i < overwritten.size(); ++i) overwritten[at + i] = varint[i];
    visit(overwritten);
  }
  for (size_t frame : frame_offsets(input)) {
    size_t bytes_field = frame + offsetof(trace::ChunkFrameHeader, bytes);
    uint32_t bytes = 0;
    std::memcpy(&bytes, input.data() + bytes_field, sizeof(bytes));
    for (uint32_t value : {0u, bytes - 1, bytes + 1, 0x7fffffffu, 0xffffffffu})
      visit(with_field(input, bytes_field, value));
    for (uint32_t stream : {0u, 1u, 2u, 0xffffffffu})
      visit(with_field(input, frame + offsetof(trace::ChunkFrameHeader, stream), stream));
  }
  for (size_t batch : find_all(input, &wire::kBatchMagic, sizeof(wire::kBatchMagic))) {
    for (uint32_t payload : {0u, 1u, wire::kMaxBatchPayloadBytes, wire::kMaxBatchPayloadBytes + 1, 0xffffffffu}) {
      visit(with_field(input, batch + offsetof(wire::BatchHeader, payload_bytes), payload));
    }
    for (uint32_t kind : {0u, 1u, 2u, 3u, 4u})
      visit(with_field(input, batch + offsetof(wire::BatchHeader, kind), kind));
    for (int32_t tid : {0, -1, 7}) visit(with_field(input, batch + offsetof(wire::BatchHeader, tid), tid));
    // Every record kind first in the batch: in a thread's first batch, a free of a block the
    // thread never allocated, a process record in a thread batch, and so on.
    for (int tag : {1, 2, 3, 4, 5, 6, 16, 17, 18, 19, 20, 0, 255}) {
      visit(with_field(input, batch + sizeof(wire::BatchHeader), static_cast<uint8_t>(tag)));
    }
  }
  for (size_t hello : find_all(input, wire::kStreamMagic, sizeof(wire::kStreamMagic))) {
    visit(with_field(input, hello + offsetof(wire::StreamHello, version), wire::kVersion + 1));
    visit(with_field(input, hello + offsetof(wire::StreamHello, hello_bytes), uint32_t{0}));
    visit(with_field(input, hello + offsetof(wire::StreamHello, max_depth), uint32_t{0xffffffff}));
    visit(with_field(input, hello + offsetof(wire::StreamHello, sample_bytes), uint64_t{1}));
    visit(with_field(input, hello + offsetof(wire::StreamHello, sample_bytes), ~uint64_t{0}));
  }
}

void expect_one_line_format_error(const std::optional<std::string>& error, const std::string& input_name) {
  if (!error) return;
  EXPECT_FALSE(error->empty()) << input_name;
  EXPECT_EQ(error->find('\n'), std::string::npos) << input_name << ": " << *error;
  EXPECT_TRUE(error->starts_with("heap trace ")) << input_name << ": " << *error;
}

class TraceReplay : public ::testing::Test {
 protected:
  void SetUp() override {
    recording_ = (fs::temp_directory_path() / ("memdx-trace-replay-" + std::to_string(::getpid()) + ".memdx")).string();
  }
  void TearDown() override { fs::remove(recording_); }

  std::string recording_;
};

TEST_F(TraceReplay, SeedsAreRealTracesThatDecodeCleanly) {
  std::vector<CorpusFile> files = seeds();
  ASSERT_GE(files.size(), 3u) << "corpus/ lost its seeds (tools/fuzz.sh --seeds makes them)";
  for (const CorpusFile& seed : files) {
    DecodeCounts counts;
    std::optional<std::string> error = decode_chunk(seed.bytes, &counts);
    EXPECT_FALSE(error) << seed.name << ": " << *error
                        << " (the wire format changed? remake the seeds with tools/fuzz.sh --seeds)";
    EXPECT_GE(counts.hellos, 1u) << seed.name;
    EXPECT_GE(counts.events, 10u) << seed.name;
    EXPECT_GE(counts.stacks, 1u) << seed.name;
    EXPECT_GE(counts.modules, 1u) << seed.name;
    EXPECT_GE(counts.clean_closes, 1u) << seed.name;
    EXPECT_FALSE(profile_chunk(seed.bytes, recording_)) << seed.name;
  }
}

TEST_F(TraceReplay, EveryCorpusFileGoesThroughTheFuzzEntryPointAndTheAggregation) {
  for (const CorpusFile& file : corpus()) {
    EXPECT_EQ(LLVMFuzzerTestOneInput(file.bytes.data(), file.bytes.size()), 0) << file.name;
    expect_one_line_format_error(profile_chunk(file.bytes, recording_), file.name);
  }
}

TEST_F(TraceReplay, MutatedSeedsFailOnlyWithOneLineFormatErrors) {
  size_t decoded = 0, refused = 0, inputs = 0;
  for (const CorpusFile& seed : seeds()) {
    mutate(seed.bytes, [&](const Bytes& input) {
      std::string name = seed.name + " mutation " + std::to_string(inputs);
      std::optional<std::string> error = decode_chunk(input);
      expect_one_line_format_error(error, name);
      ++(error ? refused : decoded);
      // The aggregation behind SQLite is slower: a sample of the inputs that decode and all of
      // the rest would take minutes under ASan.
      if (inputs % 37 == 0) expect_one_line_format_error(profile_chunk(input, recording_), name);
      ++inputs;
    });
  }
  // Not vacuous: both outcomes are reached, over thousands of inputs.
  EXPECT_GE(inputs, 3000u);
  EXPECT_GT(decoded, inputs / 20) << "decoded " << decoded << " of " << inputs;
  EXPECT_GT(refused, inputs / 20) << "refused " << refused << " of " << inputs;
}

TEST_F(TraceReplay, CompressedSeedsAndTheirMutationsFailOnlyWithOneLineFormatErrors) {
  size_t inputs = 0;
  for (const CorpusFile& seed : seeds()) {
    Bytes compressed = compress_chunk(seed.bytes);
    EXPECT_FALSE(decode_compressed_chunk(compressed)) << seed.name;
    mutate(compressed, [&](const Bytes& input) {
      expect_one_line_format_error(decode_compressed_chunk(input),
                                   seed.name + " compressed mutation " + std::to_string(inputs));
      ++inputs;
    });
  }
  EXPECT_GE(inputs, 300u);
}

// A zstd frame header that claims `content_bytes`, then one empty raw block.
Bytes zstd_frame_claiming(uint64_t content_bytes) {
  Bytes frame = {0x28, 0xb5, 0x2f, 0xfd,  // magic
                 0xe0};                   // 8-byte content size, single segment
  for (int i = 0; i < 8; ++i) frame.push_back(static_cast<uint8_t>(content_bytes >> (8 * i)));
  frame.insert(frame.end(), {0x01, 0x00, 0x00});  // last block, raw, 0 bytes
  return frame;
}

TEST_F(TraceReplay, ACompressedChunkClaimingGigabytesIsRefusedBeforeAllocating) {
  for (uint64_t claimed : {analyze::kMaxTraceChunkBytes + 1, uint64_t{2} << 30, uint64_t{1} << 32, ~uint64_t{0} - 2}) {
    std::optional<std::string> error = decode_compressed_chunk(zstd_frame_claiming(claimed));
    ASSERT_TRUE(error) << claimed;
    EXPECT_NE(error->find("more than memdx writes"), std::string::npos) << *error;
  }
  // Within the bound the same header is read, and found short.
  std::optional<std::string> error = decode_compressed_chunk(zstd_frame_claiming(1000));
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("corrupt"), std::string::npos) << *error;
}

Bytes frame(uint32_t stream, const Bytes& bytes) {
  trace::ChunkFrameHeader header{stream, static_cast<uint32_t>(bytes.size())};
  Bytes out(sizeof(header) + bytes.size());
  std::memcpy(out.data(), &header, sizeof(header));
  std::copy(bytes.begin(), bytes.end(), out.begin() + sizeof(header));
  return out;
}

// The collector numbers every connection anew and closes a stream once: a stream that goes on
// after its end, or ends twice, was not written by memdx.
TEST_F(TraceReplay, AStreamThatGoesOnAfterItsEndIsRefused) {
  std::vector<CorpusFile> files = seeds();
  ASSERT_FALSE(files.empty());
  const Bytes& seed = files[0].bytes;
  std::optional<uint32_t> closed_stream;
  for (size_t at : frame_offsets(seed)) {
    trace::ChunkFrameHeader header{};
    std::memcpy(&header, seed.data() + at, sizeof(header));
    if (header.bytes == 0) closed_stream = header.stream;
  }
  ASSERT_TRUE(closed_stream) << files[0].name << " closes no stream";

  Bytes more = seed;
  Bytes extra = frame(*closed_stream, {0x01});
  more.insert(more.end(), extra.begin(), extra.end());
  std::optional<std::string> error = decode_chunk(more);
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("continues after its end"), std::string::npos) << *error;

  Bytes twice = seed;
  Bytes close = frame(*closed_stream, {});
  twice.insert(twice.end(), close.begin(), close.end());
  error = decode_chunk(twice);
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("ends twice"), std::string::npos) << *error;
}

// Peak resident memory of this process so far.
uint64_t peak_rss_bytes() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;
}

// 21 bytes of input per thread (a batch header and one kAlloc) must not cost the reader a
// kRecentAllocs table each: 50,000 such threads took 1.6 GB when the table came whole.
TEST_F(TraceReplay, ThreadsThatAllocateOnceCostTheReaderLittleMemory) {
  constexpr int32_t kThreads = 50'000;
  wire::StreamHello hello{};
  std::memcpy(hello.magic, wire::kStreamMagic, sizeof(hello.magic));
  hello.version = wire::kVersion;
  hello.hello_bytes = sizeof(hello);
  Bytes stream(sizeof(hello));
  std::memcpy(stream.data(), &hello, sizeof(hello));
  const uint8_t alloc[] = {static_cast<uint8_t>(wire::Tag::kAlloc), 1, 2, 16, 0};  // seq, addr, size, stack
  for (int32_t tid = 1; tid <= kThreads; ++tid) {
    wire::BatchHeader header{wire::kBatchMagic, static_cast<uint32_t>(wire::BatchKind::kThreadStart), tid,
                             sizeof(alloc)};
    const auto* raw = reinterpret_cast<const uint8_t*>(&header);
    stream.insert(stream.end(), raw, raw + sizeof(header));
    stream.insert(stream.end(), alloc, alloc + sizeof(alloc));
  }
  Bytes chunk = frame(1, stream);
  uint64_t before = peak_rss_bytes();
  DecodeCounts counts;
  EXPECT_FALSE(decode_chunk(chunk, &counts));
  EXPECT_EQ(counts.events, static_cast<uint64_t>(kThreads));
  EXPECT_LT(peak_rss_bytes() - before, uint64_t{256} << 20) << "for " << chunk.size() << " bytes of input";
}

}  // namespace
}  // namespace memdx::fuzz
