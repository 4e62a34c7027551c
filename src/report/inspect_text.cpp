#include "report/inspect_text.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "model/format.h"
#include "model/terminal_text.h"

namespace memdx::report {
namespace {

using model::format_bytes;
using model::InspectReport;
using model::ProcessSnapshot;

std::string opt_bytes(const std::optional<uint64_t>& bytes, const char* missing = "n/a") {
  return bytes ? format_bytes(*bytes) : std::string(missing);
}

using model::shorten;

// Command lines, region labels, module and cgroup paths come from the target: a name with an
// escape sequence or a newline must neither act on the terminal nor break the layout.
std::string printable(const std::string& text) {
  return model::terminal_safe(text);
}

// "on nvidia0 1.0 GiB, on amdgpu 0000:03:00.0 300 MiB (vram 256 MiB, gtt 44 MiB)": where the GPU
// memory of a process lives, device by device.
std::string gpu_where(const std::vector<model::GpuUsage>& usages) {
  if (usages.empty()) return "on no device (the driver lists no memory of this process)";
  std::string out;
  for (const model::GpuUsage& usage : usages) {
    if (!out.empty()) out += ", ";
    out += fmt::format("on {} {}", usage.device_id, format_bytes(usage.bytes));
    std::string regions;
    for (const auto& [region, bytes] : usage.region_bytes) {
      if (bytes == 0) continue;
      regions += fmt::format("{}{} {}", regions.empty() ? "" : ", ", region, format_bytes(bytes));
    }
    if (!regions.empty()) out += " (" + regions + ")";
  }
  return out;
}

void render_memory(std::string& out, const ProcessSnapshot& p) {
  const auto& m = p.memory;
  out += fmt::format("  RSS   {:>10}  = anon {} + file {} + shmem {}\n", format_bytes(m.rss_bytes),
                     format_bytes(m.rss_anon_bytes), format_bytes(m.rss_file_bytes), format_bytes(m.rss_shmem_bytes));
  out += fmt::format("  PSS   {:>10}    USS {}   (PSS shares shared pages out; USS is private to this process)\n",
                     opt_bytes(m.pss_bytes), opt_bytes(m.uss_bytes));
  out += fmt::format("  swap  {:>10}    SwapPss {}\n", format_bytes(m.swap_bytes), opt_bytes(m.swap_pss_bytes));
  out += fmt::format("  VSZ   {:>10}    peak RSS {}   locked {}\n", format_bytes(m.vsz_bytes),
                     format_bytes(m.peak_rss_bytes), format_bytes(m.locked_bytes));
  if (p.gpu) out += fmt::format("  GPU   {:>10}    {}\n", format_bytes(*p.gpu_bytes()), gpu_where(*p.gpu));
}

void render_regions(std::string& out, const ProcessSnapshot& p, const InspectTextOptions& options) {
  if (!p.regions_measured) return;
  out += fmt::format("\n  {:<22} {:>6} {:>11} {:>11} {:>11}\n", "by region", "count", "VSZ", "RSS", "PSS");
  for (const auto& r : p.regions) {
    out += fmt::format("  {:<22} {:>6} {:>11} {:>11} {:>11}\n", model::category_description(r.category), r.count,
                       format_bytes(r.vsz_bytes), format_bytes(r.rss_bytes), format_bytes(r.pss_bytes));
  }
  size_t shown = std::min(options.top_regions, p.top_regions.size());
  if (shown > 0) {
    out += fmt::format("\n  {:<49} {:>11} {:>11}\n", "top regions by RSS", "RSS", "VSZ");
    for (size_t i = 0; i < shown; ++i) {
      const auto& r = p.top_regions[i];
      std::string what = fmt::format("{} {}", r.perms, printable(r.label));
      out += fmt::format("  {:<49} {:>11} {:>11}\n", shorten(what, 49), format_bytes(r.rss_bytes),
                         format_bytes(r.vsz_bytes));
    }
  }
  size_t modules = std::min(options.top_modules, p.modules.size());
  if (modules > 0) {
    out += fmt::format("\n  {:<49} {:>11} {:>11}\n", "file-backed by module", "code RSS", "data RSS");
    for (size_t i = 0; i < modules; ++i) {
      const auto& m = p.modules[i];
      out += fmt::format("  {:<49} {:>11} {:>11}\n", shorten(printable(m.path), 49), format_bytes(m.code_rss_bytes),
                         format_bytes(m.data_rss_bytes));
    }
    if (p.modules.size() > modules) out += fmt::format("  ... and {} more\n", p.modules.size() - modules);
  }
}

std::string fd_line(const ProcessSnapshot& p) {
  if (!p.fds) return "fds not readable";
  std::vector<std::pair<std::string, uint32_t>> types(p.fds->by_type.begin(), p.fds->by_type.end());
  std::sort(types.begin(), types.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::string line = fmt::format("fds {}", p.fds->total);
  for (size_t i = 0; i < types.size(); ++i) {
    line += fmt::format("{}{} {}", i == 0 ? ": " : ", ", types[i].first, types[i].second);
  }
  return line;
}

std::string children_line(const ProcessSnapshot& p) {
  if (p.children.empty()) return "no children";
  std::string line = fmt::format("{} child{}:", p.children.size(), p.children.size() == 1 ? "" : "ren");
  for (size_t i = 0; i < p.children.size() && i < 12; ++i) line += fmt::format(" {}", p.children[i]);
  if (p.children.size() > 12) line += " ...";
  return line;
}

std::string process_heading(const ProcessSnapshot& p) {
  std::string kind = p.is_zombie          ? " [zombie: exited, not yet reaped by its parent]"
                     : p.is_kernel_thread ? " [kernel thread: no user memory]"
                                          : "";
  return fmt::format("pid {}  {}{}\n", p.pid, shorten(printable(p.command_line()), 80), kind);
}

void render_process(std::string& out, const ProcessSnapshot& p, const InspectTextOptions& options) {
  out += process_heading(p);
  out += fmt::format("  ppid {}, uid {}, state {}, {} thread{}, {}, {}\n", p.ppid, p.uid, p.state, p.threads,
                     p.threads == 1 ? "" : "s", fd_line(p), children_line(p));
  if (p.is_kernel_thread || p.is_zombie) return;
  render_memory(out, p);
  render_regions(out, p, options);
}

void render_tree(std::string& out, const InspectReport& report, const InspectTextOptions& options) {
  const pid_t root = report.processes.front().pid;
  out += fmt::format("process tree of pid {}: {} process{}\n", root, report.processes.size(),
                     report.processes.size() == 1 ? "" : "es");
  // COMMAND comes last, as in ps: the tree indentation and long command lines need the room.
  constexpr const char* kRow = "  {:>8} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>5} {:>5}  {}\n";
  out += fmt::format(kRow, "PID", "PPID", "RSS", "PSS", "USS", "SWAP", "VSZ", "THR", "FDS", "COMMAND");
  std::map<pid_t, int> depth;
  for (const ProcessSnapshot& p : report.processes) {
    auto parent = depth.find(p.ppid);
    int d = (p.pid == root || parent == depth.end()) ? 0 : parent->second + 1;
    depth[p.pid] = d;
    std::string name = std::string(static_cast<size_t>(2 * d), ' ') + printable(p.command_line());
    out += fmt::format(kRow, p.pid, p.ppid, format_bytes(p.memory.rss_bytes), opt_bytes(p.memory.pss_bytes, "?"),
                       opt_bytes(p.memory.uss_bytes, "?"), format_bytes(p.memory.swap_bytes),
                       format_bytes(p.memory.vsz_bytes), p.threads, p.fds ? std::to_string(p.fds->total) : "?",
                       shorten(name, options.width - 2));
  }
  model::TreeTotals totals = model::tree_totals(report);
  out += fmt::format(kRow, "", "", "-", format_bytes(totals.pss_bytes), format_bytes(totals.uss_bytes),
                     format_bytes(totals.swap_bytes), "-", totals.threads, totals.fds, "total (by PSS)");
  if (totals.gpu_bytes) {
    out += fmt::format("  GPU memory of the tree: {}", format_bytes(*totals.gpu_bytes));
    std::string each;
    for (const ProcessSnapshot& p : report.processes) {
      std::optional<uint64_t> gpu = p.gpu_bytes();
      if (gpu && *gpu > 0) each += fmt::format("{}pid {} {}", each.empty() ? "" : ", ", p.pid, format_bytes(*gpu));
    }
    out += each.empty() ? "\n" : " (" + each + ")\n";
  }
  out += "  RSS and VSZ are not summed: pages shared between processes would be counted once per process.\n";
  if (!totals.complete) out += "  (total is a lower bound: some processes' PSS could not be read)\n";
  if (!report.exited_during_read.empty()) {
    out += fmt::format("  {} process(es) exited while the tree was being read and are not shown.\n",
                       report.exited_during_read.size());
  }

  std::map<model::RegionCategory, model::RegionTotals> by_category;
  for (const ProcessSnapshot& p : report.processes) {
    for (const auto& r : p.regions) {
      auto& t = by_category[r.category];
      t.category = r.category;
      t.count += r.count;
      t.pss_bytes += r.pss_bytes;
    }
  }
  if (by_category.empty()) return;
  out += fmt::format("\n  {:<22} {:>8} {:>11}\n", "whole tree by region", "count", "PSS");
  for (const auto& [category, t] : by_category) {
    out += fmt::format("  {:<22} {:>8} {:>11}\n", model::category_description(category), t.count,
                       format_bytes(t.pss_bytes));
  }
}

std::string psi_text(const std::optional<model::PsiSummary>& psi) {
  if (!psi) return "not available";
  auto pct = [](const std::optional<double>& v) { return v ? fmt::format("{:.2f}%", *v) : std::string("n/a"); };
  return fmt::format("some {} / {}, full {} / {} (avg10 / avg60)", pct(psi->some_avg10), pct(psi->some_avg60),
                     pct(psi->full_avg10), pct(psi->full_avg60));
}

void render_system(std::string& out, const InspectReport& report) {
  const model::SystemSnapshot& s = report.system;
  out += "\nsystem\n";
  std::string available = "n/a";
  if (s.mem_available_bytes && s.mem_total_bytes > 0) {
    available =
        fmt::format("{} ({:.0f}%)", format_bytes(*s.mem_available_bytes),
                    100.0 * static_cast<double>(*s.mem_available_bytes) / static_cast<double>(s.mem_total_bytes));
  }
  std::string swap =
      s.swap_total_bytes == 0
          ? std::string("none")
          : fmt::format("{} used of {}",
                        format_bytes(s.swap_total_bytes - std::min(s.swap_total_bytes, s.swap_free_bytes)),
                        format_bytes(s.swap_total_bytes));
  out += fmt::format("  memory   total {}, available {}, swap {}\n", format_bytes(s.mem_total_bytes), available, swap);
  out += fmt::format("  PSI      {}\n", psi_text(s.psi));
  if (!s.cgroup) {
    out += "  cgroup   no memory controller found\n";
    return;
  }
  const model::CgroupSummary& c = *s.cgroup;
  out += fmt::format("  cgroup   v{} {}\n", c.version, printable(c.path));
  out += fmt::format("           current {}, max {}, high {}\n", opt_bytes(c.memory_current_bytes),
                     c.memory_max_bytes ? format_bytes(*c.memory_max_bytes) : "unlimited",
                     c.memory_high_bytes ? format_bytes(*c.memory_high_bytes) : (c.version == 2 ? "unlimited" : "n/a"));
  out += fmt::format("           anon {}, file {}, oom events {}, oom kills {}\n", opt_bytes(c.anon_bytes),
                     opt_bytes(c.file_bytes), c.oom_events ? std::to_string(*c.oom_events) : "n/a",
                     c.oom_kill_events ? std::to_string(*c.oom_kill_events) : "n/a");
  if (c.version == 2) out += fmt::format("           PSI {}\n", psi_text(c.psi));
}

void render_gpu(std::string& out, const InspectReport& report) {
  for (const model::GpuDevice& device : report.gpu_devices) {
    std::string label = device.name == device.id ? device.id : fmt::format("{} ({})", device.id, device.name);
    std::string use = device.used_bytes && device.total_bytes
                          ? fmt::format("{} used of {} by every process", format_bytes(*device.used_bytes),
                                        format_bytes(*device.total_bytes))
                          : "device totals not reported";
    out += fmt::format("  GPU      {}: {} ({})\n", label, use, model::to_string(device.source));
  }
  if (report.gpu_devices.empty()) {
    out += fmt::format("  GPU      not measured: {}; no DRM client among these processes\n",
                       report.nvml_note.empty() ? "NVML lists no device" : report.nvml_note);
  }
}

void render_notes(std::string& out, const InspectReport& report, const InspectTextOptions& options) {
  if (report.notes.empty()) return;
  out += "\nnotes\n";
  for (const model::Note& note : report.notes) {
    std::string who = note.pid != 0 && report.tree ? fmt::format(" pid {}:", note.pid) : "";
    // A note's sentence can name a path or a cgroup of the target.
    out += "  " +
           wrap(fmt::format("[{}]{} {}", to_string(note.kind), who, printable(note.text)), options.width - 2, "    ") +
           "\n";
  }
}

}  // namespace

std::string wrap(const std::string& text, size_t width, const std::string& indent) {
  std::string out;
  size_t line_length = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string::npos) end = text.size();
    std::string word = text.substr(pos, end - pos);
    if (line_length > 0 && line_length + 1 + word.size() > width) {
      out += "\n" + indent;
      line_length = indent.size();
    } else if (line_length > 0) {
      out += ' ';
      ++line_length;
    }
    out += word;
    line_length += word.size();
    pos = end + 1;
  }
  return out;
}

std::string render_inspect_text(const InspectReport& report, const InspectTextOptions& options) {
  std::string out;
  if (report.processes.empty()) return out;
  if (report.tree) {
    render_tree(out, report, options);
  } else {
    for (size_t i = 0; i < report.processes.size(); ++i) {
      if (i > 0) out += "\n";
      render_process(out, report.processes[i], options);
    }
  }
  render_notes(out, report, options);
  render_system(out, report);
  render_gpu(out, report);
  return out;
}

}  // namespace memdx::report
