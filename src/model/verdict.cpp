#include "model/verdict.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "model/json_text.h"
#include "model/kinds.h"

namespace memdx::model {
namespace {

using Json = nlohmann::ordered_json;

template <class T>
Json optional_json(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

Json site_json(const Site& s) {
  return {{"function", s.function},
          {"file", s.file},
          {"line", s.line},
          {"live_bytes", s.live_bytes},
          {"growth_bytes_per_s", s.growth_bytes_per_s},
          {"live_at_peak_bytes", s.live_at_peak_bytes},
          {"stack", s.stack}};
}

// DESIGN.md's fields in its order, then the additions (series, unit, levels, limit), sites last.
Json finding_json(const Finding& f) {
  Json sites = Json::array();
  for (const Site& s : f.sites) sites.push_back(site_json(s));
  return {{"kind", to_string(f.kind)},
          {"severity", to_string(f.severity)},
          {"pid", f.pid},
          {"rate_bytes_per_s", f.is_bytes() ? Json(f.rate_per_s) : Json(nullptr)},
          {"confidence", f.confidence},
          {"evidence", f.evidence},
          {"series", to_string(f.series)},
          {"unit", to_string(f.unit)},
          {"rate_per_s", f.rate_per_s},
          {"start_level", f.start_level},
          {"end_level", f.end_level},
          {"time_to_limit_s", optional_json(f.time_to_limit_s)},
          {"limit_name", f.time_to_limit_s && f.limit ? Json(to_string(*f.limit)) : Json(nullptr)},
          {"limit_bytes", f.time_to_limit_s ? optional_json(f.limit_bytes) : Json(nullptr)},
          {"sites", sites},
          {"devices", f.devices}};
}

Json process_json(const ProcessSummary& p) {
  return {{"pid", p.pid},
          {"ppid", p.ppid},
          {"command", p.command},
          {"peak_rss_bytes", p.peak_rss_bytes},
          {"peak_pss_bytes", optional_json(p.peak_pss_bytes)},
          {"peak_vsz_bytes", p.peak_vsz_bytes},
          {"peak_heap_live_bytes", optional_json(p.peak_heap_live_bytes)},
          {"final_rss_bytes", p.final_rss_bytes},
          {"exit_code", optional_json(p.exit_code)},
          {"exit_signal", optional_json(p.exit_signal)},
          {"first_seen_s", p.first_seen_s},
          {"exited_s", optional_json(p.exited_s)}};
}

Json target_json(const Target& t) {
  return {{"command", t.command},
          {"pid", t.pid},
          {"exit_code", optional_json(t.exit_code)},
          {"exit_signal", optional_json(t.exit_signal)},
          {"duration_s", t.duration_s}};
}

Json hypothesis_json(const Hypothesis& h) {
  return {{"name", to_string(h.kind)},
          {"pid", h.pid},
          {"status", to_string(h.status)},
          {"statement", h.statement},
          {"evidence", h.evidence}};
}

Json heap_site_path_json(const HeapSitePath& p) {
  return {{"allocations", p.allocations},
          {"allocated_bytes", p.allocated_bytes},
          {"peak_live_bytes", p.peak_live_bytes},
          {"live_at_peak_bytes", p.live_at_peak_bytes},
          {"final_live_bytes", p.final_live_bytes},
          {"final_live_blocks", p.final_live_blocks},
          {"temporary_allocations", p.temporary_allocations},
          {"growth_bytes_per_s", p.growth_bytes_per_s},
          {"stack", p.stack}};
}

Json heap_site_json(const HeapSiteSummary& s) {
  Json paths = Json::array();
  for (const HeapSitePath& p : s.paths) paths.push_back(heap_site_path_json(p));
  return {{"function", s.function},
          {"file", s.file},
          {"line", s.line},
          {"allocations", s.allocations},
          {"allocated_bytes", s.allocated_bytes},
          {"peak_live_bytes", s.peak_live_bytes},
          {"peak_live_bytes_exact", s.peak_live_bytes_exact},
          {"live_at_peak_bytes", s.live_at_peak_bytes},
          {"final_live_bytes", s.final_live_bytes},
          {"final_live_blocks", s.final_live_blocks},
          {"temporary_allocations", s.temporary_allocations},
          {"reserved_bytes", s.reserved_bytes},
          {"runtime_once", s.runtime_once.empty() ? Json(nullptr) : Json(s.runtime_once)},
          {"growth_bytes_per_s", s.growth_bytes_per_s},
          {"growing", s.growing},
          {"stack", s.stack},
          {"path_count", s.path_count},
          {"paths", paths}};
}

Json heap_json(const HeapSummary& h) {
  Json sites = Json::array(), mapped_sites = Json::array();
  for (const HeapSiteSummary& s : h.sites) sites.push_back(heap_site_json(s));
  for (const HeapSiteSummary& s : h.mapped_sites) mapped_sites.push_back(heap_site_json(s));
  return {{"pid", h.pid},
          {"ppid", h.ppid},
          {"ended", to_string(h.ended)},
          {"sample_bytes", h.sample_bytes},
          {"allocations", h.allocations},
          {"frees", h.frees},
          {"allocated_bytes", h.allocated_bytes},
          {"peak_live_bytes", h.peak_live_bytes},
          {"final_live_bytes", h.final_live_bytes},
          {"final_live_blocks", h.final_live_blocks},
          {"temporary_allocations", h.temporary_allocations},
          {"unmatched_frees", h.unmatched_frees},
          {"maps", h.maps},
          {"mapped_bytes", h.mapped_bytes},
          {"peak_mapped_live_bytes", h.peak_mapped_live_bytes},
          {"final_mapped_live_bytes", h.final_mapped_live_bytes},
          {"final_mapped_reserved_bytes", h.final_mapped_reserved_bytes},
          {"peak_mapped_reserved_bytes", h.peak_mapped_reserved_bytes},
          {"peak_tracer_bytes", h.peak_tracer_bytes},
          {"distinct_stacks", h.distinct_stacks},
          {"duration_s", h.duration_s},
          {"sites", sites},
          {"mapped_sites", mapped_sites},
          {"suppressed",
           {{"stacks", h.suppressed.stacks},
            {"allocations", h.suppressed.allocations},
            {"allocated_bytes", h.suppressed.allocated_bytes},
            {"final_live_bytes", h.suppressed.final_live_bytes},
            {"live_at_peak_bytes", h.suppressed.live_at_peak_bytes}}}};
}

}  // namespace

Json to_json(const Verdict& verdict) {
  Json processes = Json::array();
  for (const ProcessSummary& p : verdict.processes) processes.push_back(process_json(p));
  Json findings = Json::array();
  for (const Finding& f : verdict.findings) findings.push_back(finding_json(f));
  Json hypotheses = Json::array();
  for (const Hypothesis& h : verdict.hypotheses) hypotheses.push_back(hypothesis_json(h));
  Json heap = Json::array();
  for (const HeapSummary& h : verdict.heap) heap.push_back(heap_json(h));
  return {{"schema", "memdx.verdict/1"}, {"target", target_json(verdict.target)},
          {"processes", processes},      {"heap", heap},
          {"findings", findings},        {"hypotheses", hypotheses}};
}

const Finding* find_finding(const std::vector<Finding>& findings, pid_t pid, FindingKind kind) {
  auto it =
      std::find_if(findings.begin(), findings.end(), [&](const Finding& f) { return f.pid == pid && f.kind == kind; });
  return it == findings.end() ? nullptr : &*it;
}

const Finding* find_finding(const std::vector<Finding>& findings, pid_t pid, HypothesisKind kind) {
  std::optional<FindingKind> finding = finding_kind_of(kind);
  return finding ? find_finding(findings, pid, *finding) : nullptr;
}

std::optional<FindingKind> finding_kind_of(HypothesisKind kind) {
  return row_of(kind).finding;
}

Unit unit_of(Series series) {
  switch (series) {
    case Series::kFds:
      return Unit::kFds;
    case Series::kThreads:
      return Unit::kThreads;
    default:
      return Unit::kBytes;
  }
}

}  // namespace memdx::model

namespace memdx {

const char* to_string(FindingKind kind) {
  return model::row_of(kind).json_name;
}

const char* to_string(Severity severity) {
  switch (severity) {
    case Severity::kLeak:
      return "leak";
    case Severity::kWarning:
      return "warning";
    case Severity::kInfo:
      return "info";
  }
  return "unknown";
}

const char* to_string(HypothesisKind kind) {
  return model::row_of(kind).json_name;
}

const char* to_string(HypothesisStatus status) {
  switch (status) {
    case HypothesisStatus::kConfirmed:
      return "confirmed";
    case HypothesisStatus::kEliminated:
      return "eliminated";
    case HypothesisStatus::kInconclusive:
      return "inconclusive";
    case HypothesisStatus::kNotMeasured:
      return "not_measured";
  }
  return "unknown";
}

const char* to_string(Series series) {
  switch (series) {
    case Series::kRss:
      return "rss_bytes";
    case Series::kRssAnon:
      return "rss_anon_bytes";
    case Series::kRssAnonWithSwap:
      return "rss_anon_bytes+swap_bytes";
    case Series::kRssFile:
      return "rss_file_bytes";
    case Series::kRssShmem:
      return "rss_shmem_bytes";
    case Series::kSwap:
      return "swap_bytes";
    case Series::kVsz:
      return "vsz_bytes";
    case Series::kHeapLive:
      return "heap_live_bytes";
    case Series::kHeapSiteLive:
      return "heap_site_live_bytes";
    case Series::kFds:
      return "fds";
    case Series::kThreads:
      return "threads";
    case Series::kGpu:
      return "gpu_bytes";
  }
  return "unknown";
}

const char* to_string(Unit unit) {
  switch (unit) {
    case Unit::kBytes:
      return "bytes";
    case Unit::kFds:
      return "fds";
    case Unit::kThreads:
      return "threads";
  }
  return "unknown";
}

const char* to_string(LimitKind limit) {
  switch (limit) {
    case LimitKind::kCgroupMemoryMax:
      return "cgroup memory.max";
    case LimitKind::kMemAvailable:
      return "MemAvailable";
  }
  return "unknown";
}

const char* to_string(StreamEnd end) {
  switch (end) {
    case StreamEnd::kExit:
      return "exit";
    case StreamEnd::kExec:
      return "exec";
    case StreamEnd::kAbort:
      return "abort";
    case StreamEnd::kKilled:
      return "killed";
    case StreamEnd::kTraceLost:
      return "trace lost";
    case StreamEnd::kCutShort:
      return "cut short";
  }
  return "unknown";
}

bool has_leak(const Verdict& verdict) {
  return std::any_of(verdict.findings.begin(), verdict.findings.end(),
                     [](const Finding& f) { return f.severity == Severity::kLeak; });
}

std::string verdict_json(const Verdict& verdict) {
  return model::json_text(model::to_json(verdict));
}

}  // namespace memdx
