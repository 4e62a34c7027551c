#include "serve/exposition.h"

#include <cmath>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/json_text.h"

namespace memdx::serve {
namespace {

using Labels = std::vector<std::pair<std::string_view, std::string>>;

enum class MetricType { kGauge, kCounter };

// Writes metric families in either format: the same samples, the format's own framing.
// name="value",... with the values escaped: what goes between the braces of a sample.
std::string label_text(const Labels& labels) {
  std::string text;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) text += ',';
    fmt::format_to(std::back_inserter(text), "{}=\"{}\"", labels[i].first, escape_label_value(labels[i].second));
  }
  return text;
}

class Writer {
 public:
  Writer(ExpositionFormat format, size_t expected_bytes) : format_(format) { out_.reserve(expected_bytes); }

  // A family's header. `name` is the sample name without "_total" for counters.
  void family(std::string_view name, MetricType type, std::string_view help) {
    name_ = name;
    type_ = type;
    // OpenMetrics: a counter's family is named without "_total", its samples with it. Help text
    // escapes backslash and newline (and, in OpenMetrics, the double quote).
    std::string escaped;
    for (char c : help) {
      if (c == '\\') {
        escaped += "\\\\";
      } else if (c == '\n') {
        escaped += "\\n";
      } else if (c == '"' && format_ == ExpositionFormat::kOpenMetrics) {
        escaped += "\\\"";
      } else {
        escaped += c;
      }
    }
    fmt::format_to(std::back_inserter(out_), "# HELP {}{} {}\n", name,
                   type == MetricType::kCounter && format_ == ExpositionFormat::kPrometheusText ? "_total" : "",
                   escaped);
    fmt::format_to(std::back_inserter(out_), "# TYPE {}{} {}\n", name,
                   type == MetricType::kCounter && format_ == ExpositionFormat::kPrometheusText ? "_total" : "",
                   type == MetricType::kCounter ? "counter" : "gauge");
  }

  void sample(const Labels& labels, double value) { sample_with(label_text(labels), {}, value); }

  // `label_text`: labels as label_text() wrote them; `more`: further ones, as label_text() too.
  void sample_with(std::string_view label_text, std::string_view more, double value) {
    out_ += name_;
    if (type_ == MetricType::kCounter) out_ += "_total";
    if (!label_text.empty() || !more.empty()) {
      out_ += '{';
      out_ += label_text;
      if (!label_text.empty() && !more.empty()) out_ += ',';
      out_ += more;
      out_ += '}';
    }
    out_ += ' ';
    if (std::isnan(value)) {
      out_ += "NaN";
    } else if (std::isinf(value)) {
      out_ += value > 0 ? "+Inf" : "-Inf";
    } else if (value == std::floor(value) && std::fabs(value) < 1e15) {
      fmt::format_to(std::back_inserter(out_), "{}", static_cast<int64_t>(value));
    } else {
      fmt::format_to(std::back_inserter(out_), "{}", value);
    }
    out_ += '\n';
  }

  std::string finish() {
    if (format_ == ExpositionFormat::kOpenMetrics) out_ += "# EOF\n";
    return std::move(out_);
  }

 private:
  ExpositionFormat format_;
  std::string out_;
  std::string_view name_;
  MetricType type_ = MetricType::kGauge;
};

Labels process_labels(const ProcessState& process) {
  if (process.pid_label) {
    return {{"pid", std::to_string(process.pid)},
            {"name", process.name},
            {"command", process.command},
            {"cgroup", process.cgroup}};
  }
  return {{"name", process.name},
          {"command", process.command},
          {"cgroup", process.cgroup},
          {"replica", std::to_string(process.replica)}};
}

// The processes with their label text, written once per answer rather than once per family: a
// thousand processes' labels escaped sixteen times over were a fifth of a scrape's cost.
struct LabelledProcesses {
  explicit LabelledProcesses(const Snapshot& served) : snapshot(served) {
    label_texts.reserve(served.processes.size());
    for (const ProcessState& process : served.processes) label_texts.push_back(label_text(process_labels(process)));
  }
  const Snapshot& snapshot;
  std::vector<std::string> label_texts;
};

// One gauge family over the processes that have the value.
template <typename Value>
void per_process(Writer& writer, const LabelledProcesses& processes, std::string_view name, std::string_view help,
                 Value value_of) {
  writer.family(name, MetricType::kGauge, help);
  for (size_t i = 0; i < processes.snapshot.processes.size(); ++i) {
    std::optional<double> value = value_of(processes.snapshot.processes[i]);
    if (value) writer.sample_with(processes.label_texts[i], {}, *value);
  }
}

