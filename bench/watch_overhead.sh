#!/usr/bin/env bash
# Overhead of `memdx watch` on a tree of idle processes: memdx's own CPU time (user + sys from
# its rusage) as a share of one core, its peak RSS, and the size of the recording per sample.
# The goal: 1,000 idle processes at 1 Hz for < 2 % of one core and < 20 MB RSS.
#
#   bench/watch_overhead.sh [BUILD_DIR [DURATION]]   BUILD_DIR defaults to ../build next to this script
#
# Builds nothing: build memdx and the fixture first,
#   cmake --build BUILD_DIR --target memdx memdx_fixture_tree
# Environment:
#   DURATION       seconds of each 1 Hz watch (default 60; the second argument wins)
#   RUNS           repetitions of each case, the median is printed (default 3)
#   TREE           descendants of the fixture root (default 1000; memdx watches TREE + 1)
#   INTERVAL       interval of the main case in ms (default 1000)
#   FAST_INTERVAL  interval of the comparison case in ms (default 200, memdx's default)
#   FAST_DURATION  seconds of each comparison watch (default 20; 0 skips the case)
# Needs python3 (rusage through os.wait4, the sample count through its sqlite3 module).
#
# Per run it prints:
#   cpu%     (user + sys) / wall * 100 over the whole command: start-up, the first tick (which
#            reads stat and cmdline of every pid on the machine), sampling, closing the
#            recording, and the verdict and summary table printed at the end (to /dev/null here)
#   steady%  the same from /proc/PID/stat between 3 s after the start and 1 s before the end:
#            the sampling loop alone, what a long watch costs per second (nan under 6 s)
#   maxrss   ru_maxrss (peak RSS, including the analysis at the end); hwm: VmHWM at the end of
#            the steady window, the peak of the sampling loop alone
#   pss      share of process samples with PSS, i.e. smaps_rollup read within the tick's budget
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build_dir=$(cd "${1:-$script_dir/../build}" && pwd)
duration=${2:-${DURATION:-60}}
runs=${RUNS:-3}
tree_count=${TREE:-1000}
interval=${INTERVAL:-1000}
fast_interval=${FAST_INTERVAL:-200}
fast_duration=${FAST_DURATION:-20}
memdx="$build_dir/memdx"
fixture="$build_dir/bench/memdx_fixture_tree"

for binary in "$memdx" "$fixture"; do
  if [ ! -x "$binary" ]; then
    echo "watch_overhead.sh: $binary is missing; run: cmake --build $build_dir --target memdx memdx_fixture_tree" >&2
    exit 1
  fi
done
command -v python3 >/dev/null || { echo "watch_overhead.sh: python3 is needed" >&2; exit 1; }

work=$(mktemp -d)
fixture_pid=""
fixture_fd=""
measure_pid=""

# The measuring python ends its memdx on SIGTERM; closing the fixture's stdin makes it kill
# and reap its tree. If this script is SIGKILLed the kernel closes the FIFO all the same, and
# memdx stops at the end of its --duration.
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$measure_pid" ]; then
    kill -TERM "$measure_pid" 2>/dev/null || true
    wait "$measure_pid" 2>/dev/null || true
  fi
  if [ -n "$fixture_fd" ]; then exec {fixture_fd}>&-; fi
  if [ -n "$fixture_pid" ]; then
    for _ in $(seq 100); do kill -0 "$fixture_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$fixture_pid" 2>/dev/null || true
    wait "$fixture_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts the fixture on a FIFO this shell holds open; sets tree_root from its "ready <pid>".
mkfifo "$work/tree.in"
"$fixture" "$tree_count" <"$work/tree.in" >"$work/tree.out" &
fixture_pid=$!
exec {fixture_fd}>"$work/tree.in"
tree_root=""
for _ in $(seq 900); do
  line=$(head -n 1 "$work/tree.out")
  if [[ $line == ready\ * ]]; then tree_root=${line#ready }; break; fi
  kill -0 "$fixture_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$tree_root" ]; then
  echo "watch_overhead.sh: $fixture $tree_count did not get ready" >&2
  exit 1
