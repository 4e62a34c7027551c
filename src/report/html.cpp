#include "report/html.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "analyze/wording.h"
#include "model/format.h"
#include "report/html_assets.h"
#include "report/html_data.h"
#include "report/verdict_text.h"

namespace memdx::report {
namespace {

using model::Finding;
using model::ProcessSummary;
using model::Verdict;

// Nothing may be fetched: the page must open offline and leak nothing about the machine it
// describes. Inline script and style are the only active content.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";

constexpr std::string_view kNoHeapTrace = "no heap trace: record with memdx run without --no-trace";

// Text and attribute values alike: with quotes escaped, one function serves both.
std::string escaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string optional_bytes(const std::optional<uint64_t>& value) {
  return value ? model::format_bytes(*value) : std::string("&ndash;");
}

std::string exit_text(const std::optional<int>& code, const std::optional<int>& signal) {
  if (signal) return fmt::format("signal {}", *signal);
  if (code) return fmt::format("exit {}", *code);
  return "running";
}

// A sentence of the head: what ran, where and when.
void render_header(std::string& out, const Verdict& verdict, const model::RecordingMeta& meta) {
  std::string command = model::joined(meta.command.empty() ? verdict.target.command : meta.command);
  out += "<header>\n<h1>memdx report</h1>\n";
  out += fmt::format("<p class=\"command\"><code>{}</code></p>\n", escaped(command));
  out += "<dl class=\"meta\">\n";
  auto item = [&](std::string_view term, const std::string& value) {
    if (!value.empty()) out += fmt::format("<div><dt>{}</dt><dd>{}</dd></div>\n", term, escaped(value));
  };
  item("started", meta.started_at_utc);
  item("duration", analyze::duration_text(verdict.target.duration_s));
  item("host", meta.host);
  item("kernel", meta.kernel);
  item("interval", fmt::format("{} ms", meta.interval_ms));
  item("processes", std::to_string(verdict.processes.size()));
  if (meta.cgroup_max_bytes) item("cgroup memory.max", model::format_bytes(*meta.cgroup_max_bytes));
  if (meta.mem_total_bytes) item("MemTotal", model::format_bytes(*meta.mem_total_bytes));
  out += "</dl>\n</header>\n";
}

void render_nav(std::string& out) {
  out +=
      "<nav><a href=\"#verdict\">Verdict</a><a href=\"#hypotheses-section\">Hypotheses</a>"
      "<a href=\"#timelines\">Timelines</a><a href=\"#heap\">Heap</a><a href=\"#sites\">Sites</a>"
      "<a href=\"#processes\">Processes</a></nav>\n";
}

std::string site_place(const std::string& file, int line) {
  if (file.empty()) return "\u2013";  // no debug information
  return line > 0 ? fmt::format("{}:{}", file, line) : file;
}

std::string finding_sites(const Finding& f) {
  if (f.sites.empty()) return "";
  std::string out = "<ul class=\"sites\">";
  for (const model::Site& site : f.sites) {
    out += fmt::format("<li><code>{}</code> <span class=\"place\">{}</span> {} live, {}/s</li>", escaped(site.function),
                       escaped(site_place(site.file, site.line)), model::format_bytes(site.live_bytes),
                       model::format_bytes(analyze::to_bytes(site.growth_bytes_per_s)));
  }
  return out + "</ul>";
}

std::string time_to_limit(const Finding& f) {
  if (!f.time_to_limit_s) return "&ndash;";
  std::string limit = f.limit ? to_string(*f.limit) : "the limit";
  if (f.limit_bytes) limit += " (" + model::format_bytes(*f.limit_bytes) + ")";
  return fmt::format("reaches {} in {}", escaped(limit), escaped(format_duration(*f.time_to_limit_s)));
}

void render_findings(std::string& out, const Verdict& verdict) {
  if (verdict.findings.empty()) {
    out += "<p class=\"empty\">No findings: the recording holds too few samples to judge.</p>\n";
    return;
  }
  out +=
      "<table class=\"findings\"><thead><tr><th>severity</th><th>kind</th><th class=\"num\">pid</th>"
      "<th>evidence</th><th>time to limit</th></tr></thead><tbody>\n";
  // A thousand bounded workers are one sentence, not a thousand rows: the root's no_growth is
  // shown, the others counted (each is in the process tree and the JSON).
  size_t bounded_others = 0;
  for (const Finding& f : verdict.findings) {
    if (counted_only_bounded(verdict, f)) {
      ++bounded_others;
      continue;
    }
    out += fmt::format(
        "<tr data-kind=\"{0}\" data-severity=\"{1}\"><td><span class=\"badge sev-{1}\">{1}</span></td><td>{0}</td>"
        "<td class=\"num\">{2}</td><td>{3}{4}</td><td>{5}</td></tr>\n",
        escaped(to_string(f.kind)), escaped(to_string(f.severity)), f.pid, escaped(f.evidence), finding_sites(f),
        time_to_limit(f));
  }
  if (bounded_others) {
    out += fmt::format(
        "<tr class=\"more\"><td></td><td>no_growth</td><td></td><td>{} more process{} stayed bounded "
        "(see the <a href=\"#processes\">process tree</a>)</td><td></td></tr>\n",
        bounded_others, bounded_others == 1 ? "" : "es");
  }
  out += "</tbody></table>\n";
}

void render_verdict(std::string& out, const Verdict& verdict, const std::string& recording_path) {
  bool leak = model::has_leak(verdict);
  out += fmt::format("<section id=\"verdict\" data-leak=\"{}\" class=\"{}\">\n", leak ? "true" : "false",
                     leak ? "leak" : "ok");
  out += fmt::format("<h2 class=\"headline\">{}</h2>\n", escaped(verdict_headline(verdict)));
  render_findings(out, verdict);
  std::vector<std::string> steps = next_steps(verdict, recording_path);
  if (!steps.empty()) {
    out += "<h3>Next</h3>\n<ul id=\"next-steps\">\n";
    for (const std::string& step : steps) out += fmt::format("<li>{}</li>\n", escaped(step));
    out += "</ul>\n";
  }
  out += "</section>\n";
}

// Confirmed is red when it is a leak the verdict reports, amber otherwise (reserved address
// space or page cache are confirmed without being a problem).
std::string status_class(const Verdict& verdict, const model::Hypothesis& h) {
  if (h.status != model::HypothesisStatus::kConfirmed) return std::string("status-") + to_string(h.status);
  const Finding* f = model::find_finding(verdict.findings, h.pid, h.kind);
  return f && f->severity == model::Severity::kLeak ? "status-confirmed leak" : "status-confirmed";
}

int status_rank(model::HypothesisStatus status) {
  switch (status) {
    case model::HypothesisStatus::kConfirmed:
      return 0;
    case model::HypothesisStatus::kInconclusive:
      return 1;
    case model::HypothesisStatus::kEliminated:
      return 2;
    case model::HypothesisStatus::kNotMeasured:
      break;
  }
  return 3;
}

// Each process's rows together, in the verdict's process order; within a process what was
// confirmed first, then what could not be decided, then what was ruled out.
std::vector<const model::Hypothesis*> reading_order(const std::vector<model::Hypothesis>& hypotheses) {
  std::map<pid_t, size_t> first_row;
  for (size_t i = 0; i < hypotheses.size(); ++i) first_row.emplace(hypotheses[i].pid, i);
  std::vector<const model::Hypothesis*> order;
  order.reserve(hypotheses.size());
  for (const model::Hypothesis& h : hypotheses) order.push_back(&h);
  std::stable_sort(order.begin(), order.end(), [&](auto* a, auto* b) {
    return std::pair(first_row[a->pid], status_rank(a->status)) < std::pair(first_row[b->pid], status_rank(b->status));
  });
  return order;
}

void render_hypotheses(std::string& out, const Verdict& verdict) {
  out += "<section id=\"hypotheses-section\">\n<h2>Hypotheses</h2>\n";
  if (verdict.hypotheses.empty()) {
    out += "<p class=\"empty\">No hypotheses were judged for this recording.</p>\n";
  }
  out +=
      "<table id=\"hypotheses\"><thead><tr><th class=\"num\">pid</th><th>hypothesis</th><th>status</th>"
      "<th>statement</th><th>evidence</th></tr></thead><tbody>\n";
  for (const model::Hypothesis* hp : reading_order(verdict.hypotheses)) {
    const model::Hypothesis& h = *hp;
    out += fmt::format(
        "<tr data-name=\"{0}\" data-pid=\"{1}\" data-status=\"{2}\"><td class=\"num\">{1}</td><td><code>{0}</code></td>"
        "<td><span class=\"badge {3}\">{4}</span></td><td>{5}</td><td>{6}</td></tr>\n",
        escaped(to_string(h.kind)), h.pid, escaped(to_string(h.status)), escaped(status_class(verdict, h)),
        escaped(h.status == model::HypothesisStatus::kNotMeasured ? "not measured" : to_string(h.status)),
        escaped(h.statement), escaped(h.evidence));
  }
  out += "</tbody></table>\n</section>\n";
}

void render_timelines(std::string& out, const Verdict& verdict, const std::set<pid_t>& with_timelines) {
  out += "<section id=\"timelines\">\n<h2>Timelines</h2>\n";
  size_t total = std::max(verdict.processes.size(), with_timelines.size());
  if (with_timelines.size() < total) {
    out += fmt::format(
        "<p class=\"note\">Full timelines for {} of {} processes: the root and the largest by peak "
        "PSS. The others have a sparkline of RSS in the <a href=\"#processes\">process tree</a>.</p>\n",
        with_timelines.size(), total);
  }
  out +=
      "<p class=\"note\">Each line spans the minimum and maximum of its time bucket, so short spikes stay "
      "visible.</p>\n<div id=\"timeline-charts\"></div>\n</section>\n";
}

std::string pruned_note(const nlohmann::ordered_json& flame, const HtmlOptions& options) {
  size_t pruned = flame.value("pruned", size_t{0});
  if (pruned == 0) return "";
  std::string why = fmt::format("under {:g}% of the total", options.flame_min_share * 100);
  if (flame.value("nodes", size_t{0}) >= options.flame_max_nodes) {
    why += fmt::format(", or beyond the {} largest", options.flame_max_nodes);
  }
  return fmt::format(" {} small frames ({}) are folded into their callers.", pruned, why);
}

void render_flame(std::string& out, const nlohmann::ordered_json& flame, const HtmlOptions& options,
                  std::string_view id, std::string_view title, std::string_view what) {
  out +=
      fmt::format("<h3>{}</h3>\n<p class=\"note\">{} Total {}.{} Click a frame to zoom, the top bar to zoom out.</p>\n",
                  title, what, model::format_bytes(flame.value("total", uint64_t{0})), pruned_note(flame, options));
  out += fmt::format("<div class=\"flame\" id=\"{}\"></div>\n", id);
}

void render_heap_flames(std::string& out, const nlohmann::ordered_json& data, const HtmlOptions& options) {
  out += "<section id=\"heap\">\n<h2>Heap</h2>\n";
  const nlohmann::ordered_json& flame = data["flame"];
  if (flame.is_null()) {
    out += fmt::format("<p class=\"empty\" id=\"no-heap-trace\">{}</p>\n</section>\n", kNoHeapTrace);
    return;
  }
  render_flame(out, flame["peak"], options, "flame-peak", "Live heap at its peak",
               "Who held the heap when it was largest: what has to fit at the worst moment.");
  render_flame(out, flame["growth"], options, "flame-growth", "Memory growth",
               "Which stacks' live bytes grew over the run, malloc'd or mapped: where a leak is allocated.");
  out += "</section>\n";
}

// "file.cpp:42" for a long path: the last directory and the file name, the whole path in the
// cell's title; the column keeps the numbers to its right on screen.
std::string short_place(const std::string& file, int line) {
  std::string place = site_place(file, line);
  size_t last = file.rfind('/');
  if (last == std::string::npos || last == 0) return place;
  size_t parent = file.rfind('/', last - 1);
  if (parent == std::string::npos) return place;
  return "\u2026" + site_place(file.substr(parent), line);
}

struct SiteRow {
  pid_t pid;
  const char* memory;  // "heap" or "mmap"
  const model::HeapSiteSummary* site;
};

// The rows in the order of the table's first figure: growing sites first, fastest first, then
// by what they held at the peak, then at the end.
void sort_site_rows(std::vector<SiteRow>& rows) {
  std::stable_sort(rows.begin(), rows.end(), [](const SiteRow& a, const SiteRow& b) {
    return std::make_tuple(a.site->growing, a.site->growth_bytes_per_s, a.site->live_at_peak_bytes,
                           a.site->final_live_bytes) > std::make_tuple(b.site->growing, b.site->growth_bytes_per_s,
                                                                       b.site->live_at_peak_bytes,
                                                                       b.site->final_live_bytes);
  });
}

void render_site_row(std::string& out, const SiteRow& row) {
  const model::HeapSiteSummary& s = *row.site;
  std::string function = s.function.empty() ? "?" : s.function;
  out += fmt::format(
      "<tr{} data-memory=\"{}\"><td class=\"num\">{}</td><td>{}</td><td class=\"function\" "
      "title=\"{}\"><code>{}</code></td>"
      "<td class=\"place\" title=\"{}\">{}</td><td class=\"num\">{}/s</td><td class=\"num\">{}</td>"
      "<td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
      s.growing ? " class=\"growing\"" : "", row.memory, row.pid, row.memory, escaped(function), escaped(function),
      escaped(site_place(s.file, s.line)), escaped(short_place(s.file, s.line)),
      model::format_bytes(analyze::to_bytes(s.growth_bytes_per_s)), model::format_bytes(s.live_at_peak_bytes),
      model::format_bytes(s.final_live_bytes), s.allocations);
}

void render_sites(std::string& out, const Verdict& verdict, const HtmlOptions& options) {
  out += "<section id=\"sites\">\n<h2>Top heap sites</h2>\n";
  if (verdict.heap.empty()) {
    out += fmt::format("<p class=\"empty\">{}</p>\n</section>\n", kNoHeapTrace);
    return;
  }
  std::vector<const model::HeapSummary*> order;
  for (const model::HeapSummary& h : verdict.heap) order.push_back(&h);
  std::stable_sort(order.begin(), order.end(),
                   [](auto* a, auto* b) { return a->peak_live_bytes > b->peak_live_bytes; });
  // Heap and direct-mmap sites in one table: a finding of anon or shmem growth is held by mmap
  // sites, and its culprit must be in the table.
  std::vector<SiteRow> rows;
  for (size_t i = 0; i < std::min(order.size(), options.processes_with_sites); ++i) {
    std::vector<SiteRow> own;
    for (const auto& site : order[i]->sites) own.push_back({order[i]->pid, "heap", &site});
    for (const auto& site : order[i]->mapped_sites) own.push_back({order[i]->pid, "mmap", &site});
    sort_site_rows(own);
    if (own.size() > options.sites_per_process) own.resize(options.sites_per_process);
    rows.insert(rows.end(), own.begin(), own.end());
  }
  sort_site_rows(rows);
  out +=
      "<table id=\"site-table\"><thead><tr><th class=\"num\">pid</th><th>memory</th><th>function</th><th>file:line</th>"
      "<th class=\"num\">growth &#9660;</th><th class=\"num\">live at peak</th><th class=\"num\">final live</th>"
      "<th class=\"num\">allocations</th></tr></thead><tbody>\n";
  for (const SiteRow& row : rows) render_site_row(out, row);
  out += "</tbody></table>\n";
  if (order.size() > options.processes_with_sites) {
    out += fmt::format(
        "<p class=\"note\">{} more process images with smaller heaps: all of them in "
        "<code>memdx report --json</code>.</p>\n",
        order.size() - options.processes_with_sites);
  }
  out += "</section>\n";
}

// Depth-first from the roots (processes whose parent was not recorded), children by pid.
void tree_order(const std::map<pid_t, std::vector<const ProcessSummary*>>& children, const ProcessSummary* p,
                size_t depth, std::vector<std::pair<const ProcessSummary*, size_t>>& out) {
  out.emplace_back(p, depth);
  auto it = children.find(p->pid);
  if (it == children.end()) return;
  for (const ProcessSummary* child : it->second) tree_order(children, child, depth + 1, out);
}

std::vector<std::pair<const ProcessSummary*, size_t>> process_tree(const Verdict& verdict) {
  std::set<pid_t> pids;
  for (const ProcessSummary& p : verdict.processes) pids.insert(p.pid);
  std::map<pid_t, std::vector<const ProcessSummary*>> children;
  std::vector<const ProcessSummary*> roots;
  for (const ProcessSummary& p : verdict.processes) {
    bool has_parent = pids.count(p.ppid) && p.ppid != p.pid;
    (has_parent ? children[p.ppid] : roots).push_back(&p);
  }
  auto by_pid = [](auto* a, auto* b) { return a->pid < b->pid; };
  std::sort(roots.begin(), roots.end(), by_pid);
  for (auto& [pid, list] : children) std::sort(list.begin(), list.end(), by_pid);
  std::vector<std::pair<const ProcessSummary*, size_t>> order;
  for (const ProcessSummary* root : roots) tree_order(children, root, 0, order);
  return order;
}

void render_process_tree(std::string& out, const Verdict& verdict, const std::set<pid_t>& with_timelines) {
  out += "<section id=\"processes\">\n<h2>Process tree</h2>\n";
  out +=
      "<table id=\"process-tree\"><thead><tr><th class=\"num\">pid</th><th class=\"num\">ppid</th><th>command</th>"
      "<th class=\"num\">peak RSS</th><th class=\"num\">peak PSS</th><th>exit</th><th>RSS</th></tr></thead><tbody>\n";
  for (const auto& [p, depth] : process_tree(verdict)) {
    std::string chart = with_timelines.count(p->pid)
                            ? fmt::format("<a href=\"#proc-{}\">timeline</a>", p->pid)
                            : fmt::format("<span class=\"spark\" data-pid=\"{}\"></span>", p->pid);
    out += fmt::format(
        "<tr data-pid=\"{0}\"><td class=\"num\">{0}</td><td class=\"num\">{1}</td>"
        "<td class=\"cmd\" style=\"padding-left:{2:.1f}em\"><code>{3}</code></td><td class=\"num\">{4}</td>"
        "<td class=\"num\">{5}</td><td>{6}</td><td>{7}</td></tr>\n",
        p->pid, p->ppid, 0.6 + 1.2 * static_cast<double>(std::min<size_t>(depth, 24)), escaped(p->command),
        model::format_bytes(p->peak_rss_bytes), optional_bytes(p->peak_pss_bytes),
        exit_text(p->exit_code, p->exit_signal), chart);
  }
  out += "</tbody></table>\n</section>\n";
}

void render_head(std::string& out, const Verdict& verdict, const model::RecordingMeta& meta) {
  std::string command = model::joined(meta.command.empty() ? verdict.target.command : meta.command);
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += fmt::format("<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n", kContentSecurityPolicy);
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += fmt::format("<title>memdx: {}</title>\n", escaped(command.substr(0, 120)));
  out += "<style>\n";
  out += html_assets::kReportCss;
  out += "</style>\n</head>\n";
}

}  // namespace

analyze::TimelineOptions timeline_options(const model::Verdict& verdict, const HtmlOptions& options) {
  std::vector<std::pair<uint64_t, pid_t>> by_size;  // peak, pid
  for (const model::ProcessSummary& p : verdict.processes) {
    if (p.peak_rss_bytes == 0) continue;  // never sampled: nothing to draw
    by_size.emplace_back(p.peak_pss_bytes.value_or(0) ? *p.peak_pss_bytes : p.peak_rss_bytes, p.pid);
  }
  std::sort(by_size.begin(), by_size.end(),
            [](auto& a, auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  std::set<pid_t> chosen;
  if (auto root = html::root_of(verdict); root && options.processes_with_timelines > 0) chosen.insert(*root);
  for (const auto& [peak, pid] : by_size) {
    if (chosen.size() >= options.processes_with_timelines) break;
    chosen.insert(pid);
  }
  return {std::move(chosen), options.buckets_per_series, options.sparkline_buckets};
}

std::string render_html(const HtmlInput& input, const HtmlOptions& options) {
  const model::Verdict& verdict = input.verdict;
  const model::RecordingMeta& meta = input.meta;
  const std::set<pid_t>& with_timelines = input.timelines.full;
  nlohmann::ordered_json blob = html::report_data(input, options);
  std::string out;
  render_head(out, verdict, meta);
  out += "<body>\n";
  render_header(out, verdict, meta);
  render_nav(out);
  out += "<main>\n";
  render_verdict(out, verdict, options.recording_path);
  render_hypotheses(out, verdict);
  render_timelines(out, verdict, with_timelines);
  render_heap_flames(out, blob, options);
  render_sites(out, verdict, options);
  render_process_tree(out, verdict, with_timelines);
  out += "</main>\n<footer>Made by memdx";
  if (!meta.memdx_version.empty()) out += " " + escaped(meta.memdx_version);
  out += ". This page fetches nothing: everything it shows is inside it.</footer>\n";
  out += "<script type=\"application/json\" id=\"memdx-data\">";
  out += html::script_safe_json(blob);
  out += "</script>\n<script>\n";
  out += html_assets::kReportJs;
  out += "</script>\n</body>\n</html>\n";
  return out;
}

}  // namespace memdx::report
