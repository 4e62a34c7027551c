// libmemdx: what a process's memory is, whether it grows, and which code holds it, from inside a
// program. Link with `find_package(memdx)` + `memdx::memdx`, or `pkg-config --cflags --libs memdx`.
//
//   memdx/process_memory.h  read_process_memory(): RSS, PSS, USS, swap, VSZ in one cheap read
//   memdx/snapshot.h        inspect(): the full snapshot behind `memdx inspect`
//   memdx/recording.h       Recording (start, stop, path) and analyze_recording()
//   memdx/verdict.h         the verdict: processes, findings, hypotheses, call sites; has_leak()
//   memdx/trend.h           test_trend(): the trend test on a caller's own series
//   memdx/preflight.h       preflight(): will it fit, under MemAvailable and the cgroup's limits?
//   memdx/pressure.h        PressureMonitor: a callback on memory pressure (PSI, cgroup events, polling)
//   memdx/governor.h        Governor: unload by priority under pressure and when idle; read_watermark()
//   memdx/idle_unloader.h   IdleUnloader: unload one thing after a timeout unused
//   memdx/cache.h           ByteBudgetCache: an LRU cache whose capacity is bytes
//   memdx/channel.h         BoundedChannel: a queue that blocks, drops or rejects when full
//   memdx/history.h         BoundedHistory: the last N records; metrics records as JSON
//   memdx/metrics_exporter.h MetricsExporter: this process's memory and the program's metrics on /metrics
//   memdx/testing.h         (not included here: needs GoogleTest) EXPECT_MEMORY_BOUNDED, EXPECT_PEAK_BELOW
//   memdx/error.h           memdx::Error, the one exception the library throws
//   memdx/version.h         MEMDX_VERSION_STRING and memdx::version()
//
// Sizes are bytes, times seconds unless a name says otherwise (interval_ms). Every function is
// safe to call from any thread unless its header says otherwise.
#pragma once

#include "memdx/cache.h"
#include "memdx/channel.h"
#include "memdx/error.h"
#include "memdx/governor.h"
#include "memdx/history.h"
#include "memdx/idle_unloader.h"
#include "memdx/metrics_exporter.h"
#include "memdx/preflight.h"
#include "memdx/pressure.h"
#include "memdx/process_memory.h"
#include "memdx/recording.h"
#include "memdx/snapshot.h"
#include "memdx/trend.h"
#include "memdx/verdict.h"
#include "memdx/version.h"
