// A local model server's memory, kept bounded with libmemdx. The "model" is a stand-in: a block of
// --model-mib MiB written once, as loading weights writes them; each generation grows a "KV
// cache" per token. Everything else is what a real server does:
//
//   1. preflight: will the model fit, in the memory this process can really get (MemAvailable,
//      its cgroup's limit)? If not, one sentence says what is short and what to do.
//   2. the model is a governed resource: unloaded after --idle-ms unused, or under memory
//      pressure (a PressureMonitor feeds the governor), and loaded again on the next request.
//   3. tokens go to a slow reader (a UI) through a bounded channel: generation waits for the
//      reader instead of growing a buffer without bound (backpressure).
//   4. a generation can be stopped by the user: its KV cache is freed at once.
//   5. the watermark is read while generating; the last 100 generations' metrics are kept.
//
// Prints what happened as JSON on stdout (memdx.example.model_server/1); the examples test runs it
// and checks every step against the numbers. Exit 3 when the model does not fit.
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <memdx/channel.h>
#include <memdx/governor.h>
#include <memdx/history.h>
#include <memdx/preflight.h>
#include <memdx/pressure.h>

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kMiB = 1024 * 1024;
constexpr size_t kTokenBufferSize = 8;  // tokens generated ahead of the reader, at most

struct Settings {
  uint64_t model_bytes = 256 * kMiB;
  std::chrono::milliseconds idle_timeout{300};
  int requests = 120;
  int tokens_per_request = 32;
  uint64_t kv_bytes_per_token = 256 * 1024;
  std::optional<int> cancel_request;  // the user stops this answer when half of it is shown
  bool pressure_at_end = false;       // --pressure: the governor is told critical pressure at the end
};

// The stand-in model: a mapping of its own written once, so every page is resident, as model
// loaders map their weights. Unloading unmaps it: the pages go back to the kernel at once, whatever
// the allocator (a heap allocator, or a sanitizer's quarantine, may keep freed blocks).
class Model {
 public:
  Model() = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  ~Model() { unload(); }
  void load(uint64_t bytes) {
    unload();
    void* at = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (at == MAP_FAILED) return;
    weights_ = static_cast<char*>(at);
    bytes_ = bytes;
    std::memset(weights_, 0x42, bytes);
  }
  void unload() {
    if (weights_) ::munmap(weights_, bytes_);
    weights_ = nullptr;
    bytes_ = 0;
  }
  bool loaded() const { return weights_ != nullptr; }
  char weight(uint64_t i) const { return weights_[i % bytes_]; }

 private:
  char* weights_ = nullptr;
  uint64_t bytes_ = 0;
};

struct Generation {
  int tokens = 0;
  bool cancelled = false;
  uint64_t peak_rss_bytes = 0;
  uint64_t rss_at_end_bytes = 0;  // with the KV cache still held
};

// The KV cache of one generation: one mapping reserved for the longest generation and written a
// block per token, as inference engines keep theirs in buffers of their own. Unmapped when the
// generation ends, so its pages go back to the kernel at once (a heap allocator would keep them).
class KvCache {
 public:
  explicit KvCache(uint64_t bytes) : bytes_(bytes) {
    void* at = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    base_ = at == MAP_FAILED ? nullptr : static_cast<char*>(at);
  }
  ~KvCache() {
    if (base_) ::munmap(base_, bytes_);
  }
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;
  bool ok() const { return base_ != nullptr; }
  void write(uint64_t offset, uint64_t bytes, char value) { std::memset(base_ + offset, value, bytes); }

 private:
  char* base_ = nullptr;
  uint64_t bytes_;
};

