// Serving a program's own memory to Prometheus from inside it: the metrics of `memdx serve` for
// this process (RSS, PSS, USS, swap, fds, threads, and the leak verdict by the rules of
// `memdx run`), plus the program's own gauges and counters, its caches' and its governor's, on
// the same /metrics.
//
//   memdx::MetricsExporter exporter;                       // http://127.0.0.1:9464/metrics
//   exporter.watch_cache("documents", cache);              // hits, misses, evictions, bytes, budget
//   exporter.watch_governor(governor);                     // unloads, freed bytes, what is loaded
//   exporter.set_gauge("myapp_queue_items", queue.size());
//   exporter.add_to_counter("myapp_requests_total", 1, {{"route", "/generate"}});
//
// A program that serves HTTP itself can take render() instead (listen = "").
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "memdx/cache.h"
#include "memdx/export.h"
#include "memdx/governor.h"

namespace memdx {

struct MetricsExporterOptions {
  // HOST:PORT to serve /metrics, /health and /verdict on (port 0: any free one, see port()); ""
  // serves nothing (render() only). Loopback unless the program says otherwise.
  std::string listen = "127.0.0.1:9464";
  // How often the process's own memory is sampled (a scrape serves the newest sample).
  std::chrono::milliseconds interval{5000};
};

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Thread-safe: every member may be called from any thread, also from an on_scrape function.
class MEMDX_API MetricsExporter {
 public:
  // Throws memdx::Error: kInvalidArgument (listen is not HOST:PORT with an IP address),
  // kSystem (cannot listen there, e.g. the port is taken: the message says so).
  explicit MetricsExporter(MetricsExporterOptions options = {});
  ~MetricsExporter();  // stops serving and sampling; no on_scrape function runs after it returns
  MetricsExporter(const MetricsExporter&) = delete;
  MetricsExporter& operator=(const MetricsExporter&) = delete;

  // The port it serves on; 0 when it serves nothing.
  int port() const;

  // A gauge of the program's. `name` as Prometheus names metrics ([a-zA-Z_:][a-zA-Z0-9_:]*, not
  // starting "memdx_"), label names likewise ([a-zA-Z_][a-zA-Z0-9_]*); `help` is kept from the
  // first call that gives one. Throws memdx::Error (kInvalidArgument) for a name that is not
  // valid, or that is already a counter.
  void set_gauge(const std::string& name, double value, const MetricLabels& labels = {}, const std::string& help = "");
  // A counter: `name` ends in "_total", and `delta` >= 0. Throws like set_gauge.
  void add_to_counter(const std::string& name, double delta, const MetricLabels& labels = {},
                      const std::string& help = "");
  // A counter the program keeps itself (a cache's hits): its total now. Throws like add_to_counter.
  void set_counter(const std::string& name, double total, const MetricLabels& labels = {},
                   const std::string& help = "");

  // `collect` runs at each scrape (and render()), before the text is made: for values cheaper to
  // read then. It may call the setters; it must not call render().
  void on_scrape(std::function<void(MetricsExporter&)> collect);

  // A cache's counters and size, labelled cache="NAME", at each scrape:
  // memdx_cache_hits_total, _misses_total, _evictions_total, _expirations_total, _rejected_total,
  // memdx_cache_size_bytes, memdx_cache_budget_bytes. `cache` is a memdx::ByteBudgetCache (or
  // anything with stats(), size_bytes() and budget_bytes()) that outlives the exporter.
  template <typename Cache>
  void watch_cache(const std::string& name, const Cache& cache) {
    add_cache_source(name, [&cache] {
      CacheFigures figures;
      figures.stats = cache.stats();
      figures.size_bytes = cache.size_bytes();
      figures.budget_bytes = cache.budget_bytes();
      return figures;
    });
  }
  // The governor's totals (GovernorStats) at each scrape: memdx_governor_unloads_total{reason},
  // memdx_governor_freed_bytes_total, memdx_governor_resources{state}, memdx_governor_loaded_bytes,
  // memdx_governor_pressure_level (0 none, 1 moderate, 2 critical). It must outlive the exporter.
  void watch_governor(const Governor& governor);

  // What /metrics answers now: Prometheus text 0.0.4, or OpenMetrics 1.0.0.
  std::string render(bool open_metrics = false) const;

  struct CacheFigures {
    CacheStats stats;
    uint64_t size_bytes = 0;
    uint64_t budget_bytes = 0;
  };

 private:
  void add_cache_source(const std::string& name, std::function<CacheFigures()> read);
  std::string render_text(bool open_metrics, double previous_scrape_seconds) const;
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace memdx
