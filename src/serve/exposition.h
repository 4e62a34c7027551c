// What `memdx serve` answers: a snapshot (serve/monitor.h) as Prometheus text exposition 0.0.4 or
// OpenMetrics 1.0.0 (/metrics), and as the health JSON (/health). Pure: no I/O, no clock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "serve/monitor.h"

namespace memdx::serve {

enum class ExpositionFormat {
  kPrometheusText,  // text/plain; version=0.0.4
  kOpenMetrics,     // application/openmetrics-text; version=1.0.0
};

// OpenMetrics when the scraper's Accept header asks for application/openmetrics-text (as
// Prometheus does when it may), the classic text format otherwise.
ExpositionFormat negotiate(std::string_view accept_header);
const char* content_type(ExpositionFormat format);

// A metric family of a program's own (libmemdx's MetricsExporter), rendered after memdx's.
struct ProgramSample {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};
struct ProgramFamily {
  std::string name;  // a counter's without "_total"
  bool counter = false;
  std::string help;
  std::vector<ProgramSample> samples;
};

// Every metric of the snapshot, then `program`'s families. `previous_scrape_seconds`: how long
// the last /metrics answer took to render (memdx_scrape_duration_seconds). `expected_bytes`: the
// answer's likely size (the last one's), reserved at once: growing a megabyte string by doubling
// held three copies of it at the peak.
std::string render_metrics(const Snapshot& snapshot, ExpositionFormat format, double previous_scrape_seconds,
                           const std::vector<ProgramFamily>& program = {}, size_t expected_bytes = 0);

struct HealthFacts {
  double uptime_seconds = 0;
  int64_t interval_ms = 0;
  int64_t now_unix_ms = 0;
  std::string version;
};

// {"status": "ok"|"starting"|"degraded", ...}: "starting" before the first sample, "degraded"
// when a target matched nothing or a source could not be read, with what and why.
std::string render_health(const Snapshot& snapshot, const HealthFacts& facts);

// A label value as the text format needs it: backslash, double quote and newline escaped, bytes
// that are not UTF-8 replaced by U+FFFD.
std::string escape_label_value(std::string_view value);

}  // namespace memdx::serve
