#!/usr/bin/env bash
# End-to-end timing of the real memdx binary: `inspect` of a process with 10,000 mappings and
# `inspect --tree` of 200 processes, with `pmap -x` (procps, which reads the same smaps) timed
# beside it on the same process in the same run, and the peak RSS of each.
#
#   bench/inspect_cli.sh [BUILD_DIR]     BUILD_DIR defaults to ../build next to this script
#
# Environment: RUNS (default 11), MAPPINGS (default 10000), TREE (default 200).
# Needs python3 for the timing; the fixtures come from BUILD_DIR/bench (the bench targets).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build_dir=$(cd "${1:-$script_dir/../build}" && pwd)
runs=${RUNS:-11}
mapping_count=${MAPPINGS:-10000}
tree_count=${TREE:-200}
memdx="$build_dir/memdx"

for binary in "$memdx" "$build_dir/bench/memdx_fixture_mappings" "$build_dir/bench/memdx_fixture_tree"; do
  if [ ! -x "$binary" ]; then
    echo "inspect_cli.sh: $binary is missing; build memdx and the bench targets into $build_dir" >&2
    exit 1
  fi
done
command -v python3 >/dev/null || { echo "inspect_cli.sh: python3 is needed for the timing" >&2; exit 1; }

work=$(mktemp -d)
fixture_pids=()
fixture_fds=()

# Closing a fixture's stdin ends it (the tree fixture kills and reaps its tree first); if the
# script itself is killed, the kernel closes these fds and the fixtures end the same way.
cleanup() {
  local fd pid
  for fd in "${fixture_fds[@]}"; do exec {fd}>&-; done
  for pid in "${fixture_pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_fixture NAME BINARY COUNT: starts the fixture on a FIFO we hold open and sets
# fixture_ready to the pid of its "ready <pid>" line. Not called in $(...): the FIFO's fd and
# the pid lists must stay in this shell.
start_fixture() {
  local name=$1 binary=$2 count=$3 fd line
  mkfifo "$work/$name.in"
  "$binary" "$count" <"$work/$name.in" >"$work/$name.out" &
  fixture_pids+=("$!")
  exec {fd}>"$work/$name.in"  # the fixture's open of the FIFO completes now
  fixture_fds+=("$fd")
  for _ in $(seq 600); do
    line=$(head -n 1 "$work/$name.out")
    if [[ $line == ready\ * ]]; then
      fixture_ready=${line#ready }
      return 0
    fi
    kill -0 "${fixture_pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "inspect_cli.sh: $binary did not get ready" >&2
  return 1
}

# time_command LABEL CMD...: runs CMD $runs times, output discarded; prints median and min.
time_command() {
  python3 - "$runs" "$@" <<'PY'
import statistics, subprocess, sys, time
runs, label, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
times = []
for _ in range(runs):
    start = time.perf_counter_ns()
    done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    times.append((time.perf_counter_ns() - start) / 1e6)
    if done.returncode != 0:
        sys.exit(f"inspect_cli.sh: {label} exited with {done.returncode}")
print(f"  {label:<36} median {statistics.median(times):8.1f} ms   min {min(times):8.1f} ms")
PY
}

# peak_rss LABEL CMD...: the maximum resident set size of one run of CMD.
peak_rss() {
  local label=$1 kib
  shift
  if /usr/bin/time -f %M -o /dev/null true 2>/dev/null; then
    /usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null 2>&1
    kib=$(tail -n 1 "$work/rss")
  else
    kib=$(python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@")
  fi
  awk -v label="$label" -v kib="$kib" 'BEGIN { printf "  %-36s %8.1f MiB\n", label, kib / 1024 }'
}

start_fixture mappings "$build_dir/bench/memdx_fixture_mappings" "$mapping_count"
mappings_pid=$fixture_ready
start_fixture tree "$build_dir/bench/memdx_fixture_tree" "$tree_count"
tree_root=$fixture_ready
map_lines=$(wc -l <"/proc/$mappings_pid/maps")
tree_size=$(ps -e -o pid= -o ppid= | awk -v root="$tree_root" '
  { parent[$1] = $2 }
  END { for (p in parent) { q = p; while ((q in parent) && q != root) q = parent[q]; if (q == root) n++ }; print n }')

echo "memdx inspect, end to end: $runs runs each, wall time including process start"
echo "  build: $build_dir ($(nproc) cores, $(uname -r), $(date -u +%Y-%m-%d))"
echo "  pid $mappings_pid has $map_lines mappings; tree of pid $tree_root has $tree_size processes"
echo
echo "wall time"
time_command "memdx inspect PID" "$memdx" inspect "$mappings_pid"
time_command "memdx inspect --json PID" "$memdx" inspect --json "$mappings_pid"
time_command "pmap -x PID (procps peer)" pmap -x "$mappings_pid"
time_command "memdx inspect --tree ROOT" "$memdx" inspect --tree "$tree_root"
time_command "memdx inspect --json --tree ROOT" "$memdx" inspect --json --tree "$tree_root"
echo
echo "peak RSS"
peak_rss "memdx inspect PID" "$memdx" inspect "$mappings_pid"
peak_rss "pmap -x PID" pmap -x "$mappings_pid"
peak_rss "memdx inspect --tree ROOT" "$memdx" inspect --tree "$tree_root"