// Generates into `tokens`; the KV cache grows by one block per token and is freed when the
// generation ends, cancelled or not.
Generation generate(const Model& model, const Settings& settings, memdx::BoundedChannel<std::string>& tokens,
                    const std::atomic<bool>& cancel) {
  Generation out;
  KvCache kv_cache(settings.kv_bytes_per_token * static_cast<uint64_t>(settings.tokens_per_request));
  if (!kv_cache.ok()) return out;
  for (int t = 0; t < settings.tokens_per_request; ++t) {
    if (cancel) {
      out.cancelled = true;
      break;
    }
    kv_cache.write(settings.kv_bytes_per_token * static_cast<uint64_t>(t), settings.kv_bytes_per_token,
                   model.weight(static_cast<uint64_t>(t)));
    tokens.push("token" + std::to_string(t));  // waits while the reader is behind
    if (t % 8 == 0) out.peak_rss_bytes = std::max(out.peak_rss_bytes, memdx::read_watermark().rss_bytes);
    out.tokens = t + 1;
  }
  out.rss_at_end_bytes = memdx::read_watermark().rss_bytes;
  return out;
}

std::optional<Settings> parse(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> long long {
      if (i + 1 >= argc) return -1;
      return std::atoll(argv[++i]);
    };
    if (arg == "--model-mib") {
      s.model_bytes = static_cast<uint64_t>(value()) * kMiB;
    } else if (arg == "--idle-ms") {
      s.idle_timeout = std::chrono::milliseconds(value());
    } else if (arg == "--requests") {
      s.requests = static_cast<int>(value());
    } else if (arg == "--cancel-request") {
      s.cancel_request = static_cast<int>(value());
    } else if (arg == "--pressure") {
      s.pressure_at_end = true;
    } else {
      std::fprintf(stderr, "model_server: unknown option %s\n", arg.c_str());
      return std::nullopt;
    }
  }
  if (s.model_bytes == 0 || s.requests <= 0 || s.idle_timeout.count() <= 0) {
    std::fprintf(stderr, "model_server: --model-mib, --requests and --idle-ms must be positive\n");
    return std::nullopt;
  }
  return s;
}

