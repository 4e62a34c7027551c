#include "memdx/metrics_exporter.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <stdexcept>

#include "memdx/error.h"
#include "memdx/verdict.h"
#include "memdx/version.h"
#include "serve/exposition.h"
#include "serve/monitor.h"
#include "serve/server.h"

namespace memdx {
namespace {

bool valid_name(const std::string& name, bool colon_allowed) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_allowed && c == ':');
    bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && i > 0)) return false;
  }
  return true;
}

struct Family {
  bool counter = false;
  std::string help;
  std::map<MetricLabels, double> samples;  // by labels in the order given
};

}  // namespace

struct MetricsExporter::State {
  MetricsExporterOptions options;
  std::unique_ptr<serve::Monitor> monitor;
  std::unique_ptr<serve::Server> server;

  mutable std::mutex mutex;                // the families and the sources
  std::map<std::string, Family> families;  // by sample name (a counter's with "_total")
  std::vector<std::function<void()>> collectors;
  std::mutex collect_mutex;  // one scrape collects at a time

  // `library`: one of libmemdx's own families (memdx_cache_..., memdx_governor_...).
  Family& family(const std::string& name, bool counter, const MetricLabels& labels, const std::string& help,
                 bool library = false) {
    if (!valid_name(name, true) || (!library && name.rfind("memdx_", 0) == 0)) {
      throw Error(ErrorKind::kInvalidArgument,
                  "'" + name + "' is not a metric name of the program's ([a-zA-Z_:][a-zA-Z0-9_:]*, not memdx_...)");
    }
    if (counter && (name.size() <= 6 || name.compare(name.size() - 6, 6, "_total") != 0)) {
      throw Error(ErrorKind::kInvalidArgument, "counter '" + name + "' must end in _total");
    }
    for (const auto& [label, value] : labels) {
      if (!valid_name(label, false) || label.rfind("__", 0) == 0) {
        throw Error(ErrorKind::kInvalidArgument, "'" + label + "' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)");
      }
    }
    auto [it, added] = families.try_emplace(name);
    if (added) {
      it->second.counter = counter;
    } else if (it->second.counter != counter) {
      throw Error(ErrorKind::kInvalidArgument,
                  "'" + name + "' is already a " + (it->second.counter ? "counter" : "gauge"));
    }
    if (it->second.help.empty()) it->second.help = help;
    return it->second;
  }

  void set_library(const std::string& name, bool counter, double value, const MetricLabels& labels,
                   const std::string& help) {
    std::lock_guard<std::mutex> lock(mutex);
    family(name, counter, labels, help, true).samples[labels] = value;
  }

  std::vector<serve::ProgramFamily> program_families() const {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<serve::ProgramFamily> out;
    for (const auto& [name, family] : families) {
      serve::ProgramFamily rendered;
      rendered.name = family.counter ? name.substr(0, name.size() - 6) : name;
      rendered.counter = family.counter;
      rendered.help = family.help;
      for (const auto& [labels, value] : family.samples) rendered.samples.push_back({labels, value});
      out.push_back(std::move(rendered));
    }
    return out;
  }
};

MetricsExporter::MetricsExporter(MetricsExporterOptions options) : state_(std::make_shared<State>()) {
  state_->options = std::move(options);
  if (state_->options.interval.count() < 100) {
    throw Error(ErrorKind::kInvalidArgument, "the sampling interval must be 100 ms or more");
  }
  serve::MonitorOptions monitor_options;
  serve::TargetSpec self;
  self.kind = serve::TargetKind::kPid;
  self.pid = ::getpid();
  self.text = std::to_string(self.pid);
  monitor_options.targets = {self};
  monitor_options.interval = state_->options.interval;
  monitor_options.judge_interval = serve::judge_interval_for(monitor_options.interval);
  state_->monitor = std::make_unique<serve::Monitor>(monitor_options);
  state_->monitor->tick();
  state_->monitor->start();
  if (state_->options.listen.empty()) return;

  serve::ServerOptions server_options;
  try {
    server_options.address = serve::parse_listen(state_->options.listen);
  } catch (const std::invalid_argument& e) {
    throw Error(ErrorKind::kInvalidArgument, std::string("listen ") + e.what());
  }
  serve::Endpoints endpoints;
  endpoints.metrics = [this](serve::ExpositionFormat format, double previous_scrape_seconds) {
    return std::make_shared<const std::string>(
        render_text(format == serve::ExpositionFormat::kOpenMetrics, previous_scrape_seconds));
  };
  State* state = state_.get();
  endpoints.health = [state] {
    serve::HealthFacts facts;
    facts.uptime_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - state->monitor->started()).count();
    facts.interval_ms = state->options.interval.count();
    facts.now_unix_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    facts.version = MEMDX_VERSION_STRING;
    return serve::render_health(*state->monitor->latest(), facts);
  };
  endpoints.verdict = [state] { return verdict_json(*state->monitor->latest()->verdict); };
  try {
    state_->server = std::make_unique<serve::Server>(server_options, endpoints);
  } catch (const std::runtime_error& e) {
    throw Error(ErrorKind::kSystem, e.what());
  }
  state_->server->start();
}

