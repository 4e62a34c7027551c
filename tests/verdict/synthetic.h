// Synthetic recordings for the diagnosis tests: each process's series is a function of time plus
// seeded Gaussian noise, sampled at a fixed rate, so every test is deterministic and needs no file.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "analyze/diagnose.h"

namespace memdx::synthetic {

inline constexpr double kKiB = 1024;
inline constexpr double kMiB = 1024 * kKiB;
inline constexpr double kGiB = 1024 * kMiB;

// A value as a function of seconds since the process was first seen.
using Curve = std::function<double(double t_s)>;

inline Curve flat(double value) {
  return [value](double) { return value; };
}
inline Curve linear(double start, double per_s) {
  return [start, per_s](double t_s) { return start + per_s * t_s; };
}

struct ProcessSpec {
  pid_t pid = 4242;
  pid_t ppid = 1;
  std::vector<std::string> command = {"./app"};
  int64_t first_seen_ms = 0;
  double duration_s = 10;
  double hz = 5;
  Curve anon = flat(50 * kMiB);
  Curve file = flat(20 * kMiB);
  Curve shmem = flat(1 * kMiB);
  Curve swap = flat(0);
  Curve vsz = flat(300 * kMiB);
  Curve fds = flat(12);
  Curve threads = flat(4);
  std::optional<Curve> heap_live;   // the tracer's series, when the test has one
  double noise_bytes = 128 * kKiB;  // standard deviation added to anon, file and heap
  uint32_t seed = 1;
  bool exits = true;
  int exit_code = 0;
};

inline uint64_t as_bytes(double value) {
  return static_cast<uint64_t>(std::llround(std::max(0.0, value)));
}

inline std::vector<model::ProcessSample> samples_of(const ProcessSpec& spec) {
  std::mt19937 random(spec.seed);
  std::normal_distribution<double> noise(0, spec.noise_bytes > 0 ? spec.noise_bytes : 1);
  auto noisy = [&](double value) { return spec.noise_bytes > 0 ? value + noise(random) : value; };
  std::vector<model::ProcessSample> samples;
  auto count = static_cast<int>(std::floor(spec.duration_s * spec.hz)) + 1;
  for (int i = 0; i < count; ++i) {
    double t_s = i / spec.hz;
    model::ProcessSample s;
    s.t_ms = spec.first_seen_ms + static_cast<int64_t>(std::llround(t_s * 1000));
    s.pid = spec.pid;
    s.rss_anon_bytes = as_bytes(noisy(spec.anon(t_s)));
    s.rss_file_bytes = as_bytes(noisy(spec.file(t_s)));
    s.rss_shmem_bytes = as_bytes(spec.shmem(t_s));
    s.rss_bytes = s.rss_anon_bytes + s.rss_file_bytes + s.rss_shmem_bytes;
    s.pss_bytes = s.rss_bytes - s.rss_file_bytes / 2;
    s.swap_bytes = as_bytes(spec.swap(t_s));
    s.vsz_bytes = std::max(as_bytes(spec.vsz(t_s)), s.rss_bytes);
    s.fds = static_cast<uint32_t>(spec.fds(t_s));
    s.threads = static_cast<uint32_t>(spec.threads(t_s));
    if (spec.heap_live) s.heap_live_bytes = as_bytes(noisy((*spec.heap_live)(t_s)));
    samples.push_back(s);
  }
  return samples;
}

inline model::ProcessRecord record_of(const ProcessSpec& spec) {
  model::ProcessRecord r;
  r.pid = spec.pid;
  r.ppid = spec.ppid;
  r.command = spec.command;
  r.first_seen_ms = spec.first_seen_ms;
  if (spec.exits) {
    r.exited_ms = spec.first_seen_ms + static_cast<int64_t>(std::llround(spec.duration_s * 1000)) + 100;
    r.exit_code = spec.exit_code;
  }
  return r;
}

inline void add_process(analyze::RecordingData& data, const ProcessSpec& spec) {
  data.processes.push_back(record_of(spec));
  data.samples[spec.pid] = samples_of(spec);
}

inline analyze::RecordingData recording_of(const std::vector<ProcessSpec>& specs) {
  analyze::RecordingData data;
  data.meta.kind = "run";
  if (!specs.empty()) data.meta.command = specs.front().command;
  for (const ProcessSpec& spec : specs) add_process(data, spec);
  return data;
}

// One machine sample per second up to `duration_s`, with constant MemAvailable and cgroup usage.
inline void add_system(analyze::RecordingData& data, double duration_s, uint64_t mem_available_bytes,
                       std::optional<uint64_t> cgroup_current_bytes = std::nullopt) {
  for (int64_t t_ms = 0; t_ms <= static_cast<int64_t>(duration_s * 1000); t_ms += 1000) {
    model::SystemSample s;
    s.t_ms = t_ms;
    s.mem_available_bytes = mem_available_bytes;
    s.cgroup_current_bytes = cgroup_current_bytes;
    data.system_samples.push_back(s);
  }
}

inline std::vector<model::Finding> findings_of(const model::Verdict& v, model::FindingKind kind) {
  std::vector<model::Finding> out;
  std::copy_if(v.findings.begin(), v.findings.end(), std::back_inserter(out),
               [&](const model::Finding& f) { return f.kind == kind; });
  return out;
}

inline std::vector<model::Finding> leaks_of(const model::Verdict& v) {
  std::vector<model::Finding> out;
  std::copy_if(v.findings.begin(), v.findings.end(), std::back_inserter(out),
               [](const model::Finding& f) { return f.severity == Severity::kLeak; });
  return out;
}

}  // namespace memdx::synthetic