double since_ms(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<Settings> settings = parse(argc, argv);
  if (!settings) return 2;

  // 1. Will it fit? The model, and the KV cache of one generation.
  memdx::PreflightRequest request;
  request.needed_bytes = settings->model_bytes + settings->kv_bytes_per_token * settings->tokens_per_request;
  memdx::PreflightResult fit = memdx::preflight(request);
  if (!fit.can_proceed) {
    std::fprintf(stderr, "model_server: %s\n", fit.guidance.c_str());
    return 3;
  }

  // 2. The model under the governor: idle timeout, and memory pressure from the kernel.
  Model model;
  std::atomic<int> idle_unloads{0}, pressure_unloads{0};
  memdx::GovernorOptions governor_options;
  governor_options.on_decision = [&](const memdx::GovernorDecision& d) {
    if (d.kind == memdx::DecisionKind::kUnloadedIdle) ++idle_unloads;
    if (d.kind == memdx::DecisionKind::kUnloadedForPressure) ++pressure_unloads;
    std::fprintf(stderr, "governor: %s\n", d.text.c_str());
  };
  memdx::Governor governor(governor_options);
  memdx::ResourceId model_id = governor.add({"model", settings->model_bytes, 0,
                                             [&] {
                                               model.unload();
                                               return uint64_t{0};
                                             },
                                             settings->idle_timeout});
  memdx::PressureMonitor pressure(
      [&](memdx::PressureLevel level, const memdx::PressureReading&) { governor.on_pressure(level); });

  // 3. A slow reader: the UI shows a token every 200 µs.
  // 4. With --cancel-request N, the user presses "stop" when half of answer N is on the screen.
  //    The generator is at most the buffer's 8 tokens ahead of the screen, so that answer is still
  //    being generated, whatever the timing: the stop always lands mid-generation.
  memdx::BoundedChannel<std::string> tokens(kTokenBufferSize, memdx::Overflow::kBlock);
  std::atomic<uint64_t> tokens_shown{0};
  std::atomic<bool> stop_pressed{false};
  const uint64_t stop_at_token =
      settings->cancel_request
          ? static_cast<uint64_t>(*settings->cancel_request * settings->tokens_per_request +
                                  settings->tokens_per_request / 2)
          : UINT64_MAX;
  std::thread reader([&] {
    while (tokens.pop()) {
      if (++tokens_shown == stop_at_token) stop_pressed = true;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });

  memdx::BoundedHistory<memdx::MetricsRecord> history(100);
  int loads = 0, cancelled = 0;
  uint64_t peak_rss_bytes = 0, rss_after_cancel_bytes = 0, rss_before_cancel_bytes = 0;
  for (int i = 0; i < settings->requests; ++i) {
    Clock::time_point start = Clock::now();
    memdx::Governor::UsageScope use = governor.in_use(model_id);  // no unload while it generates
    if (!governor.loaded(model_id) || !model.loaded()) {
      model.load(settings->model_bytes);
      governor.set_loaded(model_id);
      ++loads;
    }
    Generation g = generate(model, *settings, tokens, stop_pressed);
    if (g.cancelled) {
      stop_pressed = false;  // for the next answer
      ++cancelled;
      rss_before_cancel_bytes = g.rss_at_end_bytes;
      rss_after_cancel_bytes = memdx::read_watermark().rss_bytes;  // the KV cache is gone
    }
    peak_rss_bytes = std::max(peak_rss_bytes, g.peak_rss_bytes);
    double latency_ms = since_ms(start);
    // 5. The last 100 generations' metrics.
    history.push(
        {std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
             .count(),
         {{"request", i},
          {"latency_ms", latency_ms},
          {"tokens_per_s", g.tokens / (latency_ms / 1000.0)},
          {"peak_rss_bytes", static_cast<double>(g.peak_rss_bytes)}}});
  }
  tokens.close();
  reader.join();

  // Idle: the governor unloads the model after its timeout.
  uint64_t rss_loaded_bytes = memdx::read_watermark().rss_bytes;
  Clock::time_point idle_start = Clock::now();
  while (governor.loaded(model_id) && Clock::now() - idle_start < settings->idle_timeout * 20) {
    std::this_thread::sleep_for(settings->idle_timeout / 10);
  }
  uint64_t rss_idle_bytes = memdx::read_watermark().rss_bytes;

  // Under pressure: load it again, then the governor hears critical pressure and unloads it.
  int pressure_unloads_seen = 0;
  if (settings->pressure_at_end) {
    {
      memdx::Governor::UsageScope use = governor.in_use(model_id);
      model.load(settings->model_bytes);
      governor.set_loaded(model_id);
      ++loads;
    }
    governor.on_pressure(memdx::PressureLevel::kCritical);  // what the PressureMonitor calls
    Clock::time_point pressure_start = Clock::now();
    while (governor.loaded(model_id) && Clock::now() - pressure_start < std::chrono::seconds(10)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    governor.on_pressure(memdx::PressureLevel::kNone);
    pressure_unloads_seen = pressure_unloads;
  }

  memdx::ChannelStats channel = tokens.stats();
  std::printf(
      "{\"schema\": \"memdx.example.model_server/1\", \"preflight_usable_bytes\": %llu, \"loads\": %d, "
      "\"idle_unloads\": %d, \"pressure_unloads\": %d, \"cancelled\": %d, \"rss_before_cancel_bytes\": %llu, "
      "\"rss_after_cancel_bytes\": %llu, \"rss_loaded_bytes\": %llu, \"rss_idle_bytes\": %llu, "
      "\"peak_rss_bytes\": %llu, \"channel_high_water\": %llu, \"tokens_shown\": %llu, "
      "\"pressure_source\": \"%s\", \"history\": %s}\n",
      static_cast<unsigned long long>(fit.usable_bytes), loads, static_cast<int>(idle_unloads), pressure_unloads_seen,
      cancelled, static_cast<unsigned long long>(rss_before_cancel_bytes),
      static_cast<unsigned long long>(rss_after_cancel_bytes), static_cast<unsigned long long>(rss_loaded_bytes),
      static_cast<unsigned long long>(rss_idle_bytes), static_cast<unsigned long long>(peak_rss_bytes),
      static_cast<unsigned long long>(channel.high_water), static_cast<unsigned long long>(tokens_shown.load()),
      memdx::to_string(pressure.source()), memdx::to_json(history.snapshot()).c_str());
  return 0;
}