fi
tree_size=$(ps -e -o pid= -o ppid= | awk -v root="$tree_root" '
  { parent[$1] = $2 }
  END { for (p in parent) { q = p; while ((q in parent) && q != root) q = parent[q]; if (q == root) n++ }; print n }')

# measure LABEL INTERVAL_MS DURATION_S: RUNS watches of the tree; one line per run, then the
# medians. Runs in the background and is waited for, so that a TERM is handled at once.
measure() {
  python3 - "$1" "$2" "$3" "$runs" "$memdx" "$tree_root" "$work" <<'PY' &
import os, signal, sqlite3, statistics, subprocess, sys, time

label, interval_ms, duration_s, runs, memdx, root, work = sys.argv[1:8]
interval_ms, duration_s, runs = int(interval_ms), float(duration_s), int(runs)
ticks_per_s = os.sysconf("SC_CLK_TCK")
child = None

def on_term(signum, frame):
    if child is not None and child.returncode is None:
        child.send_signal(signal.SIGTERM)  # memdx ends the watch cleanly
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    sys.exit(128 + signum)

signal.signal(signal.SIGTERM, on_term)

def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime

def hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0

def one_run(index):
    global child
    out = os.path.join(work, f"{label}-{index}.memdx")
    cmd = [memdx, "watch", root, "--interval", str(interval_ms), "--duration", f"{duration_s:g}", "--quiet",
           "--out", out]
    load_before = os.getloadavg()[0]
    with open(os.path.join(work, "stderr"), "w") as err:
        start = time.monotonic()
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        window = None
        steady_from, steady_to = 3.0, duration_s - 1.0
        if steady_to - steady_from >= 2.0:
            time.sleep(steady_from)
            t0, c0 = time.monotonic(), cpu_ticks(child.pid)
            time.sleep(max(0.0, start + steady_to - time.monotonic()))
            t1, c1 = time.monotonic(), cpu_ticks(child.pid)
            window = ((c1 - c0) / ticks_per_s / (t1 - t0) * 100.0, hwm_kib(child.pid) / 1024.0)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - start
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        with open(os.path.join(work, "stderr")) as err:
            sys.stderr.write(err.read())
        sys.exit(f"watch_overhead.sh: memdx exited with {child.returncode}")
    db = sqlite3.connect(f"file:{out}?mode=ro", uri=True)
    samples, with_pss, ticks, pids = db.execute(
        "SELECT COUNT(*), COUNT(pss_kib), COUNT(DISTINCT t_ms), COUNT(DISTINCT pid) FROM samples").fetchone()
    db.close()
    size = os.path.getsize(out)
    os.remove(out)
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "wall s": wall, "user s": usage.ru_utime, "sys s": usage.ru_stime, "cpu%": cpu / wall * 100.0,
        "steady%": window[0] if window else float("nan"), "maxrss MiB": usage.ru_maxrss / 1024.0,
        "hwm MiB": window[1] if window else float("nan"), "ticks": ticks, "pids": pids, "samples": samples,
        "pss": with_pss / samples if samples else 0.0, "bytes": size, "B/sample": size / samples if samples else 0.0,
        "load": load_before,
    }

formats = {"wall s": "{:7.1f}", "user s": "{:7.2f}", "sys s": "{:6.2f}", "cpu%": "{:5.2f}", "steady%": "{:7.2f}",
           "maxrss MiB": "{:10.1f}", "hwm MiB": "{:7.1f}", "ticks": "{:5d}", "pids": "{:5d}", "samples": "{:8d}",
           "pss": "{:5.2f}", "bytes": "{:9d}", "B/sample": "{:8.1f}", "load": "{:5.2f}"}
widths = {key: len(fmt.format(0.0 if "f" in fmt else 0)) for key, fmt in formats.items()}
print(f"{label}: memdx watch --interval {interval_ms} --duration {duration_s:g}, {runs} runs")
print("  run   " + " ".join(key.rjust(widths[key]) for key in formats))
results = []
for index in range(runs):
    r = one_run(index)
    results.append(r)
    print(f"  {index + 1:<5} " + " ".join(formats[k].format(r[k]) for k in formats), flush=True)
median = {}
for key, fmt in formats.items():
    value = statistics.median(r[key] for r in results)
    median[key] = int(value) if "d" in fmt else value
print("  median " + " ".join(formats[k].format(median[k]) for k in formats)[1:])
PY
  measure_pid=$!
  wait "$measure_pid"
  measure_pid=""
}

echo "memdx watch overhead on a tree of idle processes"
echo "  build: $build_dir ($(nproc) cores, $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'))"
pids_on_machine=(/proc/[0-9]*)
echo "  tree of pid $tree_root: $tree_size processes with the root; ${#pids_on_machine[@]} pids on the machine"
echo "  load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
measure "${interval}ms" "$interval" "$duration"
if [ "$fast_duration" != 0 ]; then
  echo
  measure "${fast_interval}ms" "$fast_interval" "$fast_duration"
fi
echo
echo "  load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
