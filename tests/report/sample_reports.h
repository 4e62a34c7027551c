// Hand-built InspectReport values shared by the JSON and text rendering tests.
#pragma once

#include <cstdint>

#include "model/snapshot.h"

namespace memdx::testing {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

inline model::ProcessSnapshot sample_process(pid_t pid, pid_t ppid, uint64_t rss_bytes, uint64_t pss_bytes) {
  model::ProcessSnapshot p;
  p.pid = pid;
  p.ppid = ppid;
  p.comm = "app";
  p.command = {"/usr/bin/app", "--port", "8080"};
  p.state = 'S';
  p.uid = 1000;
  p.threads = 4;
  p.memory.rss_bytes = rss_bytes;
  p.memory.pss_bytes = pss_bytes;
  p.memory.uss_bytes = pss_bytes / 2;
  p.memory.vsz_bytes = 8 * kGiB;
  p.memory.peak_rss_bytes = rss_bytes + 16 * kMiB;
  p.fds = model::FdSummary{6, {{"pipe", 2}, {"regular", 3}, {"socket", 1}}};
  return p;
}

// pid 4242 with regions, top regions, modules, a note, a cgroup and system figures.
inline model::InspectReport single_process_report() {
  model::ProcessSnapshot p = sample_process(4242, 1, 64 * kMiB, 48 * kMiB);
  p.memory.rss_anon_bytes = 40 * kMiB;
  p.memory.rss_file_bytes = 20 * kMiB;
  p.memory.rss_shmem_bytes = 4 * kMiB;
  p.memory.swap_bytes = 2 * kMiB;
  p.memory.swap_pss_bytes = 1 * kMiB;
  p.regions_measured = true;
  p.regions = {{model::RegionCategory::kHeap, 1, 4 * kMiB, 2 * kMiB, 2 * kMiB, 0},
               {model::RegionCategory::kAnonMmap, 3, 96 * kMiB, 38 * kMiB, 38 * kMiB, 2 * kMiB},
               {model::RegionCategory::kGpu, 2, 4 * kGiB, 1 * kMiB, 1 * kMiB, 0},
               {model::RegionCategory::kReserved, 5, 7 * kGiB, 0, 0, 0}};
  p.top_regions = {{0x7f3a00000000, 0x7f3a02000000, "rw-p", model::RegionCategory::kAnonMmap, "[anon]", 32 * kMiB,
                    30 * kMiB, 30 * kMiB, 2 * kMiB},
                   {0x55d0c2000000, 0x55d0c2400000, "rw-p", model::RegionCategory::kHeap, "[heap]", 4 * kMiB, 2 * kMiB,
                    2 * kMiB, 0}};
  p.modules = {{"/usr/lib/x86_64-linux-gnu/libc.so.6", 1620 * kKiB, 1200 * kKiB, 536 * kKiB, 312 * kKiB, 210 * kKiB}};

  model::InspectReport report;
  report.processes = {p};
  report.system.mem_total_bytes = 16 * kGiB;
  report.system.mem_available_bytes = 8 * kGiB;
  report.system.swap_total_bytes = 0;
  report.system.psi = model::PsiSummary{0.12, 0.05, std::nullopt, std::nullopt};
  model::CgroupSummary cgroup;
  cgroup.version = 2;
  cgroup.path = "/user.slice/app.service";
  cgroup.memory_current_bytes = 500 * kMiB;
  cgroup.memory_max_bytes = 1 * kGiB;
  cgroup.oom_events = 2;
  cgroup.oom_kill_events = 1;
  cgroup.anon_bytes = 300 * kMiB;
  cgroup.file_bytes = 100 * kMiB;
  report.system.cgroup = cgroup;
  report.notes = {{NoteKind::kReservationOnly, 4242, "VSZ 8.00 GiB is 128x RSS 64.0 MiB."}};
  return report;
}

// Root 100 -> child 101 -> grandchild 102, and child 103. RSS adds up to 190 MiB across the
// tree (a number that must never be printed); PSS adds up to 60 MiB.
inline model::InspectReport tree_report() {
  model::InspectReport report;
  report.tree = true;
  model::ProcessSnapshot root = sample_process(100, 1, 100 * kMiB, 30 * kMiB);
  root.children = {101, 103};
  model::ProcessSnapshot child = sample_process(101, 100, 60 * kMiB, 20 * kMiB);
  child.command = {"worker", "--id=1"};
  child.children = {102};
  model::ProcessSnapshot grandchild = sample_process(102, 101, 20 * kMiB, 6 * kMiB);
  grandchild.command = {"helper"};
  model::ProcessSnapshot second = sample_process(103, 100, 10 * kMiB, 4 * kMiB);
  second.command = {"worker", "--id=2"};
  second.fds.reset();
  report.processes = {root, child, grandchild, second};
  report.system.mem_total_bytes = 16 * kGiB;
  report.system.mem_available_bytes = 8 * kGiB;
  report.notes = {{NoteKind::kSharedHeavy, 100, "RSS 100 MiB includes 70.0 MiB of pages shared."}};
  return report;
}

}  // namespace memdx::testing