std::optional<double> bytes(std::optional<uint64_t> value) {
  if (!value) return std::nullopt;
  return static_cast<double>(*value);
}

// Length of the valid UTF-8 sequence at `text[i]`, 0 when there is none.
size_t utf8_sequence(std::string_view text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  size_t length = lead >= 0xF0 && lead <= 0xF4 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC2 && lead < 0xE0 ? 2 : 0;
  if (length == 0 || i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  // Overlong three- and four-byte forms, surrogates and code points beyond U+10FFFF.
  if (lead == 0xE0 && byte(i + 1) < 0xA0) return 0;
  if (lead == 0xED && byte(i + 1) >= 0xA0) return 0;
  if (lead == 0xF0 && byte(i + 1) < 0x90) return 0;
  if (lead == 0xF4 && byte(i + 1) >= 0x90) return 0;
  return length;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size();) {
    size_t length = utf8_sequence(value, i);
    if (length == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    char c = value[i];
    if (length == 1 && c == '\\') {
      out += "\\\\";
    } else if (length == 1 && c == '"') {
      out += "\\\"";
    } else if (length == 1 && c == '\n') {
      out += "\\n";
    } else {
      out.append(value.substr(i, length));
    }
    i += length;
  }
  return out;
}

ExpositionFormat negotiate(std::string_view accept_header) {
  return accept_header.find("application/openmetrics-text") != std::string_view::npos
             ? ExpositionFormat::kOpenMetrics
             : ExpositionFormat::kPrometheusText;
}

const char* content_type(ExpositionFormat format) {
  return format == ExpositionFormat::kOpenMetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                                  : "text/plain; version=0.0.4; charset=utf-8";
}

std::string render_metrics(const Snapshot& snapshot, ExpositionFormat format, double previous_scrape_seconds,
                           const std::vector<ProgramFamily>& program, size_t expected_bytes) {
  Writer w(format, expected_bytes);
  LabelledProcesses labelled(snapshot);
  per_process(w, labelled, "memdx_process_rss_bytes", "Resident set size: every resident page the process maps.",
              [](const ProcessState& p) { return bytes(p.sample.rss_bytes); });
  per_process(w, labelled, "memdx_process_pss_bytes",
              "Proportional set size: resident pages, shared ones divided among their sharers (read within a time "
              "budget; see memdx_process_pss_age_seconds).",
              [](const ProcessState& p) { return bytes(p.pss_bytes); });
  per_process(w, labelled, "memdx_process_uss_bytes",
              "Unique set size: private resident pages, what exiting would free.",
              [](const ProcessState& p) { return bytes(p.uss_bytes); });
  per_process(w, labelled, "memdx_process_pss_age_seconds", "Age of the PSS and USS values.",
              [](const ProcessState& p) -> std::optional<double> {
                if (!p.pss_age_ms) return std::nullopt;
                return static_cast<double>(*p.pss_age_ms) / 1000.0;
              });
  per_process(w, labelled, "memdx_process_swap_bytes", "Swapped-out memory of the process.",
              [](const ProcessState& p) { return bytes(p.sample.swap_bytes); });
  per_process(w, labelled, "memdx_process_vsz_bytes", "Virtual size: reserved address space, mostly not memory in use.",
              [](const ProcessState& p) { return bytes(p.sample.vsz_bytes); });
  per_process(w, labelled, "memdx_process_rss_anon_bytes", "Resident anonymous memory: heap, stacks, private mappings.",
              [](const ProcessState& p) { return bytes(p.sample.rss_anon_bytes); });
  per_process(w, labelled, "memdx_process_rss_file_bytes",
              "Resident file-backed pages: code and mapped files, reclaimable.",
              [](const ProcessState& p) { return bytes(p.sample.rss_file_bytes); });
  per_process(w, labelled, "memdx_process_rss_shmem_bytes", "Resident shared memory (shmem, tmpfs, memfd).",
              [](const ProcessState& p) { return bytes(p.sample.rss_shmem_bytes); });
  per_process(w, labelled, "memdx_process_threads", "Threads of the process.",
              [](const ProcessState& p) { return static_cast<double>(p.sample.threads); });

  w.family("memdx_process_fds", MetricType::kGauge, "Open file descriptors by type.");
  for (size_t i = 0; i < snapshot.processes.size(); ++i) {
    const ProcessState& p = snapshot.processes[i];
    if (!p.fds) continue;
    for (size_t t = 0; t < static_cast<size_t>(proc::FdType::kCount); ++t) {
      auto type = static_cast<proc::FdType>(t);
      if (p.fds->count(type) == 0) continue;
      w.sample_with(labelled.label_texts[i], label_text({{"type", std::string(proc::fd_type_name(type))}}),
                    p.fds->count(type));
    }
  }

  w.family("memdx_process_gpu_bytes", MetricType::kGauge,
           "GPU memory the driver counts for the process, per device (NVML; DRM fdinfo for other drivers); "
           "absent where nothing measures it.");
  for (size_t i = 0; i < snapshot.processes.size(); ++i) {
    const ProcessState& p = snapshot.processes[i];
    if (!p.gpu) continue;
    for (const proc::ProcessGpuReading& usage : *p.gpu) {
      w.sample_with(labelled.label_texts[i], label_text({{"device", usage.device_id}}),
                    static_cast<double>(usage.bytes));
    }
  }

  per_process(w, labelled, "memdx_process_growth_bytes_per_second",
              "Trend slope of the memory series memdx judges for the process (0 until it can judge).",
              [](const ProcessState& p) { return p.growth_bytes_per_second; });
  per_process(w, labelled, "memdx_leak",
              "1 when the process's memory grows without bound by the same rules as memdx run, else 0.",
              [](const ProcessState& p) { return p.leak ? 1.0 : 0.0; });
  per_process(w, labelled, "memdx_leak_confidence", "Confidence of the growth finding, 0 to 1.",
              [](const ProcessState& p) { return p.confidence; });
  per_process(w, labelled, "memdx_process_seconds_to_memory_limit",
              "Seconds until the memory limit is reached at the current growth, where a leak has one.",
              [](const ProcessState& p) { return p.seconds_to_limit; });

  w.family("memdx_other_processes", MetricType::kGauge,
           "Targets beyond the series cap (--max-processes), summed in memdx_other_rss_bytes.");
  w.sample({}, static_cast<double>(snapshot.other_count));
  w.family("memdx_other_rss_bytes", MetricType::kGauge, "RSS of the targets beyond the series cap, summed.");
  w.sample({}, static_cast<double>(snapshot.other_rss_bytes));

  w.family("memdx_cgroup_memory_usage_bytes", MetricType::kGauge, "Memory charged to the cgroup of served processes.");
  for (const CgroupState& cgroup : snapshot.cgroups) {
    if (cgroup.usage_bytes) w.sample({{"cgroup", cgroup.path}}, static_cast<double>(*cgroup.usage_bytes));
  }
  w.family("memdx_cgroup_memory_limit_bytes", MetricType::kGauge,
           "The cgroup's hard limit (memory.max, v1 memory.limit_in_bytes); absent without one.");
  for (const CgroupState& cgroup : snapshot.cgroups) {
    if (cgroup.limit_bytes) w.sample({{"cgroup", cgroup.path}}, static_cast<double>(*cgroup.limit_bytes));
  }
  w.family("memdx_cgroup_memory_high_bytes", MetricType::kGauge,
           "The cgroup's throttling limit (memory.high); absent without one.");
  for (const CgroupState& cgroup : snapshot.cgroups) {
    if (cgroup.high_bytes) w.sample({{"cgroup", cgroup.path}}, static_cast<double>(*cgroup.high_bytes));
  }
  w.family("memdx_cgroup_memory_pressure_avg10_ratio", MetricType::kGauge,
           "Share of the last 10 s in which some (or all) of the cgroup's tasks stalled on memory.");
  for (const CgroupState& cgroup : snapshot.cgroups) {
    if (cgroup.psi_some_avg10) w.sample({{"cgroup", cgroup.path}, {"kind", "some"}}, *cgroup.psi_some_avg10 / 100.0);
    if (cgroup.psi_full_avg10) w.sample({{"cgroup", cgroup.path}, {"kind", "full"}}, *cgroup.psi_full_avg10 / 100.0);
  }

  w.family("memdx_gpu_memory_total_bytes", MetricType::kGauge, "Memory of the GPU, where its driver reports it.");
  for (const proc::GpuDeviceReading& device : snapshot.gpu_devices) {
    if (!device.total_bytes) continue;
    w.sample({{"device", device.id}, {"name", device.name}}, static_cast<double>(*device.total_bytes));
  }
  w.family("memdx_gpu_memory_used_bytes", MetricType::kGauge,
           "GPU memory in use by every process on the device, served or not, where its driver reports it.");
  for (const proc::GpuDeviceReading& device : snapshot.gpu_devices) {
    if (!device.used_bytes) continue;
    w.sample({{"device", device.id}, {"name", device.name}}, static_cast<double>(*device.used_bytes));
  }

  w.family("memdx_system_memory_total_bytes", MetricType::kGauge, "MemTotal of /proc/meminfo.");
  w.sample({}, static_cast<double>(snapshot.mem_total_bytes));
  if (snapshot.mem_available_bytes) {
    w.family("memdx_system_memory_available_bytes", MetricType::kGauge, "MemAvailable of /proc/meminfo.");
    w.sample({}, static_cast<double>(*snapshot.mem_available_bytes));
  }
  w.family("memdx_system_swap_free_bytes", MetricType::kGauge, "SwapFree of /proc/meminfo.");
  w.sample({}, static_cast<double>(snapshot.swap_free_bytes));
  if (snapshot.psi_some_avg10 || snapshot.psi_full_avg10) {
    w.family("memdx_system_memory_pressure_avg10_ratio", MetricType::kGauge,
             "Share of the last 10 s in which some (or all) tasks stalled on memory (/proc/pressure/memory).");
    if (snapshot.psi_some_avg10) w.sample({{"kind", "some"}}, *snapshot.psi_some_avg10 / 100.0);
    if (snapshot.psi_full_avg10) w.sample({{"kind", "full"}}, *snapshot.psi_full_avg10 / 100.0);
  }

  w.family("memdx_sample_duration_seconds", MetricType::kGauge, "Time the last sampling tick took.");
  w.sample({}, snapshot.sample_seconds);
  w.family("memdx_judge_duration_seconds", MetricType::kGauge, "Time the last diagnosis took.");
  w.sample({}, snapshot.judge_seconds);
  w.family("memdx_scrape_duration_seconds", MetricType::kGauge, "Time the previous /metrics answer took to render.");
  w.sample({}, previous_scrape_seconds);
  w.family("memdx_samples", MetricType::kCounter, "Process samples taken.");
  w.sample({}, static_cast<double>(snapshot.samples_taken));
  w.family("memdx_pss_reads_skipped", MetricType::kCounter,
           "smaps_rollup reads left for a later tick by the PSS time budget.");
  w.sample({}, static_cast<double>(snapshot.pss_reads_skipped));
  w.family("memdx_ticks_late", MetricType::kCounter, "Sampling ticks that started late because the last overran.");
  w.sample({}, static_cast<double>(snapshot.ticks_late));
  w.family("memdx_read_errors", MetricType::kCounter, "Reads of a source that failed, by source and reason.");
  for (const SourceError& error : snapshot.errors) {
    w.sample({{"source", error.source}, {"reason", error.message}}, static_cast<double>(error.count));
  }
  w.family("memdx_self_rss_bytes", MetricType::kGauge, "memdx's own resident set size.");
  w.sample({}, static_cast<double>(snapshot.self_rss_bytes));
  w.family("memdx_last_sample_timestamp_seconds", MetricType::kGauge, "When the served sample was taken.");
  w.sample({}, static_cast<double>(snapshot.t_unix_ms) / 1000.0);

  for (const ProgramFamily& family : program) {
    w.family(family.name, family.counter ? MetricType::kCounter : MetricType::kGauge,
             family.help.empty() ? std::string_view("A metric of the program's.") : std::string_view(family.help));
    for (const ProgramSample& sample : family.samples) {
      Labels labels;
      for (const auto& [name, value] : sample.labels) labels.emplace_back(name, value);
      w.sample(labels, sample.value);
    }
  }
  return w.finish();
}

std::string render_health(const Snapshot& snapshot, const HealthFacts& facts) {
  nlohmann::ordered_json health;
  std::string status = "ok";
  if (snapshot.sequence == 0) {
    status = "starting";
  } else if (!snapshot.unmatched_targets.empty() || !snapshot.errors.empty()) {
    status = "degraded";
  }
  health["schema"] = "memdx.serve.health/1";
  health["status"] = status;
  health["version"] = facts.version;
  health["uptime_seconds"] = facts.uptime_seconds;
  health["interval_ms"] = facts.interval_ms;
  if (snapshot.sequence > 0) {
    health["last_sample_age_seconds"] = static_cast<double>(facts.now_unix_ms - snapshot.t_unix_ms) / 1000.0;
  } else {
    health["last_sample_age_seconds"] = nullptr;
  }
  health["targets"] = nlohmann::ordered_json::array();
  for (const ProcessState& process : snapshot.processes) {
    health["targets"].push_back(
        {{"pid", process.pid},
         {"name", process.name},
         {"command", process.command},
         {"replica", process.pid_label ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(process.replica)},
         {"leak", process.leak}});
  }
  health["other_processes"] = snapshot.other_count;
  health["unmatched_targets"] = snapshot.unmatched_targets;
  health["read_errors"] = nlohmann::ordered_json::array();
  for (const SourceError& error : snapshot.errors) {
    health["read_errors"].push_back({{"source", error.source}, {"reason", error.message}, {"count", error.count}});
  }
  return model::json_text(health);
}

}  // namespace memdx::serve
