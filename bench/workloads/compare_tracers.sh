#!/usr/bin/env bash
# Wall time of three allocation-heavy workloads run natively, under `memdx trace` and under
# heaptrack, alternating in the same session; and the cost of heaptrack_print on heaptrack's
# traces (the analysis memdx's own is compared against). See bench/README.md, "Tracer workloads".
#
#   bench/workloads/compare_tracers.sh [--tracers|--analysis] [BUILD_DIR [RUNS]]
#
#   BUILD_DIR  defaults to ../../build next to this script; needs the targets memdx_workload_alloc
#              and memdx_workload_alloc_fp, and BUILD_DIR/memdx for the memdx column
#   RUNS       runs of each tool per workload, medians reported (default 5)
#   --tracers  only the timing of the tracers; --analysis only the heaptrack_print timing;
#              default both
# Environment: SCALE, passed to every workload (default 1; e.g. 0.1 for a quick try).
#
# The workloads: memdx_workload_alloc (C++, frame pointers omitted as -O2 does by default),
# memdx_workload_alloc_fp (the same source with frame pointers kept), and alloc_workload.py run
# by python3. `memdx trace` is timed only where `memdx trace --help` shows it, heaptrack only
# where it is installed; a skipped tool is said so on stderr. Traces go to a temporary
# directory, removed however the script ends. All timing and statistics are in time_runs.py.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mode=all
case "${1:-}" in
  --tracers) mode=tracers; shift ;;
  --analysis) mode=analysis; shift ;;
  -*) echo "usage: compare_tracers.sh [--tracers|--analysis] [BUILD_DIR [RUNS]]" >&2; exit 2 ;;
esac
build_dir=$(cd "${1:-$script_dir/../../build}" && pwd)
runs=${2:-5}
scale=${SCALE:-1}
workload_dir="$build_dir/bench/workloads"

command -v python3 >/dev/null || { echo "compare_tracers.sh: python3 is needed for the timing" >&2; exit 1; }
for binary in "$workload_dir/memdx_workload_alloc" "$workload_dir/memdx_workload_alloc_fp"; do
  if [ ! -x "$binary" ]; then
    echo "compare_tracers.sh: $binary is missing; build it with" >&2
    echo "  cmake --build $build_dir --target memdx_workload_alloc memdx_workload_alloc_fp" >&2
    exit 1
  fi
done

# The interpreter itself, not a wrapper such as a pyenv shim (a bash script that would be
# timed and traced along with Python).
python=$(python3 -c 'import sys; print(sys.executable)')

# Exit status 0 is not enough: CLI11 answers --help before it rejects an unknown subcommand, so
# a memdx without `trace` prints its top-level help and exits 0. Require trace's own usage line.
memdx_has_trace() {
  local help
  help=$("$build_dir/memdx" trace --help 2>/dev/null) || return 1
  grep -q '^Usage: [^ ]*memdx trace' <<<"$help"
}

tool_args=()
if memdx_has_trace; then
  # SAMPLE_BYTES (default 524288) adds a column for the sampling mode; SAMPLE_BYTES=0 leaves it out.
  tool_args+=(--memdx "$build_dir/memdx" --memdx-sample-bytes "${SAMPLE_BYTES:-524288}")
else
  echo "compare_tracers.sh: skipping memdx: '$build_dir/memdx trace --help' does not show the trace command" \
    "(not built, or no trace command yet)" >&2
fi
heaptrack=$(command -v heaptrack || true)
heaptrack_print=$(command -v heaptrack_print || true)
if [ -n "$heaptrack" ]; then
  tool_args+=(--heaptrack "$heaptrack")
else
  echo "compare_tracers.sh: skipping heaptrack: not installed" >&2
fi

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
trap 'exit 130' INT TERM

# NAME=COMMAND, quoted for time_runs.py's shlex.split.
workload() { printf '%s=%s' "$1" "$(shift; printf '%q ' "$@")"; }
alloc=$(workload alloc "$workload_dir/memdx_workload_alloc" "$scale")
alloc_fp=$(workload alloc_fp "$workload_dir/memdx_workload_alloc_fp" "$scale")
python_workload=$(workload python3 "$python" "$script_dir/alloc_workload.py" "$scale")
# Process start-up: every new image connects to the collector, proves itself, finds its stack and
# starts its flusher thread. 300 fork + exec of /bin/true from bash.
forkexec=$(workload forkexec /bin/bash -c 'for i in $(seq 300); do /bin/true; done; echo checksum 300')

if [ "$mode" != analysis ]; then
  echo "== tracers: $runs runs each; native, memdx trace, heaptrack alternating"
  python3 "$script_dir/time_runs.py" tracers --runs "$runs" --workdir "$workdir" "${tool_args[@]}" \
    --workload "$alloc" --workload "$alloc_fp" --workload "$python_workload" --workload "$forkexec"
fi

if [ "$mode" != tracers ]; then
  if [ -z "$heaptrack" ] || [ -z "$heaptrack_print" ]; then
    echo "compare_tracers.sh: skipping the analysis timing: heaptrack or heaptrack_print is not installed" >&2
    exit 0
  fi
  echo
  echo "== analysis: heaptrack_print on one heaptrack trace per workload, $runs runs each"
  python3 "$script_dir/time_runs.py" analysis --runs "$runs" --workdir "$workdir" \
    --heaptrack "$heaptrack" --heaptrack-print "$heaptrack_print" \
    --workload "$alloc" --workload "$alloc_fp" --workload "$python_workload"
fi
