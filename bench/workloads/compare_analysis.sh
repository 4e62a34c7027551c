#!/usr/bin/env bash
# The cost of analysing a heap trace: `memdx report` on memdx's trace of a workload beside
# `heaptrack_print` on heaptrack's trace of the same workload (wall time, CPU time, peak RSS,
# trace size, events). See bench/README.md, "Trace analysis".
#
#   bench/workloads/compare_analysis.sh [--large] [BUILD_DIR [RUNS]]
#
#   BUILD_DIR  defaults to ../../build next to this script; needs BUILD_DIR/memdx (with its trace
#              command and the memdx_trace library it preloads) and memdx_workload_alloc:
#                cmake --build BUILD_DIR --target memdx memdx_trace memdx_workload_alloc
#   RUNS       timed runs of each analysis per workload, medians reported (default 5; 3 with --large)
#   --large    one workload only, memdx_workload_alloc at SCALE=LARGE_SCALE (default 3.2: 26.4
#              million allocations and as many frees, 52.9 million events; 3 gives only 49.6
#              million); the script warns when memdx counts fewer than 50 million events
# Environment:
#   SCALE                 passed to both workloads without --large (default 1; 0.1 for a quick try)
#   LARGE_SCALE           the C++ workload's scale with --large (default 3.2)
#   HEAPTRACK_TIMEOUT_S   heaptrack's recording is killed after this long and memdx reported alone
#                         (default 900)
#   TMPDIR                where the traces go (about 80 MiB per unit of SCALE for the C++ workload)
#
# The workloads: memdx_workload_alloc (C++) and alloc_workload.py run by python3. Each is
# recorded once by each tracer; then `memdx report TRACE`, `memdx report TRACE --json FILE` and
# `heaptrack_print -f TRACE --print-leaks=1` run RUNS times each, alternating. Without heaptrack
# installed, memdx is reported alone. Traces go to a temporary directory, removed however the
# script ends. The timing and statistics are in analysis_runs.py.
set -euo pipefail

usage="usage: compare_analysis.sh [--large] [BUILD_DIR [RUNS]]"
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
large=0
case "${1:-}" in
  --large) large=1; shift ;;
  -h|--help) sed -n '2,27s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
  -*) echo "$usage" >&2; exit 2 ;;
esac
build_dir=$(cd "${1:-$script_dir/../../build}" && pwd)
if [ "$large" = 1 ]; then runs=${2:-3}; scale=${LARGE_SCALE:-3.2}; else runs=${2:-5}; scale=${SCALE:-1}; fi
workload_dir="$build_dir/bench/workloads"

command -v python3 >/dev/null || { echo "compare_analysis.sh: python3 is needed for the timing" >&2; exit 1; }
if [ ! -x "$workload_dir/memdx_workload_alloc" ]; then
  echo "compare_analysis.sh: $workload_dir/memdx_workload_alloc is missing; build it with" >&2
  echo "  cmake --build $build_dir --target memdx memdx_trace memdx_workload_alloc" >&2
  exit 1
fi
# CLI11 answers --help before it rejects an unknown subcommand: require trace's own usage line.
if ! "$build_dir/memdx" trace --help 2>/dev/null | grep -q '^Usage: [^ ]*memdx trace'; then
  echo "compare_analysis.sh: '$build_dir/memdx trace --help' does not show the trace command; build memdx" >&2
  exit 1
fi

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
trap 'exit 130' INT TERM

# The C++ workload's two traces take about 57 + 19 MiB per unit of scale; ask for twice that.
need_mib=$(python3 -c "import sys; print(int(160 * float(sys.argv[1])) + 100)" "$scale")
avail_mib=$(df --output=avail -m "$workdir" | tail -1 | tr -d ' ')
if [ "$avail_mib" -lt "$need_mib" ]; then
  echo "compare_analysis.sh: $workdir has $avail_mib MiB free, the traces need about $need_mib MiB; set TMPDIR" >&2
  exit 1
fi

tool_args=(--memdx "$build_dir/memdx" --heaptrack-timeout-s "${HEAPTRACK_TIMEOUT_S:-900}")
# GNU time for each analysis' own peak RSS (analysis_runs.py says why its own wait4 will not do).
if [ -x /usr/bin/time ] && /usr/bin/time -f %M -o /dev/null true 2>/dev/null; then
  tool_args+=(--time /usr/bin/time)
else
  echo "compare_analysis.sh: GNU time (/usr/bin/time) is not installed: peak RSS is only an upper bound" >&2
fi
if command -v heaptrack >/dev/null && command -v heaptrack_print >/dev/null; then
  tool_args+=(--heaptrack "$(command -v heaptrack)" --heaptrack-print "$(command -v heaptrack_print)")
else
  echo "compare_analysis.sh: heaptrack or heaptrack_print is not installed: memdx alone" >&2
fi

# The interpreter itself, not a wrapper such as a pyenv shim (a script that would be traced too).
python=$(python3 -c 'import sys; print(sys.executable)')
# NAME=COMMAND, quoted for analysis_runs.py's shlex.split.
workload() { printf '%s=%s' "$1" "$(shift; printf '%q ' "$@")"; }
workloads=(--workload "$(workload alloc "$workload_dir/memdx_workload_alloc" "$scale")")
if [ "$large" = 1 ]; then
  workloads+=(--min-events 50000000)
  echo "== analysis of a large trace: memdx_workload_alloc $scale, $runs runs of each analysis"
else
  workloads+=(--workload "$(workload python3 "$python" "$script_dir/alloc_workload.py" "$scale")")
  echo "== trace analysis at SCALE=$scale: $runs runs of each analysis per workload, alternating"
fi
echo "   memdx report TRACE; memdx report TRACE --json FILE; heaptrack_print -f TRACE --print-leaks=1"
echo "   (stdout to /dev/null; wall = spawn to reap, CPU = user + sys, peak RSS = GNU time's %M)"
echo "   uptime: $(uptime)"
python3 "$script_dir/analysis_runs.py" --runs "$runs" --workdir "$workdir" "${tool_args[@]}" "${workloads[@]}"
echo "   uptime: $(uptime)"