MetricsExporter::~MetricsExporter() {
  // The server first: no scrape (and so no on_scrape function) runs after this.
  state_->server.reset();
  state_->monitor.reset();
}

int MetricsExporter::port() const {
  return state_->server ? state_->server->port() : 0;
}

void MetricsExporter::set_gauge(const std::string& name, double value, const MetricLabels& labels,
                                const std::string& help) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->family(name, false, labels, help).samples[labels] = value;
}

void MetricsExporter::add_to_counter(const std::string& name, double delta, const MetricLabels& labels,
                                     const std::string& help) {
  if (!(delta >= 0)) throw Error(ErrorKind::kInvalidArgument, "a counter only grows: delta must be 0 or more");
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->family(name, true, labels, help).samples[labels] += delta;
}

void MetricsExporter::set_counter(const std::string& name, double total, const MetricLabels& labels,
                                  const std::string& help) {
  if (!(total >= 0)) throw Error(ErrorKind::kInvalidArgument, "a counter's total must be 0 or more");
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->family(name, true, labels, help).samples[labels] = total;
}

void MetricsExporter::on_scrape(std::function<void(MetricsExporter&)> collect) {
  if (!collect) throw Error(ErrorKind::kInvalidArgument, "on_scrape needs a function");
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->collectors.push_back([this, collect = std::move(collect)] { collect(*this); });
}

void MetricsExporter::add_cache_source(const std::string& name, std::function<CacheFigures()> read) {
  State* state = state_.get();
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->collectors.push_back([state, name, read = std::move(read)] {
    CacheFigures figures = read();
    MetricLabels labels = {{"cache", name}};
    auto counter = [&](const char* metric, uint64_t value, const char* help) {
      state->set_library(metric, true, static_cast<double>(value), labels, help);
    };
    counter("memdx_cache_hits_total", figures.stats.hits, "Lookups the cache answered.");
    counter("memdx_cache_misses_total", figures.stats.misses, "Lookups of absent or expired keys.");
    counter("memdx_cache_evictions_total", figures.stats.evictions, "Live entries dropped to fit the budget.");
    counter("memdx_cache_expirations_total", figures.stats.expirations, "Entries dropped for outliving the ttl.");
    counter("memdx_cache_rejected_total", figures.stats.rejected, "Entries larger than the whole budget.");
    state->set_library("memdx_cache_size_bytes", false, static_cast<double>(figures.size_bytes), labels,
                       "Bytes the cache holds, as its entries declared them.");
    state->set_library("memdx_cache_budget_bytes", false, static_cast<double>(figures.budget_bytes), labels,
                       "The cache's budget.");
  });
}

void MetricsExporter::watch_governor(const Governor& governor) {
  State* state = state_.get();
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->collectors.push_back([state, &governor] {
    GovernorStats stats = governor.stats();
    state->set_library("memdx_governor_unloads_total", true, static_cast<double>(stats.unloaded_for_pressure),
                       {{"reason", "pressure"}}, "Resources the governor unloaded (or shrank), by reason.");
    state->set_library("memdx_governor_unloads_total", true, static_cast<double>(stats.unloaded_idle),
                       {{"reason", "idle"}}, "");
    state->set_library("memdx_governor_freed_bytes_total", true, static_cast<double>(stats.freed_bytes), {},
                       "Bytes the governor's unloads freed, as they said (or as registered).");
    state->set_library("memdx_governor_resources", false, static_cast<double>(stats.loaded), {{"state", "loaded"}},
                       "Resources under the governor, loaded or unloaded.");
    state->set_library("memdx_governor_resources", false, static_cast<double>(stats.resources - stats.loaded),
                       {{"state", "unloaded"}}, "");
    state->set_library("memdx_governor_loaded_bytes", false, static_cast<double>(stats.loaded_bytes), {},
                       "Registered bytes of the loaded resources.");
    state->set_library("memdx_governor_pressure_level", false, static_cast<double>(governor.pressure()), {},
                       "The pressure the governor acts on: 0 none, 1 moderate, 2 critical.");
  });
}

std::string MetricsExporter::render(bool open_metrics) const {
  return render_text(open_metrics, 0);
}

std::string MetricsExporter::render_text(bool open_metrics, double previous_scrape_seconds) const {
  std::vector<std::function<void()>> collectors;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    collectors = state_->collectors;
  }
  {
    std::lock_guard<std::mutex> lock(state_->collect_mutex);
    for (const auto& collect : collectors) collect();
  }
  return serve::render_metrics(
      *state_->monitor->latest(),
      open_metrics ? serve::ExpositionFormat::kOpenMetrics : serve::ExpositionFormat::kPrometheusText,
      previous_scrape_seconds, state_->program_families());
}

}  // namespace memdx
